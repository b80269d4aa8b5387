"""What expressions and field sourcing compile to, checked on small models."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen import load
from stormgen.render.python import GenerateError, render_project
from stormgen.render.targets import normalize

MODEL = """
model Calc
actor User
enum Mode { On, Off }
context Shop {
  aggregate Till {
    id till_id: str
    state {
      total: decimal = 0
      count: int = 0
      ratio: float = 1.5
      mode: Mode = On
      note: str?
      owner: str
      tags: list[str] = []
    }
    command Open by User creates {
      owner: str
      emit Opened
    }
    command Add by User {
      a: int
      b: int
      require a / b > 0.5 else "too small"
      require not (mode == Off) else "off"
      require note == none or len(note) < 3 else "long note"
      require a in [1, 2, 3] else "not in list"
      require -a < (b - 1) * 2 else "precedence"
      emit Added { share = a / b, bonus = 2, label = upper(owner) + "!" }
      emit Tagged if ratio > 2.25
    }
    event Opened { owner: str }
    event Added {
      a: int
      share: decimal
      bonus: decimal
      label: str
      apply { total += share, count -= a, tags = tags + [label] }
    }
    event Tagged { till_id: str, mode: Mode, ratio: float }
  }
}
"""


@pytest.fixture(scope="module")
def till(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("calc") / "calc.storm"
    path.write_text(MODEL, encoding="utf-8")
    files = normalize(render_project(load(path)))
    return files["src/calc/shop/till.py"].content


def test_guards_compile_to_plain_python(till: str) -> None:
    # each guard as the model writes it, not negated: require(condition, message)
    assert 'require(Decimal(command.a) / Decimal(command.b) > Decimal("0.5"), "too small")' in till
    assert 'require(not state.mode == Mode.Off, "off")' in till
    assert 'require(state.note is None or len(state.note) < 3, "long note")' in till
    assert 'require(command.a in (1, 2, 3), "not in list")' in till
    assert 'require(-command.a < (command.b - 1) * 2, "precedence")' in till
    assert "Rejected" not in till and "isinstance" not in till  # dispatch is the runtime's


def test_emit_fields_follow_the_sourcing_order(till: str) -> None:
    # explicit assignments (int literal into decimal), command fields, the id
    assert "share=Decimal(command.a) / Decimal(command.b)" in till
    assert 'bonus=Decimal("2")' in till
    assert 'label=state.owner.upper() + "!"' in till
    # the state field of the same name, and the aggregate id carried by the command
    assert "Tagged(till_id=command.till_id, mode=state.mode, ratio=state.ratio)" in till
    assert "if state.ratio > 2.25:" in till  # a fraction literal in float context


def test_apply_compiles_assignments_and_same_name_copies(till: str) -> None:
    assert "total=state.total + event.share" in till
    assert "count=state.count - event.a" in till
    assert "tags=state.tags + (event.label,)" in till
    assert "replace(state, owner=event.owner)" in till  # implicit copy
    assert "owner: str = UNSET" in till  # no default, not optional
    assert "note: str | None = None" in till


def test_a_model_with_errors_is_refused_with_its_location(tmp_path: Path) -> None:
    path = tmp_path / "bad.storm"
    path.write_text(MODEL.replace("emit Opened", "emit Opend"), encoding="utf-8")
    with pytest.raises(GenerateError, match=r"bad\.storm:\d+:\d+: E102"):
        render_project(load(path))
