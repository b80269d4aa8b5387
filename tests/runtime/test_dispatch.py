"""The base classes dispatch to the methods marked for a message class (runtime.dispatch)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest

from stormgen.runtime import (
    Aggregate,
    Application,
    Command,
    Delete,
    Envelope,
    Event,
    FakePort,
    Policy,
    RecordedEvent,
    Rejected,
    View,
    key_for,
    on_command,
    on_event,
    require,
)
from stormgen.runtime.testing import RECORDED_AT, when


@dataclass(frozen=True, slots=True, kw_only=True)
class Open(Command, name="Shop.Open", aggregate="Shop.Till", creates=True):
    till: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ring(Command, name="Shop.Ring", aggregate="Shop.Till"):
    till: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Opened(Event, name="Shop.Opened", aggregate="Shop.Till"):
    till: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rung(Event, name="Shop.Rung", aggregate="Shop.Till"):
    till: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TillState:
    total: int = 0
    opened_on: date | None = None


class TillBase(Aggregate[TillState]):
    name = "Shop.Till"
    id_field = "till"
    id_type = str
    state_type = TillState
    commands = (Open, Ring)
    events = (Opened, Rung)

    def initial_state(self) -> TillState:
        return TillState()

    @on_command(Open)
    def handle_open(self, state: TillState, command: Open) -> list[Event]:
        require(state.opened_on is None, "already open")
        return [Opened(till=command.till)]

    @on_command(Ring)
    def handle_ring(self, state: TillState, command: Ring) -> list[Event]:
        require(command.amount > 0, "the amount must be positive")
        return [Rung(till=command.till, amount=command.amount)]

    @on_event(Opened)
    def apply_opened(self, state: TillState, event: Opened, recorded: RecordedEvent) -> TillState:
        return replace(state, opened_on=recorded.recorded_at.date())

    @on_event(Rung)
    def apply_rung(self, state: TillState, event: Rung) -> TillState:
        return replace(state, total=state.total + event.amount)


class Till(TillBase):
    """A user's subclass: overrides a marked method without marking it again."""

    def handle_ring(self, state: TillState, command: Ring) -> list[Event]:
        require(command.amount < 100, "ask the manager")
        return super().handle_ring(state, command)


def test_an_aggregate_dispatches_commands_and_events_to_marked_methods() -> None:
    events, state = when(Till(), Till().initial_state(), Open(till="t1"))
    assert events == [Opened(till="t1")]
    assert state.opened_on == RECORDED_AT.date()  # the method taking `recorded` ran
    events, state = when(Till(), state, Ring(till="t1", amount=3))
    assert events == [Rung(till="t1", amount=3)] and state.total == 3
    # apply alone (no envelope) applies what needs none and leaves the rest as it is
    assert Till().apply(TillState(), Rung(till="t1", amount=2)).total == 2
    assert Till().apply(TillState(), Opened(till="t1")) == TillState()


def test_guards_read_as_written_and_the_override_is_the_one_called() -> None:
    with pytest.raises(Rejected) as rejected:
        when(Till(), TillState(), Ring(till="t1", amount=0))
    assert rejected.value.message == "the amount must be positive"
    with pytest.raises(Rejected) as rejected:
        when(Till(), TillState(), Ring(till="t1", amount=100))
    assert rejected.value.message == "ask the manager"
    with pytest.raises(TypeError, match=r"Shop\.Till does not handle Close"):
        Till().decide(TillState(), Close(till="t1"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(Command, name="Shop.Close", aggregate="Shop.Till"):
    till: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BigRung(Rung, name="Shop.BigRung", aggregate="Shop.Till"):
    """A subclass of an event: handled by its base's method, as `isinstance` would."""


def test_a_subclass_of_a_message_finds_its_base_s_handler() -> None:
    state = Till().apply(TillState(), BigRung(till="t1", amount=7))
    assert state.total == 7


def test_a_definition_marking_nothing_must_override_apply() -> None:
    class Bare(Aggregate[int]):
        name = "Shop.Bare"
        id_field = "till"

        def initial_state(self) -> int:
            return 0

    with pytest.raises(TypeError, match="must override apply"):
        Bare().apply(0, Rung(till="t", amount=1))


@dataclass(frozen=True, slots=True, kw_only=True)
class DayRow:
    day: date
    total: int = 0


class Days(View[DayRow]):
    name = "Shop.Days"
    row_type = DayRow
    key = "day"
    events = (Rung, Opened)

    @key_for(Rung)
    def key_of_rung(self, event: Rung, envelope: Envelope) -> Any:
        return envelope.recorded_at.date()

    @on_event(Rung)
    def on_rung(self, row: DayRow, event: Rung, envelope: Envelope) -> DayRow | Delete:
        return replace(row, total=row.total + event.amount)


class Reviews(Policy):
    name = "Shop.Reviews"
    events = (Rung,)

    def applies(self, event: Rung, envelope: Envelope) -> bool:
        return event.amount > 10

    def commands(self, event: Rung, envelope: Envelope) -> list[Command]:
        return [Ring(till=event.till, amount=1)]


class Bank(FakePort):
    def __init__(self) -> None:
        super().__init__((Opened, Rung))

    @on_command(Ring)
    def answer_ring(self, command: Ring) -> Rung:
        return Rung(till=command.till, amount=-command.amount)


def test_views_policies_and_fakes_dispatch_through_the_runtime() -> None:
    app = Application.open("memory://", aggregates=[Till()], views=[Days()], policies=[Reviews()])
    with app:
        app.handle(Open(till="t1"))
        app.handle(Ring(till="t1", amount=4))
        app.handle(Ring(till="t1", amount=20))
        app.run_consumers()
        today = datetime.now(UTC).date().isoformat()
        # 4, 20, and the 1 the policy rang for the 20 (the key picked by `key_for`)
        assert app.view_rows("Shop.Days") == [{"day": today, "total": 25}]
    bank = Bank()
    assert bank.send(Ring(till="t", amount=5), UUID(int=1)) == [Rung(till="t", amount=-5)]
    assert bank.send(Open(till="t"), UUID(int=2)) == [Opened(till="t")]  # no method: default
    assert bank.sent == [Ring(till="t", amount=5), Open(till="t")]
