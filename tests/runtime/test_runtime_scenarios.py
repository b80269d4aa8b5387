"""`stormgen.runtime.scenarios` on the generated coffee shop (the golden record).

`ScenarioRun` plays one step of the real compiled service in memory: given events
evolve aggregates, views and process instances (no command of theirs counts), the
`when` runs the aggregate's code, the policies' `react` and the processes' handlers,
`passes` fires the processes' due timers on the scenario's clock, soonest first, and a
command is refused before its guards as the service does.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stormgen.runtime import AlreadyExists, NotFound, Process, Step, on_event, on_timer
from stormgen.runtime.scenarios import (
    SCENARIO_IDS,
    STARTED_AT,
    ScenarioClock,
    ScenarioRun,
    stable_id,
)

SRC = Path(__file__).resolve().parents[1] / "golden" / "coffee_shop" / "src"


@pytest.fixture(scope="module")
def shop() -> Iterator[dict[str, Any]]:
    sys.path.insert(0, str(SRC))
    try:
        import coffee_shop.app as app
        import coffee_shop.ordering.order as order
        import coffee_shop.ordering.payment_deadline as deadline
        import coffee_shop.ordering.payment_gateway as gateway
        import coffee_shop.shared as shared

        modules: dict[str, ModuleType] = {
            "app": app,
            "order": order,
            "deadline": deadline,
            "gateway": gateway,
            "shared": shared,
        }
        yield modules
    finally:
        sys.path.remove(str(SRC))


def placed(shop: dict[str, Any], ident: uuid.UUID) -> Any:
    drink = shop["shared"].Drink(name="latte", price=Decimal("3.50"))
    return shop["order"].OrderPlaced(
        order_id=ident, customer="Ada", drinks=(drink,), total=Decimal("3.50")
    )


def test_stable_ids() -> None:
    assert uuid.uuid5(uuid.NAMESPACE_URL, "https://stormgen.dev/scenario-ids") == SCENARIO_IDS
    assert stable_id("o1") == uuid.uuid5(SCENARIO_IDS, "o1")
    assert stable_id("o1") != stable_id("o2")
    assert stable_id("o1", str) == "o1"


def test_given_events_evolve_but_issue_nothing(shop: dict[str, Any]) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    run.given(placed(shop, order_id))  # ChargeOnOrder does not react to a given event
    outcome = run.when(shop["gateway"].CardCharged(order_id=order_id, amount=Decimal("3.50")))
    assert outcome.events == [] and outcome.rejected is None
    assert [type(c).__name__ for c in outcome.commands] == ["MarkPaid"]
    assert outcome.issued(shop["order"].MarkPaid, order_id=order_id, amount=Decimal("3.50"))
    assert not outcome.issued(shop["order"].MarkPaid, amount=Decimal("4"))
    row = run.row("Ordering.OrderHistory", order_id)
    assert (row.customer, row.status) == ("Ada", "placed")
    assert run.row("Ordering.OrderHistory", stable_id("nobody")) is None


def test_when_a_command_records_events_and_collects_the_policies_commands(
    shop: dict[str, Any],
) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    run.given(placed(shop, order_id))
    outcome = run.when(shop["order"].MarkPaid(order_id=order_id, amount=Decimal("3.50")))
    assert [type(e).__name__ for e in outcome.events] == ["OrderPaid"]
    assert [type(c).__name__ for c in outcome.commands] == ["OpenTicket"]  # not handled
    assert run.row("Ordering.OrderHistory", order_id).status == "paid"
    assert run.row("Ordering.DailySales", STARTED_AT.date()).orders == 1
    again = run.when(shop["order"].MarkPaid(order_id=order_id, amount=Decimal("3.50")))
    assert again.rejected == "only a placed order can be paid"
    assert again.events == [] and again.commands == []


def test_commands_refused_before_their_guards(shop: dict[str, Any]) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    with pytest.raises(NotFound, match="does not exist"):
        run.when(shop["order"].Cancel(order_id=order_id, reason="why not"))
    run.given(placed(shop, order_id))
    with pytest.raises(AlreadyExists, match="already exists"):
        run.when(
            shop["order"].PlaceOrder(
                order_id=order_id, customer="Bo", drinks=(), total=Decimal("1")
            )
        )


def test_time_passes(shop: dict[str, Any]) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    outcome = run.passes(timedelta(minutes=16))
    assert (outcome.events, outcome.rejected, outcome.commands) == ([], None, [])
    assert run.now == STARTED_AT + timedelta(minutes=16)


DEADLINE = "Ordering.PaymentDeadline"


def test_a_given_event_starts_a_process_whose_timer_counts_from_the_start(
    shop: dict[str, Any],
) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    assert run.instance(DEADLINE, order_id) is None
    run.given(placed(shop, order_id))
    instance = run.instance(DEADLINE, order_id)
    assert instance is not None and not instance.ended
    assert instance.timers == {"PaymentDue": STARTED_AT + timedelta(minutes=15)}
    assert instance.state.order_id == order_id
    assert instance.state.total == Decimal("3.50")  # copied from OrderPlaced

    early = run.passes(timedelta(minutes=14))
    assert (early.events, early.commands) == ([], [])
    due = run.passes(timedelta(minutes=2))  # 16 minutes after the start
    assert [type(c).__name__ for c in due.commands] == ["Cancel"]  # collected, not handled
    assert due.issued(shop["order"].Cancel, order_id=order_id, reason="not paid within 15 minutes")
    assert run.now == STARTED_AT + timedelta(minutes=16)
    assert instance.ended and instance.timers == {}  # the timer's handler ended it
    assert run.passes(timedelta(hours=1)).commands == []


def test_an_event_of_the_when_runs_the_process_and_an_ended_instance_ignores_later_ones(
    shop: dict[str, Any],
) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    run.given(placed(shop, order_id))
    outcome = run.when(shop["order"].MarkPaid(order_id=order_id, amount=Decimal("3.50")))
    assert [type(c).__name__ for c in outcome.commands] == ["OpenTicket"]
    instance = run.instance(shop["deadline"].PaymentDeadlineBase, order_id)
    assert instance is not None and instance.ended and instance.timers == {}
    run.given(placed(shop, order_id))  # a starting event for an ended instance: ignored
    assert instance.ended and instance.timers == {}
    assert run.passes(timedelta(minutes=16)).commands == []


def timed(shop: dict[str, Any]) -> Process[Any]:
    """A process of timers: on OrderPlaced it issues Cancel("placed") and sets `Late`
    (due in 10 minutes) before `Early` (5), `Tie2` and `Tie1` (both 7); each timer's
    handler issues Cancel(its name); `Again` sets itself again, at once, for ever."""
    order = shop["order"]

    @dataclass(frozen=True)
    class TimedState:
        order_id: uuid.UUID | None = None

    class Timed(Process[TimedState]):
        name = "Ordering.Timed"
        key = "order_id"
        state_type = TimedState
        events = (order.OrderPlaced, order.OrderPaid)
        starts = (order.OrderPlaced,)
        timers = ("Early", "Late", "Tie1", "Tie2", "Again")

        @on_event(order.OrderPlaced)
        def placed(self, step: Step[TimedState], event: Any) -> None:
            step.issue(order.Cancel(order_id=step.key, reason="placed"))
            step.timer("Late", after=timedelta(minutes=10))
            step.timer("Early", after=timedelta(minutes=5))
            step.timer("Tie2", after=timedelta(minutes=7))
            step.timer("Tie1", after=timedelta(minutes=7))

        @on_event(order.OrderPaid)
        def paid(self, step: Step[TimedState], event: Any) -> None:
            step.timer("Again", after=timedelta(0))

        def fired(self, step: Step[TimedState], name: str) -> None:
            step.issue(order.Cancel(order_id=step.key, reason=f"{name}@{step.now:%H:%M}"))

        @on_timer("Early")
        def early(self, step: Step[TimedState]) -> None:
            self.fired(step, "Early")

        @on_timer("Late")
        def late(self, step: Step[TimedState]) -> None:
            self.fired(step, "Late")

        @on_timer("Tie1")
        def tie1(self, step: Step[TimedState]) -> None:
            self.fired(step, "Tie1")

        @on_timer("Tie2")
        def tie2(self, step: Step[TimedState]) -> None:
            self.fired(step, "Tie2")

        @on_timer("Again")
        def again(self, step: Step[TimedState]) -> None:
            step.timer("Again", after=timedelta(0))

    return Timed()


def test_due_timers_fire_soonest_first_each_at_its_due_time(shop: dict[str, Any]) -> None:
    run = ScenarioRun(aggregates=shop["app"].definitions()["aggregates"], processes=[timed(shop)])
    run.given(placed(shop, stable_id("o1")))  # its command ("placed") is not the `when`'s
    before = run.passes(timedelta(minutes=6))
    assert [c.reason for c in before.commands] == ["Early@12:05"]
    outcome = run.passes(timedelta(hours=1))
    assert [c.reason for c in outcome.commands] == ["Tie1@12:07", "Tie2@12:07", "Late@12:10"]


def test_a_when_events_process_commands_are_collected(shop: dict[str, Any]) -> None:
    run = ScenarioRun(aggregates=shop["app"].definitions()["aggregates"], processes=[timed(shop)])
    outcome = run.when(placed(shop, stable_id("o1")))
    assert [c.reason for c in outcome.commands] == ["placed"]


def test_a_timer_that_sets_itself_again_at_once_is_stopped(shop: dict[str, Any]) -> None:
    run = ScenarioRun(aggregates=shop["app"].definitions()["aggregates"], processes=[timed(shop)])
    order_id = stable_id("o1")
    paid = shop["order"].OrderPaid(order_id=order_id, amount=Decimal("3.50"), drinks=())
    run.given(placed(shop, order_id), paid)
    with pytest.raises(RuntimeError, match="a timer sets itself again"):
        run.passes(timedelta(hours=1))


def test_the_scenario_clock_stands_still_and_moves_only_forward() -> None:
    clock = ScenarioClock()
    assert clock.now() == STARTED_AT
    assert clock.advance(timedelta(minutes=3)) == STARTED_AT + timedelta(minutes=3)
    assert clock.now() == STARTED_AT + timedelta(minutes=3)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))
