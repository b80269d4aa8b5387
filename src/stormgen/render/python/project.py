"""The view-model of a generated project: every name, type and expression as Python text.

:class:`ProjectBuilder` walks the model once: :class:`.plan.Plan` gives every generated
class its module and name, then one builder per kind of output makes the files, each a
small typed record that a template only prints (:mod:`.files`): aggregates
(:mod:`.aggregates`), external systems (:mod:`.externals`), policies
(:mod:`.policies`), views (:mod:`.views`), tests (:mod:`.testfiles`) and the rest of
the project (:mod:`.projectfiles`), all made of the same :mod:`.parts`. All decisions
live there: module and class names (made unique and safe), imports, annotations,
defaults, compiled guards, emits, ``apply`` updates, policy mappings and view updates
(docs/language.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from stormgen.model.nodes import Context, Model
from stormgen.render.python.aggregates import AggregateBuilder
from stormgen.render.python.externals import ExternalBuilder
from stormgen.render.python.files import File
from stormgen.render.python.parts import Parts
from stormgen.render.python.plan import Plan
from stormgen.render.python.policies import PolicyBuilder
from stormgen.render.python.processes import ProcessBuilder
from stormgen.render.python.projectfiles import ProjectFiles
from stormgen.render.python.scenariotests import ScenarioTestsBuilder
from stormgen.render.python.testfiles import TestsBuilder
from stormgen.render.python.viewmodels import ContextVM
from stormgen.render.python.views import ViewBuilder


@dataclass(frozen=True)
class Output:
    """Every file of the project, each with its template and view-model."""

    files: tuple[File, ...]


class ProjectBuilder:
    """Compute the view-model of every file of the generated project."""

    def __init__(self, model: Model, package: str, version: str) -> None:
        self.model = model
        self.package = package
        self.version = version
        self.plan = Plan(model, package)
        parts = Parts(model, self.plan)
        self.aggregates = AggregateBuilder(parts)
        self.externals = ExternalBuilder(parts)
        self.policies = PolicyBuilder(parts)
        self.views = ViewBuilder(parts)
        self.processes = ProcessBuilder(parts)
        self.tests = TestsBuilder(parts)
        self.scenario_tests = ScenarioTestsBuilder(parts)
        self.project = ProjectFiles(parts)

    def build(self) -> Output:
        files: list[File] = []
        if self.model.values or self.model.enums:
            shared = f"{self.package}.shared"
            files.append(self.project.types(shared, None, self.model.values, self.model.enums))
        contexts = tuple(self.context(c, files) for c in self.plan.contexts)
        files.append(self.tests.service())
        scenarios = self.scenario_tests.build()
        if scenarios is not None:
            files.append(scenarios)
        files.extend(self.project.project(contexts))
        return Output(tuple(files))

    def context(self, context: Context, files: list[File]) -> ContextVM:
        """Add the files of one context to ``files``; return its view-model."""
        base = self.plan.context_packages[context.name]
        if context.values or context.enums:
            files.append(
                self.project.types(f"{base}.types", context, context.values, context.enums)
            )
        aggregates = []
        for agg in context.aggregates:
            built = self.aggregates.build(context, agg)
            files.extend(built.files)
            files.append(self.tests.aggregate(context, agg))
            aggregates.append(built.vm)
        externals = []
        for ext in context.externals:
            made = self.externals.build(context, ext)
            files.extend(made.files)
            externals.append(made.vm)
        policies = self.policies.build(context)
        views = self.views.build(context)
        processes = []
        for process in context.processes:
            built_process = self.processes.build(context, process)
            files.extend(built_process.files)
            processes.append(built_process.vm)
        files.extend((*policies.files, *views.files, *self.project.context(context)))
        return ContextVM(
            context.name,
            tuple(aggregates),
            tuple(externals),
            policies.vm,
            views.vm,
            tuple(processes),
        )
