"""Aggregates: the unit of consistency, one instance per event stream.

A definition supplies the initial state, `decide` (guards raising `Rejected`, then the
events to record) and `apply` (state evolution; or `evolve`, which also gets the
recorded envelope). Instead of overriding `decide` and `apply`, a definition may mark
one method per message class (`@on_command(PlaceOrder)`, `@on_event(OrderPaid)`; an
`on_event` method that takes a third argument gets the recorded envelope): the base
class dispatches to them (`stormgen.runtime.dispatch`). The application loads,
decides, appends and snapshots; definitions hold no I/O.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from stormgen.runtime import codec
from stormgen.runtime.clock import SYSTEM_CLOCK, Clock
from stormgen.runtime.dispatch import handlers
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.lookups import UNBOUND, Lookups
from stormgen.runtime.messages import Command, Event
from stormgen.runtime.rejections import Rejected
from stormgen.runtime.unset import UNSET

S = TypeVar("S")


class Aggregate(ABC, Generic[S]):
    """The definition of one aggregate type; subclass it once per aggregate."""

    #: `Context.Aggregate`, the stream name prefix.
    name: ClassVar[str]
    #: the identity field every command and event of the aggregate carries
    id_field: ClassVar[str]
    #: the identity's type (`uuid.UUID`, `str`, `int`, ...)
    id_type: ClassVar[Any] = uuid.UUID
    #: the state class (a dataclass); snapshots are encoded and checked against it
    state_type: ClassVar[type[Any]]
    #: store a snapshot every N events (None: never)
    snapshot_every: ClassVar[int | None] = None
    #: the commands it handles and the events it records
    commands: ClassVar[tuple[type[Command], ...]] = ()
    events: ClassVar[tuple[type[Event], ...]] = ()
    #: the views its guards read (a model's `View[key]`): bound by the application
    lookups: Lookups = UNBOUND
    #: what the model's `now()` and `today()` read (the application binds its clock)
    clock: Clock = SYSTEM_CLOCK

    @abstractmethod
    def initial_state(self) -> S:
        """The state of an instance before its first event."""

    def decide(self, state: S, command: Command) -> Sequence[Event]:
        """Check the guards (raise `Rejected`) and return the events to record.

        Calls the method marked `@on_command` for the command's class, unless overridden.
        """
        found = handlers(type(self)).find("command", type(command))
        if found is None:
            raise TypeError(f"{self.name} does not handle {type(command).__name__}")
        events: Sequence[Event] = getattr(self, found.name)(state, command)
        return events

    def apply(self, state: S, event: Event) -> S:
        """Return the state after `event` (the input state is not changed).

        Calls the method marked `@on_event` for the event's class (an event without one
        leaves the state as it is), unless overridden; a definition marking none must
        override this, or `evolve` when the evolution needs the recorded envelope.
        """
        registry = handlers(type(self))
        found = registry.find("event", type(event))
        if found is not None and found.arity == 2:
            new: S = getattr(self, found.name)(state, event)
            return new
        if "event" not in registry.roles:
            raise TypeError(f"{type(self).__qualname__} must override apply() or evolve()")
        return state

    def evolve(self, state: S, event: Event, recorded: RecordedEvent) -> S:
        """The state after a recorded event; `recorded` gives `id`, `position`,
        `recorded_at`, `stream`, `stream_id`. Calls the `@on_event` method that takes
        `recorded`, if the event's class has one, else `apply`, unless overridden."""
        registry = handlers(type(self))
        if "event" not in registry.roles:
            return self.apply(state, event)  # no marked method: `apply` is overridden
        found = registry.find("event", type(event))
        new: S
        if found is not None:
            if found.arity == 3:
                new = getattr(self, found.name)(state, event, recorded)
                return new
            if found.arity == 2 and type(self).apply is Aggregate.apply:
                # what `apply` calls, without it looking the method up again
                new = getattr(self, found.name)(state, event)
                return new
        return self.apply(state, event)

    def state_data(self, state: S) -> dict[str, Any]:
        """The state as JSON, leaving out fields still `UNSET` (for snapshots)."""
        data: dict[str, Any] = codec.to_data(state)
        return {name: value for name, value in data.items() if getattr(state, name) is not UNSET}

    # -- helpers the application uses ------------------------------------------------
    @classmethod
    def stream(cls, ident: Any) -> str:
        """The stream name of an instance: `Context.Aggregate/<id>`."""
        return f"{cls.name}/{id_text(ident)}"

    @classmethod
    def parse_id(cls, text: Any) -> Any:
        """Turn an id given as text (a URL segment) into the id type; `DecodeError` if not."""
        return codec.from_data(cls.id_type, text)


def id_text(ident: Any) -> str:
    """An id as text, as it appears in stream names and envelopes."""
    if isinstance(ident, str):
        return ident
    if type(ident) is uuid.UUID:
        return str(ident)  # the canonical form `to_data` writes too, without its dispatch
    encoded = codec.to_data(ident)
    return encoded if isinstance(encoded, str) else str(encoded)


@dataclass(frozen=True, slots=True)
class Loaded(Generic[S]):
    """An instance as loaded: its state, stream version and last event's position."""

    stream: str
    state: S
    version: int
    position: int

    @property
    def exists(self) -> bool:
        """Whether the instance has any event (was created)."""
        return self.version > 0


def decide(aggregate: Aggregate[Any], state: Any, command: Command) -> list[Event]:
    """The events ``aggregate`` records for ``command``; `Rejected` when a guard fails,
    and also when one of the model's expressions cannot be computed (a division by
    zero, a decimal out of range): the command is refused with that reason and nothing
    is written."""
    try:
        return list(aggregate.decide(state, command))
    except ArithmeticError as exc:
        name = type(command).__name__
        raise Rejected(f"{name} cannot be computed: {_arithmetic(exc)}") from exc


def _arithmetic(exc: ArithmeticError) -> str:
    """What went wrong, in words (a `decimal` signal's own text is a class list)."""
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, OverflowError) or type(exc).__name__ == "Overflow":
        return "a number out of range"
    if type(exc).__name__ in ("InvalidOperation", "DivisionUndefined"):
        return "an undefined operation (such as 0 / 0)"
    return str(exc) or type(exc).__name__
