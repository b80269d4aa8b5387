"""Every example of the specifying reference parses (fragments wrapped in the element
they belong to)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stormgen.lang import parse_model
from stormgen.lang.loader import parse_text

ROOT = Path(__file__).resolve().parents[2]
# The examples of the language reference the project was specified by, as test data:
# the grammar must accept every one of them (the project's own reference,
# docs/language.md, is tested by test_lang_docs_examples.py).
LANGUAGE_MD = Path(__file__).with_name("spec_language.md")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(LANGUAGE_MD.read_text())]


def _wrap(block: str) -> str:
    """A top-level text for a fragment: context members go in a context."""
    block = block.replace("...members...", "")  # language.md's schematic
    first = block.split()[0]
    if first in {"aggregate", "external", "policy", "view", "hotspot"}:
        return "context Wrapper {\n" + block + "\n}\n"
    if first in {"command", "event", "published", "state", "id", "snapshot"}:
        return "context Wrapper {\n aggregate Wrapped {\n" + block + "\n}\n}\n"
    return block


def test_language_md_has_the_expected_examples() -> None:
    blocks = _blocks()
    storm = [b for lang, b in blocks if lang == "storm"]
    assert len(storm) >= 8
    # The one untagged block is the schematic of a field, which is not .storm text.
    untagged = [b for lang, b in blocks if lang == ""]
    assert [b.strip() for b in untagged] == [
        'name: Type [= default] [pii] [was old_name] ["description"]'
    ]


def test_every_storm_block_of_language_md_parses() -> None:
    failures = []
    for lang, block in _blocks():
        if lang != "storm":
            continue
        result = parse_text(_wrap(block), "language.md")
        if isinstance(result, list):
            failures.append((block.splitlines()[0], [str(d) for d in result]))
    assert failures == []


def test_the_field_schematic_parses_in_every_combination() -> None:
    # `name: Type [= default] [pii] [was old_name] ["description"]`, all optional parts.
    text = """
value V {
  a: str
  b: str = "x"
  c: str pii
  d: str was old_d
  e: str "described"
  f: str = "x" pii was old_f "all of them"
  g: int = -3, h: Size = Size.Medium, i: list[str] = [], j: str? = none
}
"""
    result = parse_text(text, "f.storm")
    assert not isinstance(result, list), result
    fields = result.values[0].fields
    assert [f.name for f in fields] == list("abcdefghij")
    f = fields[5]
    assert (f.pii, f.was, f.description) == (True, "old_f", "all of them")


@pytest.mark.parametrize(
    "inline",
    [
        "map { Loyalty <-> Ordering [partnership] }",
        "map { A <-> B [shared-kernel] }",
        "value V { a: str, b: int }",
        "value V {\n a: str\n b: int\n}",
    ],
)
def test_inline_examples_of_language_md_parse(inline: str) -> None:
    result = parse_text(inline, "f.storm")
    assert not isinstance(result, list), result


def test_the_reference_coffee_shop_parses() -> None:
    model = parse_model(ROOT / "examples" / "coffee_shop.storm")
    assert model.name == "CoffeeShop"
    assert [c.name for c in model.contexts] == ["Ordering", "Bar", "Display"]
