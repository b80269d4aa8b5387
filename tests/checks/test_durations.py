"""`duration` in the checker: its literals, its arithmetic with datetimes and dates, and
the E402 findings (located at the offending sub-expression, with `help:`).

docs/language.md, "Durations".
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.lang import parse_model

Finding = tuple[str, int, int, str, str | None]

MODEL = """\
actor Clerk
context Desk {
  value Slot { starts: datetime, length: duration = minutes(30) }
  aggregate Booking {
    id booking_id: uuid
    state {
      starts: datetime? = none
      due: date? = none
      length: duration = hours(1)
      breaks: list[duration] = []
      slots: list[Slot] = []
      count: int = 0
      grace: duration? = none
    }
    command Open by Clerk creates { emit Opened }
    command Act by Clerk {
      at: datetime
      on: date
      wait: duration
      price: decimal
      n: int
      BODY
      emit Acted
    }
    event Opened { }
    event Acted { at: datetime }
  }
}
"""

LINE = 22  # the line BODY stands on


def findings(tmp_path: Path, body: str, model: str = MODEL) -> list[Finding]:
    path = tmp_path / "model.storm"
    path.write_text(model.replace("BODY", textwrap.dedent(body).strip()))
    out = []
    for d in check(parse_model(path)):
        if d.code.startswith(("E1", "E3", "E4")):
            assert d.location is not None
            out.append((d.code, d.location.line, d.location.column, d.message, d.help))
    return out


def column_of(body: str, needle: str) -> int:
    """The column of ``needle`` in the one-line ``body`` (which starts at column 7)."""
    return 7 + body.index(needle)


@pytest.mark.parametrize(
    "body",
    [
        # the literals, with an int expression for the count
        'require wait >= minutes(15) else "m"',
        'require wait < seconds(n * 60) + minutes(1) + hours(2) + days(3) + weeks(4) else "m"',
        # datetime ± duration → datetime; date ± duration → date
        'require at + wait > now() else "m"',
        'require wait + at > now() else "m"',
        'require at - hours(2) < now() else "m"',
        'require on + days(1) > today() else "m"',
        'require days(1) + on > today() else "m"',
        'require on - weeks(1) < today() else "m"',
        # datetime - datetime and date - date → duration
        'require now() - at < days(1) else "m"',
        'require on - today() <= days(7) else "m"',
        # durations add, subtract, multiply by an int (either side), negate, compare
        'require wait + length - minutes(5) > seconds(0) else "m"',
        'require wait * 2 <= 3 * length else "m"',
        'require -wait < abs(wait) else "m"',
        'require wait != length else "m"',
        'require wait in breaks else "m"',
        # sum, min and max over durations
        'require sum(b for b in breaks) <= hours(8) else "m"',
        'require sum(s.length for s in slots) + wait <= hours(8) else "m"',
        'require min(wait, length) > seconds(0) else "m"',
        'let longest = max(b for b in breaks)\nrequire longest == none or longest < wait else "m"',
        # conditional with durations; an optional duration narrowed
        'require (wait if n > 0 else minutes(1)) > seconds(0) else "m"',
        'require grace == none or grace < wait else "m"',
    ],
)
def test_duration_forms_check_clean(tmp_path: Path, body: str) -> None:
    assert findings(tmp_path, body) == []


@pytest.mark.parametrize(
    ("body", "needle", "message", "help_part"),
    [
        (
            'require at + 5 > now() else "m"',
            "at + 5",
            "type mismatch: cannot add datetime and int",
            "give the number its unit",
        ),
        (
            'require wait * price > wait else "m"',
            "wait * price",
            "type mismatch: cannot multiply duration and decimal",
            "a duration multiplies by an int",
        ),
        (
            'require wait * wait > wait else "m"',
            "wait * wait",
            "type mismatch: cannot multiply duration and duration",
            "durations add, subtract and multiply by an int",
        ),
        (
            'require wait / 2 > wait else "m"',
            "wait / 2",
            "type mismatch: cannot divide duration and int",
            "a duration does not divide",
        ),
        (
            'require at + at > now() else "m"',
            "at + at",
            "type mismatch: cannot add datetime and datetime",
            "a datetime moves by a duration",
        ),
        (
            'require at - on > wait else "m"',
            "at - on",
            "type mismatch: cannot subtract datetime and date",
            "date(x)",
        ),
        (
            'require wait - at > wait else "m"',
            "wait - at",
            "type mismatch: cannot subtract duration and datetime",
            "a date or datetime moves by a duration",
        ),
        (
            'require wait > 15 else "m"',
            "wait > 15",
            "type mismatch: cannot compare duration with int",
            None,
        ),
    ],
)
def test_wrong_arithmetic_is_e402_at_the_operation(
    tmp_path: Path, body: str, needle: str, message: str, help_part: str | None
) -> None:
    found = findings(tmp_path, body)
    assert [(code, line, col, msg) for code, line, col, msg, _ in found] == [
        ("E402", LINE, column_of(body, needle), message)
    ]
    help_ = found[0][4]
    if help_part is None:
        assert help_ is None
    else:
        assert help_ is not None and help_part in help_


def test_a_unit_counts_whole_units(tmp_path: Path) -> None:
    body = 'require hours(1.5) > wait else "m"'
    assert findings(tmp_path, body) == [
        (
            "E402",
            LINE,
            column_of(body, "1.5"),
            "type mismatch: hours() counts whole hours: it takes an int, not decimal",
            "for a fraction use a smaller unit: 'minutes(90)', not 'hours(1.5)'",
        )
    ]


def test_a_unit_takes_one_argument(tmp_path: Path) -> None:
    body = 'require minutes(1, 2) > wait else "m"'
    assert findings(tmp_path, body) == [
        (
            "E402",
            LINE,
            column_of(body, "minutes"),
            "type mismatch: minutes() takes 1 argument, not 2",
            None,
        )
    ]


def test_an_optional_duration_needs_a_test(tmp_path: Path) -> None:
    body = 'require grace < wait else "m"'
    found = findings(tmp_path, body)
    assert [(c, line, col, m) for c, line, col, m, _ in found] == [
        ("E402", LINE, column_of(body, "grace"), "type mismatch: `grace` may be none (duration?)")
    ]


def test_a_duration_does_not_fit_an_int_field(tmp_path: Path) -> None:
    model = MODEL.replace("emit Acted", "emit Acted { at = at + wait }\n      emit Opened")
    assert findings(tmp_path, 'require n > 0 else "m"', model) == []
    model = MODEL.replace("event Acted { at: datetime }", "event Acted { at: datetime, n: int }")
    model = model.replace("emit Acted", "emit Acted { n = wait }")
    found = findings(tmp_path, 'require n > 0 else "m"', model)
    assert [(c, m) for c, _, _, m, _ in found] == [
        ("E402", "type mismatch: cannot assign duration to `n` (int)")
    ]


def test_sum_of_durations_is_a_duration(tmp_path: Path) -> None:
    body = 'require sum(b for b in breaks) > 0 else "m"'
    found = findings(tmp_path, body)
    assert [(c, m) for c, _, _, m, _ in found] == [
        ("E402", "type mismatch: cannot compare duration with int")
    ]


@pytest.mark.parametrize(
    ("default", "problem"),
    [
        ("minutes(15)", None),
        ("weeks(2)", None),
        ("seconds(-30)", None),
        ("hours(1.5)", "type mismatch: hours() counts whole hours: it takes an int, not decimal"),
        ('days("x")', "type mismatch: days() counts whole days: it takes an int, not str"),
        ("15", "type mismatch: the default of `timeout` must be duration, not 15 (int)"),
    ],
)
def test_a_duration_default(tmp_path: Path, default: str, problem: str | None) -> None:
    model = MODEL.replace("count: int = 0", f"count: int = 0\n      timeout: duration = {default}")
    found = findings(tmp_path, 'require n > 0 else "m"', model)
    assert [m for _, _, _, m, _ in found] == ([problem] if problem else [])
    if problem:
        line = model.splitlines().index(f"      timeout: duration = {default}") + 1
        assert found[0][1] == line


def test_a_default_calls_no_other_function(tmp_path: Path) -> None:
    path = tmp_path / "model.storm"
    path.write_text(MODEL.replace("count: int = 0", "count: int = 0\n      at: datetime = now()"))
    with pytest.raises(Exception, match="syntax error"):
        parse_model(path)


def test_a_duration_default_of_an_int_field(tmp_path: Path) -> None:
    model = MODEL.replace("count: int = 0", "count: int = minutes(5)")
    found = findings(tmp_path, 'require n > 0 else "m"', model)
    assert [m for _, _, _, m, _ in found] == [
        "type mismatch: the default of `count` must be int, not duration"
    ]
