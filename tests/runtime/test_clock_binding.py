"""The model's `now()` reads the application's clock: a test clock moves a guard too."""

from __future__ import annotations

from datetime import timedelta

from coffee_domain import definitions

from stormgen.runtime import Application, SystemClock, TestClock
from stormgen.runtime.clock import SYSTEM_CLOCK
from stormgen.runtime.scenarios import STARTED_AT, ScenarioRun


def test_an_application_binds_its_clock_to_every_definition() -> None:
    clock = TestClock()
    found = definitions()
    app = Application.open("memory://", clock=clock, **found)
    try:
        bound = [*app.aggregates.values(), *app.policies.values(), *app.views.values()]
        assert bound and all(d.clock is clock for d in bound)
        before = next(iter(app.aggregates.values())).clock.now()
        clock.advance(timedelta(hours=2))
        after = next(iter(app.aggregates.values())).clock.now()
        assert after - before >= timedelta(hours=2)
    finally:
        app.close()


def test_a_definition_reads_the_machines_clock_until_bound() -> None:
    aggregate = definitions()["aggregates"][0]
    assert aggregate.clock is SYSTEM_CLOCK and isinstance(SYSTEM_CLOCK, SystemClock)


def test_a_scenario_binds_its_own_clock_which_moves_only_when_time_passes() -> None:
    run = ScenarioRun(**definitions())
    aggregate = run.aggregates[0]
    assert aggregate.clock.now() == STARTED_AT
    run.passes(timedelta(minutes=16))
    assert aggregate.clock.now() == STARTED_AT + timedelta(minutes=16)
