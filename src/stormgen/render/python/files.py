"""The files of a generated project: where each goes and the template that prints it.

Every template of the python target is named once, in :class:`Template`; a builder
returns :class:`File` records (the output path, the template, its view-model) that
:func:`stormgen.render.python.render_project` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

_CONTEXT = "src/__package__/__context__/"


class Template(StrEnum):
    """A template, by its path under ``templates/python/`` (laid out like the output)."""

    PACKAGE_INIT = "src/__package__/__init__.py.jinja"
    PY_TYPED = "src/__package__/py.typed.jinja"
    APP = "src/__package__/app.py.jinja"
    MAIN = "src/__package__/__main__.py.jinja"
    TYPES = _CONTEXT + "types.py.jinja"
    CONTEXT_INIT = _CONTEXT + "__init__.py.jinja"
    AGGREGATE = _CONTEXT + "aggregate.py.jinja"
    EXTERNAL = _CONTEXT + "external.py.jinja"
    POLICIES = _CONTEXT + "policies.py.jinja"
    VIEWS = _CONTEXT + "views.py.jinja"
    PROCESS = _CONTEXT + "process.py.jinja"
    CUSTOM_INIT = _CONTEXT + "custom/__init__.py.jinja"
    USER_CLASS = _CONTEXT + "custom/element.py.jinja"
    AGGREGATE_TESTS = "tests/test___context_____aggregate__.py.jinja"
    SERVICE_TESTS = "tests/test_service.py.jinja"
    SCENARIO_TESTS = "tests/test_scenarios.py.jinja"
    PYPROJECT = "pyproject.toml.jinja"
    GITIGNORE = "gitignore.jinja"
    README = "README.md.jinja"


#: Templates of files the user owns: written once, never overwritten.
USER_OWNED = frozenset(
    {Template.CUSTOM_INIT, Template.USER_CLASS, Template.PYPROJECT, Template.GITIGNORE}
)


@dataclass(frozen=True)
class File:
    """One output file: its path, the template that prints it and what the template reads."""

    path: str
    template: Template
    variables: Mapping[str, Any]

    @property
    def owned(self) -> bool:
        """Whether stormgen owns the file (rewrites it on every run)."""
        return self.template not in USER_OWNED


def file(path: str, template: Template, **variables: Any) -> File:
    """A :class:`File`, its template's variables as keywords."""
    return File(path, template, variables)


def module_path(dotted: str, leaf: str | None = None) -> str:
    """The path of a Python module: ``a.b`` (and ``leaf``) -> ``src/a/b[/leaf].py``."""
    parts = dotted.split(".")
    if leaf is not None:
        parts.append(leaf)
    return "src/" + "/".join(parts) + ".py"


VM = TypeVar("VM")


@dataclass(frozen=True)
class Built(Generic[VM]):
    """What a builder made of one element: its view-model and its files."""

    vm: VM
    files: tuple[File, ...]
