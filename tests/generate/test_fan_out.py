"""Policies: a fan-out `then C {...} for x in L [if C]` and a condition per `then` line.

Checked (types, the variable seen only by its line), compiled to plain Python (a
generator into `commands.extend`), and run: one command per item kept, each with its
deterministic id, so a redelivered event issues none twice.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.lang import parse_model

from ._helpers import check_project, generate, render, run

MODEL = """\
model Fan
actor Agent
context Cargo {
  aggregate Voyage {
    id voyage_id: uuid
    state { notified: list[str] = [] }
    command Start by Agent creates { tracking_ids: list[str], emit Misdirected }
    command Notify { tracking_id: str, emit Notified }
    command Escalate { emit Escalated }
    published event Misdirected { tracking_ids: list[str] }
    published event Notified {
      tracking_id: str
      apply { notified = notified + [tracking_id] }
    }
    published event Escalated { }
  }
  policy NotifyEachConsignee {
    when Misdirected
    then Notify { tracking_id = t } for t in tracking_ids if t != ""
    then Escalate if len(tracking_ids) > 2
  }
}
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "fan.storm"
    path.write_text(MODEL)
    return path


def errors(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "broken.storm"
    path.write_text(text)
    return [(d.code, d.message) for d in check(parse_model(path)) if d.code.startswith("E")]


def test_a_fan_out_and_a_line_condition_check_clean(model: Path) -> None:
    assert [d for d in check(parse_model(model)) if d.code.startswith("E")] == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "for t in tracking_ids",
            "for t in 3",
            "type mismatch: `for` goes through a list, not int",
        ),
        ('if t != ""', "if t", "type mismatch: the `if` of `for` must be bool, not str"),
        ("tracking_id = t }", "tracking_id = u }", "unknown name `u`"),
        ("if len(tracking_ids) > 2", "if len(tracking_ids)", "a `then` line's `if` must be bool"),
        ("tracking_id = t } for t", "tracking_id = t } for tracking_ids", "already a name here"),
    ],
)
def test_fan_out_mistakes(tmp_path: Path, old: str, new: str, expected: str) -> None:
    found = errors(tmp_path, MODEL.replace(old, new))
    assert any(expected in message for _, message in found), found


def test_the_variable_is_seen_by_its_line_only(tmp_path: Path) -> None:
    text = MODEL.replace(
        "then Escalate if len(tracking_ids) > 2", "then Notify { tracking_id = t }"
    )
    assert errors(tmp_path, text) == [("E401", "unknown name `t`")]


def test_fan_out_compiles_to_a_generator(model: Path) -> None:
    policies = render(model)["src/fan/cargo/policies.py"].content
    assert "commands: list[Command] = []" in policies
    assert (
        'Notify(voyage_id=event.voyage_id, tracking_id=t) for t in event.tracking_ids if t != ""'
        in policies
    )
    assert "        if len(event.tracking_ids) > 2:\n" in policies
    assert "            commands.append(Escalate(voyage_id=event.voyage_id))" in policies


RUN = """\
from uuid import UUID

from stormgen.runtime import Application

from fan.app import definitions
from fan.cargo.voyage import Start

with Application.open("sqlite:///" + {db!r}, **definitions()) as app:
    ident = UUID(int=5)
    app.handle(Start(voyage_id=ident, tracking_ids=("a", "", "b", "c")))
    app.run_consumers()
    first = [e.type for e in app.history("Cargo.Voyage", ident)]
    app.run_consumers()
    print(first)
    print(app.load("Cargo.Voyage", ident).state.notified)
    print(len(app.history("Cargo.Voyage", ident)))
"""


def test_one_command_per_item_kept_and_none_twice(
    model: Path, tmp_path: Path, mypy_cache: Path
) -> None:
    project = generate(model, tmp_path / "fan")
    check_project(project, mypy_cache)
    script = project / "run.py"
    script.write_text(textwrap.dedent(RUN.format(db=str(tmp_path / "events.db"))))
    out = run([sys.executable, str(script)], project, env={"PYTHONPATH": str(project / "src")})
    lines = out.splitlines()
    assert lines[0].count("Notified") == 3 and lines[0].count("Escalated") == 1, lines
    assert lines[1] == "('a', 'b', 'c')"
    assert lines[2] == "5"  # Misdirected, 3 Notified, Escalated: none issued twice
