"""The parse-tree reader builds exactly what textX's own object model would."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen.lang import tree
from stormgen.lang.builder import Builder, FileParts
from stormgen.lang.grammar import LineIndex, blank_comments, metamodel

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "examples").rglob("*.storm")) + sorted(
    (ROOT / "tests" / "invalid").glob("*.storm")
)


def _build(model: object, text: str) -> FileParts:
    builder = Builder("f.storm", LineIndex.of(text).starts)
    parts = builder.file_parts(model)
    assert builder.diagnostics == []
    return parts


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_tree_reader_matches_textx_object_model(path: Path) -> None:
    text = blank_comments(path.read_text(encoding="utf-8"))
    parser = metamodel()._parser_blueprint.clone()
    parser.parse(text)
    ours = tree.root(parser.parse_tree)
    assert type(ours).__module__ == tree.__name__  # no textX object gets through
    assert _build(ours, text) == _build(metamodel().model_from_str(text), text)


def test_builder_board_matches_too() -> None:
    from test_lang_builder import BOARD  # type: ignore[import-not-found]

    text = blank_comments(BOARD)
    parser = metamodel()._parser_blueprint.clone()
    parser.parse(text)
    assert _build(tree.root(parser.parse_tree), text) == _build(
        metamodel().model_from_str(text), text
    )


def test_an_empty_file_has_no_root() -> None:
    assert tree.parse("   \n") is None
