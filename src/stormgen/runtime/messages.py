"""Events and commands: frozen dataclasses carrying class-level metadata.

A message class subclasses `Event` or `Command` and states its metadata as class
keywords, then is made a frozen, slotted dataclass::

    @dataclass(frozen=True, slots=True)
    class OrderPlaced(Event, name="Ordering.OrderPlaced", aggregate="Ordering.Order",
                      pii=("customer",)):
        order_id: UUID
        customer: str
        total: Decimal
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from stormgen.runtime.envelope import RecordedEvent

_new = object.__new__
_NOTHING: frozenset[str] = frozenset()

REDACTED = "[redacted]"
"""What a forgotten `pii` field of type `str` reads as (other types read as `None`)."""


@dataclass(frozen=True)
class MessageInfo:
    """The metadata of one message class."""

    kind: Literal["event", "command"]
    name: str
    version: int = 1
    # pii and was name fields as the data does: by the model's (wire) names, which
    # differ from the attribute for a field declared `field(metadata={"name": ...})`
    pii: frozenset[str] = frozenset()
    # current field name -> earlier names, most recent first (`was`)
    renamed: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    aggregate: str | None = None
    system: str | None = None
    creates: bool = False
    # an event of the context's published language (`published event`): the one kind
    # of event a context's relay puts on the bus (docs/autonomous.md)
    published: bool = False
    # actors allowed to issue the command from the outside (empty: internal command)
    by: tuple[str, ...] = ()
    description: str = ""

    @property
    def context(self) -> str:
        """The bounded context: the part of the name before the first dot."""
        return self.name.split(".", 1)[0]


def earlier_names(olds: str | Iterable[str]) -> tuple[str, ...]:
    """A `was` entry's earlier names, most recent first (one name may stand alone)."""
    return (olds,) if isinstance(olds, str) else tuple(olds)


def _renames(was: Mapping[str, str | Iterable[str]] | None) -> dict[str, tuple[str, ...]]:
    return {new: earlier_names(olds) for new, olds in (was or {}).items()}


def rename_fields(data: dict[str, Any], was: Mapping[str, str | Iterable[str]]) -> None:
    """Move each field of `data` stored under an earlier name (`was`: current name ->
    earlier names, most recent first) to its current name, unless that one is there."""
    for new, olds in was.items():
        if new not in data:
            for old in earlier_names(olds):
                if old in data:
                    data[new] = data.pop(old)
                    break


class Message:
    """Base of events and commands; subclasses are frozen dataclasses.

    The bases have empty `__slots__`, so a subclass declared `slots=True` has no
    instance `__dict__` (msgspec builds such instances in half the time). Such a
    dataclass is built twice: the class body with its keywords, then a copy without
    them (`dataclasses` recreates a class to add slots). The metadata is stored on the
    first and copied into the second with the class namespace; the copy's own
    `__init_subclass__` call, carrying no `name`, leaves it alone.
    """

    __slots__ = ()
    __message__: ClassVar[MessageInfo]
    _kind: ClassVar[Literal["event", "command"]]

    def __init_subclass__(
        cls,
        *,
        name: str | None = None,
        version: int = 1,
        pii: Iterable[str] = (),
        was: Mapping[str, str | Iterable[str]] | None = None,
        aggregate: str | None = None,
        system: str | None = None,
        creates: bool = False,
        published: bool = False,
        by: Iterable[str] = (),
        description: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if name is None:
            # an intermediate base class (e.g. a hand-written mixin) carries no metadata
            return
        if version < 1:
            raise ValueError(f"{cls.__qualname__}: schema version must be >= 1, not {version}")
        cls.__message__ = MessageInfo(
            kind=cls._kind,
            name=name,
            version=version,
            pii=frozenset(pii),
            renamed=_renames(was),
            aggregate=aggregate,
            system=system,
            creates=creates,
            published=published,
            by=tuple(by),
            description=description,
        )


class Event(Message):
    """A fact that happened; owned by an aggregate or an external system."""

    __slots__ = ()
    _kind = "event"


class Command(Message):
    """A request to an aggregate (or to an external system, through its port)."""

    __slots__ = ()
    _kind = "command"


def info(cls_or_message: type[Message] | Message) -> MessageInfo:
    """The metadata of a message class or instance."""
    cls = cls_or_message if isinstance(cls_or_message, type) else type(cls_or_message)
    try:
        return cls.__dict__["__message__"]  # type: ignore[no-any-return]
    except KeyError:
        raise TypeError(
            f"{cls.__qualname__} is not a message class (declare it with `name=`)"
        ) from None


def field_names(cls: type[Any]) -> tuple[str, ...]:
    """The dataclass field names of a message or value class."""
    return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class Envelope:
    """A recorded event as the domain sees it: decrypted, upcast and typed.

    `event` is the typed event (None for a type this service does not know, such as
    another context's private events); `data` is its JSON form (the current schema)
    with forgotten `pii` fields redacted; `redacted` names those fields.
    """

    recorded: RecordedEvent
    event: Event | None
    raw: dict[str, Any]
    version: int
    redacted: frozenset[str] = frozenset()

    @classmethod
    def of_fresh(
        cls, recorded: RecordedEvent, event: Event, data: dict[str, Any], version: int
    ) -> Envelope:
        """The envelope of an event just appended: `data` is its JSON (the current
        schema, nothing redacted), which `data` would compute again from `event`.

        Built without the frozen dataclass's `__init__` (a field at a time through
        `object.__setattr__`): the fields and the cached `data` go straight into the
        instance's dict (a command's hot path).
        """
        envelope = _new(cls)
        fields = envelope.__dict__
        fields["recorded"] = recorded
        fields["event"] = event
        fields["raw"] = data
        fields["version"] = version
        fields["redacted"] = _NOTHING
        fields["data"] = data
        return envelope

    @functools.cached_property
    def data(self) -> dict[str, Any]:
        """The event's data as JSON, in the current schema (computed when first asked)."""
        if self.event is None:
            return self.raw
        from stormgen.runtime.codec import to_data

        return to_data(self.event)  # type: ignore[no-any-return]

    @property
    def id(self) -> str:
        """The event's id."""
        return self.recorded.id

    @property
    def type(self) -> str:
        """The event's type name (`Ordering.OrderPlaced`)."""
        return self.recorded.type

    @property
    def stream(self) -> str:
        """The stream name (`Ordering.Order/<id>`, or `Context.System`)."""
        return self.recorded.stream

    @property
    def stream_id(self) -> str | None:
        """The emitting aggregate's id as text (None for external systems' events)."""
        return self.recorded.stream_id

    @property
    def stream_version(self) -> int:
        """The event's place in its stream (1-based)."""
        return self.recorded.stream_version

    @property
    def position(self) -> int:
        """The event's place in the global log (1-based)."""
        return self.recorded.position

    @property
    def recorded_at(self) -> datetime:
        """When the event was committed (UTC)."""
        return self.recorded.recorded_at

    @property
    def metadata(self) -> dict[str, Any]:
        """`command_id`, `correlation_id`, `causation_id`, `actor` and any extras."""
        return self.recorded.metadata

    def to_json(self) -> dict[str, Any]:
        """The stored-event envelope, with the data as the current schema sees it."""
        out = self.recorded.to_json()
        out["version"] = self.version
        out["data"] = self.data
        return out
