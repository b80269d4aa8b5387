"""The parser with stormgen's rule methods gives arpeggio's own parse trees and errors."""

from __future__ import annotations

import runpy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from arpeggio import Terminal
from textx.exceptions import TextXSyntaxError

from stormgen.lang import engine
from stormgen.lang.grammar import blank_comments, metamodel, stock_metamodel

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "examples").rglob("*.storm")) + sorted(
    (ROOT / "tests" / "invalid").glob("*.storm")
)


@cache
def _stock() -> Any:
    return stock_metamodel()


@cache
def _synthetic() -> str:
    synth = runpy.run_path(str(ROOT / "benchmarks" / "synth.py"))["synth"]
    return blank_comments(synth(2))


def _shape(node: Any) -> Any:
    """Everything of a parse-tree node the readers of the tree may look at."""
    head = (type(node).__name__, node.rule_name, node.position, type(node.rule).__name__)
    if isinstance(node, Terminal):
        return (*head, node.value, node.suppress)
    return (*head, [_shape(child) for child in node])


def _parse(mm: Any, text: str) -> Any:
    """The parse tree's shape, or the error's position and expected rules."""
    parser = mm._parser_blueprint.clone()
    try:
        parser.parse(text)
    except TextXSyntaxError as exc:
        rules = [
            (r.rule_name, type(r).__name__, getattr(r, "to_match", None))
            for r in exc.expected_rules
        ]
        return ("error", exc.line, exc.col, exc.message, rules)
    return _shape(parser.parse_tree)


def test_the_language_parser_runs_the_fast_methods() -> None:
    fresh = stock_metamodel()
    assert engine.install(fresh._parser_blueprint.parser_model) > 50
    rule = metamodel()._parser_blueprint.parser_model
    assert rule.parse.__func__ is engine._sequence


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_same_tree_as_arpeggio(path: Path) -> None:
    text = blank_comments(path.read_text(encoding="utf-8"))
    assert _parse(metamodel(), text) == _parse(_stock(), text)


def test_same_tree_on_a_synthetic_model() -> None:
    text = _synthetic()
    ours = _parse(metamodel(), text)
    assert ours[0] != "error"
    assert ours == _parse(_stock(), text)


def test_same_errors_on_every_cut_of_a_synthetic_model() -> None:
    """A model cut short at each of ~350 places fails where and as arpeggio's does."""
    text = _synthetic()
    errors = 0
    for end in range(1, len(text), 20):
        ours = _parse(metamodel(), text[:end])
        assert ours == _parse(_stock(), text[:end]), text[:end][-60:]
        errors += ours[0] == "error"
    assert errors > 300


@pytest.mark.parametrize(
    "text",
    [
        'context C { aggregate A { command C { require x > else "m" } } }',
        "context C { aggregate A { command C { emit E { a = [x for in y] } } } }",
        "context C { view V { key k: str on E if { } } }",
        "map { A -> }",
        "context C { aggregate A { state { x: list[int } } }",
        'scenario "s" { when X { a = } then }',
        'model M "d" extra',
        "actor A // a textX comment\nactor /* another */ B\nactor",
    ],
)
def test_same_errors_on_broken_lines(text: str) -> None:
    ours = _parse(metamodel(), text)
    assert ours[0] == "error"
    assert ours == _parse(_stock(), text)
