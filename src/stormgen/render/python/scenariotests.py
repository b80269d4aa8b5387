"""``tests/test_scenarios.py``: the model's scenarios as tests of the generated service.

Each scenario becomes one test that runs the compiled code in memory through
:class:`stormgen.runtime.scenarios.ScenarioRun` (the aggregates' ``decide`` and
``evolve``, the views, the policies, the processes and their timers on the scenario's
clock): the ``given`` events, the ``when`` message or ``run.passes(...)``, then one
``assert`` per ``then`` field, as :mod:`.model_run` compares them on the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from stormgen.model import types as t
from stormgen.model.nodes import Context, Passing, RowExpectation, Scenario, ScenarioMessage
from stormgen.model.scenarios import Message, all_scenarios, resolve_view
from stormgen.render.python.files import File, Template, file
from stormgen.render.python.interpreter import Unknowable
from stormgen.render.python.literals import py_docstring, py_str, py_timedelta
from stormgen.render.python.model_run import Runner
from stormgen.render.python.modules import Module, Symbol
from stormgen.render.python.names import Namespace, field_name, snake_case
from stormgen.render.python.parts import RUNTIME, Builder, Parts
from stormgen.render.python.values import Values

_SCENARIOS = f"{RUNTIME}.scenarios"


@dataclass(frozen=True)
class ScenarioTestVM:
    """One scenario's test: its function, docstring and body lines."""

    function: str
    docstring: str
    lines: tuple[str, ...]


class _Values(Values):
    """Values as the scenario wrote them: an ``id("o1")`` uuid is ``stable_id("o1")``."""

    def __init__(self, parts: Parts, mod: Module, context: Context, names: dict[Any, str]) -> None:
        super().__init__(parts, mod, context)
        self.names = names

    def value(self, value: Any, tp: t.Type) -> str:
        if isinstance(value, UUID) and value in self.names:
            return f"{self.mod.std(_SCENARIOS, 'stable_id')}({py_str(self.names[value])})"
        return super().value(value, tp)


class ScenarioTestsBuilder(Builder):
    """Builds ``tests/test_scenarios.py`` when the model has scenarios."""

    def build(self) -> File | None:
        scenarios = list(all_scenarios(self.parts.model))
        if not scenarios:
            return None
        mod = Module("tests.test_scenarios", self.parts.package)
        mod.std(_SCENARIOS, "ScenarioRun")
        definitions = mod.use(Symbol(f"{self.parts.package}.app", "definitions"))
        runner = Runner(self.parts.model, self.parts.scope)
        functions = Namespace()
        tests = []
        for context, scenario in scenarios:
            slug = re.sub(r"[^a-z0-9]+", "_", scenario.name.lower()).strip("_") or "scenario"
            function = functions.claim(f"test_{slug}", id(scenario))
            body = _Body(self, mod, runner, context)
            try:
                lines = body.lines(scenario, definitions)
            except Unknowable:  # `stormgen test` reports why, in the same words
                fail = mod.std("pytest", "fail")
                error = runner.run(context, scenario).error
                lines = [f"{fail}({py_str(error or 'the model cannot decide it')})"]
            where = f"{Path(scenario.loc.file).name}:{scenario.loc.line}"
            title = f"{context.name}: " if context is not None else ""
            doc = py_docstring(f"{title}{scenario.name} ({where})")
            tests.append(ScenarioTestVM(function, doc, tuple(lines)))
        return file(
            "tests/test_scenarios.py",
            Template.SCENARIO_TESTS,
            doc=py_docstring(
                f"The scenarios of {self.parts.model.name}, each run on the compiled service"
                " in memory: its aggregates, policies, processes and views."
            ),
            imports=tuple(mod.import_lines()),
            tests=tuple(tests),
        )


class _Body:
    """The lines of one scenario's test."""

    def __init__(
        self, builder: ScenarioTestsBuilder, mod: Module, runner: Runner, context: Context | None
    ) -> None:
        self.builder = builder
        self.parts = builder.parts
        self.mod = mod
        self.runner = runner
        self.context = context
        self.names = Namespace()

    def values(self, msg: Message) -> _Values:
        context = msg.resolved.context
        assert context is not None
        return _Values(self.parts, self.mod, context, self.runner.names)

    def message(self, node: ScenarioMessage) -> tuple[Message, str]:
        """The message's class (imported) and its construction with every field."""
        msg = self.runner.resolve(self.context, node)
        data = self.runner.data(self.context, msg)
        cls = self.cls(msg)
        return msg, self.values(msg).build(cls, data, self.runner.ev.fields(msg))

    def cls(self, msg: Message) -> str:
        context = msg.resolved.context
        return self.mod.use(self.parts.plan.of(msg.element).cls, context.name if context else "")

    def expected(self, msg: Message) -> list[tuple[str, str]]:
        """The fields the ``then`` names: (attribute, Python value)."""
        types = self.runner.ev.fields(msg)
        data = self.runner.values(self.context, msg.node.assignments, types)
        values = self.values(msg)
        return [
            (field_name(a.target), values.value(data[a.target], types[a.target]))
            for a in msg.node.assignments
        ]

    def lines(self, scenario: Scenario, definitions: str) -> list[str]:
        out = self.body(scenario, definitions)
        if not any("outcome." in line for line in out):  # only rows are compared
            out = [line.removeprefix("outcome = ") for line in out]
        return out

    def body(self, scenario: Scenario, definitions: str) -> list[str]:
        out = [f"run = ScenarioRun(**{definitions}())"]
        if scenario.given:
            given = [self.message(g)[1] for g in scenario.given]
            out.append(f"run.given({', '.join(given)})")
        if isinstance(scenario.when, Passing):
            duration = self.runner.duration(self.context, scenario.when)
            literal = py_timedelta(duration, self.mod.std("datetime", "timedelta"))
            out.append(f"outcome = run.passes({literal})")
        else:
            _, when = self.message(scenario.when)
            out.append(f"outcome = run.when({when})")
        if scenario.rejected:
            if scenario.message is not None:
                out.append(f"assert outcome.rejected == {py_str(scenario.message)}")
            else:
                out.append("assert outcome.rejected is not None")
            return out
        if not isinstance(scenario.when, Passing):  # time passing is never rejected
            out.append("assert outcome.rejected is None")
        if not scenario.then:  # nothing happens
            return [*out, "assert outcome.events == []", "assert outcome.commands == []"]
        messages = [
            self.runner.resolve(self.context, m)
            for m in scenario.then
            if isinstance(m, ScenarioMessage)
        ]
        events = [m for m in messages if m.is_event]
        commands = [m for m in messages if not m.is_event]
        if events:
            out += self.events(events)
        if commands:
            out.append(f"assert len(outcome.commands) == {len(commands)}")
            for m in commands:
                args = "".join(f", {name}={value}" for name, value in self.expected(m))
                out.append(f"assert outcome.issued({self.cls(m)}{args})")
        for item in scenario.then:
            if isinstance(item, RowExpectation):
                out += self.row(item)
        return out

    def events(self, events: list[Message]) -> list[str]:
        classes = [self.cls(m) for m in events]
        out = [f"assert [type(event) for event in outcome.events] == [{', '.join(classes)}]"]
        for number, (m, cls) in enumerate(zip(events, classes, strict=True)):
            fields = self.expected(m)
            if not fields:
                continue
            var = self.names.claim(snake_case(m.element.name), (id(m.node), "event"))
            out.append(f"{var} = outcome.events[{number}]")
            out.append(f"assert isinstance({var}, {cls})")
            out += [_assert_equal(f"{var}.{name}", value) for name, value in fields]
        return out

    def row(self, item: RowExpectation) -> list[str]:
        view = resolve_view(self.parts.scope, self.context, item)
        assert view is not None
        types = self.runner.ev.row(view)
        key_type = types[view.key.name]
        interp = self.runner.scenario_interp(self.context)
        key = interp.eval(item.key, {}, {}, key_type)
        self.runner.remember(item.key, key)
        context = self.parts.scope.context_of(view)
        assert context is not None
        values = _Values(self.parts, self.mod, context, self.runner.names)
        name = py_str(f"{context.name}.{view.name}")
        out = [f"row = run.row({name}, {values.value(key, key_type)})", "assert row is not None"]
        data = self.runner.values(self.context, item.assignments, types)
        out += [
            _assert_equal(
                f"row.{field_name(a.target)}", values.value(data[a.target], types[a.target])
            )
            for a in item.assignments
        ]
        return out


def _assert_equal(actual: str, expected: str) -> str:
    """``assert actual == expected``, with ``is`` for ``True``, ``False`` and ``None``."""
    op = "is" if expected in ("True", "False", "None") else "=="
    return f"assert {actual} {op} {expected}"
