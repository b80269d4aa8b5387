"""The module of an external system: its messages, ``SYSTEM``, ``EVENTS`` and its fake.

The fake answers each command with the system's first event, or with the one its
``answer`` names (``stormgen run --fake SYSTEM=EVENT``): its fields copied from the
command where the types fit, else the field's default or a placeholder.
"""

from __future__ import annotations

from stormgen.model import types as t
from stormgen.model.nodes import Command, Context, Event, External
from stormgen.render.python.expressions import CompileError
from stormgen.render.python.files import Built, Template, file, module_path
from stormgen.render.python.modules import Module
from stormgen.render.python.names import Namespace, field_name, member_name, snake_case
from stormgen.render.python.parts import RUNTIME, Builder, Parts, override, with_imports
from stormgen.render.python.viewmodels import Call, ExternalVM


class ExternalBuilder(Builder):
    """Builds the module of each external system."""

    def build(self, context: Context, ext: External) -> Built[ExternalVM]:
        """The module of an external system (its messages and fake) and its user file."""
        port = self.plan.of(ext).system
        mod = self.plan.module(port.module)
        mod.std("dataclasses", "dataclass")
        commands = tuple(self.parts.message_class(c, ext, context, mod) for c in ext.commands)
        events = tuple(self.parts.message_class(e, ext, context, mod) for e in ext.events)
        mod.std(RUNTIME, "Event")
        if ext.events:
            mod.std(RUNTIME, "FakePort")
            if ext.commands:
                mod.std(RUNTIME, "on_command")
        else:
            mod.std(RUNTIME, "Command")
            mod.std("collections.abc", "Sequence")
            mod.std("uuid", "UUID")
        answers = []
        # the methods answering each command, apart from what FakePort defines
        methods = Namespace()
        for taken in ("send", "sent", "answer"):
            methods.claim(taken, taken)
        for cmd in ext.commands:
            if ext.events:
                method = methods.claim(f"answer_{snake_case(cmd.name)}", id(cmd))
                first, *others = (self.answer(context, cmd, e, mod) for e in ext.events)
                alternatives = tuple((other.callee, other) for other in others)
                answers.append((method, self.plan.of(cmd).cls.name, first, alternatives))
        vm = ExternalVM(
            **self.parts.module_vm(context, ext, mod, commands, events),
            system=port.name,
            events_name=self.plan.of(ext).events.name,
            answers=tuple(answers),
        )
        vm = with_imports(vm, mod)
        user_file = self.parts.user_file(
            ext,
            f"The adapter to {ext.name}: replace the fake with real calls here.",
            override(
                (
                    "from collections.abc import Sequence",
                    "from uuid import UUID",
                    "from stormgen.runtime import Command, Event",
                ),
                "def send(self, command: Command, command_id: UUID) -> Sequence[Event]:",
                "# call the real system here; raising makes a failure event and a retry",
                "return super().send(command, command_id)",
            ),
        )
        return Built(vm, (file(module_path(mod.dotted), Template.EXTERNAL, ext=vm), user_file))

    def answer(self, context: Context, cmd: Command, event: Event, mod: Module) -> Call:
        """The fake's answer to ``cmd`` with ``event``, filled from the command."""
        args = []
        # A command field fills the answer's field of the same name when its type fits.
        cmd_types = {f.name: self.parts.type_of(f, context) for f in cmd.fields}
        for f in event.fields:
            tp = self.parts.type_of(f, context)
            source = cmd_types.get(f.name)
            if source is not None and _fits(source, tp):
                value = f"command.{field_name(f.name)}"
                if source != tp:
                    value = _convert(value, source, tp, mod)
            elif f.default is not None:
                value = self.parts.default(f, tp, context, mod)
            elif isinstance(tp, t.OptionalType):
                value = "None"
            else:
                value = _zero(tp, mod, self.parts)
            args.append((field_name(f.name), value))
        return Call(self.plan.of(event).cls.name, tuple(args))


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


def _zero(tp: t.Type, mod: Module, parts: Parts) -> str:
    """A placeholder value for a fake adapter's answer field the command cannot fill."""
    if isinstance(tp, t.ListType):
        return "()"
    if isinstance(tp, t.EnumType):
        local = mod.use(parts.plan.of(tp.node).cls, tp.context_name or "")
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
        if tp.name == "duration":
            return f"{mod.std('datetime', 'timedelta')}(0)"
    raise CompileError(f"the fake adapter cannot invent a value of type '{tp}'")
