"""Views (read models): tables kept up to date from events.

A definition names its row class (a dataclass holding the key and the columns), the
key field, the events it listens to and `update`, which returns the new row or
`DELETE`; instead of overriding `update` (and `key_of`), a definition may mark one
method per event class (`@on_event(OrderPaid)`, `@key_for(OrderPaid)`), which the base
class dispatches to. The application stores rows as JSON documents in the store's view table,
with the view's checkpoint in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import types
import typing
import uuid
from abc import ABC
from typing import Any, ClassVar, Generic, TypeVar

from stormgen.runtime import codec
from stormgen.runtime.clock import SYSTEM_CLOCK, Clock
from stormgen.runtime.dispatch import handlers
from stormgen.runtime.messages import Envelope, Event

R = TypeVar("R")


class Delete(enum.Enum):
    """The type of `DELETE`, what `View.update` returns to delete the row."""

    DELETE = "delete"


DELETE = Delete.DELETE


class View(ABC, Generic[R]):
    """The definition of one view; subclass it once per view."""

    #: `Context.View`; the SQL table is `view_<context>_<view>` in snake case
    name: ClassVar[str]
    #: the row class: a dataclass with the key field and every column (with defaults)
    row_type: ClassVar[type[Any]]
    #: the key field's name
    key: ClassVar[str]
    #: columns holding personal data: stored encrypted under the source stream's key
    pii: ClassVar[frozenset[str]] = frozenset()
    #: the events it listens to
    events: ClassVar[tuple[type[Event], ...]] = ()
    #: what the model's `now()` and `today()` read (the application binds its clock)
    clock: Clock = SYSTEM_CLOCK
    #: `order by`: (column, descending) pairs by the model's names, the key breaking
    #: ties (ascending unless named); none sorts first ascending, last descending
    order: ClassVar[tuple[tuple[str, bool], ...]] = ()

    def key_of(self, event: Event, envelope: Envelope) -> Any:
        """The key of the row an event updates: the event field named like the key, else
        the event's stream id, unless a method marked `@key_for` the event's class picks
        it (a `by EXPR`). None skips the event."""
        return key_by(self, self.key, self.key_type(), event, envelope)

    def new_row(self, key: Any) -> R:
        """A row before any event: the key and every column's default."""
        return self.row_type(**{self.key: key})  # type: ignore[no-any-return]

    def update(self, row: R, event: Event, envelope: Envelope) -> R | Delete:
        """The row after `event` (or `DELETE`); the input row is not changed.

        Calls the method marked `@on_event` for the event's class (an event without one
        leaves the row as it is), unless overridden.
        """
        found = handlers(type(self)).find("event", type(event))
        if found is None:
            return row
        new: R | Delete = getattr(self, found.name)(row, event, envelope)
        return new

    # -- helpers ---------------------------------------------------------------------
    @classmethod
    def key_type(cls) -> Any:
        """The key field's type."""
        return codec._hints(cls.row_type)[cls.key]

    @classmethod
    def sort_terms(cls) -> tuple[tuple[str | None, bool], ...]:
        """`order` as the store sorts on it: (column, descending), the key as None."""
        key = cls.wire(cls.key)
        return tuple((None if name == key else name, desc) for name, desc in cls.order)

    @classmethod
    def wire(cls, attribute: str) -> str:
        """A row field's column name (the model's name) given its attribute name."""
        return codec.wire_name(cls.row_type, attribute)

    @classmethod
    def attribute(cls, column: str) -> str:
        """A row field's attribute name given its column name (the model's name)."""
        for attribute, wire in codec.wire_names(cls.row_type).items():
            if wire == column:
                return attribute
        return column

    @classmethod
    def sql_columns(cls) -> dict[str, str]:
        """The filterable columns (by the model's names) and their logical SQL types.

        pii columns and the key are left out.
        """
        out: dict[str, str] = {}
        for f in dataclasses.fields(cls.row_type):
            if f.name == cls.key or f.name in cls.pii:
                continue
            out[cls.wire(f.name)] = sql_type(codec._hints(cls.row_type)[f.name])
        return out


def key_by(definition: Any, key: str, key_type: Any, event: Event, envelope: Envelope) -> Any:
    """The key an event concerns, for a view's row or a process's instance: the method
    of `definition` marked `@key_for` the event's class (a `by EXPR`), else the event
    field named `key`, else the event's stream id read as `key_type` (None: none)."""
    found = handlers(type(definition)).find("key", type(event))
    if found is not None:
        return getattr(definition, found.name)(event, envelope)
    if hasattr(event, key):
        return getattr(event, key)
    if envelope.stream_id is None:
        return None
    return codec.from_data(key_type, envelope.stream_id)


def sql_type(hint: Any) -> str:
    """The store's logical column type for a Python type."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0] if len(args) == 1 else hint
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if hint is float:
        return "real"
    if hint is decimal.Decimal:
        return "numeric"
    if hint is dt.datetime:
        return "timestamp"
    if hint is dt.timedelta:
        return "duration"
    if hint in (str, uuid.UUID, dt.date) or (
        isinstance(hint, type) and issubclass(hint, enum.Enum)
    ):
        return "text"
    return "json"
