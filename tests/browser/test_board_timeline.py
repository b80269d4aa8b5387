"""The board of a real-sized model in Chromium: a timeline, not a catalogue.

tests/browser/cargo.storm has aggregates of five and six commands, commands with several
conditional emits (one event emitted under two conditions), external systems in every
context, long names and long hotspots, and an actor that issues nothing. The tests
measure the page as Chromium lays it out and keep screenshots in test-artifacts/board/.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import chromium
from playwright.sync_api import Browser, Page

from stormgen.lang import parse_model
from stormgen.render.targets import with_graph

ROOT = Path(__file__).resolve().parents[2]
CARGO = Path(__file__).resolve().parent / "cargo.storm"
ARTIFACTS = ROOT / "test-artifacts" / "board"

pytestmark = pytest.mark.browser

# Every note as Chromium placed it: its element, section (lane) and track (row).
NOTES_JS = """
() => [...document.querySelectorAll('.note')].map(n => {
  const r = n.getBoundingClientRect();
  const section = n.closest('section');
  const tracks = [...section.querySelectorAll('.track')];
  const cy = n.offsetTop + n.offsetHeight / 2;
  return {
    id: n.dataset.id, kind: n.dataset.kind, ghost: !!n.dataset.ghost, copy: !!n.dataset.copy,
    section: [...document.querySelectorAll('section')].indexOf(section),
    track: tracks.findIndex(t => t.offsetTop <= cy && cy < t.offsetTop + t.offsetHeight),
    left: r.left, right: r.right, top: r.top, bottom: r.bottom,
  };
})
"""


def stormgen(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stormgen", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def graph() -> Any:
    return with_graph(parse_model(CARGO)).graph


def edges(graph: Any, kind: str) -> list[tuple[str, str]]:
    """The model graph's edges of one kind, once per pair."""
    return list(dict.fromkeys((u, v) for u, v, d in graph.edges(data=True) if d["kind"] == kind))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def board_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cargo") / "cargo.html"
    stormgen("board", str(CARGO), "-o", str(out))
    return out


@pytest.fixture
def page(browser: Browser, board_file: Path) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(board_file.as_uri())
    page.wait_for_load_state("load")
    yield page
    page.close()
    assert errors == []


def notes_of(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(NOTES_JS)
    return found


def one(notes: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """The original note of an element (not a ghost, not a copy)."""
    (note,) = [n for n in notes if n["id"] == ref and not n["ghost"] and not n["copy"]]
    return note


def test_each_command_stands_level_with_the_events_it_emits(page: Page, graph: Any) -> None:
    notes = notes_of(page)
    emits: dict[str, list[str]] = {}
    for command, event in edges(graph, "emits"):
        emits.setdefault(command, []).append(event)
    aggregates = [n for n, d in graph.nodes(data=True) if d["kind"] == "aggregate"]
    for aggregate in aggregates:
        commands = [v for u, v in edges(graph, "contains") if u == aggregate and v in emits]
        assert len(commands) >= 5
        # A timeline: no two commands of an aggregate stacked in one column.
        lefts = sorted(round(one(notes, c)["left"]) for c in commands)
        assert len(set(lefts)) == len(lefts), aggregate
        for command in commands:
            c = one(notes, command)
            beside = []
            for event in emits[command]:
                # The event (or its copy) in the next column, in the command's row.
                near = [
                    n
                    for n in notes
                    if n["id"] == event
                    and (n["section"], n["track"]) == (c["section"], c["track"])
                    and 0 <= n["left"] - c["right"] < (c["right"] - c["left"]) / 2
                ]
                assert len(near) == 1, (command, event)
                beside.append(near[0])
            # The first of them level with the command, the others under it.
            assert min(n["top"] for n in beside) == pytest.approx(c["top"], abs=1), command


def test_a_policy_stands_between_its_event_and_its_command(page: Page, graph: Any) -> None:
    notes = notes_of(page)
    policies = [n for n, d in graph.nodes(data=True) if d["kind"] == "policy"]
    assert len(policies) == 6
    for policy in policies:
        p = one(notes, policy)
        (event,) = [u for u, v in edges(graph, "triggers") if v == policy]
        # The event in the policy's lane: its own, or the copy drawn there.
        (e,) = [
            n for n in notes if n["id"] == event and n["section"] == p["section"] and not n["copy"]
        ]
        assert e["right"] < p["left"], policy
        for _, command in [(u, v) for u, v in edges(graph, "issues") if u == policy]:
            assert p["right"] < one(notes, command)["left"], policy


ARROWS_JS = """
() => [...document.querySelectorAll('svg.links path')].map(p => {
  const a = p.getPointAtLength(0), b = p.getPointAtLength(p.getTotalLength());
  const section = p.closest('section');
  const at = (ref) => [...section.querySelectorAll('.note')].filter(n => n.dataset.id === ref)
    .map(n => ({left: n.offsetLeft, top: n.offsetTop, w: n.offsetWidth, h: n.offsetHeight}));
  return {kind: p.dataset.kind, from: p.dataset.from, to: p.dataset.to,
          start: [a.x, a.y], end: [b.x, b.y],
          sources: at(p.dataset.from), targets: at(p.dataset.to)};
})
"""


def test_arrows_link_commands_events_and_policies(page: Page, graph: Any) -> None:
    arrows: list[dict[str, Any]] = page.evaluate(ARROWS_JS)
    drawn = [(a["kind"], a["from"], a["to"]) for a in arrows]
    aggregate_commands = {
        v for u, v in edges(graph, "contains") if graph.nodes[u]["kind"] == "aggregate"
    }
    for command, event in edges(graph, "emits"):
        if command in aggregate_commands:
            # One arrow, however many conditional emits link the pair.
            assert drawn.count(("emits", command, event)) == 1, (command, event)
    for kind in ("triggers", "issues"):
        for u, v in edges(graph, kind):
            if graph.nodes[u]["kind"] in ("event", "policy") and graph.nodes[v]["kind"] in (
                "policy",
                "command",
            ):
                assert drawn.count((kind, u, v)) == 1, (kind, u, v)
    for a in arrows:
        # From a note's right side to another's left side.
        assert any(
            abs(a["start"][0] - (s["left"] + s["w"])) <= 1
            and s["top"] <= a["start"][1] <= s["top"] + s["h"]
            for s in a["sources"]
        ), a
        assert any(
            abs(a["end"][0] - t["left"]) <= 1 and t["top"] <= a["end"][1] <= t["top"] + t["h"]
            for t in a["targets"]
        ), a


# Each rendered line of a note's name, found from where its characters stand.
LINES_JS = """
(selector) => [...document.querySelectorAll(selector || '.note')].map(n => {
  const b = n.querySelector('b') || n;
  const walker = document.createTreeWalker(b, NodeFilter.SHOW_TEXT);
  const breaks = []; let text = ''; let prev = null;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    for (let i = 0; i < node.length; i++) {
      const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
      const rect = r.getClientRects()[0];
      if (rect && node.data[i] !== ' ') {
        if (prev !== null && rect.top > prev + 2) breaks.push(text.length);
        prev = rect.top;
      }
      text += node.data[i];
    }
  }
  return {id: n.dataset.id, kind: n.dataset.kind, text, breaks,
          cut: n.scrollHeight > n.clientHeight + 1 || b.scrollWidth > b.clientWidth + 1};
})
"""


def between_words(text: str, i: int) -> bool:
    """Whether a line may start at ``text[i]``: after a space or underscore, or at a hump."""
    before, here = text[i - 1], text[i]
    after = text[i + 1] if i + 1 < len(text) else ""
    if before in " _" or here == " ":
        return True
    if not here.isupper():
        return False
    return before.islower() or before.isdigit() or (before.isupper() and after.islower())


def test_names_break_only_between_words_and_are_never_cut(page: Page, graph: Any) -> None:
    lines: list[dict[str, Any]] = page.evaluate(LINES_JS)
    wrapped = 0
    for note in lines:
        assert not note["cut"], note
        for i in note["breaks"]:
            assert between_words(note["text"], i), (note["text"], i)
        wrapped += bool(note["breaks"])
    assert wrapped >= 10  # long names do wrap, at their humps
    names = {n["text"] for n in lines}
    assert "RegisterHandlingEvent" in names  # one text, cut into lines only by layout


def test_the_panel_title_breaks_only_between_words(page: Page) -> None:
    page.click('.note[data-id="event:Booking.CargoArrivedAtDestination"]:not([data-copy])')
    (title,) = page.evaluate(LINES_JS, "#panel h2")
    assert title["text"] == "Booking.CargoArrivedAtDestination"
    assert title["breaks"]  # too long for one line of the panel
    for i in title["breaks"]:
        assert between_words(title["text"], i) or title["text"][i - 1] == ".", i


def test_hotspots_are_shown_in_full(page: Page, graph: Any) -> None:
    lines: list[dict[str, Any]] = page.evaluate(LINES_JS)
    texts = [d["element"].text for _, d in graph.nodes(data=True) if d["kind"] == "hotspot"]
    shown = {n["text"]: n for n in lines if n["kind"] == "hotspot"}
    assert sorted(shown) == sorted(texts)
    for text in texts:
        assert len(text) > 60
        assert not shown[text]["cut"], text
        assert len(shown[text]["breaks"]) >= 2  # wrapped over several lines, not elided


def test_opens_fitted_to_the_window(page: Page) -> None:
    notes = notes_of(page)
    width = page.evaluate("window.innerWidth")
    for n in notes:
        assert n["left"] >= 0, n["id"]
        assert n["right"] <= width, n["id"]
    assert any(n["kind"] == "view" for n in notes)
    level = page.inner_text("#zoomlevel")
    assert level.endswith("%") and 40 <= int(level[:-1]) < 100
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cargo-1600x900.png"))
    # The 100% toggle still works, and back.
    page.click('[data-zoom="0"]')
    assert page.inner_text("#zoomlevel") == "100%"
    page.click('[data-zoom="0"]')
    assert page.inner_text("#zoomlevel") == level


def test_wide_screenshot_and_a_lit_chain(browser: Browser, board_file: Path) -> None:
    page = browser.new_page(viewport={"width": 2800, "height": 1800})
    try:
        page.goto(board_file.as_uri())
        assert page.inner_text("#zoomlevel") == "100%"  # it fits at full size
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "cargo-2800x1800.png"))
        page.click('.note[data-id="event:Booking.CargoArrivedAtDestination"]:not([data-copy])')
        lit = set(page.eval_on_selector_all(".note.hl", "els => els.map(e => e.dataset.id)"))
        assert {
            "command:Booking.RecordHandlingOfCargo",
            "policy:Booking.DeclareOnArrival",
            "command:Booking.CustomsAuthority.DeclareCargoToCustoms",
            "command:Booking.CancelCargoBooking",
            "command:Handling.RegisterHandlingEvent",
        } <= lit
        page.screenshot(path=str(ARTIFACTS / "cargo-chain-2800x1800.png"))
    finally:
        page.close()


def test_an_actor_linked_to_nothing_stands_with_the_other_actors(page: Page) -> None:
    notes = notes_of(page)
    auditor = one(notes, "actor:Auditor")
    strip = [n for n in notes if n["section"] == auditor["section"]]
    assert {n["id"] for n in strip} == {
        "actor:Shipper",
        "actor:BookingClerk",
        "actor:HandlingOperator",
        "actor:Auditor",
    }
    titles = page.eval_on_selector_all("section > h2", "els => els.map(e => e.firstChild.data)")
    assert "Shared" not in titles
    assert "no command yet" in page.inner_text('.note[data-id="actor:Auditor"]')


def test_the_context_map_is_large_and_shows_external_systems(
    browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "map.html"
    stormgen("graph", str(CARGO), "-f", "html", "-o", str(out))
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    try:
        page.goto(out.as_uri())
        box = page.eval_on_selector(".diagram svg", "e => e.getBoundingClientRect().toJSON()")
        assert box["width"] >= 0.8 * 1600 or box["height"] >= 0.7 * 900, box
        text = page.inner_text(".diagram")
        for name in ("Booking", "Handling", "Tracking", "CustomsAuthority", "SmsGateway"):
            assert name in text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "cargo-context-map-1600x900.png"))
    finally:
        page.close()
