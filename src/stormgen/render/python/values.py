"""Python source for values the scenario interpreter found, typed by the model.

The generated tests build their given states, commands and expected events from it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from stormgen.model import types as t
from stormgen.model.nodes import Aggregate, Command, Context
from stormgen.model.scope import EVENT_KINDS
from stormgen.render.python.interpreter import EnumValue, Unknowable
from stormgen.render.python.literals import py_decimal, py_str, py_timedelta, py_tuple
from stormgen.render.python.modules import Module
from stormgen.render.python.names import field_name, member_name

if TYPE_CHECKING:
    from stormgen.render.python.parts import Parts

RUNTIME = "stormgen.runtime"


def nth_id(ident: Any, number: int) -> Any:
    """The ``number``-th distinct id of the same type as ``ident``."""
    if isinstance(ident, UUID):
        return UUID(int=number)
    if isinstance(ident, bool):
        return ident
    if isinstance(ident, int):
        return number
    if isinstance(ident, Decimal):
        return Decimal(number)
    if isinstance(ident, str):
        return f"id-{number}"
    return ident


class Values:
    """Python source for the interpreter's values, typed by the model (for tests)."""

    def __init__(self, parts: Parts, mod: Module, context: Context) -> None:
        self.parts = parts
        self.mod = mod
        self.context = context

    def value(self, value: Any, tp: t.Type) -> str:
        mod = self.mod
        if value is None:
            return "None"
        if isinstance(tp, t.OptionalType):
            return self.value(value, tp.inner)
        if isinstance(tp, t.ListType):
            items = [self.value(v, tp.element) for v in value]
            return py_tuple(items)
        if isinstance(tp, t.EnumType) and isinstance(value, EnumValue):
            local = mod.use(self.parts.plan.of(tp.node).cls, tp.context_name or "")
            return f"{local}.{member_name(value.member)}"
        if isinstance(tp, t.ValueType) and isinstance(value, dict):
            local = mod.use(self.parts.plan.of(tp.node).cls, tp.context_name or "")
            fields = t.value_fields(tp, self.parts.scope)
            return self.build(local, value, fields)
        if isinstance(value, bool):
            return "True" if value else "False"
        if isinstance(value, Decimal) or (tp == t.DECIMAL and type(value) is int):
            mod.std("decimal", "Decimal")
            return py_decimal(value)
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, str):
            return py_str(value)
        if isinstance(value, UUID):
            return f"{mod.std('uuid', 'UUID')}(int={value.int})"
        if isinstance(value, datetime):
            mod.std("datetime", "UTC")
            seconds = [value.second, value.microsecond] if value.microsecond else [value.second]
            clock = [value.hour, value.minute, *(seconds if any(seconds) else ())]
            return (
                f"{mod.std('datetime', 'datetime')}({value.year}, {value.month}, {value.day},"
                f" {', '.join(map(str, clock))}, tzinfo=UTC)"
            )
        if isinstance(value, timedelta):
            return py_timedelta(value, mod.std("datetime", "timedelta"))
        if isinstance(value, date):
            return f"{mod.std('datetime', 'date')}({value.year}, {value.month}, {value.day})"
        raise Unknowable(f"a value of type {tp}")

    def build(
        self,
        callee: str,
        values: dict[str, Any],
        types: dict[str, t.Type],
        unset: frozenset[str] = frozenset(),
    ) -> str:
        """``callee(field=value, ...)``; a state field still unset is ``UNSET``."""
        args = ", ".join(
            f"{field_name(n)}="
            + (
                self.mod.std(RUNTIME, "UNSET")
                if n in unset and values[n] is None
                else self.value(values[n], tp)
            )
            for n, tp in types.items()
            if n in values
        )
        return f"{callee}({args})"

    def state(
        self,
        state: dict[str, Any],
        initial: dict[str, Any],
        types: dict[str, t.Type],
        aggregate: str,
    ) -> str:
        start = f"{aggregate}().initial_state()"
        changed = {
            n: v
            for n, v in state.items()
            if initial.get(n) != v or type(initial.get(n)) is not type(v)
        }
        if not changed:
            return start
        args = ", ".join(f"{field_name(n)}={self.value(v, types[n])}" for n, v in changed.items())
        return f"replace({start}, {args})"

    def events(self, events: Any, agg: Aggregate) -> str:
        parts = []
        for event, data in events:
            local = self.mod.use(self.parts.plan.of(event).cls)
            types = {
                f.name: self.parts.type_of(f, self.context) for f in (agg.id_field, *event.fields)
            }
            parts.append(self.build(local, data, types))
        return "[" + ", ".join(parts) + "]"

    def event_types(self, cmd: Command, context: Context) -> str:
        names = []
        for emit in cmd.emits:
            found = self.parts.scope.resolve(context, emit.event.name, EVENT_KINDS)
            if found is not None:
                names.append(self.mod.use(self.parts.plan.of(found.element).cls))
        return "[" + ", ".join(names) + "]"
