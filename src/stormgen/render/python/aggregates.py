"""The module of an aggregate: its commands, events, state and generated base class.

Guards compile as the model writes them, emits fill each event field from the
sourcing order of docs/language.md, ``apply`` updates likewise.
"""

from __future__ import annotations

import builtins
from dataclasses import replace

from stormgen.model import typecheck as tc
from stormgen.model import types as t
from stormgen.model.nodes import Aggregate, Command, Context, Emit, Event, Let, Require
from stormgen.model.scope import EVENT_KINDS
from stormgen.render.python.expressions import CompileError, Compiler
from stormgen.render.python.files import Built, Template, file, module_path
from stormgen.render.python.literals import py_description, py_str, py_tuple
from stormgen.render.python.modules import Module
from stormgen.render.python.names import field_name, snake_case
from stormgen.render.python.parts import RUNTIME, Builder, override, with_imports
from stormgen.render.python.viewmodels import (
    AggregateVM,
    Call,
    ClassVM,
    EmitVM,
    GuardVM,
    HandlerVM,
    UpdateVM,
)


class AggregateBuilder(Builder):
    """Builds the module of each aggregate."""

    def build(self, context: Context, agg: Aggregate) -> Built[AggregateVM]:
        """The module of an aggregate (its messages, state and base class) and its user file."""
        base_sym = self.plan.of(agg).base
        mod = self.plan.module(base_sym.module)
        commands = tuple(self.parts.message_class(c, agg, context, mod) for c in agg.commands)
        events = tuple(self.parts.message_class(e, agg, context, mod) for e in agg.events)
        mod.std("dataclasses", "dataclass")
        state_fields = []
        for fvm in self.parts.fields(agg.state, context, mod):
            if fvm.default is None:
                # No default and no `?`: UNSET until an event sets it; the runtime's UNSET
                # raises on any use, so reading it early is an error (docs/language.md).
                fvm = replace(fvm, default=mod.std(RUNTIME, "UNSET"))
            state_fields.append(fvm)
        state_name = self.plan.of(agg).state.name
        state = ClassVM(state_name, "", tuple(state_fields))
        self.parts.read.clear()
        handlers = tuple(self.handler(context, agg, c, mod) for c in agg.commands)
        lookups = self.parts.lookups(context, mod)
        applies = tuple(self.apply(context, agg, e, mod) for e in agg.events)
        id_type = self.parts.annotation(self.parts.type_of(agg.id_field, context), mod)
        mod.std(RUNTIME, "Aggregate")
        if handlers:
            mod.std(RUNTIME, "Event")
            mod.std(RUNTIME, "on_command")
        if applies:
            mod.std(RUNTIME, "on_event")
        if any(a.updates for a in applies):
            mod.std("dataclasses", "replace")
        if any(h.guards for h in handlers):
            mod.std(RUNTIME, "require")
        if any(a.recorded for a in applies):
            mod.std(RUNTIME, "RecordedEvent")
        vm = AggregateVM(
            **self.parts.module_vm(context, agg, mod, commands, events),
            context=context.name,
            name=agg.name,
            state=state,
            id_field=py_str(field_name(agg.id_field.name)),
            id_type=id_type,
            snapshot_every=str(agg.snapshot_every) if agg.snapshot_every else "None",
            handlers=handlers,
            applies=applies,
            command_tuple=py_tuple(self.plan.of(c).cls.name for c in agg.commands),
            lookups=lookups,
        )
        vm = with_imports(vm, mod)
        user_file = self.parts.user_file(
            agg,
            f"The {agg.name} aggregate: override any method of {base_sym.name} here.",
            _aggregate_example(vm),
        )
        return Built(vm, (file(module_path(mod.dotted), Template.AGGREGATE, agg=vm), user_file))

    def handler(self, context: Context, agg: Aggregate, cmd: Command, mod: Module) -> HandlerVM:
        guards = []
        first = t.command_env(cmd, self.parts.scope, lines=False)
        namer = self.parts.compiler(first, mod, message="command", state="state")
        names = {let.name: _let_local(namer.local(let.name)) for let in cmd.lets}
        lets = _Lets(cmd)
        target = {"message": "command", "state": "state", "lets": names}
        for line, seen, _ in tc.command_lines(cmd, first):
            if isinstance(line, Let):  # compiled once, in what its own line sees
                lc = self.parts.compiler(seen, mod, **target)
                lets.code[line.name] = (lc.compile(line.value), frozenset(lc.used_lets))
                self.parts.finish(lc, mod)
            elif isinstance(line, Require):  # what this guard sees: the lines before it
                gc = self.parts.compiler(seen, mod, **target)
                condition = gc.compile(line.condition, t.BOOL)
                self.parts.finish(gc, mod)
                before = lets.assign(gc.used_lets, names)
                guards.append(GuardVM(condition, py_str(line.message), before))
        env = t.command_env(cmd, self.parts.scope)
        c = self.parts.compiler(env, mod, **target)
        emits = tuple(self.emit(context, agg, cmd, e, env, c, mod) for e in cmd.emits)
        self.parts.finish(c, mod)
        method = snake_case(cmd.name)
        return HandlerVM(
            self.plan.of(cmd).cls.name,
            f"handle_{method}",
            f"check_{method}",
            f"emit_{method}",
            py_description(cmd.description),
            tuple(guards),
            emits,
            _Lets(cmd, lets.code).assign(c.used_lets, names),
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
        found = self.parts.scope.resolve(context, emit.event.name, EVENT_KINDS)
        if found is None or not isinstance(found.element, Event):
            raise CompileError(f"{emit.event.loc}: unknown event '{emit.event.name}'")
        event = found.element
        assigned = {a.target: a for a in emit.assignments}
        fields = list(event.fields)
        if not any(f.name == agg.id_field.name for f in fields):
            fields.insert(0, agg.id_field)
        args = []
        for f in fields:
            tp = self.parts.type_of(f, context)
            value = self.parts.source(f, tp, assigned.get(f.name), env, c, context, mod)
            if value is None:
                raise CompileError(
                    f"{emit.loc}: event field '{f.name}' of {event.name} has no source (E301)"
                )
            args.append((field_name(f.name), value))
        condition = c.compile(emit.condition, t.BOOL) if emit.condition is not None else None
        return EmitVM(Call(self.plan.of(event).cls.name, tuple(args)), condition)

    def apply(self, context: Context, agg: Aggregate, event: Event, mod: Module) -> UpdateVM:
        env = t.apply_env(event, self.parts.scope)
        c = self.parts.event_compiler(env, mod, agg, "recorded", state="state")
        updates = self.parts.updates(
            c, env, event.apply, agg.state, context, qualifier="state", skip=frozenset()
        )
        self.parts.finish(c, mod)
        return UpdateVM(
            self.plan.of(event).cls.name,
            f"apply_{snake_case(event.name)}",
            updates,
            recorded="metadata" in c.bound,
        )


#: names a command's methods use besides the expressions' own: ``len``, ``sum``...
_TAKEN = frozenset({"self", "events", "require", *dir(builtins)})


def _let_local(py: str) -> str:
    """The Python name of a command's ``let`` (``py``: clear of the names expressions use),
    clear of the names its methods use too (and of the classes, in PascalCase)."""
    clash = py in _TAKEN or not py[:1].islower()
    return py + "_" if clash else py


class _Lets:
    """A command's ``let``s compiled, and which are assigned yet in the method written."""

    def __init__(self, cmd: Command, code: dict[str, tuple[str, frozenset[str]]] | None = None):
        self.order = [let.name for let in cmd.lets]
        #: each ``let``'s Python expression and the ``let``s it reads
        self.code: dict[str, tuple[str, frozenset[str]]] = code if code is not None else {}
        self.assigned: set[str] = set()

    def assign(self, used: set[str], names: dict[str, str]) -> tuple[tuple[str, str], ...]:
        """``(local, expression)`` for the ``let``s ``used`` reads that are not assigned
        yet, with the ``let``s they read, in the command's order."""
        needed: set[str] = set()
        todo = [n for n in used if n not in self.assigned]
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                todo.extend(n for n in self.code[name][1] if n not in self.assigned)
        self.assigned |= needed
        return tuple((names[n], self.code[n][0]) for n in self.order if n in needed)


def _aggregate_example(vm: AggregateVM) -> tuple[str, ...]:
    if not vm.handlers:
        return ()
    h = vm.handlers[0]
    return override(
        (f"from {vm.module} import {vm.state.name}, {h.command}",),
        f"def {h.check}(self, state: {vm.state.name}, command: {h.command}) -> None:",
        f"super().{h.check}(state, command)",
    )
