"""The policies module of a context: one base class per policy, its `if` and `then`s.

Each ``then`` fills the command's fields from its assignments, then same-named fields
of the event, then defaults (docs/language.md); a ``creates`` command's uuid id may be
left to its default.
"""

from __future__ import annotations

from stormgen.model import typecheck as tc
from stormgen.model import types as t
from stormgen.model.nodes import Command, Context, Event, Policy
from stormgen.model.scope import COMMAND_KINDS, EVENT_KINDS
from stormgen.render.python.expressions import CompileError
from stormgen.render.python.files import Built, File, Template, file, module_path
from stormgen.render.python.literals import py_docstring, py_str
from stormgen.render.python.modules import Module
from stormgen.render.python.parts import RUNTIME, Builder, override
from stormgen.render.python.viewmodels import Call, PolicyVM, ThenVM


class PolicyBuilder(Builder):
    """Builds the policies module of each context."""

    def build(self, context: Context) -> Built[tuple[PolicyVM, ...]]:
        """The policies module of a context and a user file per policy."""
        if not context.policies:
            return Built((), ())
        mod = self.plan.module(f"{self.plan.context_packages[context.name]}.policies")
        for name in ("Command", "Envelope", "Policy"):
            mod.std(RUNTIME, name)

        vms = tuple(self.policy(context, p, mod) for p in context.policies)
        if not all(vm.plain for vm in vms):
            mod.std(RUNTIME, "Issued")  # each command placed by its line (and element)
        doc = py_docstring(f"The policies of the {context.name} context.")
        imports = tuple(mod.import_lines())
        module = file(
            module_path(mod.dotted), Template.POLICIES, doc=doc, imports=imports, policies=vms
        )
        return Built(vms, (module, *(self._user_file(context, p) for p in context.policies)))

    def _user_file(self, context: Context, p: Policy) -> File:
        found = self.parts.scope.resolve(context, p.when.name, EVENT_KINDS)
        assert found is not None  # policy() resolved it already
        event = self.plan.of(found.element).cls
        example = override(
            (
                "from stormgen.runtime import Command, Envelope",
                f"from {event.module} import {event.name}",
            ),
            f"def commands(self, event: {event.name}, envelope: Envelope) -> list[Command]:",
            "return super().commands(event, envelope)",
        )
        return self.parts.user_file(p, f"The policy {p.name}: override its mapping here.", example)

    def policy(self, context: Context, p: Policy, mod: Module) -> PolicyVM:
        self.parts.read.clear()
        found = self.parts.scope.resolve(context, p.when.name, EVENT_KINDS)
        if found is None or not isinstance(found.element, Event):
            raise CompileError(f"{p.when.loc}: unknown event '{p.when.name}'")
        event = found.element
        event_class = mod.use(self.plan.of(event).cls, found.context.name if found.context else "")
        env = t.policy_env(event, context, self.parts.scope)
        c = self.parts.event_compiler(env, mod, found.owner)
        condition = c.compile(p.condition, t.BOOL) if p.condition is not None else None
        self.parts.finish(c, mod)
        # The `then` lines see what the condition proved (`x != none and ...`).
        when_env = tc.narrowed_by(p.condition, env)
        when_c = self.parts.event_compiler(when_env, mod, found.owner)
        calls = []
        lines = []
        for then in p.thens:
            env, c = when_env, when_c
            line_if = c.compile(then.condition, t.BOOL) if then.condition is not None else None
            loop = keep = None
            index = "index"
            if then.fan is not None:  # then C {...} for x in L [if C]: x is seen below
                env = tc.fan_out(then.fan, env)[0]
                c = self.parts.event_compiler(env, mod, found.owner)
                var = c.local(then.fan.var)
                index = "position" if var == "index" else "index"
                loop = f"{index}, {var} in enumerate({c.compile(then.fan.source)})"
                if then.fan.condition is not None:
                    keep = c.compile(then.fan.condition, t.BOOL)
            target = self.parts.scope.resolve(context, then.command.name, COMMAND_KINDS)
            if target is None or not isinstance(target.element, Command):
                raise CompileError(f"{then.command.loc}: unknown command '{then.command.name}'")
            cmd = target.element
            args = self.parts.command_args(then, target, context, env, c, mod)
            calls.append(Call(mod.use(self.plan.of(cmd).cls), tuple(args)))
            lines.append(ThenVM(calls[-1], line_if, loop, keep, index))
            if c is not when_c:
                self.parts.finish(c, mod)
        self.parts.finish(when_c, mod)
        doc = (
            p.description
            or f"Whenever {p.when.name} then {', '.join(x.command.name for x in p.thens)}."
        )
        symbols = self.plan.of(p)
        return PolicyVM(
            qualified=py_str(f"{context.name}.{p.name}"),
            base=symbols.base.name,
            user_class=symbols.user.name,
            user_module=symbols.user.module,
            docstring=py_docstring(doc),
            event=event_class,
            condition=condition,
            commands=tuple(calls),
            lines=tuple(lines),
            lookups=self.parts.lookups(context, mod),
        )
