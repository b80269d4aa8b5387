"""A command's hot path keeps its contracts: the pieces made cheaper read as before."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
from runtime_support import Stores

from stormgen.runtime import Aggregate, Command, Event, on_event
from stormgen.runtime.codec import to_data
from stormgen.runtime.envelope import RecordedEvent, format_time
from stormgen.runtime.messages import Envelope
from stormgen.runtime.reading import _SHARED_ENVELOPES
from stormgen.runtime.store.base import Notifier


@dataclass(frozen=True, slots=True, kw_only=True)
class Open(Command, name="Path.Open", aggregate="Path.Pair", creates=True):
    pair_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bump(Command, name="Path.Bump", aggregate="Path.Pair"):
    pair_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Opened(Event, name="Path.Opened", aggregate="Path.Pair"):
    pair_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bumped(Event, name="Path.Bumped", aggregate="Path.Pair"):
    pair_id: str


@dataclass(frozen=True, slots=True)
class PairState:
    events: int = 0
    applied_by: str = ""


class Pair(Aggregate[PairState]):
    """Two events per command; its streams named its own way; `apply` overridden
    beside a marked method."""

    name = "Path.Pair"
    id_field = "pair_id"
    id_type = str
    state_type = PairState
    commands = (Open, Bump)
    events = (Opened, Bumped)

    def initial_state(self) -> PairState:
        return PairState()

    @classmethod
    def stream(cls, ident: Any) -> str:
        return f"Path.Pairs/{ident}"

    def decide(self, state: PairState, command: Command) -> list[Event]:
        if isinstance(command, Open):
            return [Opened(pair_id=command.pair_id), Bumped(pair_id=command.pair_id)]
        return [Bumped(pair_id=command.pair_id)]

    @on_event(Bumped)
    def bumped(self, state: PairState, event: Bumped) -> PairState:
        return PairState(state.events + 1, "marked")

    def apply(self, state: PairState, event: Event) -> PairState:
        return PairState(state.events + 1, "apply")


def test_an_aggregate_naming_its_streams_its_own_way_keeps_them(stores: Stores) -> None:
    app = stores.app(aggregates=[Pair()])
    first = app.handle(Open(pair_id="a"))
    again = app.handle(Bump(pair_id="a"))  # the second command of the class: its plan
    assert first.stream == again.stream == "Path.Pairs/a"
    assert [r.stream_version for r in app.store.read_stream("Path.Pairs/a")] == [1, 2, 3]


def test_an_overridden_apply_is_called_though_a_method_is_marked(stores: Stores) -> None:
    app = stores.app(aggregates=[Pair()])
    app.handle(Open(pair_id="b"))
    app.handle(Bump(pair_id="b"))  # decided on the cached state the append folded
    assert app.load(Pair, "b").state == PairState(3, "apply")
    app.state_cache.clear()
    assert app.load(Pair, "b").state == PairState(3, "apply")


def test_each_event_of_a_command_has_its_own_metadata(stores: Stores) -> None:
    app = stores.app(aggregates=[Pair()])
    given = {"trace": "t"}
    result = app.handle(Open(pair_id="c"), metadata=given, idempotency_key="key-c")
    one, two = (e.metadata for e in result.events)
    assert one == two and one is not two
    assert one is not given and given == {"trace": "t"}
    assert one["trace"] == "t" and "idempotency_key" in one
    read = [r.metadata for r in app.store.read_stream(result.stream)]
    assert read == [one, two]


def test_a_fresh_envelope_is_the_one_its_fields_make() -> None:
    recorded = _recorded(7)
    event = Opened(pair_id="x")
    data = to_data(event)
    fresh = Envelope.of_fresh(recorded, event, data, 1)
    made = Envelope(recorded, event, data, 1)
    assert fresh == made
    assert fresh.data is data and fresh.redacted == frozenset()
    assert fresh.to_json() == made.to_json()


def test_a_shared_envelope_is_decoded_again_once_a_later_position_took_its_slot(
    stores: Stores,
) -> None:
    app = stores.app(aggregates=[Pair()])
    opened = app.handle(Open(pair_id="d"))
    recorded = app.store.read_stream(opened.stream)[0]
    kept = app.shared_envelope(recorded)
    assert kept is opened.events[0]  # the command's own envelope, shared
    later = msgspec.structs.replace(recorded, position=recorded.position + _SHARED_ENVELOPES)
    assert app.shared_envelope(later).position == later.position  # not the kept one
    again = app.shared_envelope(recorded)
    assert again is not kept and again.to_json() == kept.to_json()
    assert app.shared_envelope(recorded) is again


def test_a_notify_with_nobody_waiting_is_still_known_to_a_later_wait() -> None:
    notifier = Notifier(None, 0.2)
    notifier.notify(5)
    notifier.notify(3)  # an earlier commit's late notify does not go back
    assert notifier.wait(4, timeout=0)
    assert not notifier.wait(5, timeout=0)


def test_a_waiting_thread_is_woken_by_a_notify() -> None:
    notifier = Notifier(None, 0.2)
    woken: list[bool] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        woken.append(notifier.wait(1, timeout=30))

    thread = threading.Thread(target=wait)
    thread.start()
    waiting.wait()
    while not notifier._waiting:  # the waiter is inside: the notify must wake it
        threading.Event().wait(0.001)
    notifier.notify(2)
    thread.join()
    assert woken == [True]
    assert notifier._waiting == 0


def test_format_time_writes_microseconds_and_a_z_whatever_the_time() -> None:
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.000006Z"
    )
    # a whole second keeps its six zeros (msgspec would leave them out)
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    assert format_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"  # naive
    east = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 2, 1, 0, 0, 500, tzinfo=east)) == (
        "2026-01-01T23:00:00.000500Z"
    )
    # a year before 1000 as strftime writes it, as before
    year_5 = datetime(5, 6, 7, tzinfo=UTC)
    assert format_time(year_5) == year_5.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _recorded(position: int) -> RecordedEvent:
    return RecordedEvent(
        "id", "Path.Opened", 1, "s", None, 1, position, datetime.now(UTC), {"pair_id": "x"}, {}
    )
