"""The list of rules ``stormgen validate`` runs: each a function registered with its code."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stormgen.diagnostics import Diagnostic

if TYPE_CHECKING:
    from stormgen.checks._context import CheckContext

RuleFunction = Callable[["CheckContext"], Iterable[Diagnostic]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One check: the code it reports and the function that finds it."""

    code: str
    function: RuleFunction

    @property
    def summary(self) -> str:
        doc = self.function.__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else self.code


RULES: list[Rule] = []


def rule(code: str) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function that reports ``code``."""

    def register(function: RuleFunction) -> RuleFunction:
        RULES.append(Rule(code, function))
        return function

    return register
