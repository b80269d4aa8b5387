"""The board in real headless Chromium: loads offline, shows every sticky, chains, search."""

from __future__ import annotations

import importlib.util
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
COFFEE_SHOP = ROOT / "examples" / "coffee_shop.storm"
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.browser


def run_board(model: Path, out: Path) -> Path:
    """Write a model's board with ``stormgen board``, as a user would; return the page."""
    done = subprocess.run(
        [sys.executable, "-m", "stormgen", "board", str(model), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def board_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_board(COFFEE_SHOP, tmp_path_factory.mktemp("board") / "coffee_shop.html")


class Opened:
    """A page with the board loaded, and what it asked the network and console."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1600, "height": 1000})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def refs(self, selector: str) -> list[str]:
        result: list[str] = self.page.eval_on_selector_all(
            selector, "els => els.map(e => e.dataset.id)"
        )
        return result


@pytest.fixture
def opened(browser: Browser, board_file: Path) -> Iterator[Opened]:
    o = Opened(browser, board_file)
    yield o
    o.page.close()


def test_loads_offline_without_errors(opened: Opened, board_file: Path) -> None:
    assert opened.errors == []
    assert opened.requests == [board_file.as_uri()]
    ARTIFACTS.mkdir(exist_ok=True)
    opened.page.screenshot(path=str(ARTIFACTS / "board.png"))


def test_every_sticky_is_shown(opened: Opened) -> None:
    loaded = with_graph(parse_model(COFFEE_SHOP))
    shown: dict[str, set[str]] = {}
    rows: list[dict[str, Any]] = opened.page.eval_on_selector_all(
        ".note:not([data-ghost])",
        "els => els.map(e => ({id: e.dataset.id, kind: e.dataset.kind,"
        " visible: e.offsetWidth > 0 && e.offsetHeight > 0}))",
    )
    assert all(r["visible"] for r in rows)
    for r in rows:
        shown.setdefault(r["kind"], set()).add(r["id"])
    m = loaded.model
    aggregates = [a for c in m.contexts for a in c.aggregates]
    externals = [x for c in m.contexts for x in c.externals]
    assert len(shown["aggregate"]) == len(aggregates) == 2
    assert len(shown["external"]) == len(externals) == 1
    assert len(shown["command"]) == sum(len(o.commands) for o in (*aggregates, *externals))
    assert len(shown["event"]) == sum(len(o.events) for o in (*aggregates, *externals))
    assert len(shown["policy"]) == sum(len(c.policies) for c in m.contexts)
    assert len(shown["view"]) == sum(len(c.views) for c in m.contexts)
    assert len(shown["actor"]) == len(m.actors)
    assert len(shown["hotspot"]) == 2
    lanes = opened.page.eval_on_selector_all(
        ".lane > h2", "els => els.map(e => e.firstChild.textContent)"
    )
    assert lanes == [c.name for c in m.contexts]


def test_click_on_an_event_lights_its_chain(opened: Opened) -> None:
    page = opened.page
    page.click('.note[data-id="event:Ordering.OrderPaid"]:not([data-ghost])')
    lit = set(opened.refs(".note.hl"))
    assert {
        "actor:Customer",
        "command:Ordering.PlaceOrder",
        "event:Ordering.OrderPlaced",
        "policy:Ordering.ChargeOnOrder",
        "command:Ordering.PaymentGateway.ChargeCard",
        "event:Ordering.PaymentGateway.CardCharged",
        "policy:Ordering.PaidWhenCharged",
        "command:Ordering.MarkPaid",
        "event:Ordering.OrderPaid",
        "view:Ordering.OrderHistory",
        "view:Ordering.DailySales",
        "policy:Bar.QueuePaidOrder",
        "command:Bar.OpenTicket",
        "event:Bar.TicketOpened",
        "view:Display.Pickup",
        "aggregate:Ordering.Order",
        "aggregate:Bar.Ticket",
    } <= lit
    for outside in (
        "event:Ordering.PaymentGateway.CardDeclined",
        "policy:Ordering.CancelWhenDeclined",
        "command:Ordering.Cancel",
        "command:Bar.StartBrewing",
        "actor:Barista",
    ):
        assert outside not in lit
        opacity = page.eval_on_selector(
            f'.note[data-id="{outside}"]', "e => getComputedStyle(e).opacity"
        )
        assert float(opacity) < 0.5
    # The copy of OrderPaid drawn in Bar's lane lights up with it.
    assert page.eval_on_selector(
        '.note[data-ghost][data-id="event:Ordering.OrderPaid"]', "e => e.classList.contains('hl')"
    )
    # The panel shows the event's fields.
    panel = page.inner_text("#panel")
    assert "Ordering.OrderPaid" in panel and "amount: decimal" in panel
    assert "Bar.QueuePaidOrder" in panel
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "board-chain.png"))
    # Escape clears it all.
    page.keyboard.press("Escape")
    assert opened.refs(".note.hl") == []
    assert not page.is_visible("#panel")
    assert opened.errors == []


def test_click_on_a_command_shows_its_fields(opened: Opened) -> None:
    opened.page.click('.note[data-id="command:Ordering.PlaceOrder"]')
    panel = opened.page.inner_text("#panel")
    assert "customer: str pii" in panel
    assert 'len(drinks) > 0 else "an order needs at least one drink"' in panel
    title = opened.page.get_attribute('.note[data-id="command:Ordering.PlaceOrder"]', "title")
    assert title is not None and "drinks: list[Drink]" in title


def test_search(opened: Opened) -> None:
    page = opened.page
    page.fill("#search", "ticket")
    matches = opened.refs(".note.match")
    every = page.eval_on_selector_all(
        ".note",
        "els => els.filter(e => (e.dataset.id + e.textContent).toLowerCase()"
        ".includes('ticket')).length",
    )
    assert len(matches) == every > 0
    assert "command:Bar.OpenTicket" in matches and "command:Ordering.PlaceOrder" not in matches
    assert page.inner_text("#matches") == f"{every} matches"
    page.press("#search", "Enter")
    assert page.inner_text("#matches") == f"1 / {every}"
    page.fill("#search", "")
    assert opened.refs(".note.match") == []
    assert opened.errors == []


def test_jump_to_a_context(opened: Opened) -> None:
    page = opened.page
    page.select_option("#lanes", label="Display")
    top, most = page.evaluate(
        "() => { const v = document.getElementById('viewport');"
        " return [v.scrollTop, v.scrollHeight - v.clientHeight]; }"
    )
    lane_top = page.eval_on_selector(".lane:last-of-type", "e => e.offsetTop")
    assert lane_top > 0
    assert top == pytest.approx(min(lane_top, most), abs=1)
    assert opened.errors == []


def test_zoom_keeps_the_view_centred(opened: Opened) -> None:
    page = opened.page
    page.set_viewport_size({"width": 1000, "height": 500})  # room to scroll either way
    # The board opened fitted to the window; the middle button toggles it to 100%.
    assert page.inner_text("#zoomlevel") != "100%"
    page.click('[data-zoom="0"]')
    assert page.inner_text("#zoomlevel") == "100%"
    page.select_option("#lanes", label="Bar")
    centre = (
        "() => { const v = document.getElementById('viewport');"
        " const s = parseFloat(document.getElementById('zoomlevel').textContent) / 100;"
        " return (v.scrollTop + v.clientHeight / 2) / s; }"
    )
    before = page.evaluate(centre)
    page.click('[data-zoom="-1"]')
    assert page.inner_text("#zoomlevel") == "85%"
    transform = page.eval_on_selector("#board", "e => e.style.transform")
    assert transform == "scale(0.85)"
    assert page.evaluate(centre) == pytest.approx(before, abs=2)
    assert opened.errors == []


def test_keyboard_opens_a_note(opened: Opened) -> None:
    page = opened.page
    page.focus('.note[data-id="event:Bar.DrinksReady"]')
    page.keyboard.press("Enter")
    assert "Bar.DrinksReady" in page.inner_text("#panel")
    assert "view:Display.Pickup" in opened.refs(".note.hl")
    assert opened.errors == []


def synth_model(tmp_path: Path, aggregates: int) -> Path:
    """A synthetic model from benchmarks/synth.py (chained contexts, 10 aggregates each)."""
    spec = importlib.util.spec_from_file_location("synth", ROOT / "benchmarks" / "synth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "synth.storm"
    path.write_text(module.synth(aggregates), encoding="utf-8")
    return path


def test_a_bigger_board(browser: Browser, tmp_path: Path) -> None:
    model = synth_model(tmp_path, 60)
    out = run_board(model, tmp_path / "synth.html")
    opened = Opened(browser, out)
    try:
        loaded = with_graph(parse_model(model))
        expected: dict[str, int] = {}
        for _, data in loaded.graph.nodes(data=True):
            expected[data["kind"]] = expected.get(data["kind"], 0) + 1
        rows: list[dict[str, str]] = opened.page.eval_on_selector_all(
            ".note:not([data-ghost])",
            "els => els.map(e => ({id: e.dataset.id, kind: e.dataset.kind}))",
        )
        for kind in ("aggregate", "command", "event", "policy", "view", "actor"):
            assert len({r["id"] for r in rows if r["kind"] == kind}) == expected[kind], kind
        assert len(opened.page.query_selector_all(".lane")) == 6
        # C2's A20Created is consumed by C3, whose A30Created by C4, and so on.
        opened.page.click('.note[data-id="event:C2.A20Created"]:not([data-ghost])')
        lit = set(opened.refs(".note.hl"))
        assert {"policy:C3.CreateFromUpstream30", "event:C5.A50Created"} <= lit
        assert "command:C1.CreateA10" in lit  # upstream: the chain that created A20
        assert "event:C2.A21Created" not in lit
        # A search finds notes in lanes far below the fold.
        opened.page.fill("#search", "A57Counted")
        # The event, and the policy whose note says "when A57Counted".
        matches = opened.refs(".note.match")
        assert matches == ["event:C5.A57Counted", "policy:C5.ReopenWhenCounted57"]
        opened.page.press("#search", "Enter")
        assert opened.page.evaluate("document.getElementById('viewport').scrollTop") > 1000
        assert opened.errors == []
    finally:
        opened.page.close()
