"""The rules of ``stormgen validate`` (docs/language.md): one function per rule, each with
its codes, all sharing one :class:`~stormgen.model.scope.Scope`.

:func:`check` runs them all and returns the findings sorted by file, line and column.
"""

from __future__ import annotations

from collections.abc import Callable

from stormgen._gc import collector_paused
from stormgen.checks import copies, expressions, names, processes, scenarios, structure
from stormgen.checks._context import CheckContext
from stormgen.checks._registry import RULES, Rule
from stormgen.diagnostics import Diagnostic, Level
from stormgen.model.nodes import Model
from stormgen.model.scope import Scope

_LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


def sort_key(model: Model) -> Callable[[Diagnostic], tuple[int, str, int, int, int, str, str]]:
    """Order findings by file (the root file first, then imports in read order), line,
    column, then level and code."""
    file_order = {f.path: i for i, f in enumerate(model.files)}

    def key(d: Diagnostic) -> tuple[int, str, int, int, int, str, str]:
        loc = d.location
        if loc is None:
            return (len(file_order) + 1, "", 0, 0, _LEVEL_ORDER[d.level], d.code, d.message)
        return (
            file_order.get(loc.file, len(file_order)),
            loc.file,
            loc.line,
            loc.column,
            _LEVEL_ORDER[d.level],
            d.code,
            d.message,
        )

    return key


def check(model: Model, scope: Scope | None = None) -> list[Diagnostic]:
    """Run every rule on ``model``; the findings sorted by file, line and column."""
    found: list[Diagnostic] = []
    with collector_paused():
        ctx = CheckContext(model, scope)
        for r in RULES:
            found.extend(r.function(ctx))
    found.sort(key=sort_key(model))
    return found


def codes() -> list[str]:
    """Every code the rules report (not E001/E002: a model that cannot be read or parsed)."""
    return sorted({code for r in RULES for code in r.codes})


__all__ = [
    "RULES",
    "Rule",
    "check",
    "codes",
    "copies",
    "expressions",
    "names",
    "processes",
    "scenarios",
    "sort_key",
    "structure",
]
