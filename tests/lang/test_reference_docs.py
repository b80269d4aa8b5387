"""The language reference (docs/reference/) holds what it shows.

- Every ```storm block of every page parses (a fragment, such as an `aggregate` or a
  `command`, inside what it belongs to).
- A block whose first line is `# validate: clean` validates with no error and no
  warning (a hotspot's info is fine); `# validate: CODE` reports that code.
- versioning.md shows every breaking change `stormgen diff` reports (B001...) as a
  pair of models, `# before: CODE` and `# after: CODE`, that differ by exactly it.
- checks.md documents every code the checks and the parser can report, each under a
  heading `### CODE — title` with one block `# expect: CODE` that reports exactly
  that code (and no other), followed by what `stormgen validate` prints for it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stormgen import checks, lang
from stormgen.checks import check
from stormgen.cli._report import render_text
from stormgen.diagnostics import Diagnostic, Level, ModelError
from stormgen.lang import parse_model
from stormgen.lang.loader import parse_text
from stormgen.model.diff import BREAKING_CODES, diff_models

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"
PAGES = sorted(REFERENCE.glob("*.md"))
CHECKS = REFERENCE / "checks.md"
_FENCE = re.compile(r"^```storm\n(.*?)^```", re.S | re.M)
_HEADING = re.compile(r"^### ([A-Z][0-9]{3}) — \S.*$", re.M)
_EXPECT = re.compile(r"\A# expect: ([A-Z][0-9]{3})\n")
_OUTPUT = re.compile(r"^```storm\n# expect: .*?^```\n\n```text\n(.*?)^```", re.S | re.M)

BLOCKS = [
    pytest.param(page, block, id=f"{page.stem}:{block.splitlines()[0][:40]}")
    for page in PAGES
    for block in _FENCE.findall(page.read_text(encoding="utf-8"))
]


def test_the_reference_has_its_pages() -> None:
    names = {p.stem for p in PAGES}
    assert names >= {
        "README",
        "model-and-contexts",
        "types",
        "aggregates-commands-events",
        "expressions",
        "policies",
        "processes",
        "views",
        "external-systems",
        "hotspots-and-notes",
        "versioning",
        "scenarios",
        "checks",
    }
    assert len(BLOCKS) >= 60


def _wrap(block: str) -> str:
    """A fragment (a context member, or an aggregate member) inside what it belongs to."""
    lines = [line for line in block.splitlines() if line.strip() and line.strip()[0] != "#"]
    first = lines[0].split()[0] if lines else ""
    if first in {"aggregate", "external", "policy", "view", "process", "scenario", "hotspot"}:
        return "context Wrapper {\n" + block + "\n}\n"
    if first in {"command", "event", "published", "state", "id", "snapshot"}:
        return "context Wrapper {\n aggregate Wrapped {\n" + block + "\n}\n}\n"
    return block


def _shown(found: list[Diagnostic]) -> list[str]:
    return [f"{d.location}: {d.level.value}[{d.code}]: {d.message}" for d in found]


def _findings(block: str, tmp_path: Path) -> list[Diagnostic]:
    """What `stormgen validate` reports for the block, as a file of its own."""
    path = tmp_path / "example.storm"
    path.write_text(block, encoding="utf-8")
    try:
        return check(parse_model(path))
    except ModelError as exc:
        return exc.diagnostics


@pytest.mark.parametrize(("page", "block"), BLOCKS)
def test_every_storm_block_parses_and_validates_as_marked(
    page: Path, block: str, tmp_path: Path
) -> None:
    expect = _EXPECT.match(block)
    if expect is not None:  # checks.md: the parametrized test below
        assert page == CHECKS, "`# expect:` blocks belong in checks.md"
        return
    result = parse_text(_wrap(block), page.name)
    assert not isinstance(result, list), _shown(result)
    marker = re.match(r"# validate: (\S+)", block)
    if marker is None:
        return
    found = _findings(block, tmp_path)
    if marker.group(1) == "clean":
        assert _shown([d for d in found if d.level is not Level.INFO]) == []
    else:
        assert marker.group(1) in {d.code for d in found}, _shown(found)


def _documented() -> dict[str, str]:
    """Each code documented in checks.md and the text of its section."""
    text = CHECKS.read_text(encoding="utf-8")
    heads = list(_HEADING.finditer(text))
    sections: dict[str, str] = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end() : end].split("\n## ", 1)[0]
        assert head.group(1) not in sections, f"{head.group(1)} is documented twice"
        sections[head.group(1)] = body
    return sections


SECTIONS = _documented()


def test_checks_md_documents_every_code_that_exists() -> None:
    reported = set(lang.CODES) | set(checks.codes())
    documented = set(SECTIONS)
    missing = sorted(reported - documented)
    assert not missing, (
        f"codes reported by stormgen but not documented in docs/reference/checks.md: {missing}. "
        "Add a section `### CODE — short title` with a ```storm block starting "
        "`# expect: CODE` (see the header of checks.md, 'Adding a code')."
    )
    extra = sorted(documented - reported)
    assert not extra, (
        f"codes documented in docs/reference/checks.md that no rule registers: {extra}. "
        "The codes stormgen reports are `stormgen.lang.CODES` (loading) plus every code "
        "registered with `@rule(...)` in src/stormgen/checks: register them, or remove "
        "their section."
    )


@pytest.mark.parametrize("code", sorted(SECTIONS))
def test_each_codes_example_reports_exactly_that_code(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = SECTIONS[code]
    examples = [b for b in _FENCE.findall(section) if _EXPECT.match(b)]
    assert len(examples) == 1, f"{code}: one ```storm block starting `# expect: {code}`"
    match = _EXPECT.match(examples[0])
    assert match is not None and match.group(1) == code
    assert "**Fix.**" in section, f"{code}: say how to fix it (**Fix.**)"
    monkeypatch.chdir(tmp_path)
    found = _findings(examples[0], Path("."))
    assert {d.code for d in found} == {code}, _shown(found)
    printed = "\n".join(line.plain for line in render_text(found)) + "\n"
    shown = _OUTPUT.search(section)
    assert shown is not None and shown.group(1) == printed, (
        f"{code}: after its example, checks.md shows what `stormgen validate example.storm` "
        f"prints:\n```text\n{printed}```"
    )


VERSIONING = REFERENCE / "versioning.md"
_PAIR = re.compile(r"\A# (before|after): (B[0-9]{3})\n")


def _pairs() -> dict[str, dict[str, str]]:
    """versioning.md's examples of `stormgen diff`: per code, its `before` and `after` model."""
    pairs: dict[str, dict[str, str]] = {}
    for block in _FENCE.findall(VERSIONING.read_text(encoding="utf-8")):
        match = _PAIR.match(block)
        if match is not None:
            side = pairs.setdefault(match.group(2), {})
            assert match.group(1) not in side, f"two `{match.group(1)}` blocks for {match.group(2)}"
            side[match.group(1)] = block
    return pairs


PAIRS = _pairs()


def test_versioning_md_documents_every_breaking_change() -> None:
    assert set(PAIRS) == set(BREAKING_CODES), (
        "every B-code of stormgen diff has a `# before: CODE` and an `# after: CODE` "
        "block in docs/reference/versioning.md"
    )


@pytest.mark.parametrize("code", sorted(PAIRS))
def test_each_breaking_changes_example_reports_exactly_that_code(code: str, tmp_path: Path) -> None:
    assert set(PAIRS[code]) == {"before", "after"}, code
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = tmp_path / "old" / "model.storm"
    new = tmp_path / "new" / "model.storm"
    old.write_text(PAIRS[code]["before"], encoding="utf-8")
    new.write_text(PAIRS[code]["after"], encoding="utf-8")
    for path in (old, new):
        assert _findings(path.read_text(encoding="utf-8"), tmp_path) == [], path
    found = diff_models(parse_model(old), parse_model(new))
    assert {d.code for d in found} == {code}, _shown(found)


ROOT = REFERENCE.parents[1]
# A citation of a file that lives outside the repository (the project's own pages are
# docs/...; tests/lang/spec_language.md is a copy kept for its examples).
_OUTSIDE = re.compile(r"language-v2|shared/spec|service\.md|§|(?<![\w/])language\.md")


def test_nothing_cites_a_file_outside_the_repository() -> None:
    places = [ROOT / "README.md"]
    for folder, pattern in (
        ("docs", "*.md"),
        ("grammar", "*.tx"),
        ("src", "*.py"),
        ("templates", "*"),
        ("examples", "*.storm"),
    ):
        places += [p for p in (ROOT / folder).rglob(pattern) if p.is_file()]
    cited = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in places
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert cited == [], "cite docs/reference/ (in the project's own words) instead:\n" + "\n".join(
        cited
    )


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    heads = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_links_between_the_pages_resolve(page: Path) -> None:
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        assert linked.is_file(), f"{page.name}: {target} names no file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: no heading for {target}"
