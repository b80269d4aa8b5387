"""Views: `order by FIELD [desc], ...`, checked (E403 at a column the view does not
have or cannot sort on) and compiled into the view's `order` (the list endpoint's
order; the store contract and tests/http/test_http_view_order.py run it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.diagnostics import ModelError
from stormgen.lang import parse_model

from ._helpers import render

MODEL = """\
model Legs
actor Agent
context Cargo {
  aggregate Leg {
    id leg_id: uuid
    command Complete by Agent creates { cargo: str, owner: str, emit LegCompleted }
    published event LegCompleted { cargo: str, owner: str pii }
  }
  view Legs {
    key leg_id: uuid
    cargo: str = ""
    owner: str = "" pii
    tags: list[str] = []
    order by cargo desc, leg_id
    on LegCompleted { cargo = cargo, owner = owner }
  }
}
"""


def found(tmp_path: Path, text: str) -> list[tuple[str, str, int, int]]:
    path = tmp_path / "legs.storm"
    path.write_text(text)
    return [
        (d.code, d.message, d.location.line, d.location.column)
        for d in check(parse_model(path))
        if d.code.startswith("E") and d.location is not None
    ]


def test_an_order_by_checks_clean_and_compiles(tmp_path: Path) -> None:
    assert found(tmp_path, MODEL) == []
    path = tmp_path / "legs.storm"
    views = render(path)["src/legs/cargo/views.py"].content
    assert '    order = (("cargo", True), ("leg_id", False))\n' in views


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("cargoo", "`cargoo` is not a column of view Legs: it cannot order the rows"),
        ("owner", "`owner` holds personal data (pii)"),
        ("tags", "`tags` is a list[str]: rows are ordered by plain columns only"),
    ],
)
def test_a_column_that_cannot_order_is_e403_at_it(
    tmp_path: Path, column: str, message: str
) -> None:
    text = MODEL.replace("order by cargo desc", f"order by {column} desc")
    assert [(c, line, col) for c, m, line, col in found(tmp_path, text) if message in m] == [
        ("E403", 14, 14)
    ], found(tmp_path, text)


def test_a_second_order_by_is_an_error(tmp_path: Path) -> None:
    text = MODEL.replace("order by cargo desc, leg_id", "order by cargo\n    order by leg_id")
    with pytest.raises(ModelError, match="second `order by`"):
        found(tmp_path, text)
