"""The view-model records of a generated project: what each template prints.

Each record holds Python text only (names, annotations, expressions, literals), made
by the builders (:mod:`.project` and the modules it calls); templates never decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from stormgen.render.python.literals import py_docstring, py_str


@dataclass(frozen=True)
class FieldVM:
    """One dataclass field: ``name: annotation = default``."""

    name: str
    annotation: str
    default: str | None = None
    comment: str | None = None
    # the model's name when the attribute differs (`from_` for `from`), and the local
    # name of `dataclasses.field` that carries it as `metadata={"name": ...}`
    wire: str | None = None
    field_call: str = "field"

    @property
    def value(self) -> str | None:
        """What follows ``=`` in the class body: the default, with the wire name if any."""
        if self.wire is None:
            return self.default
        meta = f"metadata={{{py_str('name')}: {py_str(self.wire)}}}"
        if self.default is None:
            return f"{self.field_call}({meta})"
        if self.default.startswith(self.field_call + "("):
            # already a `field(...)` call (a default factory): add the metadata to it
            return f"{self.default[:-1]}, {meta})"
        return f"{self.field_call}(default={self.default}, {meta})"


@dataclass(frozen=True)
class ClassVM:
    """A dataclass: a message, a value, a state or a view row."""

    name: str
    docstring: str
    fields: tuple[FieldVM, ...]
    bases: str = ""  # "(Command, name=..., ...)" or ""


@dataclass(frozen=True)
class EnumVM:
    name: str
    docstring: str
    members: tuple[tuple[str, str], ...]  # (attribute, value literal)


@dataclass(frozen=True)
class Call:
    """``Class(arg=expr, ...)`` as a constructor call, arguments in field order."""

    callee: str
    args: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GuardVM:
    condition: str  # the condition that must hold, as the model writes it
    message: str  # a string literal
    #: the command's ``let``s first read here: ``(local, expression)``, assigned before it
    lets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EmitVM:
    event: Call
    condition: str | None


@dataclass(frozen=True)
class HandlerVM:
    """One command's handling in an aggregate base."""

    command: str  # the command class
    method: str  # handle_place_order
    check: str  # check_place_order
    emit: str  # emit_place_order
    docstring: str  # the command's description, or ""
    guards: tuple[GuardVM, ...]
    emits: tuple[EmitVM, ...]
    #: the command's ``let``s the emits read: ``(local, expression)``, assigned first
    lets: tuple[tuple[str, str], ...] = ()

    @property
    def conditional(self) -> bool:
        """Whether some event is emitted only under a condition."""
        return any(e.condition is not None for e in self.emits)


@dataclass(frozen=True)
class UpdateVM:
    """A method returning ``replace(obj, field=expr, ...)`` (``apply`` or a view's ``on``)."""

    event: str
    method: str
    updates: tuple[tuple[str, str], ...]
    delete: bool = False
    key: str | None = None  # a view's `by` expression
    key_method: str = ""  # the method returning it
    condition: str | None = None  # a view's `on ... if C`: the event is skipped unless C
    recorded: bool = False  # an `apply` that reads the envelope (so runs in `evolve`)


@dataclass(frozen=True)
class ElementVM:
    """What an element's generated base class and its user's subclass are called."""

    qualified: str  # "Context.Element" literal
    base: str  # <Aggregate>Base, Fake<System>, <Policy>Base, <View>Base
    docstring: str
    user_class: str
    user_module: str


@dataclass(frozen=True)
class ModuleVM(ElementVM):
    """The module of an aggregate or an external system: its messages first."""

    module: str  # dotted
    imports: tuple[str, ...]
    commands: tuple[ClassVM, ...]
    events: tuple[ClassVM, ...]
    event_tuple: str


@dataclass(frozen=True)
class LookupVM:
    """A method reading a view's row by key (what ``View[key]`` compiles to)."""

    method: str  # lookup_<view>
    key: str  # the key's annotation
    row: str  # the row class (imported for annotations only)
    view: str  # "Context.View" literal
    docstring: str


@dataclass(frozen=True)
class AggregateVM(ModuleVM):
    context: str
    name: str  # model name
    state: ClassVM
    handlers: tuple[HandlerVM, ...]
    applies: tuple[UpdateVM, ...]
    id_field: str
    id_type: str
    snapshot_every: str
    command_tuple: str
    lookups: tuple[LookupVM, ...] = ()


@dataclass(frozen=True)
class ExternalVM(ModuleVM):
    system: str
    events_name: str
    # (method, command class, the first event's answer, the others': (event class, answer))
    answers: tuple[tuple[str, str, Call, tuple[tuple[str, Call], ...]], ...]

    @property
    def has_events(self) -> bool:
        """Whether the system sends events (a fake needs one to answer with)."""
        return self.event_tuple != "()"


@dataclass(frozen=True)
class ThenVM:
    """One `then` line: its command, its own `if`, its fan-out ``for x in L [if C]``
    (``loop`` is ``index, x in enumerate(L)``, ``keep`` its ``C``, ``index`` the name of
    the element's index, which the command's id derives from)."""

    call: Call
    condition: str | None = None
    loop: str | None = None
    keep: str | None = None
    index: str = "index"


@dataclass(frozen=True)
class PolicyVM(ElementVM):
    event: str
    condition: str | None
    commands: tuple[Call, ...]
    lines: tuple[ThenVM, ...] = ()
    lookups: tuple[LookupVM, ...] = ()

    @property
    def plain(self) -> bool:
        """Whether every `then` line issues one command, always (a list literal)."""
        return all(x.condition is None and x.loop is None for x in self.lines)


@dataclass(frozen=True)
class ViewVM(ElementVM):
    row: ClassVM
    key: str
    pii: str
    event_tuple: str
    handlers: tuple[UpdateVM, ...]
    order: str = ""  # `order by` as a tuple literal of (column, descending) pairs


@dataclass(frozen=True)
class UserClassVM:
    """A user file: a subclass of a generated base, written once."""

    module_doc: ClassVar[str] = py_docstring(
        "Your code: stormgen wrote this file once and never overwrites it."
    )
    imports: tuple[str, ...]
    name: str
    base: str
    docstring: str
    example: tuple[str, ...]  # commented lines showing one override


@dataclass(frozen=True)
class ContextVM:
    """A context's elements, for the app's wiring and the README."""

    name: str
    aggregates: tuple[AggregateVM, ...] = ()
    externals: tuple[ExternalVM, ...] = ()
    policies: tuple[PolicyVM, ...] = ()
    views: tuple[ViewVM, ...] = ()
    processes: tuple[ProcessVM, ...] = ()


@dataclass(frozen=True)
class TestVM:
    """One generated test: given a state, when a command, then events or a rejection."""

    function: str
    docstring: str  # the guard a rejection test fails, or ""
    state: str  # an expression building the given state
    command: str  # an expression building the command
    rejected: str | None  # the expected message literal
    events: str | None  # the expected events list, when knowable
    event_types: str | None  # the expected event classes, when only those are knowable
    after: str | None  # the expected state after the events


@dataclass(frozen=True)
class TestModuleVM:
    docstring: str
    imports: tuple[str, ...]
    aggregate: str  # the user's class
    tests: tuple[TestVM, ...]
    missing: tuple[str, ...]  # comments: scenarios that could not be found


@dataclass(frozen=True)
class AppContextVM:
    name: str  # a literal
    aggregates: tuple[str, ...]
    views: tuple[str, ...]
    policies: tuple[str, ...]
    systems: tuple[tuple[str, str, str], ...]  # (system constant, events constant, adapter)
    processes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppVM:
    docstring: str
    imports: tuple[str, ...]
    names: str
    contexts: tuple[AppContextVM, ...]
    processes: bool = False  # some context has a process


@dataclass(frozen=True)
class ProcessHandlerVM:
    """A process's handler method: its decorator, name, parameters and body lines."""

    decorator: str  # "on_event(OrderPlaced)" or 'on_timer("PaymentDue")'
    method: str
    parameters: str  # after `self`
    body: tuple[str, ...]  # Python lines, indented relative to the method body
    key: str | None = None  # a `by` expression: the instance's key
    key_method: str = ""
    event: str = ""


@dataclass(frozen=True)
class ProcessVM(ElementVM):
    state: ClassVM
    key: str  # the key field's name, a literal
    key_type: str
    events: str
    starts: str
    timers: str
    handlers: tuple[ProcessHandlerVM, ...]
    lookups: tuple[LookupVM, ...] = ()  # the views its handlers read (`View[key]`)
    pii: str = ""  # the pii state fields (a frozenset literal), when there are any
    was: str = ""  # the state fields renamed with `was` (a dict literal), when there are any
    value_reader: str = ""  # `_value`, when a handler reads a field without a default
    typevar: str = ""
    imports: tuple[str, ...] = ()
