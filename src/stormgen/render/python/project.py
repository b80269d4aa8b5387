"""The view-model of a generated project: every name, type and expression as Python text.

:class:`ProjectBuilder` walks the model once and produces, per output file, a small
typed record that a template only prints. All decisions live here: module and class
names (made unique and safe), imports, annotations, defaults, compiled guards, emits,
``apply`` updates, policy mappings and view updates (language.md §5, §8, §9).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from stormgen.model import typecheck as tc
from stormgen.model import types as t
from stormgen.model.nodes import (
    Aggregate,
    Assignment,
    Command,
    Context,
    Emit,
    Enum,
    Event,
    Expr,
    External,
    Field,
    Model,
    Name,
    Policy,
    Require,
    Value,
    View,
)
from stormgen.model.scope import ACTOR_KINDS, COMMAND_KINDS, EVENT_KINDS, Scope
from stormgen.render.python.expressions import CompileError, Compiler, Target
from stormgen.render.python.literals import comment_text, py_decimal, py_docstring, py_str
from stormgen.render.python.modules import Module, Symbol
from stormgen.render.python.names import Namespace, field_name, member_name, snake_case
from stormgen.render.python.scenarios import (
    RECORDED_AT,
    EnumValue,
    Outcome,
    ScenarioFinder,
    Unknowable,
)

RUNTIME = "stormgen.runtime"

# ---------------------------------------------------------------- view-model records


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
    failed: str  # the condition that rejects (already negated)
    message: str  # a string literal


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
    docstring: str
    guards: tuple[GuardVM, ...]
    emits: tuple[EmitVM, ...]

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
    recorded: bool = False  # an `apply` that reads the envelope (so runs in `evolve`)


@dataclass(frozen=True)
class AggregateVM:
    context: str
    name: str  # model name
    qualified: str  # "Ordering.Order" literal
    docstring: str
    module: str  # dotted
    imports: tuple[str, ...]
    enums: tuple[EnumVM, ...]
    commands: tuple[ClassVM, ...]
    events: tuple[ClassVM, ...]
    state: ClassVM
    base: str
    user_class: str
    user_module: str
    id_field: str
    id_type: str
    snapshot_every: str
    handlers: tuple[HandlerVM, ...]
    applies: tuple[UpdateVM, ...]
    command_tuple: str
    event_tuple: str

    @property
    def evolves(self) -> bool:
        """Whether some update reads the envelope (so the base overrides ``evolve``)."""
        return any(a.recorded for a in self.applies)


@dataclass(frozen=True)
class ExternalVM:
    qualified: str
    docstring: str
    module: str
    imports: tuple[str, ...]
    commands: tuple[ClassVM, ...]
    events: tuple[ClassVM, ...]
    system: str
    events_name: str
    fake: str
    event_tuple: str
    answers: tuple[tuple[str, str, Call], ...]  # (method, command class, answer)
    user_class: str
    user_module: str

    @property
    def has_events(self) -> bool:
        """Whether the system sends events (a fake needs one to answer with)."""
        return self.event_tuple != "()"


@dataclass(frozen=True)
class ThenVM:
    """One `then` line: its command, its own `if`, its fan-out (``x in L [if C]``)."""

    call: Call
    condition: str | None = None
    loop: str | None = None


@dataclass(frozen=True)
class PolicyVM:
    qualified: str
    base: str
    docstring: str
    event: str
    condition: str | None
    commands: tuple[Call, ...]
    user_class: str
    user_module: str
    lines: tuple[ThenVM, ...] = ()

    @property
    def plain(self) -> bool:
        """Whether every `then` line issues one command, always (a list literal)."""
        return all(x.condition is None and x.loop is None for x in self.lines)


@dataclass(frozen=True)
class ViewVM:
    qualified: str
    base: str
    docstring: str
    row: ClassVM
    key: str
    pii: str
    event_tuple: str
    handlers: tuple[UpdateVM, ...]
    user_class: str
    user_module: str

    @property
    def picks_keys(self) -> bool:
        """Whether some ``on`` has a ``by`` (so the base overrides ``key_of``)."""
        return any(h.key is not None for h in self.handlers)


@dataclass(frozen=True)
class UserClassVM:
    """A user file: a subclass of a generated base, written once."""

    module_doc: str
    imports: tuple[str, ...]
    name: str
    base: str
    docstring: str
    example: tuple[str, ...]  # commented lines showing one override


@dataclass(frozen=True)
class ContextVM:
    name: str
    package: str
    docstring: str
    aggregates: tuple[AggregateVM, ...] = ()
    externals: tuple[ExternalVM, ...] = ()
    policies: tuple[PolicyVM, ...] = ()
    views: tuple[ViewVM, ...] = ()


@dataclass(frozen=True)
class TestVM:
    """One generated test: given a state, when a command, then events or a rejection."""

    function: str
    docstring: str
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
    aggregate: str
    state: str
    recorded_at: str  # when the tests' events are recorded
    tests: tuple[TestVM, ...]
    missing: tuple[str, ...]  # comments: scenarios that could not be found


@dataclass(frozen=True)
class AppContextVM:
    name: str  # a literal
    aggregates: tuple[str, ...]
    views: tuple[str, ...]
    policies: tuple[str, ...]
    systems: tuple[tuple[str, str, str], ...]  # (system constant, events constant, adapter)


@dataclass(frozen=True)
class AppVM:
    docstring: str
    imports: tuple[str, ...]
    names: str
    contexts: tuple[AppContextVM, ...]


@dataclass
class Output:
    """Files rendered by templates: path -> (template, variables, owned)."""

    files: list[tuple[str, str, dict[str, Any], bool]] = field(default_factory=list)

    def add(self, path: str, template: str, owned: bool = True, **variables: Any) -> None:
        self.files.append((path, template, variables, owned))


# ---------------------------------------------------------------- the builder


class ProjectBuilder:
    """Compute the view-model of every file of the generated project."""

    def __init__(self, model: Model, package: str, version: str) -> None:
        self.model = model
        self.scope = Scope(model)
        self.package = package
        self.version = version
        self.symbols: dict[int, Symbol] = {}
        self.out = Output()
        self._modules: dict[str, Module] = {}
        self.context_packages: dict[str, str] = {}
        self._user_symbols: dict[int, Symbol] = {}
        self._base_symbols: dict[int, Symbol] = {}
        self._state_symbols: dict[int, Symbol] = {}
        self._port_symbols: dict[int, Symbol] = {}
        self._row_symbols: dict[int, Symbol] = {}
        self._events_symbols: dict[int, Symbol] = {}
        self._constant_envs: dict[str | None, t.Env] = {}
        self._test_modules = Namespace()
        self.needs_value = False  # a views module reads a column that may be None
        self._test_modules.claim("test_service", "test_service")
        # (context, aggregate, creates command, its happy path, its field types)
        self._service_cases: list[tuple[Context, Aggregate, Command, Outcome, Any]] = []

    # ------------------------------------------------------------ modules and symbols

    def module(self, dotted: str) -> Module:
        found = self._modules.get(dotted)
        if found is None:
            found = self._modules[dotted] = Module(dotted, self.package)
        return found

    def _place(self, element: object, module: str, wanted: str, table: dict[int, Symbol]) -> None:
        name = self.module(module).define(wanted, (id(element), wanted))
        table[id(element)] = Symbol(module, name)

    def plan(self) -> None:
        """Give every generated class its module and name (before any is rendered)."""
        pkg = self.package
        top = Namespace()
        for fixed in ("app", "shared", "tests", "__init__", "__main__"):
            top.claim(fixed, fixed)
        if self.model.values or self.model.enums:
            for v in self.model.values:
                self._place(v, f"{pkg}.shared", v.name, self.symbols)
            for e in self.model.enums:
                self._place(e, f"{pkg}.shared", e.name, self.symbols)
        for context in self._contexts():
            ctx_pkg = top.claim(snake_case(context.name), context.name)
            if ctx_pkg != snake_case(context.name):
                ctx_pkg = top.claim(snake_case(context.name) + "_context", context.name)
            base = f"{pkg}.{ctx_pkg}"
            self.context_packages[context.name] = base
            inner = Namespace()
            for fixed in ("types", "policies", "views", "custom", "__init__", "__main__"):
                inner.claim(fixed, fixed)
            for v in context.values:
                self._place(v, f"{base}.types", v.name, self.symbols)
            for e in context.enums:
                self._place(e, f"{base}.types", e.name, self.symbols)
            for agg in context.aggregates:
                mod = f"{base}.{_claim_module(inner, agg.name, id(agg), 'aggregate')}"
                for cmd in agg.commands:
                    self._place(cmd, mod, cmd.name, self.symbols)
                for ev in agg.events:
                    self._place(ev, mod, ev.name, self.symbols)
                self._place(agg, mod, agg.name + "State", self._state_symbols)
                self._place(agg, mod, agg.name + "Base", self._base_symbols)
                user = f"{base}.custom.{mod.rsplit('.', 1)[1]}"
                self._place(agg, user, agg.name, self._user_symbols)
            for ext in context.externals:
                mod = f"{base}.{_claim_module(inner, ext.name, id(ext), 'system')}"
                for cmd in ext.commands:
                    self._place(cmd, mod, cmd.name, self.symbols)
                for ev in ext.events:
                    self._place(ev, mod, ev.name, self.symbols)
                self._place(ext, mod, "SYSTEM", self._port_symbols)
                self._place(ext, mod, "EVENTS", self._events_symbols)
                self._place(ext, mod, "Fake" + ext.name, self._base_symbols)
                user = f"{base}.custom.{mod.rsplit('.', 1)[1]}"
                self._place(ext, user, ext.name + "Adapter", self._user_symbols)
            custom = Namespace()
            custom.claim("__init__", "__init__")
            for agg in context.aggregates:
                custom.claim(self._user_symbols[id(agg)].module.rsplit(".", 1)[1], id(agg))
            for ext in context.externals:
                custom.claim(self._user_symbols[id(ext)].module.rsplit(".", 1)[1], id(ext))
            for pol in context.policies:
                self._place(pol, f"{base}.policies", pol.name + "Base", self._base_symbols)
                user = f"{base}.custom.{_claim_module(custom, pol.name, id(pol), 'policy')}"
                self._place(pol, user, pol.name, self._user_symbols)
            for view in context.views:
                self._place(view, f"{base}.views", view.name + "Row", self._row_symbols)
                self._place(view, f"{base}.views", view.name + "Base", self._base_symbols)
                user = f"{base}.custom.{_claim_module(custom, view.name, id(view), 'view')}"
                self._place(view, user, view.name, self._user_symbols)

    def _contexts(self) -> list[Context]:
        # A context declared twice (E101) is checked, not generated: the first one wins.
        seen: set[str] = set()
        out = []
        for c in self.model.contexts:
            if c.name not in seen:
                seen.add(c.name)
                out.append(c)
        return out

    # ------------------------------------------------------------ types

    def type_of(self, f: Field, context: Context | None) -> t.Type:
        resolved = t.field_type(f, context, self.scope)
        if _has_unknown(resolved):
            raise CompileError(f"{f.type.loc}: unknown type '{f.type}'")
        return resolved

    def annotation(self, tp: t.Type, mod: Module) -> str:
        if isinstance(tp, t.OptionalType):
            return f"{self.annotation(tp.inner, mod)} | None"
        if isinstance(tp, t.ListType):
            return f"tuple[{self.annotation(tp.element, mod)}, ...]"
        if isinstance(tp, t.ValueType | t.EnumType):
            return mod.use(self.symbols[id(tp.node)], tp.context_name or "")
        if isinstance(tp, t.Primitive):
            simple = {"str": "str", "int": "int", "float": "float", "bool": "bool"}
            if tp.name in simple:
                return simple[tp.name]
            where = {
                "decimal": ("decimal", "Decimal"),
                "uuid": ("uuid", "UUID"),
                "date": ("datetime", "date"),
                "datetime": ("datetime", "datetime"),
            }[tp.name]
            return mod.std(*where)
        raise CompileError(f"no Python type for '{tp}'")

    def constant_env(self, context: Context | None) -> t.Env:
        """What defaults see (cached: building it lists every visible enum)."""
        key = context.name if context is not None else None
        env = self._constant_envs.get(key)
        if env is None:
            env = self._constant_envs[key] = t.constant_env(context, self.scope)
        return env

    def compiler(self, env: t.Env, mod: Module, **target: Any) -> Compiler:
        def enum_name(e: t.EnumType) -> str:
            return mod.use(self.symbols[id(e.node)], e.context_name or "")

        def value_name(v: t.ValueType) -> str:
            return mod.use(self.symbols[id(v.node)], v.context_name or "")

        return Compiler(env, Target(enum=enum_name, value=value_name, **target))

    def finish(self, compiler: Compiler, mod: Module) -> None:
        """Import what compiled expressions used."""
        where = {"Decimal": "decimal", "UTC": "datetime", "datetime": "datetime"}
        where["uuid4"] = where["UUID"] = "uuid"
        where["fullmatch"] = "re"
        where["present"] = "stormgen.runtime"
        for name in sorted(compiler.uses - {"required"}):
            mod.std(where[name], name)

    def fields(
        self, fields: tuple[Field, ...], context: Context | None, mod: Module
    ) -> tuple[FieldVM, ...]:
        out = []
        env = self.constant_env(context)
        for f in fields:
            tp = self.type_of(f, context)
            default: str | None = None
            if f.default is not None:
                c = self.compiler(env, mod)
                default = c.compile(f.default, tp)
                self.finish(c, mod)
            elif isinstance(tp, t.OptionalType):
                default = "None"
            name = field_name(f.name)
            renamed = name != f.name
            out.append(
                FieldVM(
                    name,
                    self.annotation(tp, mod),
                    default,
                    comment_text(f.description) if f.description else None,
                    wire=f.name if renamed else None,
                    field_call=mod.std("dataclasses", "field") if renamed else "field",
                )
            )
        return tuple(out)

    def message_fields(
        self, msg: Command | Event, owner: Aggregate | None, context: Context, mod: Module
    ) -> tuple[FieldVM, ...]:
        own = self.fields(msg.fields, context, mod)
        if owner is None:
            return own
        if not any(f.name == owner.id_field.name for f in msg.fields):
            own = self.fields((owner.id_field,), context, mod) + own
        if isinstance(msg, Command) and msg.creates:
            # A `creates` command may leave a uuid id out: a fresh one is made.
            id_name = field_name(owner.id_field.name)
            if self.type_of(owner.id_field, context) == t.UUID:
                own = tuple(
                    replace(
                        f,
                        default=f"{mod.std('dataclasses', 'field')}"
                        f"(default_factory={mod.std('uuid', 'uuid4')})",
                        field_call=mod.std("dataclasses", "field"),
                    )
                    if f.name == id_name and f.default is None
                    else f
                    for f in own
                )
        return own

    def message_class(
        self,
        msg: Command | Event,
        owner: Aggregate | External,
        context: Context,
        mod: Module,
    ) -> ClassVM:
        kind = "Command" if isinstance(msg, Command) else "Event"
        base = mod.std(RUNTIME, kind)
        keywords = [f"name={py_str(_qualified(context, owner, msg.name))}"]
        if isinstance(owner, Aggregate):
            keywords.append(f"aggregate={py_str(context.name + '.' + owner.name)}")
        else:
            keywords.append(f"system={py_str(context.name + '.' + owner.name)}")
        if isinstance(msg, Event):
            if msg.version != 1:
                keywords.append(f"version={msg.version}")
            # pii and was act on the data, so they use the model's (wire) names
            pii = [f.name for f in msg.fields if f.pii]
            if pii:
                keywords.append(f"pii=({', '.join(py_str(p) for p in pii)},)")
            renames = [(f.name, f.was) for f in msg.fields if f.was]
            if renames:
                pairs = ", ".join(f"{py_str(a)}: {py_str(b)}" for a, b in renames)
                keywords.append(f"was={{{pairs}}}")
        if isinstance(msg, Command) and msg.creates:
            keywords.append("creates=True")
        if isinstance(msg, Command) and msg.actors:
            actors = []
            for ref in msg.actors:
                found = self.scope.resolve(context, ref.name, ACTOR_KINDS)
                actors.append(found.name if found is not None else ref.parts[-1])
            keywords.append(f"by=({', '.join(py_str(a) for a in actors)},)")
        if msg.description:
            keywords.append(f"description={py_str(msg.description)}")
        fields = self.message_fields(
            msg, owner if isinstance(owner, Aggregate) else None, context, mod
        )
        doc = msg.description or _default_doc(msg, owner)
        return ClassVM(
            self.symbols[id(msg)].name,
            py_docstring(doc),
            fields,
            f"({base}, {', '.join(keywords)})",
        )

    def enum_vm(self, e: Enum, mod: Module) -> EnumVM:
        members = tuple((member_name(m.name), py_str(m.name)) for m in e.members)
        mod.std("enum", "StrEnum")
        doc = e.description or f"The members of {e.name}."
        return EnumVM(self.symbols[id(e)].name, py_docstring(doc), members)

    def value_vm(self, v: Value, context: Context | None, mod: Module) -> ClassVM:
        mod.std("dataclasses", "dataclass")
        doc = v.description or f"The value {v.name}."
        return ClassVM(
            self.symbols[id(v)].name, py_docstring(doc), self.fields(v.fields, context, mod)
        )

    # ------------------------------------------------------------ files

    def build(self) -> Output:
        self.plan()
        contexts = []
        if self.model.values or self.model.enums:
            self.types_module(f"{self.package}.shared", None, self.model.values, self.model.enums)
        for context in self._contexts():
            contexts.append(self.context(context))
        self.project_files(tuple(contexts))
        return self.out

    def types_module(
        self,
        dotted: str,
        context: Context | None,
        values: tuple[Value, ...],
        enums: tuple[Enum, ...],
    ) -> None:
        mod = self.module(dotted)
        enum_vms = tuple(self.enum_vm(e, mod) for e in enums)
        value_vms = tuple(self.value_vm(v, context, mod) for v in values)
        what = f"the {context.name} context" if context else "every context (the shared kernel)"
        self.out.add(
            _path(dotted),
            "src/__package__/__context__/types.py.jinja",
            doc=py_docstring(f"Values and enums of {what}."),
            imports=tuple(mod.import_lines()),
            enums=enum_vms,
            values=value_vms,
        )

    def context(self, context: Context) -> ContextVM:
        base = self.context_packages[context.name]
        if context.values or context.enums:
            self.types_module(f"{base}.types", context, context.values, context.enums)
        aggregates = tuple(self.aggregate(context, a) for a in context.aggregates)
        externals = tuple(self.external(context, e) for e in context.externals)
        policies = self.policies(context)
        views = self.views(context)
        doc = f"{context.name}: {context.description}" if context.description else context.name
        vm = ContextVM(
            context.name, base, py_docstring(doc), aggregates, externals, policies, views
        )
        self.out.add(
            _path(base, "__init__"),
            "src/__package__/__context__/__init__.py.jinja",
            doc=vm.docstring,
        )
        self.out.add(
            _path(base + ".custom", "__init__"),
            "src/__package__/__context__/custom/__init__.py.jinja",
            owned=False,
            doc=py_docstring(
                f"Hand-written code of the {context.name} context; stormgen never overwrites it."
            ),
        )
        return vm

    # ------------------------------------------------------------ aggregates

    def aggregate(self, context: Context, agg: Aggregate) -> AggregateVM:
        base_sym = self._base_symbols[id(agg)]
        mod = self.module(base_sym.module)
        commands = tuple(self.message_class(c, agg, context, mod) for c in agg.commands)
        events = tuple(self.message_class(e, agg, context, mod) for e in agg.events)
        mod.std("dataclasses", "dataclass")
        state_fields = []
        for fvm in self.fields(agg.state, context, mod):
            if fvm.default is None:
                # No default and no `?`: UNSET until an event sets it; the runtime's UNSET
                # raises on any use, so reading it early is an error (language.md §5).
                fvm = replace(fvm, default=mod.std(RUNTIME, "UNSET"))
            state_fields.append(fvm)
        state_name = self._state_symbols[id(agg)].name
        state = ClassVM(
            state_name, py_docstring(f"The state of one {agg.name}."), tuple(state_fields)
        )
        handlers = tuple(self.handler(context, agg, c, mod) for c in agg.commands)
        applies = tuple(self.apply(context, agg, e, mod) for e in agg.events)
        id_type = self.annotation(self.type_of(agg.id_field, context), mod)
        for name in ("Aggregate", "Command", "Event"):
            mod.std(RUNTIME, name)
        if any(a.updates for a in applies):
            mod.std("dataclasses", "replace")
        user = self._user_symbols[id(agg)]
        if any(h.guards for h in handlers):
            mod.std(RUNTIME, "Rejected")
        if any(a.recorded for a in applies):
            mod.std(RUNTIME, "RecordedEvent")
        qualified = f"{context.name}.{agg.name}"
        doc = f"{qualified}: {agg.description}" if agg.description else qualified
        vm = AggregateVM(
            context=context.name,
            name=agg.name,
            qualified=py_str(qualified),
            docstring=py_docstring(doc),
            module=mod.dotted,
            imports=(),
            enums=(),
            commands=commands,
            events=events,
            state=state,
            base=base_sym.name,
            user_class=user.name,
            user_module=user.module,
            id_field=py_str(field_name(agg.id_field.name)),
            id_type=id_type,
            snapshot_every=str(agg.snapshot_every) if agg.snapshot_every else "None",
            handlers=handlers,
            applies=applies,
            command_tuple=_tuple(self.symbols[id(c)].name for c in agg.commands),
            event_tuple=_tuple(self.symbols[id(e)].name for e in agg.events),
        )
        vm = _with_imports(vm, mod)
        self.out.add(_path(mod.dotted), "src/__package__/__context__/aggregate.py.jinja", agg=vm)
        self.tests(context, agg)
        self.user_file(
            agg,
            base_sym,
            f"The {agg.name} aggregate: override any method of {base_sym.name} here.",
            _aggregate_example(vm),
        )
        return vm

    def handler(self, context: Context, agg: Aggregate, cmd: Command, mod: Module) -> HandlerVM:
        guards = []
        for line, seen, _ in tc.command_lines(cmd, t.command_env(cmd, self.scope, lines=False)):
            if isinstance(line, Require):  # what this guard sees: the lines before it
                gc = self.compiler(seen, mod, message="command", state="state")
                guards.append(GuardVM(_negate(gc, line.condition), py_str(line.message)))
                self.finish(gc, mod)
        env = t.command_env(cmd, self.scope)
        c = self.compiler(env, mod, message="command", state="state")
        emits = tuple(self.emit(context, agg, cmd, e, env, c, mod) for e in cmd.emits)
        self.finish(c, mod)
        method = snake_case(cmd.name)
        doc = cmd.description or f"Handle {cmd.name}: check its guards, then emit its events."
        return HandlerVM(
            self.symbols[id(cmd)].name,
            f"handle_{method}",
            f"check_{method}",
            f"emit_{method}",
            py_docstring(doc),
            tuple(guards),
            emits,
        )

    def emit(
        self,
        context: Context,
        agg: Aggregate,
        cmd: Command,
        emit: Emit,
        env: t.Env,
        c: Compiler,
        mod: Module,
    ) -> EmitVM:
        found = self.scope.resolve(context, emit.event.name, EVENT_KINDS)
        if found is None or not isinstance(found.element, Event):
            raise CompileError(f"{emit.event.loc}: unknown event '{emit.event.name}'")
        event = found.element
        assigned = {a.target: a for a in emit.assignments}
        fields = list(event.fields)
        if not any(f.name == agg.id_field.name for f in fields):
            fields.insert(0, agg.id_field)
        args = []
        for f in fields:
            tp = self.type_of(f, context)
            value = self._source(f, tp, assigned.get(f.name), env, c, context, mod)
            if value is None:
                raise CompileError(
                    f"{emit.loc}: event field '{f.name}' of {event.name} has no source (E301)"
                )
            args.append((field_name(f.name), value))
        condition = c.compile(emit.condition, t.BOOL) if emit.condition is not None else None
        return EmitVM(Call(self.symbols[id(event)].name, tuple(args)), condition)

    def _source(
        self,
        f: Field,
        tp: t.Type,
        assignment: Assignment | None,
        env: t.Env,
        c: Compiler,
        context: Context,
        mod: Module,
    ) -> str | None:
        """Fill a field: explicit assignment, same-named field in ``env``, default, none."""
        if assignment is not None:
            return c.compile(assignment.value, tp)
        if env.lookup_field(f.name) is not None:
            return c.compile(Name((f.name,), f.loc), tp)
        if f.default is not None:
            dc = self.compiler(self.constant_env(context), mod)
            value = dc.compile(f.default, tp)
            self.finish(dc, mod)
            return value
        if isinstance(tp, t.OptionalType):
            return "None"
        return None

    def apply(self, context: Context, agg: Aggregate, event: Event, mod: Module) -> UpdateVM:
        env = t.apply_env(event, self.scope)
        c = self.compiler(
            env,
            mod,
            message="event",
            state="state",
            metadata="recorded",
            **_envelope_names(mod, agg, "recorded"),
        )
        updates = self._updates(
            c, env, event.apply, agg.state, context, qualifier="state", skip=frozenset()
        )
        self.finish(c, mod)
        return UpdateVM(
            self.symbols[id(event)].name,
            f"apply_{snake_case(event.name)}",
            updates,
            recorded="metadata" in c.bound,
        )

    def _updates(
        self,
        c: Compiler,
        env: t.Env,
        assignments: tuple[Assignment, ...],
        targets: tuple[Field, ...],
        context: Context,
        qualifier: str,
        skip: frozenset[str],
    ) -> tuple[tuple[str, str], ...]:
        """``field=expr`` pairs: explicit ``=``/``+=``/``-=``, then same-named copies."""
        by_name = {f.name: f for f in targets}
        assigned = {a.target for a in assignments}
        out: list[tuple[str, str]] = []
        message = env.message.fields if env.message is not None else {}
        for f in targets:
            if f.name in skip:
                continue
            tp = self.type_of(f, context)
            explicit = [a for a in assignments if a.target == f.name]
            if explicit:
                a = explicit[-1]
                expr: Expr = a.value
                if a.op != "=":
                    from stormgen.model.nodes import Binary

                    current = Name((qualifier, f.name), a.loc)
                    expr = Binary(a.op[0], current, a.value, a.loc)
                out.append((field_name(f.name), c.compile(expr, tp)))
            elif f.name in message and f.name not in assigned:
                out.append((field_name(f.name), c.compile(Name((f.name,), f.loc), tp)))
        for a in assignments:
            if a.target not in by_name:
                raise CompileError(f"{a.loc}: '{a.target}' is not a field it can assign (E403)")
        return tuple(out)

    # ------------------------------------------------------------ generated tests

    def tests(self, context: Context, agg: Aggregate) -> None:
        ctx_module = self.context_packages[context.name].rsplit(".", 1)[1]
        agg_module = self._base_symbols[id(agg)].module.rsplit(".", 1)[1]
        # Two pairs can meet in one name (`a_b` + `c`, `a` + `b_c`): names are claimed.
        name = self._test_modules.claim(f"test_{ctx_module}_{agg_module}", id(agg))
        mod = Module(f"tests.{name}", self.package)
        base = mod.use(self._base_symbols[id(agg)])
        state_cls = mod.use(self._state_symbols[id(agg)])
        for n in ("Command", "Event", "RecordedEvent", "id_text", "info"):
            mod.std(RUNTIME, n)
        mod.std("uuid", "UUID")
        recorded_at = Values(self, mod, context).value(RECORDED_AT, t.DATETIME)
        finder = ScenarioFinder(self.scope, context, agg)
        values = Values(self, mod, context)
        functions = Namespace()
        functions.claim("when", "when")
        tests: list[TestVM] = []
        missing: list[str] = []
        initial = finder.initial_state()
        for cmd in agg.commands:
            ctypes = finder.command_types(cmd)
            stem = f"test_{snake_case(cmd.name)}"
            try:
                happy, rejections = finder.scenarios(cmd)
            except Unknowable as exc:
                missing.append(f"{cmd.name}: no scenario ({exc})")
                continue
            if cmd.creates and happy is not None:
                self._service_cases.append((context, agg, cmd, happy, ctypes))
            outcomes: list[tuple[str, Outcome | None, Require | None]] = [("accepted", happy, None)]
            outcomes += [
                (f"rejected_{i + 1}", r, cmd.requires[i]) for i, r in enumerate(rejections)
            ]
            for suffix, outcome, guard in outcomes:
                what = "accepted" if guard is None else f"guard {py_str(guard.message)}"
                if outcome is None:
                    missing.append(
                        f"{cmd.name}: found no case where it is {what}"
                        if guard is None
                        else f"{cmd.name}: found no case failing the {what}"
                    )
                    continue
                state = values.state(outcome.state, initial, finder.state_types, state_cls, base)
                cmd_cls = mod.use(self.symbols[id(cmd)])
                command = values.build(cmd_cls, outcome.command, ctypes)
                events = event_types = after = None
                if outcome.rejected is None:
                    if outcome.events is not None:
                        events = values.events(outcome.events, agg)
                    else:
                        event_types = values.event_types(cmd, context)
                    if outcome.after is not None:
                        after = values.build(
                            state_cls, outcome.after, finder.state_types, finder.unset
                        )
                if guard is None:
                    doc = f"{cmd.name} is accepted: its events are recorded and applied."
                else:
                    doc = f"{cmd.name} is rejected when a guard fails: {guard.message}"
                tests.append(
                    TestVM(
                        functions.claim(f"{stem}_{suffix}", (cmd.name, suffix)),
                        py_docstring(doc),
                        state,
                        command,
                        py_str(outcome.rejected) if outcome.rejected is not None else None,
                        events,
                        event_types,
                        after,
                    )
                )
        if any(x.rejected for x in tests):
            mod.std("pytest", "raises")
            mod.std(RUNTIME, "Rejected")
        if any(x.state != f"{base}().initial_state()" for x in tests):
            mod.std("dataclasses", "replace")
        qualified = f"{context.name}.{agg.name}"
        vm = TestModuleVM(
            py_docstring(
                f"Given-when-then tests of {qualified}: every command's guards and events."
            ),
            tuple(mod.import_lines()),
            base,
            state_cls,
            recorded_at,
            tuple(tests),
            tuple(comment_text(m) for m in missing),
        )
        self.out.add(f"tests/{name}.py", "tests/test___context_____aggregate__.py.jinja", tests=vm)

    def service_test(self) -> None:
        """tests/test_service.py: each creating command through the application."""
        if not self._service_cases:
            return
        mod = Module("tests.test_service", self.package)
        for name in ("Application", "RetrySettings"):
            mod.std(RUNTIME, name)
        definitions = mod.use(Symbol(f"{self.package}.app", "definitions"))
        cases = []
        for number, (context, agg, cmd, happy, ctypes) in enumerate(self._service_cases, 1):
            values = Values(self, mod, context)
            data = dict(happy.command)
            # A distinct instance per aggregate, so that policies do not collide.
            data[agg.id_field.name] = _nth_id(data[agg.id_field.name], number)
            call = values.build(mod.use(self.symbols[id(cmd)], context.name), data, ctypes)
            versions = str(len(happy.events)) if happy.events is not None else None
            cases.append((call, versions))
        self.out.add(
            "tests/test_service.py",
            "tests/test_service.py.jinja",
            doc=py_docstring(
                f"{self.model.name} on an in-memory store: each aggregate's creating command"
                " through the application, then its policies and views."
            ),
            imports=tuple(mod.import_lines()),
            definitions=definitions,
            cases=tuple(cases),
        )

    # ------------------------------------------------------------ external systems

    def external(self, context: Context, ext: External) -> ExternalVM:
        port = self._port_symbols[id(ext)]
        fake = self._base_symbols[id(ext)]
        mod = self.module(port.module)
        mod.std("dataclasses", "dataclass")
        commands = tuple(self.message_class(c, ext, context, mod) for c in ext.commands)
        events = tuple(self.message_class(e, ext, context, mod) for e in ext.events)
        for name in ("Command", "Event"):
            mod.std(RUNTIME, name)
        if ext.events:
            mod.std(RUNTIME, "FakePort")
        mod.std("collections.abc", "Sequence")
        mod.std("uuid", "UUID")
        answers = []
        first = ext.events[0] if ext.events else None
        for cmd in ext.commands:
            if first is None:
                continue
            args = []
            # A command field fills the answer's field of the same name when its type fits.
            cmd_types = {f.name: self.type_of(f, context) for f in cmd.fields}
            for f in first.fields:
                tp = self.type_of(f, context)
                source = cmd_types.get(f.name)
                if source is not None and _fits(source, tp):
                    value = f"command.{field_name(f.name)}"
                    if source != tp:
                        value = _convert(value, source, tp, mod)
                elif f.default is not None:
                    dc = self.compiler(self.constant_env(context), mod)
                    value = dc.compile(f.default, tp)
                    self.finish(dc, mod)
                elif isinstance(tp, t.OptionalType):
                    value = "None"
                else:
                    value = _zero(tp, mod, self)
                args.append((field_name(f.name), value))
            answers.append(
                (
                    snake_case(cmd.name),
                    self.symbols[id(cmd)].name,
                    Call(self.symbols[id(first)].name, tuple(args)),
                )
            )
        qualified = f"{context.name}.{ext.name}"
        doc = f"{qualified}: {ext.description}" if ext.description else qualified
        user = self._user_symbols[id(ext)]
        vm = ExternalVM(
            qualified=py_str(qualified),
            docstring=py_docstring(doc),
            module=mod.dotted,
            imports=(),
            commands=commands,
            events=events,
            system=port.name,
            events_name=self._events_symbols[id(ext)].name,
            fake=fake.name,
            event_tuple=_tuple(self.symbols[id(e)].name for e in ext.events),
            answers=tuple(answers),
            user_class=user.name,
            user_module=user.module,
        )
        vm = _with_imports(vm, mod)
        self.out.add(_path(mod.dotted), "src/__package__/__context__/external.py.jinja", ext=vm)
        self.user_file(
            ext,
            fake,
            f"The adapter to {ext.name}: replace the fake with real calls here.",
            (
                "from collections.abc import Sequence",
                "from uuid import UUID",
                "from stormgen.runtime import Command, Event",
                "",
                "def send(self, command: Command, command_id: UUID) -> Sequence[Event]:",
                "    # call the real system here; raising makes a failure event and a retry",
                "    return super().send(command, command_id)",
            ),
        )
        return vm

    # ------------------------------------------------------------ policies

    def policies(self, context: Context) -> tuple[PolicyVM, ...]:
        if not context.policies:
            return ()
        mod = self.module(f"{self.context_packages[context.name]}.policies")
        for name in ("Command", "Envelope", "Event", "Policy"):
            mod.std(RUNTIME, name)
        vms = tuple(self.policy(context, p, mod) for p in context.policies)
        self.out.add(
            _path(mod.dotted),
            "src/__package__/__context__/policies.py.jinja",
            doc=py_docstring(f"The policies of the {context.name} context."),
            imports=tuple(mod.import_lines()),
            policies=vms,
        )
        for p in context.policies:
            found = self.scope.resolve(context, p.when.name, EVENT_KINDS)
            assert found is not None  # policy() resolved it already
            event_symbol = self.symbols[id(found.element)]
            self.user_file(
                p,
                self._base_symbols[id(p)],
                f"The policy {p.name}: override its mapping here.",
                (
                    "from stormgen.runtime import Command, Envelope",
                    f"from {event_symbol.module} import {event_symbol.name}",
                    "",
                    f"def commands(self, event: {event_symbol.name}, envelope: Envelope)"
                    " -> list[Command]:",
                    "    return super().commands(event, envelope)",
                ),
            )
        return vms

    def policy(self, context: Context, p: Policy, mod: Module) -> PolicyVM:
        found = self.scope.resolve(context, p.when.name, EVENT_KINDS)
        if found is None or not isinstance(found.element, Event):
            raise CompileError(f"{p.when.loc}: unknown event '{p.when.name}'")
        event = found.element
        event_class = mod.use(self.symbols[id(event)], found.context.name if found.context else "")
        env = t.policy_env(event, context, self.scope)
        c = self.compiler(
            env, mod, message="event", metadata="envelope", **_envelope_names(mod, found.owner)
        )
        condition = c.compile(p.condition, t.BOOL) if p.condition is not None else None
        self.finish(c, mod)
        # The `then` lines see what the condition proved (`x != none and ...`).
        env = tc.narrowed_by(p.condition, env)
        c = self.compiler(
            env, mod, message="event", metadata="envelope", **_envelope_names(mod, found.owner)
        )
        calls = []
        lines = []
        when_env, when_c = env, c
        for then in p.thens:
            env, c = when_env, when_c
            line_if = c.compile(then.condition, t.BOOL) if then.condition is not None else None
            loop = None
            if then.fan is not None:  # then C {...} for x in L [if C]: x is seen below
                env = tc.fan_out(then.fan, env)[0]
                c = self.compiler(
                    env,
                    mod,
                    message="event",
                    metadata="envelope",
                    **_envelope_names(mod, found.owner),
                )
                loop = f"{c.local(then.fan.var)} in {c.compile(then.fan.source)}"
                if then.fan.condition is not None:
                    loop += f" if {c.compile(then.fan.condition, t.BOOL)}"
            target = self.scope.resolve(context, then.command.name, COMMAND_KINDS)
            if target is None or not isinstance(target.element, Command):
                raise CompileError(f"{then.command.loc}: unknown command '{then.command.name}'")
            cmd = target.element
            owner = target.owner
            fields = list(cmd.fields)
            if isinstance(owner, Aggregate) and not any(
                f.name == owner.id_field.name for f in fields
            ):
                fields.insert(0, owner.id_field)
            assigned = {a.target: a for a in then.assignments}
            cmd_context = target.context or context
            args = []
            for f in fields:
                tp = self.type_of(f, cmd_context)
                value = self._source(f, tp, assigned.get(f.name), env, c, cmd_context, mod)
                if (
                    value is None
                    and isinstance(owner, Aggregate)
                    and f is owner.id_field
                    and cmd.creates
                    and tp == t.UUID
                ):
                    continue  # a new instance: its class makes a fresh uuid
                if value is None:
                    raise CompileError(
                        f"{then.loc}: command field '{f.name}' of {cmd.name} has no source (E302)"
                    )
                args.append((field_name(f.name), value))
            calls.append(Call(mod.use(self.symbols[id(cmd)]), tuple(args)))
            lines.append(ThenVM(calls[-1], line_if, loop))
            if c is not when_c:
                self.finish(c, mod)
        self.finish(when_c, mod)
        doc = (
            p.description
            or f"Whenever {p.when.name} then {', '.join(x.command.name for x in p.thens)}."
        )
        user = self._user_symbols[id(p)]
        return PolicyVM(
            qualified=py_str(f"{context.name}.{p.name}"),
            base=self._base_symbols[id(p)].name,
            docstring=py_docstring(doc),
            event=event_class,
            condition=condition,
            commands=tuple(calls),
            lines=tuple(lines),
            user_class=user.name,
            user_module=user.module,
        )

    # ------------------------------------------------------------ views

    def views(self, context: Context) -> tuple[ViewVM, ...]:
        if not context.views:
            return ()
        mod = self.module(f"{self.context_packages[context.name]}.views")
        mod.std("dataclasses", "dataclass")
        for name in ("Delete", "Envelope", "Event", "View"):
            mod.std(RUNTIME, name)
        self.needs_value = False
        vms = tuple(self.view(context, v, mod) for v in context.views)
        value_reader = mod.define("_value", "_value") if self.needs_value else ""
        if value_reader:
            mod.std("typing", "TypeVar")
        self.out.add(
            _path(mod.dotted),
            "src/__package__/__context__/views.py.jinja",
            doc=py_docstring(f"The views (read models) of the {context.name} context."),
            imports=tuple(mod.import_lines()),
            views=vms,
            value_reader=value_reader,
            typevar=mod.define("_T", "_T") if value_reader else "",
        )
        for v, vm in zip(context.views, vms, strict=True):
            self.user_file(
                v,
                self._base_symbols[id(v)],
                f"The view {v.name}: override how an event updates a row here.",
                (
                    "from stormgen.runtime import Delete, Envelope, Event",
                    f"from {self._row_symbols[id(v)].module} import {vm.row.name}",
                    "",
                    f"def update(self, row: {vm.row.name}, event: Event, envelope: Envelope)"
                    f" -> {vm.row.name} | Delete:",
                    "    return super().update(row, event, envelope)",
                ),
            )
        return vms

    def view(self, context: Context, view: View, mod: Module) -> ViewVM:
        key_vm = self.fields((view.key,), context, mod)[0]
        columns = []
        for vm in self.fields(view.fields, context, mod):
            if vm.default is None:
                # A column without a default starts as none (language.md §9).
                vm = replace(vm, annotation=f"{vm.annotation} | None", default="None")
            columns.append(vm)
        row_name = self._row_symbols[id(view)].name
        row = ClassVM(row_name, py_docstring(f"One row of {view.name}."), (key_vm, *columns))
        handlers = []
        event_classes: list[str] = []
        methods = Namespace()
        # Columns without a default are None until set; reading one goes through _value.
        unset = frozenset(f.name for f in view.fields if f.default is None and not f.type.optional)
        for on in view.handlers:
            found = self.scope.resolve(context, on.event.name, EVENT_KINDS)
            if found is None or not isinstance(found.element, Event):
                raise CompileError(f"{on.event.loc}: unknown event '{on.event.name}'")
            event = found.element
            cls = mod.use(self.symbols[id(event)], found.context.name if found.context else "")
            if cls not in event_classes:
                event_classes.append(cls)
            key = None
            if on.by is not None:
                key_env = t.view_env(view, event, self.scope, row=False)
                kc = self.compiler(
                    key_env,
                    mod,
                    message="event",
                    metadata="envelope",
                    **_envelope_names(mod, found.owner),
                )
                key = kc.compile(on.by, self.type_of(view.key, context))
                self.finish(kc, mod)
            updates: tuple[tuple[str, str], ...] = ()
            if not on.delete:
                env = t.view_env(view, event, self.scope, on=on)
                c = self.compiler(
                    env,
                    mod,
                    message="event",
                    state="row",
                    metadata="envelope",
                    unset=unset,
                    required=mod.define("_value", "_value"),
                    **_envelope_names(mod, found.owner),
                )
                updates = self._updates(
                    c, env, on.assignments, view.fields, context, "row", frozenset()
                )
                self.finish(c, mod)
                self.needs_value |= "required" in c.uses
                if updates:
                    mod.std("dataclasses", "replace")
            method = methods.claim(f"on_{snake_case(event.name)}", id(on))
            handlers.append(UpdateVM(cls, method, updates, on.delete, key))
        if any(h.key is not None for h in handlers):
            mod.std("typing", "Any")
        pii = sorted(field_name(f.name) for f in view.fields if f.pii)
        doc = view.description or f"The view {view.name}."
        user = self._user_symbols[id(view)]
        return ViewVM(
            qualified=py_str(f"{context.name}.{view.name}"),
            base=self._base_symbols[id(view)].name,
            docstring=py_docstring(doc),
            row=row,
            key=py_str(field_name(view.key.name)),
            pii="frozenset({" + ", ".join(py_str(p) for p in pii) + "})" if pii else "frozenset()",
            event_tuple=_tuple(event_classes),
            handlers=tuple(handlers),
            user_class=user.name,
            user_module=user.module,
        )

    # ------------------------------------------------------------ user files

    def user_file(
        self,
        element: object,
        base: Symbol,
        doc: str,
        example: tuple[str, ...],
    ) -> None:
        user = self._user_symbols[id(element)]
        mod = Module(user.module, self.package)
        mod.define(user.name, id(element))
        base_name = mod.use(base)
        self.out.add(
            _path(user.module),
            "src/__package__/__context__/custom/element.py.jinja",
            owned=False,
            vm=UserClassVM(
                py_docstring("Your code: stormgen wrote this file once and never overwrites it."),
                tuple(mod.import_lines()),
                user.name,
                base_name,
                py_docstring(doc),
                example,
            ),
        )

    # ------------------------------------------------------------ project files

    def project_files(self, contexts: tuple[ContextVM, ...]) -> None:
        pkg = self.package
        model = self.model
        doc = f"{model.name}: {model.description}" if model.description else model.name
        self.out.add(
            f"src/{pkg}/__init__.py", "src/__package__/__init__.py.jinja", doc=py_docstring(doc)
        )
        self.out.add(f"src/{pkg}/py.typed", "src/__package__/py.typed.jinja")
        self.service_test()
        app = self.app_module(contexts)
        self.out.add(f"src/{pkg}/app.py", "src/__package__/app.py.jinja", app=app)
        self.out.add(
            f"src/{pkg}/__main__.py",
            "src/__package__/__main__.py.jinja",
            doc=py_docstring(f"Serve {model.name}: python -m {pkg} serve [--store URL]."),
            package=pkg,
            model_name=py_str(model.name),
        )
        description = model.description or f"The {model.name} service, generated by stormgen."
        self.out.add(
            "pyproject.toml",
            "pyproject.toml.jinja",
            owned=False,
            distribution=_toml_str(pkg.replace("_", "-")),
            description=_toml_str(description),
            package=pkg,
        )
        self.out.add(".gitignore", "gitignore.jinja", owned=False)
        self.out.add(
            "README.md",
            "README.md.jinja",
            title=_markdown(model.name),
            description=_markdown(model.description or ""),
            package=pkg,
            contexts=tuple((_markdown(c.name), _summary(c)) for c in contexts),
        )

    def app_module(self, contexts: tuple[ContextVM, ...]) -> AppVM:
        mod = Module(f"{self.package}.app", self.package)
        for name in ("Aggregate", "Application", "Event", "Policy", "Port", "View"):
            mod.std(RUNTIME, name)
        mod.std("typing", "Any")
        mod.std("collections.abc", "Collection")
        mod.std("collections.abc", "Sequence")
        entries = []
        for ctx in contexts:
            hint = ctx.name
            aggregates = tuple(
                mod.use(Symbol(a.user_module, a.user_class), hint) for a in ctx.aggregates
            )
            views = tuple(mod.use(Symbol(v.user_module, v.user_class), hint) for v in ctx.views)
            policies = tuple(
                mod.use(Symbol(p.user_module, p.user_class), hint) for p in ctx.policies
            )
            systems = []
            for e in ctx.externals:
                prefix = snake_case(ctx.name).upper() + "_" + e.fake.removeprefix("Fake")
                prefix = snake_case(prefix).upper()
                system = mod.use_as(Symbol(e.module, e.system), prefix)
                events = mod.use_as(Symbol(e.module, e.events_name), prefix + "_EVENTS")
                adapter = mod.use(Symbol(e.user_module, e.user_class), hint)
                systems.append((system, events, adapter))
            entries.append(
                AppContextVM(py_str(ctx.name), aggregates, views, policies, tuple(systems))
            )
        return AppVM(
            py_docstring(f"Wire the contexts of {self.model.name} into one application."),
            tuple(mod.import_lines()),
            _tuple(e.name for e in entries),
            tuple(entries),
        )


# ---------------------------------------------------------------- helpers


def _summary(c: ContextVM) -> str:
    """``2 aggregates, 1 policy, ...`` for the README."""
    counts = (
        (len(c.aggregates), "aggregate", "aggregates"),
        (len(c.externals), "external system", "external systems"),
        (len(c.policies), "policy", "policies"),
        (len(c.views), "view", "views"),
    )
    parts = [f"{n} {one if n == 1 else many}" for n, one, many in counts if n]
    return ", ".join(parts) or "no elements yet"


def _nth_id(ident: Any, number: int) -> Any:
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


def _toml_str(text: str) -> str:
    """A TOML basic string (JSON's escapes are all valid TOML escapes)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def _markdown(text: str) -> str:
    """Model text made inert in Markdown: one line, HTML and markup characters escaped."""
    flat = " ".join(text.split())
    out = []
    for ch in flat:
        if ch in "\\`*_{}[]<>()#+-.!|":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _claim_module(ns: Namespace, name: str, owner: object, suffix: str) -> str:
    wanted = snake_case(name)
    got = ns.claim(wanted, owner)
    if got != wanted:
        got = ns.claim(f"{wanted}_{suffix}", owner)
    return got


def _qualified(context: Context, owner: Aggregate | External, name: str) -> str:
    if isinstance(owner, External):
        return f"{context.name}.{owner.name}.{name}"
    return f"{context.name}.{name}"


def _default_doc(msg: Command | Event, owner: Aggregate | External) -> str:
    if isinstance(msg, Command):
        return f"The command {msg.name} to {owner.name}."
    return f"The event {msg.name} of {owner.name}."


def _path(dotted: str, leaf: str | None = None) -> str:
    parts = dotted.split(".")
    if leaf is not None:
        parts.append(leaf)
    return "src/" + "/".join(parts) + ".py"


def _tuple(names: Any) -> str:
    items = list(names)
    if not items:
        return "()"
    if len(items) == 1:
        return f"({items[0]},)"
    return "(" + ", ".join(items) + ")"


def _has_unknown(tp: t.Type) -> bool:
    if tp is t.UNKNOWN:
        return True
    if isinstance(tp, t.OptionalType):
        return _has_unknown(tp.inner)
    if isinstance(tp, t.ListType):
        return _has_unknown(tp.element)
    return False


def _negate(c: Compiler, condition: Expr) -> str:
    """The Python condition under which a guard rejects: ``not (cond)``, simplified."""
    from stormgen.model.nodes import Binary, Unary

    if isinstance(condition, Unary) and condition.op == "not":
        return c.compile(condition.operand, t.BOOL)
    flipped = {"==": "!=", "!=": "==", "in": "not in", "not in": "in"}
    if isinstance(condition, Binary) and condition.op in flipped:
        return c.compile(
            Binary(flipped[condition.op], condition.left, condition.right, condition.loc), t.BOOL
        )
    text = c.compile(condition, t.BOOL)
    if isinstance(condition, Name):
        return f"not {text}"
    return f"not ({text})"


def _envelope_names(
    mod: Module, owner: Aggregate | External | None, envelope: str = "envelope"
) -> dict[str, Any]:
    """``event.<metadata>`` in Python: the envelope's, or the id field every event carries."""
    names = {
        "id": (f"UUID({envelope}.id)", frozenset({"UUID"})),
        "position": (f"{envelope}.position", frozenset()),
        "version": (f"{envelope}.version", frozenset()),
        "recorded_at": (f"{envelope}.recorded_at", frozenset()),
        "stream": (f"{envelope}.stream", frozenset()),
    }
    if isinstance(owner, Aggregate):
        # Every event of an aggregate carries the aggregate's id: that is its stream id.
        names["stream_id"] = (f"event.{field_name(owner.id_field.name)}", frozenset())
    return {"metadata_names": names}


def _fits(source: t.Type, target: t.Type) -> bool:
    """Whether a value of ``source`` can be stored as ``target`` as is (or as a Decimal)."""
    if source == target:
        return True
    plain_s, plain_t = t.strip_optional(source), t.strip_optional(target)
    if isinstance(source, t.OptionalType) and not isinstance(target, t.OptionalType):
        return False
    if plain_s == plain_t:
        return True
    widening = plain_s == t.INT and plain_t in (t.DECIMAL, t.FLOAT)
    return widening and not isinstance(source, t.OptionalType)


def _convert(value: str, source: t.Type, target: t.Type, mod: Module) -> str:
    if t.strip_optional(target) == t.DECIMAL and t.strip_optional(source) == t.INT:
        return f"{mod.std('decimal', 'Decimal')}({value})"
    return value


def _zero(tp: t.Type, mod: Module, builder: ProjectBuilder) -> str:
    """A placeholder value for a fake adapter's answer field the command cannot fill."""
    if isinstance(tp, t.ListType):
        return "()"
    if isinstance(tp, t.EnumType):
        local = mod.use(builder.symbols[id(tp.node)], tp.context_name or "")
        return f"{local}.{member_name(tp.members[0])}"
    if isinstance(tp, t.Primitive):
        simple = {"str": '""', "int": "0", "float": "0.0", "bool": "False"}
        if tp.name in simple:
            return simple[tp.name]
        if tp.name == "decimal":
            return f'{mod.std("decimal", "Decimal")}("0")'
        if tp.name == "uuid":
            return f"{mod.std('uuid', 'UUID')}(int=0)"
        if tp.name == "date":
            return f"{mod.std('datetime', 'date')}(1970, 1, 1)"
        if tp.name == "datetime":
            mod.std("datetime", "UTC")
            return f"{mod.std('datetime', 'datetime')}(1970, 1, 1, tzinfo=UTC)"
    raise CompileError(f"the fake adapter cannot invent a value of type '{tp}'")


_VM = TypeVar("_VM", AggregateVM, ExternalVM)


def _with_imports(vm: _VM, mod: Module) -> _VM:
    """``vm`` with its module's import lines, known once everything in it is compiled."""
    return replace(vm, imports=tuple(mod.import_lines()))


def _aggregate_example(vm: AggregateVM) -> tuple[str, ...]:
    if not vm.handlers:
        return ()
    h = vm.handlers[0]
    return (
        f"from {vm.module} import {vm.state.name}, {h.command}",
        "",
        f"def {h.check}(self, state: {vm.state.name}, command: {h.command}) -> None:",
        f"    super().{h.check}(state, command)",
    )


class Values:
    """Python source for the interpreter's values, typed by the model (for tests)."""

    def __init__(self, builder: ProjectBuilder, mod: Module, context: Context) -> None:
        self.builder = builder
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
            return _tuple(items)
        if isinstance(tp, t.EnumType) and isinstance(value, EnumValue):
            local = mod.use(self.builder.symbols[id(tp.node)], tp.context_name or "")
            return f"{local}.{member_name(value.member)}"
        if isinstance(tp, t.ValueType) and isinstance(value, dict):
            local = mod.use(self.builder.symbols[id(tp.node)], tp.context_name or "")
            fields = t.value_fields(tp, self.builder.scope)
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
            return (
                f"{mod.std('datetime', 'datetime')}({value.year}, {value.month}, {value.day},"
                f" {value.hour}, {value.minute}, tzinfo=UTC)"
            )
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
        state_cls: str,
        base: str,
    ) -> str:
        start = f"{base}().initial_state()"
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
            local = self.mod.use(self.builder.symbols[id(event)])
            types = {
                f.name: self.builder.type_of(f, self.context) for f in (agg.id_field, *event.fields)
            }
            parts.append(self.build(local, data, types))
        return "[" + ", ".join(parts) + "]"

    def event_types(self, cmd: Command, context: Context) -> str:
        names = []
        for emit in cmd.emits:
            found = self.builder.scope.resolve(context, emit.event.name, EVENT_KINDS)
            if found is not None:
                names.append(self.mod.use(self.builder.symbols[id(found.element)]))
        return "[" + ", ".join(names) + "]"
