"""Every ```storm block of docs/language.md parses; those marked `# validate:` validate.

A block whose first line is `# validate: clean` gives no finding (hotspots and
warnings aside: no error); `# validate: CODE` gives that code (an error or a warning).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.diagnostics import Level
from stormgen.lang import parse_model
from stormgen.lang.loader import parse_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
_FENCE = re.compile(r"^```storm\n(.*?)^```", re.S | re.M)
BLOCKS = _FENCE.findall(DOC.read_text(encoding="utf-8"))


def test_the_reference_has_examples() -> None:
    assert len(BLOCKS) >= 2


def _wrap(block: str) -> str:
    """A fragment (a context member, or an aggregate member) inside what it belongs to."""
    first = next(line.split()[0] for line in block.splitlines() if line.strip()[:1] not in "#")
    if first in {"aggregate", "external", "policy", "view", "hotspot"}:
        return "context Wrapper {\n" + block + "\n}\n"
    if first in {"command", "event", "published", "state", "id", "snapshot"}:
        return "context Wrapper {\n aggregate Wrapped {\n" + block + "\n}\n}\n"
    return block


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_every_storm_block_parses_and_validates_as_marked(block: str, tmp_path: Path) -> None:
    result = parse_text(_wrap(block), "language.md")
    assert not isinstance(result, list), [str(d) for d in result]
    marker = re.match(r"# validate: (\S+)", block)
    if marker is None:
        return
    path = tmp_path / "example.storm"
    path.write_text(block, encoding="utf-8")
    found = check(parse_model(path))
    errors = [d.code for d in found if d.level is Level.ERROR]
    if marker.group(1) == "clean":
        assert errors == []
    else:
        assert marker.group(1) in [d.code for d in found]
