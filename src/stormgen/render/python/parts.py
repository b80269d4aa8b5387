"""What every builder of the python target is made of: types, fields, classes, code.

:class:`Parts` turns the model's fields into annotated dataclass fields and its
messages into class records, compiles its expressions in a given module (importing
what the code needs) and writes the user's files; the builders of :mod:`.aggregates`,
:mod:`.externals`, :mod:`.policies`, :mod:`.views`, :mod:`.testfiles` and
:mod:`.projectfiles` combine them into view-models.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from stormgen.model import types as t
from stormgen.model.nodes import (
    Aggregate,
    Assignment,
    Binary,
    Command,
    Context,
    Event,
    External,
    Field,
    Model,
    Name,
    Then,
    View,
)
from stormgen.model.scope import ACTOR_KINDS, Resolved, Scope
from stormgen.render.python.expressions import CompileError, Compiler, Target
from stormgen.render.python.files import File, Template, file, module_path
from stormgen.render.python.literals import (
    comment_text,
    py_description,
    py_docstring,
    py_str,
    py_tuple,
)
from stormgen.render.python.modules import Module
from stormgen.render.python.names import field_name, snake_case
from stormgen.render.python.plan import Plan
from stormgen.render.python.viewmodels import (
    AggregateVM,
    ClassVM,
    ExternalVM,
    FieldVM,
    LookupVM,
    UserClassVM,
)

RUNTIME = "stormgen.runtime"


def lookup_method(view: View) -> str:
    """The method of an aggregate or policy that reads ``view``'s row by key."""
    return f"lookup_{snake_case(view.name)}"


def was_dict(fields: tuple[Field, ...]) -> str:
    """The fields renamed with `was` as a dict literal, current name -> earlier name, by
    the model's (wire) names: stored data holds those ("" when none is renamed)."""
    pairs = [f"{py_str(f.name)}: {py_str(f.was)}" for f in fields if f.was]
    return "{" + ", ".join(pairs) + "}" if pairs else ""


def override(imports: tuple[str, ...], signature: str, *body: str) -> tuple[str, ...]:
    """The lines of a user file's commented example: one method overridden."""
    return (*imports, "", signature, *(f"    {line}" for line in body))


class Parts:
    """The shared pieces of the builders, over one model and its plan."""

    def __init__(self, model: Model, plan: Plan) -> None:
        self.model = model
        self.scope = Scope(model)
        self.plan = plan
        self.package = plan.package
        self._constant_envs: dict[str | None, t.Env] = {}
        #: the views read by ``View[key]`` in what was compiled since the last `lookups`
        self.read: dict[str, View] = {}

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
            return mod.use(self.plan.of(tp.node).cls, tp.context_name or "")
        if isinstance(tp, t.Primitive):
            simple = {"str": "str", "int": "int", "float": "float", "bool": "bool"}
            if tp.name in simple:
                return simple[tp.name]
            where = {
                "decimal": ("decimal", "Decimal"),
                "uuid": ("uuid", "UUID"),
                "date": ("datetime", "date"),
                "datetime": ("datetime", "datetime"),
                "duration": ("datetime", "timedelta"),
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
            return mod.use(self.plan.of(e.node).cls, e.context_name or "")

        def value_name(v: t.ValueType) -> str:
            return mod.use(self.plan.of(v.node).cls, v.context_name or "")

        def lookup(v: View) -> str:
            return f"self.{lookup_method(v)}"

        # compiled code stands in a method of its definition, which reads time through
        # the clock the application binds to it (`Aggregate.clock` and the others)
        target.setdefault("clock", "self.clock")
        return Compiler(env, Target(enum=enum_name, value=value_name, lookup=lookup, **target))

    def lookups(self, context: Context, mod: Module) -> tuple[LookupVM, ...]:
        """The methods reading the views compiled code read since the last call."""
        out = []
        for view in sorted(self.read.values(), key=lambda v: v.name):
            row = mod.use_for_typing(self.plan.of(view).row)
            key = self.annotation(self.type_of(view.key, context), mod)
            doc = (
                f'"""The {view.name} row keyed `key`, or None (a view lags behind the '
                'events it is made of)."""'
            )
            qualified = py_str(f"{context.name}.{view.name}")
            out.append(LookupVM(lookup_method(view), key, row, qualified, doc))
        self.read.clear()
        return tuple(out)

    def event_compiler(
        self,
        env: t.Env,
        mod: Module,
        owner: Aggregate | External | None,
        envelope: str = "envelope",
        **target: Any,
    ) -> Compiler:
        """A compiler of expressions reading an ``event`` and its envelope's metadata."""
        names = envelope_names(mod, owner, envelope)
        return self.compiler(env, mod, message="event", metadata=envelope, **names, **target)

    def finish(self, compiler: Compiler, mod: Module) -> None:
        """Import what compiled expressions used (and note the views they read)."""
        self.read.update(compiler.lookups)
        where = {"Decimal": "decimal", "UTC": "datetime", "datetime": "datetime"}
        where["timedelta"] = "datetime"
        where["uuid4"] = where["UUID"] = "uuid"
        where["fullmatch"] = "re"
        where["present"] = "stormgen.runtime"
        for name in sorted(compiler.uses - {"required"}):
            mod.std(where[name], name)

    def fields(
        self, fields: tuple[Field, ...], context: Context | None, mod: Module
    ) -> tuple[FieldVM, ...]:
        out = []
        for f in fields:
            tp = self.type_of(f, context)
            default: str | None = None
            if f.default is not None:
                default = self.default(f, tp, context, mod)
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
            if msg.published:
                keywords.append("published=True")
            # pii and was act on the data, so they use the model's (wire) names
            pii = [f.name for f in msg.fields if f.pii]
            if pii:
                keywords.append(f"pii=({', '.join(py_str(p) for p in pii)},)")
            renames = was_dict(msg.fields)
            if renames:
                keywords.append(f"was={renames}")
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
        return ClassVM(
            self.plan.of(msg).cls.name,
            py_description(msg.description),
            fields,
            f"({base}, {', '.join(keywords)})",
        )

    def module_vm(
        self,
        context: Context,
        owner: Aggregate | External,
        mod: Module,
        commands: tuple[ClassVM, ...],
        events: tuple[ClassVM, ...],
    ) -> dict[str, Any]:
        """The fields of a :class:`ModuleVM`, for an aggregate's or a system's record."""
        qualified = f"{context.name}.{owner.name}"
        doc = f"{qualified}: {owner.description}" if owner.description else qualified
        symbols = self.plan.of(owner)
        return {
            "qualified": py_str(qualified),
            "base": symbols.base.name,
            "docstring": py_docstring(doc),
            "user_class": symbols.user.name,
            "user_module": symbols.user.module,
            "module": mod.dotted,
            "imports": (),
            "commands": commands,
            "events": events,
            "event_tuple": py_tuple(self.plan.of(e).cls.name for e in owner.events),
        }

    def command_args(
        self,
        then: Then,
        target: Resolved,
        context: Context,
        env: t.Env,
        c: Compiler,
        mod: Module,
    ) -> list[tuple[str, str]]:
        """The Python keyword arguments of the command a policy's or a process's `then`
        line issues (`target`, resolved), each field from `source`; a creating command's
        uuid id left out (its class makes a fresh one)."""
        cmd = target.element
        assert isinstance(cmd, Command)
        owner = target.owner
        fields = list(cmd.fields)
        if isinstance(owner, Aggregate) and not any(f.name == owner.id_field.name for f in fields):
            fields.insert(0, owner.id_field)
        assigned = {a.target: a for a in then.assignments}
        cmd_context = target.context or context
        args = []
        for f in fields:
            tp = self.type_of(f, cmd_context)
            value = self.source(f, tp, assigned.get(f.name), env, c, cmd_context, mod)
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
        return args

    def source(
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
            return self.default(f, tp, context, mod)
        if isinstance(tp, t.OptionalType):
            return "None"
        return None

    def default(self, f: Field, tp: t.Type, context: Context | None, mod: Module) -> str:
        """A field's declared default, compiled (it sees only constants: enum members)."""
        assert f.default is not None
        c = self.compiler(self.constant_env(context), mod)
        value = c.compile(f.default, tp)
        self.finish(c, mod)
        return value

    def updates(
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
                expr = a.value
                if a.op != "=":
                    current = Name((qualifier, f.name), a.loc)
                    expr = Binary(a.op[0], current, a.value, a.loc)
                out.append((field_name(f.name), c.compile(expr, tp)))
            elif f.name in message and f.name not in assigned:
                out.append((field_name(f.name), c.compile(Name((f.name,), f.loc), tp)))
        for a in assignments:
            if a.target not in by_name:
                raise CompileError(f"{a.loc}: '{a.target}' is not a field it can assign (E403)")
        return tuple(out)

    def user_file(self, element: object, doc: str, example: tuple[str, ...]) -> File:
        """The user's file subclassing an element's base: written once, never overwritten."""
        symbols = self.plan.of(element)
        user = symbols.user
        mod = Module(user.module, self.package)
        mod.define(user.name, id(element))
        base_name = mod.use(symbols.base)
        return file(
            module_path(user.module),
            Template.USER_CLASS,
            vm=UserClassVM(
                tuple(mod.import_lines()),
                user.name,
                base_name,
                py_docstring(doc),
                example,
            ),
        )


def _qualified(context: Context, owner: Aggregate | External, name: str) -> str:
    if isinstance(owner, External):
        return f"{context.name}.{owner.name}.{name}"
    return f"{context.name}.{name}"


def _has_unknown(tp: t.Type) -> bool:
    if tp is t.UNKNOWN:
        return True
    if isinstance(tp, t.OptionalType):
        return _has_unknown(tp.inner)
    if isinstance(tp, t.ListType):
        return _has_unknown(tp.element)
    return False


def envelope_names(
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


_VM = TypeVar("_VM", AggregateVM, ExternalVM)


def with_imports(vm: _VM, mod: Module) -> _VM:
    """``vm`` with its module's import lines, known once everything in it is compiled."""
    return replace(vm, imports=tuple(mod.import_lines()))


class Builder:
    """A builder of one kind of output, made of the shared parts."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.plan = parts.plan
