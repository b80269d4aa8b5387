"""The rules of ``stormgen validate`` (docs/language.md): one function per rule, each with
its code, all sharing one :class:`~stormgen.model.scope.Scope`.

:func:`check` runs them all and returns the findings sorted by file, line and column.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from stormgen._gc import collector_paused
from stormgen.checks import copies, names, structure
from stormgen.checks._context import CheckContext
from stormgen.checks._registry import RULES, Rule
from stormgen.diagnostics import Diagnostic, Level
from stormgen.model.nodes import Model
from stormgen.model.scope import Scope

_LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}

ExpressionChecker = Callable[[Model, Scope], list[Diagnostic]]


def _expression_checker() -> ExpressionChecker | None:
    """``checks.expressions.check_expressions`` (E401-E403), when that module exists."""
    if importlib.util.find_spec("stormgen.checks.expressions") is None:
        return None
    module = importlib.import_module("stormgen.checks.expressions")
    checker: ExpressionChecker | None = getattr(module, "check_expressions", None)
    return checker


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
        expressions = _expression_checker()
        if expressions is not None:
            found.extend(expressions(model, ctx.scope))
    found.sort(key=sort_key(model))
    return found


def codes() -> list[str]:
    """Every code the structural rules report (not E001/E002 or the expression codes)."""
    return sorted({r.code for r in RULES})


__all__ = ["RULES", "Rule", "check", "codes", "copies", "names", "sort_key", "structure"]
