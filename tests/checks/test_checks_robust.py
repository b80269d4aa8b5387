"""The rules and the graph never crash: the coffee shop with any one line removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.diagnostics import ModelError
from stormgen.lang import parse_model
from stormgen.model.graph import build_graph

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "coffee_shop.storm"


def test_every_one_line_deletion(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    checked = 0
    codes: set[str] = set()
    for i, line in enumerate(lines):
        if not line.strip() or line.strip().startswith("#"):
            continue
        path = tmp_path / f"without_{i + 1}.storm"
        path.write_text("".join(lines[:i] + lines[i + 1 :]), encoding="utf-8")
        try:
            model = parse_model(path)
        except ModelError:
            continue
        found = check(model)
        build_graph(model)
        assert all(d.location is not None for d in found)
        codes.update(d.code for d in found)
        checked += 1
    # Most deletions still parse, and together they exercise many rules.
    assert checked > 60
    assert {"E102", "E201", "E301", "E302", "W502", "W503"} <= codes


@pytest.mark.parametrize(
    "case",
    sorted((EXAMPLE.parent.parent / "tests" / "invalid").glob("*.storm")),
    ids=lambda p: p.stem,
)
def test_graph_builds_for_invalid_models(case: Path) -> None:
    graph = build_graph(parse_model(case))
    assert graph.number_of_nodes() > 0
