"""The module of a process: its state class and its base class, one handler method each.

A handler's body follows the language (docs/language.md, "Processes"): the handler's
`if` sees the event and the state before it, and when false the handler skips
(`step.skip()`: it decides nothing, and a `starts` handler starts no instance); the
assignments all see that state too and are made at once (`step.assign`); the `then`,
`timer`, `cancel` and `end` lines, in the model's order, see the state after them. A
`then` fills its command from its assignments, then same-named fields of the event,
then of the state (the key included), then defaults. The state class holds the key
and every state field; a field without a default is none until set (read through
`_value`).
"""

from __future__ import annotations

import re
from dataclasses import replace

from stormgen.model import typecheck as tc
from stormgen.model import types as t
from stormgen.model.nodes import (
    Aggregate,
    Binary,
    CancelTimer,
    Command,
    Context,
    EndLine,
    Event,
    Expr,
    Name,
    Process,
    ProcessOn,
    SetTimer,
    Then,
    Unary,
)
from stormgen.model.scope import COMMAND_KINDS, EVENT_KINDS
from stormgen.render.python.expressions import CompileError, Compiler
from stormgen.render.python.files import Built, File, Template, file, module_path
from stormgen.render.python.literals import py_description, py_docstring, py_str, py_tuple
from stormgen.render.python.modules import Module
from stormgen.render.python.names import Namespace, field_name, snake_case
from stormgen.render.python.parts import RUNTIME, Builder, override, was_dict
from stormgen.render.python.viewmodels import ClassVM, ProcessHandlerVM, ProcessVM

_Line = Then | SetTimer | CancelTimer | EndLine
_READS_STATE = re.compile(r"\bstate\.")


def _body(head: list[str], assign: list[str], rest: list[str]) -> list[str]:
    """A handler's lines, `state` bound where they read it: the state before for its
    `if` and assignments, the state after for the other lines."""
    body: list[str] = []
    if any(_READS_STATE.search(line) for line in head + assign):
        body.append("state = step.state")
    body += head + assign
    bound = bool(body) and body[0] == "state = step.state"
    if any(_READS_STATE.search(line) for line in rest) and (assign or not bound):
        body.append("state = step.state")
    return body + rest or ["pass"]


class ProcessBuilder(Builder):
    """Builds one module per process, and the user's file subclassing it."""

    def build(self, context: Context, process: Process) -> Built[ProcessVM]:
        symbols = self.plan.of(process)
        mod = self.plan.module(symbols.base.module)
        self.parts.read.clear()
        mod.std("dataclasses", "dataclass")
        for name in ("Process", "Step"):
            mod.std(RUNTIME, name)
        self.unset = frozenset(
            f.name for f in process.fields if f.default is None and not f.type.optional
        )
        self.required = mod.define("_value", "_value") if self.unset else ""
        self.compilers: list[Compiler] = []
        self.owner: Aggregate | None = None
        self.with_event = False
        vm = self.process(context, process, mod)
        if any("required" in c.uses for c in self.compilers):
            mod.std("typing", "TypeVar")
            vm = replace(vm, value_reader=self.required, typevar=mod.define("_T", "_T"))
        vm = replace(vm, imports=tuple(mod.import_lines()))
        doc = py_docstring(f"The process {context.name}.{process.name}.")
        module = file(module_path(mod.dotted), Template.PROCESS, doc=doc, p=vm)
        return Built(vm, (module, self._user_file(process, vm)))

    def _user_file(self, process: Process, vm: ProcessVM) -> File:
        example = override(
            (
                "from stormgen.runtime import Event, Envelope, Step",
                f"from {self.plan.of(process).state.module} import {vm.state.name}",
            ),
            f"def handle(self, step: Step[{vm.state.name}], event: Event, envelope: Envelope)"
            " -> None:",
            "super().handle(step, event, envelope)",
        )
        doc = f"The process {process.name}: override how it handles an event here."
        return self.parts.user_file(process, doc, example)

    # ------------------------------------------------------------------ the class

    def process(self, context: Context, process: Process, mod: Module) -> ProcessVM:
        scope = self.parts.scope
        key_vm = self.parts.fields((process.key,), context, mod)[0]
        fields = []
        for vm in self.parts.fields(process.fields, context, mod):
            if vm.default is None:
                vm = replace(vm, annotation=f"{vm.annotation} | None", default="None")
            fields.append(vm)
        state = ClassVM(self.plan.of(process).state.name, "", (key_vm, *fields))
        events: list[str] = []
        starts: list[str] = []
        handlers = []
        methods = Namespace()
        personal: set[str] = set()  # names of pii fields of the events it consumes
        for handler in process.handlers:
            event: Event | None = None
            owner: Aggregate | None = None
            cls = ""
            if handler.event is not None:
                found = scope.resolve(context, handler.event.name, EVENT_KINDS)
                if found is None or not isinstance(found.element, Event):
                    raise CompileError(f"{handler.event.loc}: unknown event")
                event = found.element
                personal.update(f.name for f in event.fields if f.pii)
                owner = found.owner if isinstance(found.owner, Aggregate) else None
                cls = mod.use(self.plan.of(event).cls, found.context.name if found.context else "")
                if cls not in events:
                    events.append(cls)
                if handler.starts and cls not in starts:
                    starts.append(cls)
            handlers.append(
                self.handler(context, process, handler, event, owner, cls, mod, methods)
            )
        return ProcessVM(
            qualified=py_str(f"{context.name}.{process.name}"),
            base=self.plan.of(process).base.name,
            docstring=py_description(process.description),
            user_class=self.plan.of(process).user.name,
            user_module=self.plan.of(process).user.module,
            state=state,
            key=py_str(field_name(process.key.name)),
            key_type=self.parts.annotation(self.parts.type_of(process.key, context), mod),
            events=py_tuple(events),
            starts=py_tuple(starts),
            timers=py_tuple(py_str(name) for name in process.timer_names),
            handlers=tuple(handlers),
            lookups=self.parts.lookups(context, mod),
            pii=self._pii(process, personal),
            was=was_dict(process.fields),
        )

    @staticmethod
    def _pii(process: Process, personal: set[str]) -> str:
        """The state fields stored sealed: those marked `pii`, and those named like a pii
        field of an event it consumes (a starting event's is copied into the state)."""
        names = sorted(field_name(f.name) for f in process.fields if f.pii or f.name in personal)
        return "frozenset({" + ", ".join(py_str(n) for n in names) + "})" if names else ""

    def handler(
        self,
        context: Context,
        process: Process,
        handler: ProcessOn,
        event: Event | None,
        owner: Aggregate | None,
        cls: str,
        mod: Module,
        methods: Namespace,
    ) -> ProcessHandlerVM:
        scope = self.parts.scope
        state_type = self.plan.of(process).state.name
        env = t.process_env(process, event, scope)
        key = None
        key_method = ""
        if handler.by is not None and event is not None:
            self.owner, self.with_event = owner, True
            kc = self._compiler(t.process_env(process, event, scope, state=False), mod)
            key = kc.compile(handler.by, self.parts.type_of(process.key, context))
            self.parts.finish(kc, mod)
            mod.std(RUNTIME, "key_for")
            mod.std(RUNTIME, "Envelope")
            key_method = methods.claim(f"key_of_{snake_case(cls)}", ("key", id(handler)))
        self.owner, self.with_event = owner, event is not None
        c = self._compiler(env, mod)
        head: list[str] = []
        # a false `if` decides nothing (a `starts` handler starts no instance)
        skip = ["    step.skip()", "    return"]
        if isinstance(handler.condition, Unary) and handler.condition.op == "not":
            # `on ... if not C`: skip when C holds
            head += [f"if {c.compile(handler.condition.operand, t.BOOL)}:", *skip]
        elif handler.condition is not None:
            head += [f"if not ({c.compile(handler.condition, t.BOOL)}):", *skip]
        after = tc.narrowed_by(handler.condition, env)
        lets: dict[str, tuple[t.Type, Expr]] = {}
        if handler.lets:
            lets = dict(tc.let_types(handler.lets, after)[0])
        assign: list[str] = []
        if handler.assignments:
            state = t.process_state(process, scope)
            changes = []
            # the assignments see what the `if` proved (`X[k] != none`), as the checker does
            narrowed = c if after is env else self._compiler(after, mod)
            for j, a in enumerate(handler.assignments):
                expr = a.value
                if a.op != "=":
                    expr = Binary(a.op[0], Name(("state", a.target), a.loc), a.value, a.loc)
                seen = {n.name: lets[n.name] for n in handler.lets if n.after <= j}
                ac = self._compiler(replace(after, lets=seen), mod) if seen else narrowed
                changes.append(f"{field_name(a.target)}={ac.compile(expr, state[a.target])}")
                self.parts.finish(ac, mod)
            assign.append(f"step.assign({', '.join(changes)})")
        lines_env = replace(after, lets=lets) if lets else after
        lc = self._compiler(lines_env, mod)
        lines: list[_Line] = [*handler.thens, *handler.timers, *handler.cancels, *handler.ends]
        lines.sort(key=lambda line: (line.loc.line, line.loc.column))
        rest: list[str] = []
        for line in lines:
            rest += self.line(context, line, lines_env, lc, mod)
        self.parts.finish(c, mod)
        self.parts.finish(lc, mod)
        body = _body(head, assign, rest)
        if event is not None:
            mod.std(RUNTIME, "Envelope")
            mod.std(RUNTIME, "on_event")
            method = methods.claim(f"on_{snake_case(event.name)}", id(handler))
            parameters = f"step: Step[{state_type}], event: {cls}, envelope: Envelope"
            decorator = f"on_event({cls})"
        else:
            assert handler.timer is not None
            mod.std(RUNTIME, "on_timer")
            method = methods.claim(f"on_timer_{snake_case(handler.timer)}", id(handler))
            parameters = f"step: Step[{state_type}]"
            decorator = f"on_timer({py_str(handler.timer)})"
        return ProcessHandlerVM(decorator, method, parameters, tuple(body), key, key_method, cls)

    def _compiler(self, env: t.Env, mod: Module) -> Compiler:
        """A compiler of the handler being built (reading its event, if it has one)."""
        unset, required = self.unset, self.required
        c = (
            self.parts.event_compiler(
                env, mod, self.owner, state="state", unset=unset, required=required
            )
            if self.with_event
            else self.parts.compiler(env, mod, state="state", unset=unset, required=required)
        )
        self.compilers.append(c)
        return c

    # ------------------------------------------------------------------ body lines

    def line(
        self, context: Context, line: _Line, env: t.Env, c: Compiler, mod: Module
    ) -> list[str]:
        if isinstance(line, SetTimer):
            if line.after is not None:
                return [
                    f"step.timer({py_str(line.name)}, after={c.compile(line.after, t.DURATION)})"
                ]
            assert line.at is not None
            return [f"step.timer({py_str(line.name)}, at={c.compile(line.at, t.DATETIME)})"]
        if isinstance(line, CancelTimer):
            return [f"step.cancel({py_str(line.name)})"]
        if isinstance(line, EndLine):
            if line.condition is None:
                return ["step.end()"]
            return [f"if {c.compile(line.condition, t.BOOL)}:", "    step.end()"]
        return self.then(context, line, env, c, mod)

    def then(self, context: Context, then: Then, env: t.Env, c: Compiler, mod: Module) -> list[str]:
        out: list[str] = []
        indent = ""
        if then.fan is not None:
            env = tc.fan_out(then.fan, env)[0]
            outer = c
            c = self._compiler(env, mod)
            out.append(f"for {c.local(then.fan.var)} in {outer.compile(then.fan.source)}:")
            indent = "    "
            if then.fan.condition is not None:
                out.append(f"    if {c.compile(then.fan.condition, t.BOOL)}:")
                indent = "        "
        if then.condition is not None:
            out.append(f"{indent}if {c.compile(then.condition, t.BOOL)}:")
            indent += "    "
        target = self.parts.scope.resolve(context, then.command.name, COMMAND_KINDS)
        if target is None or not isinstance(target.element, Command):
            raise CompileError(f"{then.command.loc}: unknown command '{then.command.name}'")
        cmd = target.element
        args = [
            f"{name}={value}"
            for name, value in self.parts.command_args(then, target, context, env, c, mod)
        ]
        callee = mod.use(self.plan.of(cmd).cls)
        out.append(f"{indent}step.issue({callee}({', '.join(args)}))")
        self.parts.finish(c, mod)
        return out
