"""Views: `on EVENT [by EXPR] if C`, the event skipped for this view when C is false.

Checked (a bool over the event only, E402 otherwise, at the condition), compiled into
the view's `key_of_*` method (none skips the event: the row is neither created nor
changed), and run on a real SQLite store.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from stormgen import load
from stormgen.checks import check
from stormgen.lang import parse_model
from stormgen.render.docs import render_docs

from ._helpers import check_project, generate, render, run

MODEL = """\
model Legs
actor Agent
context Cargo {
  aggregate Leg {
    id leg_id: uuid
    command Complete by Agent creates { cargo: str, late: bool, emit LegCompleted }
    command Cancel { emit LegCancelled }
    published event LegCompleted { cargo: str, late: bool }
    published event LegCancelled { }
  }
  view OnTime {
    key leg_id: uuid
    cargo: str = ""
    completed_at: datetime?
    order by completed_at desc, leg_id
    on LegCompleted if not late { cargo = cargo, completed_at = event.recorded_at }
    on LegCancelled delete
  }
  view ByCargo {
    key cargo: str
    legs: int = 0
    on LegCompleted by cargo if cargo != "" and not late { legs += 1 }
  }
}
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "legs.storm"
    path.write_text(MODEL)
    return path


def errors(tmp_path: Path, text: str) -> list[tuple[str, str, int]]:
    path = tmp_path / "broken.storm"
    path.write_text(text)
    return [
        (d.code, d.message, d.location.line)
        for d in check(parse_model(path))
        if d.code.startswith("E") and d.location is not None
    ]


def test_a_condition_on_an_on_line_checks_clean(model: Path) -> None:
    assert [d for d in check(parse_model(model)) if d.code.startswith("E")] == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("if not late {", "if cargo {", "an `on` line's `if` must be bool, not str"),
        ("if not late {", "if row.cargo == cargo {", "unknown name `row.cargo`"),
        ("if not late {", "if lateness {", "unknown name `lateness`"),
    ],
)
def test_condition_mistakes(tmp_path: Path, old: str, new: str, expected: str) -> None:
    found = errors(tmp_path, MODEL.replace(old, new))
    assert any(expected in message and line == 16 for _, message, line in found), found
    assert all(code in {"E401", "E402"} for code, _, _ in found), found


def test_the_condition_compiles_into_the_key_method(model: Path) -> None:
    views = render(model)["src/legs/cargo/views.py"].content
    assert "        if not (not event.late):\n            return None" in views
    assert "        return event.leg_id\n" in views
    assert '        if not (event.cargo != "" and not event.late):' in views
    assert "        return event.cargo\n" in views
    assert '    order = (("completed_at", True), ("leg_id", False))\n' in views


RUN = """\
from uuid import UUID

from stormgen.runtime import Application

from legs.app import definitions
from legs.cargo.leg import Cancel, Complete

with Application.open("sqlite:///" + {db!r}, **definitions()) as app:
    on_time, late = UUID(int=1), UUID(int=2)
    app.handle(Complete(leg_id=on_time, cargo="tea", late=False))
    app.handle(Complete(leg_id=late, cargo="tea", late=True))
    app.handle(Complete(leg_id=UUID(int=3), cargo="rice", late=False))
    app.run_consumers()
    print(sorted(r["cargo"] for r in app.view_rows("Cargo.OnTime")))
    print(app.view_row("Cargo.OnTime", late))
    print(sorted((r["cargo"], r["legs"]) for r in app.view_rows("Cargo.ByCargo")))
    app.handle(Cancel(leg_id=on_time))
    app.run_consumers()
    print(sorted(r["cargo"] for r in app.view_rows("Cargo.OnTime")))
"""


def test_a_skipped_event_neither_creates_nor_changes_a_row(
    model: Path, tmp_path: Path, mypy_cache: Path
) -> None:
    project = generate(model, tmp_path / "legs")
    check_project(project, mypy_cache)
    script = project / "run.py"
    script.write_text(textwrap.dedent(RUN.format(db=str(tmp_path / "events.db"))))
    out = run([sys.executable, str(script)], project, env={"PYTHONPATH": str(project / "src")})
    lines = out.splitlines()
    assert lines == [
        "['rice', 'tea']",  # the late leg made no row
        "None",
        "[('rice', 1), ('tea', 1)]",  # the late tea leg was not counted
        "['rice']",
    ], lines


def test_the_docs_show_the_condition(model: Path) -> None:
    page = render_docs(load(model))["Cargo.md"]
    assert "`LegCompleted` if `not late`" in page
    assert "listed by `completed_at desc, leg_id`" in page
    assert '`LegCompleted` by `cargo` if `cargo != "" and not late`' in page
