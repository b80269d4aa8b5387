"""Policies: a fan-out `then C {...} for x in L [if C]` and a condition per `then` line.

Checked (types, the variable seen only by its line), compiled to plain Python (a
loop adding to an `Issued` list), and run: one command per item kept, each with its
deterministic id from its line and its item's index, so a redelivered event issues none
twice and a longer list moves no other line's ids.
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
    assert "commands = Issued()" in policies
    assert "        for index, t in enumerate(event.tracking_ids):\n" in policies
    assert '            if t != "":\n' in policies
    assert "commands.add(0, Notify(voyage_id=event.voyage_id, tracking_id=t), index)" in policies
    assert "        if len(event.tracking_ids) > 2:\n" in policies
    assert "            commands.add(1, Escalate(voyage_id=event.voyage_id))" in policies


RUN = """\
from uuid import UUID

from stormgen.runtime import Application, command_id
from stormgen.runtime.policies import places

from fan.app import definitions
from fan.cargo.voyage import Misdirected, Start

with Application.open("sqlite:///" + {db!r}, **definitions()) as app:
    ident = UUID(int=5)
    app.handle(Start(voyage_id=ident, tracking_ids=("a", "", "b", "c")))
    app.run_consumers()
    first = [e.type for e in app.history("Cargo.Voyage", ident)]
    app.run_consumers()
    print(first)
    print(app.load("Cargo.Voyage", ident).state.notified)
    print(len(app.history("Cargo.Voyage", ident)))
    # each command's id is its idempotency key: from the line and the item's index
    policy = app.policies["Cargo.NotifyEachConsignee"]
    misdirected = app.history("Cargo.Voyage", ident)[0]
    for place in ("0.0", "0.2", "0.3", "1"):
        print(place, app.was_handled(str(command_id(policy.name, misdirected.id, place))))
    longer = Misdirected(voyage_id=ident, tracking_ids=("a", "", "b", "c", "d"))
    shorter = Misdirected(voyage_id=ident, tracking_ids=("a", "b", "c"))
    for event in (longer, shorter):
        issued = policy.react(event, misdirected)
        print(places(issued), [type(c).__name__ for c in issued])
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
    # the empty id (item 1) issued nothing; items 0, 2, 3 and line 1 were handled
    assert lines[3:7] == ["0.0 True", "0.2 True", "0.3 True", "1 True"], lines
    # a longer list adds an item; the Escalate line keeps its place "1" either way
    assert lines[7] == (
        "['0.0', '0.2', '0.3', '0.4', '1'] ['Notify', 'Notify', 'Notify', 'Notify', 'Escalate']"
    )
    assert lines[8] == "['0.0', '0.1', '0.2', '1'] ['Notify', 'Notify', 'Notify', 'Escalate']"


def test_a_fan_out_is_one_edge_in_the_graph_and_on_the_board(model: Path) -> None:
    from stormgen.render.board import build_board
    from stormgen.render.targets import with_graph

    loaded = with_graph(parse_model(model))
    issued = [(u, v) for u, v, kind in loaded.graph.edges(data="kind") if kind == "issues"]
    policy = "policy:Cargo.NotifyEachConsignee"
    # one edge per `then` line, however many commands the fan-out issues
    assert sorted(v for u, v in issued if u == policy) == [
        "command:Cargo.Escalate",
        "command:Cargo.Notify",
    ]
    board = build_board(loaded)
    links = [link for lane in board.lanes for link in lane.links if link.kind == "issues"]
    assert len(links) == 2, links
