"""Static types of `.storm` expressions (docs/language.md): representation and inference.

The types, how they fit together (:func:`assignable`, :func:`unify`...), how a written
type resolves, and the environments (:class:`Env`) an expression is checked in; the
checker itself is :mod:`stormgen.model.typecheck`.

Types are small frozen dataclasses: :class:`Primitive`, :class:`ListType`,
:class:`OptionalType`, :class:`ValueType`, :class:`EnumType`, and the singletons
:data:`NONE` (the type of ``none``), :data:`NOTHING` (the element type of ``[]``) and
:data:`UNKNOWN` (a type that could not be worked out; it fits everything, so one
mistake gives one finding).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal as TypingLiteral

from stormgen.model.nodes import (
    Aggregate,
    Command,
    Context,
    Enum,
    Event,
    Expr,
    External,
    Field,
    On,
    Process,
    TypeRef,
    Value,
    View,
)
from stormgen.model.scope import Scope

# ---------------------------------------------------------------- the types


@dataclass(frozen=True, slots=True)
class Primitive:
    """``str``, ``int``, ``float``, ``decimal``, ``bool``, ``uuid``, ``date``, ``datetime``,
    ``duration``.

    ``literal`` marks the type of a number literal with a fraction (``4.50``): a
    ``decimal`` that also fits ``float``.
    """

    name: str
    literal: bool = False

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListType:
    """``list[T]``; the empty list ``[]`` is ``list`` of :data:`NOTHING`."""

    element: Type

    def __str__(self) -> str:
        if self.element is NOTHING:
            return "empty list"
        return f"list[{self.element}]"


@dataclass(frozen=True, slots=True)
class OptionalType:
    """``T?``: a ``T`` or ``none``."""

    inner: Type

    def __str__(self) -> str:
        return f"{self.inner}?"


@dataclass(frozen=True, slots=True)
class ValueType:
    """A ``value`` record; two value types are the same when name and context match.

    A view's row, as a lookup ``View[key]`` reads it, is one too: ``view`` is set, and
    ``node`` holds its key and columns as fields (:func:`row_type`).
    """

    name: str
    context_name: str | None
    node: Value = field(compare=False, repr=False)
    context: Context | None = field(compare=False, repr=False, default=None)
    view: View | None = field(compare=False, repr=False, default=None)
    row: bool = False  # a view's row (compared: a row is no value of the same name)

    def __str__(self) -> str:
        return f"{self.name} row" if self.row else self.name


@dataclass(frozen=True, slots=True)
class EnumType:
    """An ``enum``: a closed set of member names."""

    name: str
    members: tuple[str, ...]
    context_name: str | None
    node: Enum = field(compare=False, repr=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class _Special:
    label: str

    def __str__(self) -> str:
        return self.label


NONE = _Special("none")
"""The type of the literal ``none``: fits only an optional."""
NOTHING = _Special("nothing")
"""The element type of ``[]``: fits every element type."""
UNKNOWN = _Special("unknown")
"""A type that could not be worked out (already reported): fits everything."""

Type = Primitive | ListType | OptionalType | ValueType | EnumType | _Special

STR = Primitive("str")
INT = Primitive("int")
FLOAT = Primitive("float")
DECIMAL = Primitive("decimal")
BOOL = Primitive("bool")
UUID = Primitive("uuid")
DATE = Primitive("date")
DATETIME = Primitive("datetime")
DURATION = Primitive("duration")
FRACTION = Primitive("decimal", literal=True)
"""The type of a number literal with a fraction: ``decimal``, also fitting ``float``."""

PRIMITIVE_TYPES: dict[str, Primitive] = {
    p.name: p for p in (STR, INT, FLOAT, DECIMAL, BOOL, UUID, DATE, DATETIME, DURATION)
}
NUMERIC = frozenset({"int", "float", "decimal"})
ORDERED = frozenset({"int", "float", "decimal", "str", "date", "datetime", "duration"})

EVENT_METADATA: dict[str, Type] = {
    "id": UUID,
    "position": INT,
    "version": INT,
    "recorded_at": DATETIME,
    "stream": STR,
}
"""``event.<name>`` envelope fields every event has (``stream_id`` is added per event)."""

DURATION_UNITS = ("seconds", "minutes", "hours", "days", "weeks")
"""The functions that make a duration of a whole number of their unit: ``minutes(15)``."""

FUNCTIONS = (
    "len",
    "now",
    "today",
    "date",
    "new_id",
    "lower",
    "upper",
    "min",
    "max",
    "round",
    "abs",
    "matches",
    "startswith",
    "endswith",
    "any",
    "all",
    "sum",
    "first",
    *DURATION_UNITS,
)
GENERATOR_FUNCTIONS = ("any", "all", "sum", "min", "max", "first")
"""The functions that take a generator ``E for x in L [if C]`` as their one argument."""


def is_numeric(t: Type) -> bool:
    """Whether ``t`` is ``int``, ``float`` or ``decimal``."""
    return isinstance(t, Primitive) and t.name in NUMERIC


def strip_optional(t: Type) -> Type:
    """``T`` for ``T?``, else ``t`` itself."""
    return t.inner if isinstance(t, OptionalType) else t


def make_optional(t: Type) -> Type:
    """``t?`` (``none`` and unknown stay as they are)."""
    if isinstance(t, OptionalType) or t is NONE or t is UNKNOWN:
        return t
    return OptionalType(t)


def numeric_join(a: Type, b: Type) -> Type | None:
    """The type of ``a op b`` for two numbers, or None when they never mix (float/decimal)."""
    if not (isinstance(a, Primitive) and isinstance(b, Primitive)):
        return None
    if a.name not in NUMERIC or b.name not in NUMERIC:
        return None
    if a == b:
        return a
    if a.name == "int":
        return b
    if b.name == "int":
        return a
    if a.name == b.name:  # a fraction literal with a decimal
        return DECIMAL
    # float with a fraction literal gives float; float with decimal never mixes.
    if a.literal:
        return b
    if b.literal:
        return a
    return None


_TIME_SUMS: dict[tuple[str, str, str], Primitive] = {
    ("+", "datetime", "duration"): DATETIME,
    ("+", "duration", "datetime"): DATETIME,
    ("-", "datetime", "duration"): DATETIME,
    ("+", "date", "duration"): DATE,
    ("+", "duration", "date"): DATE,
    ("-", "date", "duration"): DATE,
    ("-", "datetime", "datetime"): DURATION,
    ("-", "date", "date"): DURATION,
    ("+", "duration", "duration"): DURATION,
    ("-", "duration", "duration"): DURATION,
    ("*", "duration", "int"): DURATION,
    ("*", "int", "duration"): DURATION,
}


def time_arithmetic(op: str, a: Type, b: Type) -> tuple[Primitive | None, str | None]:
    """The type of ``a op b`` where a date, datetime or duration takes part (None when
    it has none), with a ``help:`` line for the mistake.

    A datetime or date moves by a duration (a date by whole days), two of them subtract
    to a duration, durations add and subtract, and a duration multiplies by an int.
    """
    names = tuple(x.name if isinstance(x, Primitive) else "" for x in (a, b))
    found = _TIME_SUMS.get((op, names[0], names[1]))
    if found is not None:
        return found, None
    if op == "/" and "duration" in names:
        return None, "a duration does not divide; multiply a smaller unit: 'minutes(30) * n'"
    if is_numeric(a) or is_numeric(b):
        if op == "*" and "duration" in names:
            return None, "a duration multiplies by an int: 'minutes(15) * 2'"
        return None, "give the number its unit: 'minutes(15)', 'days(n)'"
    if op == "+" and names[0] == names[1] and names[0] in ("date", "datetime"):
        return None, f"a {names[0]} moves by a duration: '{names[0]} + days(1)'"
    if set(names) == {"date", "datetime"}:
        return None, "make both dates (date(x)) or both datetimes"
    if "duration" in names or "date" in names or "datetime" in names:
        return None, (
            "a date or datetime moves by a duration ('+', '-'); two of them subtract to "
            "a duration; durations add, subtract and multiply by an int"
        )
    return None, None


def unify(a: Type, b: Type) -> Type | None:
    """The one type that holds values of ``a`` and of ``b`` (list items), or None."""
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if a is NOTHING:
        return b
    if b is NOTHING:
        return a
    if a == b:
        return a
    if a is NONE:
        return make_optional(b)
    if b is NONE:
        return make_optional(a)
    if isinstance(a, OptionalType) or isinstance(b, OptionalType):
        inner = unify(strip_optional(a), strip_optional(b))
        return make_optional(inner) if inner is not None else None
    if isinstance(a, ListType) and isinstance(b, ListType):
        element = unify(a.element, b.element)
        return ListType(element) if element is not None else None
    return numeric_join(a, b)


def assignable(source: Type, target: Type) -> bool:
    """Whether a value of type ``source`` may be stored where ``target`` is expected."""
    if source is UNKNOWN or target is UNKNOWN or source is NOTHING:
        return True
    if isinstance(target, OptionalType):
        if source is NONE:
            return True
        return assignable(strip_optional(source), target.inner)
    if isinstance(source, OptionalType) or source is NONE:
        return False
    if isinstance(source, Primitive) and isinstance(target, Primitive):
        if source.name == target.name:
            return True
        if source.name == "int":
            return target.name in ("float", "decimal")
        return source.literal and target.name == "float"
    if isinstance(source, ListType) and isinstance(target, ListType):
        return assignable(source.element, target.element)
    return source == target


def comparable(a: Type, b: Type) -> bool:
    """Whether ``a == b`` is meaningful: same type up to int widening, optional and none."""
    if a is UNKNOWN or b is UNKNOWN:
        return True
    if a is NONE or b is NONE:
        other = b if a is NONE else a
        return isinstance(other, OptionalType) or other is NONE
    a, b = strip_optional(a), strip_optional(b)
    if a is NOTHING or b is NOTHING:
        return True
    if isinstance(a, ListType) and isinstance(b, ListType):
        return comparable(a.element, b.element)
    if is_numeric(a) and is_numeric(b):
        return numeric_join(a, b) is not None
    return a == b


# ---------------------------------------------------------------- type references


def resolve_type(typeref: TypeRef, context: Context | None, scope: Scope) -> Type:
    """The type a :class:`TypeRef` written in ``context`` means (UNKNOWN if unresolvable)."""
    base: Type
    if typeref.element is not None:
        base = ListType(resolve_type(typeref.element, context, scope))
    elif typeref.name in PRIMITIVE_TYPES:
        base = PRIMITIVE_TYPES[typeref.name]
    else:
        found = scope.resolve_type(context, typeref.name)
        if found is None:
            base = UNKNOWN  # E102 is reported where the type is written
        elif isinstance(found.element, Value):
            base = ValueType(
                found.element.name, _name_of(found.context), found.element, found.context
            )
        elif isinstance(found.element, Enum):
            base = enum_type(found.element, found.context)
        else:
            base = UNKNOWN
    return OptionalType(base) if typeref.optional and base is not UNKNOWN else base


def enum_type(enum: Enum, context: Context | None) -> EnumType:
    """The :class:`EnumType` of an ``enum`` declared in ``context`` (None: top level)."""
    return EnumType(enum.name, tuple(m.name for m in enum.members), _name_of(context), enum)


def field_type(f: Field, context: Context | None, scope: Scope) -> Type:
    """The type of a field declared in ``context``."""
    return resolve_type(f.type, context, scope)


def value_fields(value: ValueType, scope: Scope) -> dict[str, Type]:
    """The fields of a value type, by name, resolved in the value's own context."""
    return {f.name: field_type(f, value.context, scope) for f in value.node.fields}


def row_type(view: View, context: Context | None) -> ValueType:
    """The type of a row of ``view`` (declared in ``context``): its key and columns."""
    node = Value(view.name, (view.key, *view.fields), view.loc, view.description)
    return ValueType(view.name, _name_of(context), node, context, view, row=True)


def _name_of(context: Context | None) -> str | None:
    return context.name if context is not None else None


# ---------------------------------------------------------------- environments


Source = TypingLiteral["message", "state", "metadata", "member", "local", "let", "lookup"]


@dataclass(frozen=True, slots=True)
class Namespace:
    """Names reachable under one qualifier (``command.``, ``event.``, ``state.``, ``row.``)."""

    qualifier: str
    source: TypingLiteral["message", "state"]
    fields: Mapping[str, Type]
    metadata: Mapping[str, Type] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Env:
    """The names an expression may use, in lookup order.

    ``message`` (the command or event being handled) is searched first, then
    ``state`` (the aggregate state or the view row), then the members of the
    expected enum, then the member of the one visible enum that has it.
    ``where`` names the place for messages (``a command``, ``an apply``...), ``note``
    explains a missing qualifier, and ``narrowed`` lists optional names known not to be
    ``none`` (set by inference inside ``and``/``or``).
    """

    scope: Scope
    context: Context | None
    where: str
    message: Namespace | None = None
    state: Namespace | None = None
    enums: tuple[EnumType, ...] = ()
    note: str | None = None  # why a qualifier is missing, e.g. a view's `by` has no row
    narrowed: frozenset[str] = frozenset()
    #: ``let`` names the expression sees: each one's type and value
    lets: Mapping[str, tuple[Type, Expr]] = field(default_factory=dict)
    #: variables bound around the expression (a policy's fan-out `for x in L`)
    locals: Mapping[str, Type] = field(default_factory=dict)
    #: whether ``View[key]`` may read a view here (a command, a policy or a process's
    #: handler)
    lookups: bool = False
    #: whether `id("name")` (a stable id made from a name) may be called: in scenarios
    ids: bool = False

    @property
    def namespaces(self) -> tuple[Namespace, ...]:
        return tuple(ns for ns in (self.message, self.state) if ns is not None)

    def lookup_field(self, name: str) -> tuple[Namespace, Type] | None:
        """The message field, else the state field, called ``name``."""
        for ns in self.namespaces:
            if name in ns.fields:
                return ns, ns.fields[name]
        return None


def visible_enums(scope: Scope, context: Context | None) -> tuple[EnumType, ...]:
    """The enums an expression in ``context`` may name unqualified: the context's and top-level."""
    own = tuple(enum_type(e, context) for e in context.enums) if context is not None else ()
    own_names = {e.name for e in own}
    top = tuple(enum_type(e, None) for e in scope.model.enums if e.name not in own_names)
    return own + top


def message_fields(
    fields: Iterable[Field],
    owner: Aggregate | External | None,
    context: Context | None,
    scope: Scope,
) -> dict[str, Type]:
    """A command's or event's fields by name, plus its aggregate's implicit id field."""
    out = {f.name: field_type(f, context, scope) for f in fields}
    if isinstance(owner, Aggregate) and owner.id_field.name not in out:
        out[owner.id_field.name] = field_type(owner.id_field, context, scope)
    return out


def _state_fields(
    aggregate: Aggregate | External | None, context: Context | None, scope: Scope
) -> dict[str, Type]:
    if not isinstance(aggregate, Aggregate):
        return {}
    return {f.name: field_type(f, context, scope) for f in aggregate.state}


def event_metadata(event: Event, scope: Scope) -> dict[str, Type]:
    """``event.id`` and friends; ``event.stream_id`` only for an aggregate's event."""
    out = dict(EVENT_METADATA)
    owner = scope.owner_of(event)
    if isinstance(owner, Aggregate):
        out["stream_id"] = field_type(owner.id_field, scope.context_of(event), scope)
    return out


def _event_namespace(event: Event, scope: Scope) -> Namespace:
    context = scope.context_of(event)
    fields = message_fields(event.fields, scope.owner_of(event), context, scope)
    return Namespace("event", "message", fields, event_metadata(event, scope))


def command_env(command: Command, scope: Scope, *, lines: bool = True) -> Env:
    """What an ``emit`` sees: the command, then the state, then the command's ``let``s,
    with the names its ``require``s proved not none narrowed (``lines=False``: without
    the lets and the narrowing, as the command's first line sees it)."""
    context = scope.context_of(command)
    owner = scope.owner_of(command)
    fields = message_fields(command.fields, owner, context, scope)
    env = Env(
        scope,
        context,
        "a command",
        message=Namespace("command", "message", fields),
        state=Namespace("state", "state", _state_fields(owner, context, scope)),
        enums=visible_enums(scope, context),
        lookups=True,
    )
    if not lines or not (command.lets or command.requires):
        return env
    from stormgen.model.typecheck import command_lines  # the checker needs these types

    return command_lines(command, env)[-1][1]


def apply_env(event: Event, scope: Scope) -> Env:
    """What an ``apply`` right-hand side sees: the event, then the state before it."""
    context = scope.context_of(event)
    owner = scope.owner_of(event)
    return Env(
        scope,
        context,
        "an apply",
        message=_event_namespace(event, scope),
        state=Namespace("state", "state", _state_fields(owner, context, scope)),
        enums=visible_enums(scope, context),
    )


def policy_env(event: Event, context: Context | None, scope: Scope) -> Env:
    """What a policy in ``context`` sees when ``event`` (maybe another context's) happens."""
    return Env(
        scope,
        context,
        "a policy",
        message=_event_namespace(event, scope),
        enums=visible_enums(scope, context),
        note="a policy has no state; it sees only the event",
        lookups=True,
    )


def process_state(process: Process, scope: Scope) -> dict[str, Type]:
    """A process instance's state: its key and its state fields by name."""
    context = scope.context_of(process)
    state = {process.key.name: field_type(process.key, context, scope)}
    for f in process.fields:
        state[f.name] = field_type(f, context, scope)
    return state


def process_env(process: Process, event: Event | None, scope: Scope, *, state: bool = True) -> Env:
    """What a process's handler sees: the event (none for a timer), then the instance's
    state, and its context's views (`View[key]`), as a policy does; `by`, which picks
    the instance, sees only the event."""
    context = scope.context_of(process)
    return Env(
        scope,
        context,
        "a process" if state else "a process's `by`",
        message=None if event is None else _event_namespace(event, scope),
        state=Namespace("state", "state", process_state(process, scope)) if state else None,
        enums=visible_enums(scope, context),
        note=None if state else "`by` picks the instance, so it sees only the event",
        lookups=state,
    )


def view_row(view: View, scope: Scope) -> dict[str, Type]:
    """A view's row: its key and columns by name."""
    context = scope.context_of(view)
    row = {view.key.name: field_type(view.key, context, scope)}
    for f in view.fields:
        row[f.name] = field_type(f, context, scope)
    return row


def view_env(
    view: View,
    event: Event,
    scope: Scope,
    *,
    row: bool = True,
    on: On | None = None,
    test: bool = False,
) -> Env:
    """What a view's ``on`` block sees: the event, then the row (not in ``by`` nor in the
    ``on`` line's ``if`` (``test``): no row yet), then the handler ``on``'s ``let``s."""
    context = scope.context_of(view)
    env = _view_env(view, event, scope, context, row and not test, test)
    if on is None or not on.lets or not row or test:
        return env
    from stormgen.model.typecheck import let_types  # the checker needs these types

    return replace(env, lets=let_types(on.lets, env)[0])


def _view_env(
    view: View, event: Event, scope: Scope, context: Context | None, row: bool, test: bool
) -> Env:
    if test:
        where, note = "an `on` line's `if`", "the `if` of `on` decides on the event alone"
    elif row:
        where, note = "a view", None
    else:
        where, note = "a view's `by`", "`by` picks the row, so it sees only the event"
    return Env(
        scope,
        context,
        where,
        message=_event_namespace(event, scope),
        state=Namespace("row", "state", view_row(view, scope)) if row else None,
        enums=visible_enums(scope, context),
        note=note,
    )


def constant_env(context: Context | None, scope: Scope) -> Env:
    """What a field's default sees: no fields, only enum members and functions."""
    return Env(scope, context, "a default", enums=visible_enums(scope, context))


def scenario_env(context: Context | None, scope: Scope) -> Env:
    """What a scenario's values see: enum members, functions and ``id("name")``."""
    return Env(
        scope,
        context,
        "a scenario",
        enums=visible_enums(scope, context),
        note="a scenario's values are constants: it has no message or state to read",
        ids=True,
    )
