"""The typed model of a `.storm` board: frozen dataclasses, each with its source location.

Nothing here knows textX. References between elements are kept as written
(:class:`Ref`, a possibly dotted name with its location); :mod:`stormgen.model.scope`
resolves them, so that the checks can report an unknown name where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal as TypingLiteral

from stormgen.diagnostics import Location

PRIMITIVES = ("str", "int", "float", "decimal", "bool", "uuid", "date", "datetime", "duration")


@dataclass(frozen=True, slots=True)
class Ref:
    """A name as written in the source, e.g. ``OrderPlaced`` or ``Bar.TicketOpened``."""

    name: str
    loc: Location

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


# ---------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A type as written: ``str``, ``Drink``, ``Ordering.Size``, ``list[Drink]``, ``T?``.

    ``name`` is ``"list"`` for a list, whose element type is ``element``.
    """

    name: str
    loc: Location
    element: TypeRef | None = None
    optional: bool = False

    def __str__(self) -> str:
        base = f"list[{self.element}]" if self.element is not None else self.name
        return base + ("?" if self.optional else "")


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Literal:
    """``42``, ``4.50``, ``"text"``, ``true``, ``none``.

    ``kind`` is ``int``, ``decimal`` (a number with a fraction), ``str``, ``bool`` or
    ``none``; a number keeps its exact text in ``value`` as ``int`` or ``Decimal``.
    """

    value: int | Decimal | str | bool | None
    kind: TypingLiteral["int", "decimal", "str", "bool", "none"]
    loc: Location


@dataclass(frozen=True, slots=True)
class Name:
    """A name or a dotted path: ``total``, ``event.recorded_at``, ``Size.Medium``, ``a.b``."""

    parts: tuple[str, ...]
    loc: Location

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    loc: Location


@dataclass(frozen=True, slots=True)
class Call:
    """A built-in function call: ``len(x)``, ``now()``, ``min(a, b)``..."""

    function: str
    args: tuple[Expr, ...]
    loc: Location


@dataclass(frozen=True, slots=True)
class Unary:
    op: TypingLiteral["-", "not"]
    operand: Expr
    loc: Location


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right``; ``op`` is one of
    ``or and == != < <= > >= in "not in" + - * /``."""

    op: str
    left: Expr
    right: Expr
    loc: Location


@dataclass(frozen=True, slots=True)
class Conditional:
    """``body if test else orelse``."""

    body: Expr
    test: Expr
    orelse: Expr
    loc: Location


@dataclass(frozen=True, slots=True)
class Comprehension:
    """``element for var in source [if condition]``.

    Standing alone it is a list comprehension ``[E for x in L if C]``; as the one
    argument of ``any``, ``all``, ``sum``, ``min``, ``max`` or ``first`` it is that
    call's generator. ``var`` is bound in ``element`` and ``condition`` only.
    """

    element: Expr
    var: str
    source: Expr
    loc: Location
    condition: Expr | None = None
    var_loc: Location | None = None
    generator: bool = False  # the argument of a call, not a list


@dataclass(frozen=True, slots=True)
class Construction:
    """``Drink { name = n, price = p }``: a value built from its fields."""

    type: Ref
    assignments: tuple[Assignment, ...]
    loc: Location


@dataclass(frozen=True, slots=True)
class Lookup:
    """``Stock[sku]`` (``Stock[sku].quantity``): the current row of a view of the same
    context by its key, ``none`` when there is none; ``path`` reads the row's fields."""

    view: Ref
    key: Expr
    loc: Location
    path: tuple[str, ...] = ()

    @property
    def narrowed(self) -> str | None:
        """The text a test ``View[k] != none`` proves, when the key is a name: the same
        lookup elsewhere in that test's scope is known to find a row."""
        if isinstance(self.key, Name):
            return f"{self.view.name}[{self.key.dotted}]"
        return None


Expr = (
    Literal
    | Name
    | ListExpr
    | Call
    | Unary
    | Binary
    | Conditional
    | Comprehension
    | Construction
    | Lookup
)


@dataclass(frozen=True, slots=True)
class Assignment:
    """``target = expr`` (``+=``/``-=`` in ``apply`` and views)."""

    target: str
    op: TypingLiteral["=", "+=", "-="]
    value: Expr
    loc: Location


# ---------------------------------------------------------------- elements


@dataclass(frozen=True, slots=True)
class Hotspot:
    text: str
    loc: Location


@dataclass(frozen=True, slots=True)
class Field:
    """``name: Type [= default] [pii] [was old_name] ["description"]``."""

    name: str
    type: TypeRef
    loc: Location
    default: Expr | None = None
    pii: bool = False
    was: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    loc: Location
    description: str | None = None


@dataclass(frozen=True, slots=True)
class EnumMember:
    name: str
    loc: Location


@dataclass(frozen=True, slots=True)
class Enum:
    name: str
    members: tuple[EnumMember, ...]
    loc: Location
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Value:
    name: str
    fields: tuple[Field, ...]
    loc: Location
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Let:
    """``let NAME = EXPR``: a name the later lines of a command or view handler see.

    ``after`` counts the lines before it that it comes after: the ``require``s of a
    command, the assignments of a view handler.
    """

    name: str
    value: Expr
    loc: Location
    after: int = 0


@dataclass(frozen=True, slots=True)
class Require:
    condition: Expr
    message: str
    loc: Location


@dataclass(frozen=True, slots=True)
class Emit:
    """``emit EVENT [{ field = EXPR, ... }] [if EXPR]``."""

    event: Ref
    loc: Location
    assignments: tuple[Assignment, ...] = ()
    condition: Expr | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A blue sticky. ``actors`` empty means internal (issued by policies only)."""

    name: str
    fields: tuple[Field, ...]
    loc: Location
    actors: tuple[Ref, ...] = ()
    creates: bool = False
    description: str | None = None
    requires: tuple[Require, ...] = ()
    emits: tuple[Emit, ...] = ()
    hotspots: tuple[Hotspot, ...] = ()
    lets: tuple[Let, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """An orange sticky: an immutable fact, owned by its aggregate (or external system)."""

    name: str
    fields: tuple[Field, ...]
    loc: Location
    published: bool = False
    version: int = 1
    description: str | None = None
    apply: tuple[Assignment, ...] = ()
    hotspots: tuple[Hotspot, ...] = ()


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A yellow sticky: the unit of consistency, one instance per event stream.

    ``id_field`` is always present; when the source has no ``id`` line it is the
    implicit ``<snake_case name>_id: uuid`` located at the aggregate, and
    ``id_declared`` is false.
    """

    name: str
    id_field: Field
    loc: Location
    id_declared: bool = True
    description: str | None = None
    snapshot_every: int | None = None
    state: tuple[Field, ...] = ()
    commands: tuple[Command, ...] = ()
    events: tuple[Event, ...] = ()
    hotspots: tuple[Hotspot, ...] = ()


@dataclass(frozen=True, slots=True)
class External:
    """A pink sticky: a system the context talks to and does not own."""

    name: str
    loc: Location
    description: str | None = None
    commands: tuple[Command, ...] = ()
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class Then:
    """``then COMMAND [{ field = EXPR, ... }] [for x in L [if C] | if C]`` in a policy.

    ``fan`` is the fan-out ``for x in L [if C]`` (its element unused): one command per
    item kept; ``condition`` the line's own ``if``.
    """

    command: Ref
    loc: Location
    assignments: tuple[Assignment, ...] = ()
    condition: Expr | None = None
    fan: Comprehension | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A lilac sticky: whenever EVENT [if EXPR] then COMMAND..."""

    name: str
    when: Ref
    thens: tuple[Then, ...]
    loc: Location
    condition: Expr | None = None
    description: str | None = None
    hotspots: tuple[Hotspot, ...] = ()


@dataclass(frozen=True, slots=True)
class On:
    """``on EVENT [by EXPR] [if C] [{ assignments } | delete]`` in a view."""

    event: Ref
    loc: Location
    by: Expr | None = None
    assignments: tuple[Assignment, ...] = ()
    delete: bool = False
    lets: tuple[Let, ...] = ()
    condition: Expr | None = None  # the event is skipped for this view when it is false


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One column of a view's ``order by`` (``desc`` for descending)."""

    field: str
    loc: Location
    desc: bool = False


@dataclass(frozen=True, slots=True)
class View:
    """A green sticky: a read model kept up to date from events."""

    name: str
    key: Field
    loc: Location
    fields: tuple[Field, ...] = ()
    handlers: tuple[On, ...] = ()
    description: str | None = None
    hotspots: tuple[Hotspot, ...] = ()
    order: tuple[OrderKey, ...] = ()  # `order by`: the list endpoint's order


@dataclass(frozen=True, slots=True)
class ScenarioMessage:
    """An event or a command in a scenario, with the fields it names:
    ``OrderPaid { order_id = id("o1"), amount = 3.50 }``."""

    message: Ref
    loc: Location
    assignments: tuple[Assignment, ...] = ()


@dataclass(frozen=True, slots=True)
class RowExpectation:
    """``View[key] { field = EXPR, ... }`` in a scenario's ``then``: a view's row."""

    view: Ref
    key: Expr
    loc: Location
    assignments: tuple[Assignment, ...] = ()


@dataclass(frozen=True, slots=True)
class Passing:
    """``DURATION pass`` as a scenario's ``when``: the clock moves on."""

    duration: Expr
    loc: Location


@dataclass(frozen=True, slots=True)
class Scenario:
    """``scenario "name" { given ... when ... then ... }``: a specification by example.

    ``when`` is a command, an event or time passing; ``then`` the events, commands and
    view rows expected, unless ``rejected`` (with the guard's ``message``, when written).
    """

    name: str
    loc: Location
    when: ScenarioMessage | Passing
    given: tuple[ScenarioMessage, ...] = ()
    then: tuple[ScenarioMessage | RowExpectation, ...] = ()
    rejected: bool = False
    message: str | None = None


@dataclass(frozen=True, slots=True)
class SetTimer:
    """``timer NAME after DURATION`` or ``timer NAME at DATETIME`` in a process."""

    name: str
    loc: Location
    after: Expr | None = None
    at: Expr | None = None


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """``cancel NAME`` in a process."""

    name: str
    loc: Location


@dataclass(frozen=True, slots=True)
class EndLine:
    """``end [if C]`` in a process: the instance ends after this handler."""

    loc: Location
    condition: Expr | None = None


@dataclass(frozen=True, slots=True)
class ProcessOn:
    """A process's handler: ``on EVENT [by EXPR] [if C] [starts] {...}``, or, with
    ``timer`` set, ``on timer NAME [if C] {...}`` (then ``event`` is None).

    Its assignments all see the state before the handler; its ``let`` lines (``after``:
    how many assignments precede each) and its other lines see the state after them.
    """

    loc: Location
    event: Ref | None = None
    timer: str | None = None
    by: Expr | None = None
    condition: Expr | None = None
    starts: bool = False
    assignments: tuple[Assignment, ...] = ()
    lets: tuple[Let, ...] = ()
    thens: tuple[Then, ...] = ()
    timers: tuple[SetTimer, ...] = ()
    cancels: tuple[CancelTimer, ...] = ()
    ends: tuple[EndLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Process:
    """A lilac sticky with a memory: state per instance (named by ``key``), handlers of
    events and of its timers, commands issued, timers set and cancelled, an end."""

    name: str
    key: Field
    loc: Location
    fields: tuple[Field, ...] = ()
    handlers: tuple[ProcessOn, ...] = ()
    description: str | None = None
    hotspots: tuple[Hotspot, ...] = ()

    @property
    def timer_names(self) -> tuple[str, ...]:
        """The timers its handlers set, in order of first appearance."""
        names = (t.name for h in self.handlers for t in h.timers)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class Context:
    """A bounded context: its own name space of stickies."""

    name: str
    loc: Location
    description: str | None = None
    actors: tuple[Actor, ...] = ()
    values: tuple[Value, ...] = ()
    enums: tuple[Enum, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    externals: tuple[External, ...] = ()
    policies: tuple[Policy, ...] = ()
    views: tuple[View, ...] = ()
    hotspots: tuple[Hotspot, ...] = ()
    scenarios: tuple[Scenario, ...] = ()
    processes: tuple[Process, ...] = ()


RelationPattern = str  # OHS, PL, ACL, CF, CS (anything else is reported as E105)


@dataclass(frozen=True, slots=True)
class Relation:
    """One line of the context map.

    ``Up [OHS, PL] -> [CF] Down`` has kind ``->``; ``A <-> B [partnership]`` has kind
    ``<->`` and ``symmetric`` set to the bracketed word(s).
    """

    left: Ref
    right: Ref
    kind: TypingLiteral["->", "<->"]
    loc: Location
    left_patterns: tuple[Ref, ...] = ()
    right_patterns: tuple[Ref, ...] = ()
    symmetric: tuple[Ref, ...] = ()


@dataclass(frozen=True, slots=True)
class ContextMap:
    relations: tuple[Relation, ...]
    loc: Location


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file read into the model (the root file first, then imports in read order)."""

    path: str
    loc: Location


@dataclass(frozen=True, slots=True)
class Model:
    """A whole board: the root file and every file it imports, merged."""

    name: str
    loc: Location
    description: str | None = None
    files: tuple[SourceFile, ...] = ()
    actors: tuple[Actor, ...] = ()
    values: tuple[Value, ...] = ()
    enums: tuple[Enum, ...] = ()
    contexts: tuple[Context, ...] = ()
    maps: tuple[ContextMap, ...] = ()
    name_declared: bool = field(default=False)
    scenarios: tuple[Scenario, ...] = ()  # the top-level ones (qualified names)

    @property
    def relations(self) -> tuple[Relation, ...]:
        return tuple(r for m in self.maps for r in m.relations)

    def context(self, name: str) -> Context | None:
        return next((c for c in self.contexts if c.name == name), None)
