"""Snapshot tests: each ``tests/invalid/<CODE>_*.storm`` against its ``.expected`` findings.

Regenerate every snapshot with ``STORMGEN_UPDATE_SNAPSHOTS=1 pytest tests/checks``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stormgen.checks import check, codes
from stormgen.diagnostics import Diagnostic
from stormgen.lang import parse_model

INVALID = Path(__file__).parent.parent / "invalid"
CASES = sorted(INVALID.glob("*.storm"))
UPDATE = os.environ.get("STORMGEN_UPDATE_SNAPSHOTS") == "1"


def render(diagnostics: list[Diagnostic]) -> str:
    """Findings as ``file:line:col: level[CODE]: message`` plus ``help:``, paths relative."""
    lines = []
    for d in diagnostics:
        assert d.location is not None, d
        path = Path(d.location.file).resolve()
        shown = (
            path.relative_to(INVALID.resolve()) if path.is_relative_to(INVALID.resolve()) else path
        )
        loc = d.location
        lines.append(f"{shown}:{loc.line}:{loc.column}: {d.level.value}[{d.code}]: {d.message}")
        if d.help:
            lines.append(f"  help: {d.help}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_invalid_model_snapshot(case: Path) -> None:
    found = check(parse_model(case))
    code = case.stem.split("_", 1)[0]
    assert code in {d.code for d in found}, render(found)
    expected = case.with_suffix(".expected")
    actual = render(found)
    if UPDATE or not expected.exists():
        expected.write_text(actual, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote the missing snapshot {expected.name}; check it and rerun")
    assert actual == expected.read_text(encoding="utf-8")


def test_every_code_has_a_case() -> None:
    covered = {case.stem.split("_", 1)[0] for case in CASES}
    assert set(codes()) <= covered, sorted(set(codes()) - covered)
