"""Static types of `.storm` expressions (language.md §3, §6): representation and inference.

The checks use this module to report E401 (unknown name) and E402 (type mismatch);
the code generator uses it to learn what an expression computes (``/`` of two ints is
a ``decimal``) and what each name in it means (:class:`Binding`).

Types are small frozen dataclasses: :class:`Primitive`, :class:`ListType`,
:class:`OptionalType`, :class:`ValueType`, :class:`EnumType`, and the singletons
:data:`NONE` (the type of ``none``), :data:`NOTHING` (the element type of ``[]``) and
:data:`UNKNOWN` (a type that could not be worked out; it fits everything, so one
mistake gives one finding).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal as TypingLiteral

from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.model.hints import closest, did_you_mean, suggest
from stormgen.model.nodes import (
    Aggregate,
    Binary,
    Call,
    Command,
    Context,
    Enum,
    Event,
    Expr,
    External,
    Field,
    ListExpr,
    Literal,
    Name,
    TypeRef,
    Unary,
    Value,
    View,
)
from stormgen.model.scope import Scope

# ---------------------------------------------------------------- the types


@dataclass(frozen=True, slots=True)
class Primitive:
    """``str``, ``int``, ``float``, ``decimal``, ``bool``, ``uuid``, ``date``, ``datetime``.

    ``literal`` marks the type of a number literal with a fraction (``4.50``): a
    ``decimal`` that also fits ``float`` (language.md §3).
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
    """A ``value`` record; two value types are the same when name and context match."""

    name: str
    context_name: str | None
    node: Value = field(compare=False, repr=False)
    context: Context | None = field(compare=False, repr=False, default=None)

    def __str__(self) -> str:
        return self.name


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
FRACTION = Primitive("decimal", literal=True)
"""The type of a number literal with a fraction: ``decimal``, also fitting ``float``."""

PRIMITIVE_TYPES: dict[str, Primitive] = {
    p.name: p for p in (STR, INT, FLOAT, DECIMAL, BOOL, UUID, DATE, DATETIME)
}
NUMERIC = frozenset({"int", "float", "decimal"})
ORDERED = frozenset({"int", "float", "decimal", "str", "date", "datetime"})

EVENT_METADATA: dict[str, Type] = {
    "id": UUID,
    "position": INT,
    "version": INT,
    "recorded_at": DATETIME,
    "stream": STR,
}
"""``event.<name>`` envelope fields every event has (``stream_id`` is added per event)."""

FUNCTIONS = ("len", "now", "today", "date", "new_id", "lower", "upper", "min", "max")


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


def _name_of(context: Context | None) -> str | None:
    return context.name if context is not None else None


# ---------------------------------------------------------------- environments


Source = TypingLiteral["message", "state", "metadata", "member"]


@dataclass(frozen=True, slots=True)
class Namespace:
    """Names reachable under one qualifier (``command.``, ``event.``, ``state.``, ``row.``)."""

    qualifier: str
    source: TypingLiteral["message", "state"]
    fields: Mapping[str, Type]
    metadata: Mapping[str, Type] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Env:
    """The names an expression may use, in language.md §6 lookup order.

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


def command_env(command: Command, scope: Scope) -> Env:
    """What a ``require``, an ``emit`` assignment or ``emit ... if`` sees: command, then state."""
    context = scope.context_of(command)
    owner = scope.owner_of(command)
    fields = message_fields(command.fields, owner, context, scope)
    return Env(
        scope,
        context,
        "a command",
        message=Namespace("command", "message", fields),
        state=Namespace("state", "state", _state_fields(owner, context, scope)),
        enums=visible_enums(scope, context),
    )


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
    )


def view_row(view: View, scope: Scope) -> dict[str, Type]:
    """A view's row: its key and columns by name."""
    context = scope.context_of(view)
    row = {view.key.name: field_type(view.key, context, scope)}
    for f in view.fields:
        row[f.name] = field_type(f, context, scope)
    return row


def view_env(view: View, event: Event, scope: Scope, *, row: bool = True) -> Env:
    """What a view's ``on`` block sees: the event, then the row (not in ``by``: no row yet)."""
    context = scope.context_of(view)
    return Env(
        scope,
        context,
        "a view" if row else "a view's `by`",
        message=_event_namespace(event, scope),
        state=Namespace("row", "state", view_row(view, scope)) if row else None,
        enums=visible_enums(scope, context),
        note=None if row else "`by` picks the row, so it sees only the event",
    )


def constant_env(context: Context | None, scope: Scope) -> Env:
    """What a field's default sees: no fields, only enum members and functions."""
    return Env(scope, context, "a default", enums=visible_enums(scope, context))


# ---------------------------------------------------------------- inference


@dataclass(frozen=True, slots=True)
class Binding:
    """What a :class:`Name` means: a field of the message or state, event metadata, or a member.

    ``field`` is the field (or metadata, or member) name; ``path`` the value fields
    read from it after that (``drink.size`` → field ``drink``, path ``("size",)``).
    """

    source: Source
    field: str
    path: tuple[str, ...] = ()
    enum: EnumType | None = None


@dataclass(slots=True)
class Analysis:
    """The outcome of type-checking one expression.

    ``types`` and ``bindings`` are keyed by ``id(node)`` of the expression's nodes.
    """

    type: Type
    problems: list[Diagnostic]
    types: dict[int, Type]
    bindings: dict[int, Binding]


def infer(expr: Expr, env: Env, expected: Type | None = None) -> tuple[Type, list[Diagnostic]]:
    """The type of ``expr`` in ``env`` and the E401/E402 problems found in it."""
    result = analyse(expr, env, expected)
    return result.type, result.problems


def analyse(expr: Expr, env: Env, expected: Type | None = None) -> Analysis:
    """Type-check ``expr``: its type, problems, and the type and meaning of every node."""
    checker = _Checker(env)
    t = checker.expr(expr, expected, env.narrowed)
    return Analysis(t, checker.problems, checker.types, checker.bindings)


def describe(expr: Expr) -> str:
    """A short quote of an expression for messages: a name, a literal or a call."""
    if isinstance(expr, Name):
        return f"`{expr.dotted}`"
    if isinstance(expr, Literal):
        return literal_text(expr)
    if isinstance(expr, Call):
        return f"{expr.function}()"
    return "the expression"


def literal_text(lit: Literal) -> str:
    """A literal as it would be written."""
    if lit.kind == "none":
        return "none"
    if lit.kind == "bool":
        return "true" if lit.value else "false"
    if lit.kind == "str":
        return '"' + str(lit.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(lit.value)


def mismatch(message: str, loc: Location, help: str | None = None) -> Diagnostic:
    """An E402 finding: ``type mismatch: <message>``."""
    return Diagnostic("E402", Level.ERROR, f"type mismatch: {message}", loc, help)


def unknown_name(message: str, loc: Location, help: str | None = None) -> Diagnostic:
    """An E401 finding."""
    return Diagnostic("E401", Level.ERROR, message, loc, help)


_QUALIFIERS = ("command", "event", "state", "row")
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ORDERINGS = frozenset({"<", "<=", ">", ">="})


def _enum_of(expected: Type | None) -> EnumType | None:
    t = strip_optional(expected) if expected is not None else None
    if isinstance(t, ListType):
        t = strip_optional(t.element)
    return t if isinstance(t, EnumType) else None


def _none_tests(expr: Expr, when: bool) -> set[str]:
    """Names that cannot be none when ``expr`` evaluates to ``when`` (for ``and``/``or``)."""
    if isinstance(expr, Unary) and expr.op == "not":
        return _none_tests(expr.operand, not when)
    if isinstance(expr, Binary):
        if expr.op == ("and" if when else "or"):
            return _none_tests(expr.left, when) | _none_tests(expr.right, when)
        if expr.op == ("!=" if when else "=="):
            left, right = expr.left, expr.right
            if isinstance(right, Literal) and right.kind == "none" and isinstance(left, Name):
                return {left.dotted}
            if isinstance(left, Literal) and left.kind == "none" and isinstance(right, Name):
                return {right.dotted}
    return set()


class _Checker:
    """One pass over an expression tree, collecting types, bindings and problems."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.problems: list[Diagnostic] = []
        self.types: dict[int, Type] = {}
        self.bindings: dict[int, Binding] = {}

    def expr(self, e: Expr, expected: Type | None, narrowed: frozenset[str]) -> Type:
        if isinstance(e, Literal):
            t = self._literal(e)
        elif isinstance(e, Name):
            t = self._name(e, expected, narrowed)
        elif isinstance(e, ListExpr):
            t = self._list(e, expected, narrowed)
        elif isinstance(e, Call):
            t = self._call(e, expected, narrowed)
        elif isinstance(e, Unary):
            t = self._unary(e, narrowed)
        else:
            t = self._binary(e, narrowed)
        self.types[id(e)] = t
        return t

    # ------------------------------------------------------------ leaves

    @staticmethod
    def _literal(e: Literal) -> Type:
        if e.kind == "decimal":
            return FRACTION
        if e.kind == "none":
            return NONE
        return PRIMITIVE_TYPES[e.kind]

    def _name(self, e: Name, expected: Type | None, narrowed: frozenset[str]) -> Type:
        t = self._name_type(e, expected, narrowed)
        if isinstance(t, OptionalType) and e.dotted in narrowed:
            return t.inner
        return t

    def _name_type(self, e: Name, expected: Type | None, narrowed: frozenset[str]) -> Type:
        env = self.env
        head, rest = e.parts[0], e.parts[1:]
        if rest and head in _QUALIFIERS:
            return self._qualified(e, narrowed)
        found = env.lookup_field(head)
        if found is not None:
            ns, t = found
            self.bindings[id(e)] = Binding(ns.source, head, rest)
            return self._walk(e, t, 1, narrowed)
        if not rest:
            return self._member(e, head, expected)
        # ``Size.Medium`` or ``Context.Enum.Member``: the longest enum prefix.
        resolved = env.scope.resolve_type(env.context, ".".join(e.parts[:-1]))
        if resolved is not None and isinstance(resolved.element, Enum):
            et = enum_type(resolved.element, resolved.context)
            member = e.parts[-1]
            if member not in et.members:
                self.problems.append(
                    unknown_name(
                        f"`{member}` is not a member of {et.name}",
                        e.loc,
                        did_you_mean(member, et.members),
                    )
                )
                return UNKNOWN
            self.bindings[id(e)] = Binding("member", member, enum=et)
            return et
        candidates = [n for ns in env.namespaces for n in ns.fields] + [x.name for x in env.enums]
        self.problems.append(
            unknown_name(
                f"unknown name `{head}`", e.loc, did_you_mean(head, candidates) or env.note
            )
        )
        return UNKNOWN

    def _qualified(self, e: Name, narrowed: frozenset[str]) -> Type:
        env = self.env
        qualifier, name = e.parts[0], e.parts[1]
        ns = next((n for n in env.namespaces if n.qualifier == qualifier), None)
        if ns is None:
            available = ", ".join(f"`{n.qualifier}.`" for n in env.namespaces)
            hint = f"{env.where} sees {available}" if available else f"{env.where} sees no fields"
            if env.note is not None:
                hint = env.note
            self.problems.append(
                unknown_name(
                    f"unknown name `{qualifier}.{name}`: there is no `{qualifier}` here",
                    e.loc,
                    hint,
                )
            )
            return UNKNOWN
        # Envelope metadata wins over a field of the same name: `event.id` is always
        # the event's id (the field stays reachable by its plain name).
        if name in ns.metadata:
            self.bindings[id(e)] = Binding("metadata", name, e.parts[2:])
            return self._walk(e, ns.metadata[name], 2, narrowed)
        if name in ns.fields:
            self.bindings[id(e)] = Binding(ns.source, name, e.parts[2:])
            return self._walk(e, ns.fields[name], 2, narrowed)
        # Match the bare names: the shared `state.` prefix would make everything close.
        close = closest(name, [*ns.fields, *ns.metadata])
        help_ = suggest([f"{qualifier}.{c}" for c in close])
        if qualifier == "event" and name == "stream_id":
            help_ = "an external system's event has no stream_id"
        self.problems.append(unknown_name(f"unknown name `{qualifier}.{name}`", e.loc, help_))
        return UNKNOWN

    def _walk(self, e: Name, t: Type, start: int, narrowed: frozenset[str]) -> Type:
        """Follow ``a.b.c`` through value fields from ``e.parts[start]`` on."""
        for i in range(start, len(e.parts)):
            part = e.parts[i]
            so_far = ".".join(e.parts[:i])
            if t is UNKNOWN:
                return UNKNOWN
            if isinstance(t, OptionalType) and so_far not in narrowed:
                self.problems.append(
                    mismatch(
                        f"`{so_far}` may be none ({t}), so it has no field `{part}`",
                        e.loc,
                        f"test it first: '{so_far} != none and ...'",
                    )
                )
                return UNKNOWN
            t = strip_optional(t)
            if not isinstance(t, ValueType):
                self.problems.append(mismatch(f"`{so_far}` is {t}, which has no fields", e.loc))
                return UNKNOWN
            fields = value_fields(t, self.env.scope)
            if part not in fields:
                self.problems.append(
                    unknown_name(
                        f"`{part}` is not a field of {t.name}", e.loc, did_you_mean(part, fields)
                    )
                )
                return UNKNOWN
            t = fields[part]
        return t

    def _member(self, e: Name, name: str, expected: Type | None) -> Type:
        env = self.env
        wanted = _enum_of(expected)
        if wanted is not None and name in wanted.members:
            self.bindings[id(e)] = Binding("member", name, enum=wanted)
            return wanted
        having = [et for et in env.enums if name in et.members]
        if len(having) == 1:
            self.bindings[id(e)] = Binding("member", name, enum=having[0])
            return having[0]
        if len(having) > 1:
            listed = " or ".join(f"`{et.name}.{name}`" for et in having)
            self.problems.append(
                unknown_name(
                    f"ambiguous name `{name}`: a member of "
                    + " and ".join(et.name for et in having),
                    e.loc,
                    f"qualify it: {listed}",
                )
            )
            return UNKNOWN
        candidates = [n for ns in env.namespaces for n in ns.fields]
        if wanted is not None:
            candidates += wanted.members
        candidates += [m for et in env.enums for m in et.members]
        self.problems.append(
            unknown_name(
                f"unknown name `{name}`", e.loc, did_you_mean(name, candidates) or env.note
            )
        )
        return UNKNOWN

    def _list(self, e: ListExpr, expected: Type | None, narrowed: frozenset[str]) -> Type:
        wanted = strip_optional(expected) if expected is not None else None
        item_expected = wanted.element if isinstance(wanted, ListType) else None
        element: Type = NOTHING
        unknown = False  # an item already reported: the list's type is unknown too
        for item in e.items:
            t = self.expr(item, item_expected if item_expected is not None else element, narrowed)
            if t is UNKNOWN:
                unknown = True
                continue
            joined = unify(element, t)
            if joined is None:
                self.problems.append(
                    mismatch(f"a list's items must have one type, not {element} and {t}", item.loc)
                )
                return UNKNOWN
            element = joined
        return UNKNOWN if unknown else ListType(element)

    # ------------------------------------------------------------ calls and operators

    def _call(self, e: Call, expected: Type | None, narrowed: frozenset[str]) -> Type:
        arity = {"len": 1, "now": 0, "today": 0, "date": 1, "new_id": 0}
        arity |= {"lower": 1, "upper": 1, "min": 2, "max": 2}
        fn = e.function
        if fn not in arity:
            self.problems.append(
                unknown_name(
                    f"unknown function `{fn}`",
                    e.loc,
                    did_you_mean(fn, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS),
                )
            )
            for arg in e.args:
                self.expr(arg, None, narrowed)
            return UNKNOWN
        if len(e.args) != arity[fn]:
            n = arity[fn]
            self.problems.append(
                mismatch(
                    f"{fn}() takes {n} argument{'s' if n != 1 else ''}, not {len(e.args)}", e.loc
                )
            )
            for arg in e.args:
                self.expr(arg, None, narrowed)
            return UNKNOWN
        if fn == "now":
            return DATETIME
        if fn == "today":
            return DATE
        if fn == "new_id":
            return UUID
        if fn in ("min", "max"):
            a = self.expr(e.args[0], expected, narrowed)
            b = self.expr(e.args[1], a if a is not UNKNOWN else expected, narrowed)
            return self._ordered_pair(f"{fn}()", e.args[0], a, e.args[1], b, e.loc) or UNKNOWN
        arg = e.args[0]
        t = self.expr(arg, None, narrowed)
        if t is UNKNOWN:
            return STR if fn in ("lower", "upper") else (INT if fn == "len" else DATE)
        if self._maybe_none(arg, t):
            return UNKNOWN
        if fn == "len":
            if t == STR or isinstance(t, ListType):
                return INT
            self.problems.append(mismatch(f"len() needs a list or a str, not {t}", arg.loc))
            return INT
        if fn == "date":
            if t != DATETIME:
                self.problems.append(mismatch(f"date() needs a datetime, not {t}", arg.loc))
            return DATE
        if t != STR:
            self.problems.append(mismatch(f"{fn}() needs a str, not {t}", arg.loc))
        return STR

    def _maybe_none(self, e: Expr, t: Type) -> bool:
        """Report an optional (or none) operand where a value is needed; True if reported."""
        if t is NONE:
            self.problems.append(mismatch("none has no value to compute with", e.loc))
            return True
        if isinstance(t, OptionalType):
            what = describe(e)
            hint = f"test it first: '{e.dotted} != none and ...'" if isinstance(e, Name) else None
            self.problems.append(mismatch(f"{what} may be none ({t})", e.loc, hint))
            return True
        return False

    def _ordered_pair(
        self, what: str, left: Expr, a: Type, right: Expr, b: Type, loc: Location
    ) -> Type | None:
        """The common type of two ordered operands (``<``, min, max), or None if reported."""
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if self._maybe_none(left, a) or self._maybe_none(right, b):
            return None
        if is_numeric(a) and is_numeric(b):
            joined = numeric_join(a, b)
            if joined is None:
                self.problems.append(mismatch(f"cannot compare {a} with {b}", loc, _MIX_HELP))
            return joined
        if a == b and isinstance(a, Primitive) and a.name in ORDERED:
            return a
        if a == b:
            self.problems.append(
                mismatch(
                    f"{what} cannot order {a} values",
                    loc,
                    "ordering works on numbers, str, date and datetime",
                )
            )
        else:
            self.problems.append(mismatch(f"cannot compare {a} with {b}", loc))
        return None

    def _unary(self, e: Unary, narrowed: frozenset[str]) -> Type:
        t = self.expr(e.operand, None, narrowed)
        if t is UNKNOWN:
            return BOOL if e.op == "not" else UNKNOWN
        if e.op == "not":
            if t != BOOL:
                self.problems.append(mismatch(f"`not` needs a bool, not {t}", e.operand.loc))
            return BOOL
        if self._maybe_none(e.operand, t):
            return UNKNOWN
        if not is_numeric(t):
            self.problems.append(mismatch(f"cannot negate {t}", e.operand.loc))
            return UNKNOWN
        return t

    def _starts_unresolved(self, e: Expr) -> bool:
        """Whether ``e`` is a bare name that only an expected enum could resolve."""
        return (
            isinstance(e, Name) and len(e.parts) == 1 and self.env.lookup_field(e.parts[0]) is None
        )

    def _binary(self, e: Binary, narrowed: frozenset[str]) -> Type:
        op = e.op
        if op in ("and", "or"):
            a = self.expr(e.left, None, narrowed)
            # `x != none and x > 0`: in the right operand x is known not to be none.
            right_narrowed = narrowed | _none_tests(e.left, op == "and")
            b = self.expr(e.right, None, frozenset(right_narrowed))
            for side, t in ((e.left, a), (e.right, b)):
                if t is not UNKNOWN and t != BOOL:
                    self.problems.append(mismatch(f"`{op}` needs bool operands, not {t}", side.loc))
            return BOOL
        if op in _COMPARISONS or op in ("in", "not in"):
            return self._comparison(e, narrowed)
        # Arithmetic: the right operand may be an enum member only by mistake, but the
        # left operand's type still helps list literals (`tags + [Urgent]`).
        a = self.expr(e.left, None, narrowed)
        b = self.expr(e.right, a if isinstance(a, ListType) else None, narrowed)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if self._maybe_none(e.left, a) or self._maybe_none(e.right, b):
            return UNKNOWN
        verb = _VERBS.get(op, op)
        if op == "+":
            if a == STR and b == STR:
                return STR
            if isinstance(a, ListType) and isinstance(b, ListType):
                joined = unify(a, b)
                if joined is None:
                    self.problems.append(mismatch(f"cannot join {a} and {b}", e.loc))
                    return UNKNOWN
                return joined
        if is_numeric(a) and is_numeric(b):
            joined = numeric_join(a, b)
            if joined is None:
                self.problems.append(mismatch(f"cannot {verb} {a} and {b}", e.loc, _MIX_HELP))
                return UNKNOWN
            if op == "/" and a == INT and b == INT:
                return DECIMAL
            return joined
        self.problems.append(mismatch(f"cannot {verb} {a} and {b}", e.loc))
        return UNKNOWN

    def _comparison(self, e: Binary, narrowed: frozenset[str]) -> Type:
        op = e.op
        membership = op in ("in", "not in")
        # Infer the side that does not need an expected enum first (`Placed == status`).
        if self._starts_unresolved(e.left) and not self._starts_unresolved(e.right):
            b = self.expr(e.right, None, narrowed)
            wanted = b.element if membership and isinstance(b, ListType) else b
            a = self.expr(e.left, wanted, narrowed)
        else:
            a = self.expr(e.left, None, narrowed)
            b = self.expr(e.right, ListType(a) if membership else a, narrowed)
        if a is UNKNOWN or b is UNKNOWN:
            return BOOL
        if membership:
            if a == STR and b == STR:
                return BOOL
            if self._maybe_none(e.right, b):
                return BOOL
            if not isinstance(b, ListType):
                self.problems.append(
                    mismatch(
                        f"`{op}` needs a list (or a str in a str) on the right, not {b}", e.loc
                    )
                )
            elif not comparable(a, b.element):
                self.problems.append(mismatch(f"cannot look for {a} in {b}", e.loc))
            return BOOL
        if op in _ORDERINGS:
            self._ordered_pair(f"`{op}`", e.left, a, e.right, b, e.loc)
            return BOOL
        if not comparable(a, b):
            help_ = (
                _MIX_HELP
                if is_numeric(strip_optional(a)) and is_numeric(strip_optional(b))
                else None
            )
            if a is NONE or b is NONE:
                other = e.left if b is NONE else e.right
                help_ = f"{describe(other)} is never none; only an optional (T?) may be"
            self.problems.append(mismatch(f"cannot compare {a} with {b}", e.loc, help_))
        return BOOL


_MIX_HELP = "float and decimal never mix; declare both the same type"
