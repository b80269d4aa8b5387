"""The generated tests: given-when-then per aggregate, and the service on memory://.

The cases come from :mod:`.scenarios` (an interpreter of the model's expressions that
finds a state and a command for each outcome); :mod:`.values` writes them as Python.
Each test calls ``stormgen.runtime.testing.when`` on the user's class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stormgen.model import typecheck as tc
from stormgen.model.graph import command_expressions
from stormgen.model.nodes import Aggregate, Command, Context, Lookup, Require
from stormgen.render.python.files import File, Template, file
from stormgen.render.python.interpreter import Unknowable
from stormgen.render.python.literals import comment_text, py_docstring, py_str
from stormgen.render.python.modules import Module, Symbol
from stormgen.render.python.names import Namespace, snake_case
from stormgen.render.python.parts import RUNTIME, Builder, Parts
from stormgen.render.python.scenarios import Outcome, ScenarioFinder
from stormgen.render.python.values import Values, nth_id
from stormgen.render.python.viewmodels import TestModuleVM, TestVM


@dataclass(frozen=True)
class _Suite:
    """What the tests of one aggregate share while they are written."""

    context: Context
    agg: Aggregate
    mod: Module
    aggregate: str  # the local name of the user's class
    finder: ScenarioFinder
    values: Values
    initial: dict[str, Any]
    functions: Namespace


def reads_views(cmd: Command) -> list[str]:
    """The views a command's lines read (``View[key]``), in order, each once."""
    found = [
        f"{sub.view.name}[...]"
        for expr in command_expressions(cmd)
        for sub in tc.subexpressions(expr)
        if isinstance(sub, Lookup)
    ]
    return list(dict.fromkeys(found))


class TestsBuilder(Builder):
    """Builds a test module per aggregate, then ``tests/test_service.py``."""

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        self._modules = Namespace()
        self._modules.claim("test_service", "test_service")
        # (context, aggregate, creates command, its happy path, its field types)
        self._service_cases: list[tuple[Context, Aggregate, Command, Outcome, Any]] = []
        # the creating commands without a happy path the service test could use
        self._service_missing: list[str] = []

    def aggregate(self, context: Context, agg: Aggregate) -> File:
        """``tests/test_<context>_<aggregate>.py``: every command's guards and events."""
        ctx_module = self.plan.context_packages[context.name].rsplit(".", 1)[1]
        agg_module = self.plan.of(agg).base.module.rsplit(".", 1)[1]
        # Two pairs can meet in one name (`a_b` + `c`, `a` + `b_c`): names are claimed.
        name = self._modules.claim(f"test_{ctx_module}_{agg_module}", id(agg))
        mod = Module(f"tests.{name}", self.parts.package)
        mod.std(f"{RUNTIME}.testing", "when")
        aggregate = mod.use(self.plan.of(agg).user)
        finder = ScenarioFinder(self.parts.scope, context, agg)
        values = Values(self.parts, mod, context)
        initial = finder.initial_state()
        suite = _Suite(context, agg, mod, aggregate, finder, values, initial, Namespace())
        tests: list[TestVM] = []
        missing: list[str] = []
        for cmd in agg.commands:
            self._command(suite, cmd, tests, missing)
        if any(x.rejected for x in tests):
            mod.std("pytest", "raises")
            mod.std(RUNTIME, "Rejected")
        if any(x.event_types for x in tests):
            mod.std(RUNTIME, "Event")
        if any(x.state != f"{aggregate}().initial_state()" for x in tests):
            mod.std("dataclasses", "replace")
        qualified = f"{context.name}.{agg.name}"
        vm = TestModuleVM(
            py_docstring(
                f"Given-when-then tests of {qualified}: every command's guards and events."
            ),
            tuple(mod.import_lines()) if tests else (),  # no test: nothing used
            aggregate,
            tuple(tests),
            tuple(comment_text(m) for m in missing),
        )
        return file(f"tests/{name}.py", Template.AGGREGATE_TESTS, tests=vm)

    def _command(
        self, suite: _Suite, cmd: Command, tests: list[TestVM], missing: list[str]
    ) -> None:
        """The tests of one command: accepted, then rejected by each guard in turn."""
        ctypes = suite.finder.command_types(cmd)
        try:
            happy, rejections = suite.finder.scenarios(cmd)
        except Unknowable as exc:
            missing.append(f"{cmd.name}: no scenario ({exc})")
            if cmd.creates:
                self._service_missing.append(f"{suite.context.name}.{cmd.name}: no scenario")
            return
        if cmd.creates and happy is not None:
            self._service_cases.append((suite.context, suite.agg, cmd, happy, ctypes))
        elif cmd.creates:
            self._service_missing.append(f"{suite.context.name}.{cmd.name}: no accepted case")
        outcomes: list[tuple[str, Outcome | None, Require | None]] = [("accepted", happy, None)]
        outcomes += [(f"rejected_{i + 1}", r, cmd.requires[i]) for i, r in enumerate(rejections)]
        views = reads_views(cmd)
        if views and any(outcome is None for _, outcome, _ in outcomes):
            # the cases are found given views without rows (what `when` gives)
            missing.append(f"{cmd.name}: it reads {', '.join(views)}; cases assume no row")
        for suffix, outcome, guard in outcomes:
            what = "accepted" if guard is None else f"guard {py_str(guard.message)}"
            if outcome is None:
                missing.append(
                    f"{cmd.name}: found no case where it is {what}"
                    if guard is None
                    else f"{cmd.name}: found no case failing the {what}"
                )
                continue
            function = suite.functions.claim(
                f"test_{snake_case(cmd.name)}_{suffix}", (cmd.name, suffix)
            )
            tests.append(self._case(suite, cmd, ctypes, outcome, guard, function))

    def _case(
        self,
        suite: _Suite,
        cmd: Command,
        ctypes: Any,
        outcome: Outcome,
        guard: Require | None,
        function: str,
    ) -> TestVM:
        values, finder = suite.values, suite.finder
        state = values.state(outcome.state, suite.initial, finder.state_types, suite.aggregate)
        cmd_cls = suite.mod.use(self.plan.of(cmd).cls)
        command = values.build(cmd_cls, outcome.command, ctypes)
        events = event_types = after = None
        if outcome.rejected is None:
            if outcome.events is not None:
                events = values.events(outcome.events, suite.agg)
            else:
                event_types = values.event_types(cmd, suite.context)
            if outcome.after is not None:
                # imported only where a test states the state after (else unused)
                state_cls = suite.mod.use(self.plan.of(suite.agg).state)
                after = values.build(state_cls, outcome.after, finder.state_types, finder.unset)
        return TestVM(
            function,
            "" if guard is None else py_docstring(f"The guard: {guard.message}"),
            state,
            command,
            py_str(outcome.rejected) if outcome.rejected is not None else None,
            events,
            event_types,
            after,
        )

    def service(self) -> File:
        """``tests/test_service.py``: each creating command through the application.

        Always written: without a creating command to handle (a model of views and
        external systems only, or no accepted case found) it still opens every context
        on memory:// and runs the consumers."""
        mod = Module("tests.test_service", self.parts.package)
        for name in ("Application", "RetrySettings"):
            mod.std(RUNTIME, name)
        definitions = mod.use(Symbol(f"{self.parts.package}.app", "definitions"))
        cases = []
        for number, (context, agg, cmd, happy, ctypes) in enumerate(self._service_cases, 1):
            values = Values(self.parts, mod, context)
            data = dict(happy.command)
            # A distinct instance per aggregate, so that policies do not collide.
            data[agg.id_field.name] = nth_id(data[agg.id_field.name], number)
            call = values.build(mod.use(self.plan.of(cmd).cls, context.name), data, ctypes)
            versions = str(len(happy.events)) if happy.events is not None else None
            cases.append((call, versions))
        return file(
            "tests/test_service.py",
            Template.SERVICE_TESTS,
            doc=py_docstring(
                f"{self.parts.model.name} on an in-memory store: each aggregate's creating"
                " command through the application, then its policies and views."
            ),
            imports=tuple(mod.import_lines()),
            definitions=definitions,
            cases=tuple(cases),
            missing=tuple(comment_text(m) for m in self._service_missing),
        )
