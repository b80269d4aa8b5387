"""Helpers for given-when-then tests of aggregates (the generated tests use them).

`when(Order(), state, command)` decides, then evolves the state by each event as the
application does, each event recorded with an envelope of its own (position 1, 2...,
recorded at `RECORDED_AT`), so updates that read the envelope are tested too. An
aggregate no application bound reads views that have no rows (`View[key]` is none).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from stormgen.runtime.aggregate import Aggregate, decide, id_text
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.lookups import NO_ROWS, UNBOUND
from stormgen.runtime.messages import Command, Event, info

__all__ = ["RECORDED_AT", "when"]

S = TypeVar("S")

#: When the events of `when` are recorded.
RECORDED_AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def when(
    aggregate: Aggregate[S],
    state: S,
    command: Command,
    recorded_at: datetime = RECORDED_AT,
) -> tuple[list[Event], S]:
    """The events ``command`` records given ``state``, and the state after them (given
    views without rows, unless an application bound the aggregate)."""
    if aggregate.lookups is UNBOUND:
        aggregate.lookups = NO_ROWS
    events = decide(aggregate, state, command)
    for number, event in enumerate(events, 1):
        ident = getattr(event, aggregate.id_field)
        recorded = RecordedEvent(
            id=str(UUID(int=number)),
            type=info(event).name,
            version=info(event).version,
            stream=aggregate.stream(ident),
            stream_id=id_text(ident),
            stream_version=number,
            position=number,
            recorded_at=recorded_at,
            data={},
            metadata={},
        )
        state = aggregate.evolve(state, event, recorded)
    return events, state
