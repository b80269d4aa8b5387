"""Every example of language.md parses (fragments wrapped in the element they belong to)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stormgen.lang import parse_model
from stormgen.lang.loader import parse_text

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = Path("/work/shared/spec")
# The normative reference lives outside the repository; this copy keeps the test
# running anywhere, and a test below fails when the two drift apart.
COPY = Path(__file__).with_name("spec_language.md")
LANGUAGE_MD = SPEC_DIR / "language.md" if (SPEC_DIR / "language.md").exists() else COPY
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(LANGUAGE_MD.read_text())]


def test_the_copy_of_language_md_is_current() -> None:
    if not (SPEC_DIR / "language.md").exists():
        pytest.skip("the shared spec folder is not on this machine; testing the copy")
    assert COPY.read_text() == (SPEC_DIR / "language.md").read_text()


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


def test_the_spec_coffee_shop_parses_and_matches_the_example_copy() -> None:
    copy = ROOT / "examples" / "coffee_shop.storm"
    spec = SPEC_DIR / "coffee_shop.storm"
    if spec.exists():
        assert copy.read_text() == spec.read_text()
    model = parse_model(copy)
    assert model.name == "CoffeeShop"
    assert [c.name for c in model.contexts] == ["Ordering", "Bar", "Display"]
