"""Every Mermaid diagram stormgen writes is parsed and rendered by real Mermaid in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import chromium
from playwright.sync_api import Page

from stormgen.lang import parse_model
from stormgen.render.diagram import context_map, event_flow, to_mermaid
from stormgen.render.docs import render_docs
from stormgen.render.targets import with_graph

ROOT = Path(__file__).resolve().parents[2]
MERMAID_JS = ROOT / "tests" / "data" / "mermaid-11.17.2.min.js"
EXAMPLES = [
    ROOT / "examples" / "coffee_shop.storm",
    ROOT / "examples" / "clinic.storm",
    ROOT / "examples" / "library" / "library.storm",
]
RENDER = """async (text) => {
  try {
    await mermaid.parse(text);
    const { svg } = await mermaid.render("d" + Math.floor(Math.random() * 1e9), text);
    return svg;
  } catch (e) {
    return "ERROR " + e.message;
  }
}"""

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium() as browser:
        pg = browser.new_page()
        pg.set_content("<!DOCTYPE html><html><body></body></html>")
        pg.add_script_tag(path=str(MERMAID_JS))
        pg.evaluate("() => mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' })")
        yield pg


def render(page: Page, text: str) -> str:
    svg: str = page.evaluate(RENDER, text)
    return svg


def test_mermaid_rejects_a_broken_diagram(page: Page) -> None:
    # The harness really parses: a missing closing pipe is an error.
    assert render(page, 'flowchart LR\n  a -->|"x" b\n').startswith("ERROR")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_diagram_renders(page: Page, example: Path) -> None:
    loaded = with_graph(parse_model(example))
    diagrams = [context_map(loaded.graph), event_flow(loaded.graph)]
    for context in loaded.model.contexts:
        diagrams.append(event_flow(loaded.graph, context.name))
        diagrams.append(context_map(loaded.graph, context.name))
    for diagram in diagrams:
        svg = render(page, to_mermaid(diagram))
        assert svg.startswith("<svg"), svg
        for node in diagram.nodes:
            assert node.label in svg


def test_docs_mermaid_blocks_render(page: Page) -> None:
    loaded = with_graph(parse_model(EXAMPLES[0]))
    blocks = [
        block
        for text in render_docs(loaded).values()
        for block in re.findall(r"```mermaid\n(.*?)```", text, re.S)
    ]
    # The index's context map; per context page its neighbours and its event flow.
    assert len(blocks) == 1 + 2 * len(loaded.model.contexts)
    for block in blocks:
        assert render(page, block).startswith("<svg")
