"""Durations compiled to plain Python (tests/generate/durations.storm): a `duration` is a
`datetime.timedelta`, `minutes(15)` is `timedelta(minutes=15)`, and its arithmetic with
datetimes and dates is Python's own; the generated project passes ruff, mypy --strict
and its own tests.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from stormgen.lang import parse_model
from stormgen.model import types as t
from stormgen.model.scope import Scope
from stormgen.render.python.interpreter import Interpreter

from ._helpers import check_project, generate, render

pytestmark = pytest.mark.slow

MODEL = Path(__file__).with_name("durations.storm")


@pytest.fixture(scope="module")
def shift() -> str:
    return render(MODEL)["src/durations/desk/shift.py"].content


def test_a_duration_is_a_timedelta(shift: str) -> None:
    assert "from datetime import date, datetime, timedelta" in shift
    assert "    by: timedelta\n" in shift
    assert "    longest: timedelta | None = None\n" in shift
    # defaults read as written in the model
    assert "    length: timedelta = timedelta(hours=8)\n" in shift
    assert "    grace: timedelta = timedelta(minutes=5)\n" in shift


def test_literals_and_arithmetic_read_naturally(shift: str) -> None:
    assert 'require(command.length > timedelta(minutes=0), "a shift has a length")' in shift
    assert "ends=command.starts + command.length," in shift
    assert "due=command.starts.date() + timedelta(days=1)," in shift
    assert "command.at + timedelta(minutes=command.minutes_taken)" in shift
    assert 'due=present(state.due, "due") - timedelta(weeks=1) + abs(command.by),' in shift
    assert 'require(-command.by < state.grace * 2, "a shift shrinks' in shift
    # duration + date is a date; date - date a duration
    assert (
        'timedelta(days=1) + present(state.due, "due") - present(state.ends, "ends").date()'
        in shift
    )


def test_sums_of_durations_start_at_zero(shift: str) -> None:
    assert "sum((b.length for b in state.breaks), timedelta(0))" in shift
    assert "longest=max((b.length for b in state.breaks), default=None)," in shift


def test_the_fake_adapter_invents_a_duration() -> None:
    clock = render(MODEL)["src/durations/desk/clock.py"].content
    assert "return Timed(shift_id=command.shift_id, took=timedelta(0))" in clock


def test_a_value_s_duration_default() -> None:
    shared = render(MODEL)["src/durations/shared.py"].content
    assert "    length: timedelta = timedelta(minutes=15)\n" in shared


def test_the_project_is_clean_and_its_tests_pass(tmp_path: Path, mypy_cache: Path) -> None:
    project = generate(MODEL, tmp_path / "durations")
    check_project(project, mypy_cache)
    tests = (project / "tests/test_desk_shift.py").read_text()
    for command in ("Plan", "TakeBreak", "Extend"):
        assert f"{command}: found no case where it is accepted" not in tests
    assert 'found no case failing the guard "a shift has a length"' not in tests
    # the cases the interpreter derived hold durations written as timedelta literals
    assert "by=timedelta(minutes=15)" in tests


PROBE = """\
actor Clerk
context Desk {
  aggregate Shift {
    id shift_id: uuid
    state { breaks: list[duration] = [] }
    command Probe by Clerk creates {
      at: datetime
      on: date
      wait: duration
      n: int
      let moved = at + wait
      let later = on + hours(36)
      let earlier = on - hours(36)
      let back = on + hours(-36)
      let between = at - (at - wait)
      let days_between = (on + weeks(1)) - on
      let scaled = wait * n - minutes(n)
      let total = sum(b for b in breaks)
      let longest = max(b for b in breaks)
      let backwards = -abs(wait)
      emit Probed
    }
    event Probed { }
  }
}
"""


@pytest.mark.parametrize(
    ("name", "breaks", "expected"),
    [
        ("moved", (), datetime(2026, 3, 1, 8, 15, tzinfo=UTC)),
        ("later", (), date(2026, 3, 2)),
        ("earlier", (), date(2026, 2, 28)),
        ("back", (), date(2026, 2, 27)),
        ("between", (), timedelta(minutes=15)),
        ("days_between", (), timedelta(days=7)),
        ("scaled", (), timedelta(minutes=42)),
        ("total", (), timedelta(0)),
        ("total", (timedelta(minutes=5), timedelta(hours=1)), timedelta(minutes=65)),
        ("longest", (), None),
        ("longest", (timedelta(minutes=5), timedelta(hours=1)), timedelta(hours=1)),
        ("backwards", (), timedelta(minutes=-15)),
    ],
)
def test_the_interpreter_computes_durations_as_python_does(
    tmp_path: Path, name: str, breaks: tuple[timedelta, ...], expected: object
) -> None:
    path = tmp_path / "probe.storm"
    path.write_text(PROBE)
    model = parse_model(path)
    scope = Scope(model)
    command = model.contexts[0].aggregates[0].commands[0]
    interpreter = Interpreter(t.command_env(command, scope))
    message = {
        "at": datetime(2026, 3, 1, 8, tzinfo=UTC),
        "on": date(2026, 3, 1),
        "wait": timedelta(minutes=15),
        "n": 3,
    }
    let = next(x for x in command.lets if x.name == name)
    value = interpreter.eval(let.value, message, {"breaks": breaks})
    assert value == expected
    assert type(value) is type(expected)
