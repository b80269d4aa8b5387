"""Durations compiled to plain Python (tests/generate/durations.storm): a `duration` is a
`datetime.timedelta`, `minutes(15)` is `timedelta(minutes=15)`, and its arithmetic with
datetimes and dates is Python's own; the generated project passes ruff, mypy --strict
and its own tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._helpers import check_project, generate, render

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


def test_sums_of_durations_start_at_zero(shift: str) -> None:
    assert "sum((b.length for b in state.breaks), timedelta(0))" in shift
    assert "longest=max((b.length for b in state.breaks), default=None)," in shift


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
