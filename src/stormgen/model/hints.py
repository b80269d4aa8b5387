"""The one "did you mean" of every finding: the known names closest to a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A ``did you mean `x`?`` help line for the closest candidates, if any is close."""
    return suggest(closest(name, candidates))


def closest(name: str, candidates: Iterable[str]) -> list[str]:
    """Up to three candidates close to ``name``, best first, none much worse than the best.

    A dotted name that nothing spells alike may only miss its qualifier, or qualify a
    plain name wrongly: then the candidates with the same last part are offered.
    """
    unique = list(dict.fromkeys(candidates))
    scored = []
    for c in unique:
        ratio = difflib.SequenceMatcher(None, name, c).ratio()
        if ratio >= 0.6:
            scored.append((-ratio, c))
    if not scored:
        last = name.rsplit(".", 1)[-1]
        return [c for c in unique if c.rsplit(".", 1)[-1] == last][:3]
    scored.sort()
    # Far weaker matches next to a good one are noise ('Payd': 'Paid', not 'Placed').
    return [c for r, c in scored[:3] if -r >= -scored[0][0] - 0.1]


def suggest(names: list[str]) -> str | None:
    """``did you mean `a`, `b` or `c`?`` for the given names (None for none)."""
    if not names:
        return None
    quoted = [f"`{c}`" for c in names]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"did you mean {listed}?"
