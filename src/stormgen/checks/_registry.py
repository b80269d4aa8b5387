"""The list of rules ``stormgen validate`` runs: each a function registered with its codes."""

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
    """One check: the codes it reports and the function that finds them."""

    codes: tuple[str, ...]
    function: RuleFunction

    @property
    def summary(self) -> str:
        doc = self.function.__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else ", ".join(self.codes)


RULES: list[Rule] = []


def rule(code: str, *more: str) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function that reports ``code`` (and the codes ``more``)."""

    def register(function: RuleFunction) -> RuleFunction:
        RULES.append(Rule((code, *more), function))
        return function

    return register
