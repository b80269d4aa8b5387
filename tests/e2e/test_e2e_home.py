"""The home page (``GET /``) and the board (``/board``) of a served model, in Chromium."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from e2e_support import CUSTOMER, REPO, Server

pytestmark = pytest.mark.browser

READER_TOKEN = "o1"  # an operator's token: the log is for operators


def _browser_support() -> ModuleType:
    path = REPO / "tests" / "browser" / "browser_support.py"
    spec = importlib.util.spec_from_file_location("browser_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served(workdir: Path) -> Iterator[Server]:
    running = Server(workdir, f"sqlite:///{workdir / f'home-{uuid.uuid4().hex[:8]}.db'}")
    yield running.start()
    running.stop()


def test_home_page_in_chromium(served: Server) -> None:
    with served.client() as client:
        home = client.get("/")
        assert home.status_code == 200
        assert home.headers["content-type"].startswith("text/html")
        order = {"customer": "Ada", "drinks": [{"name": "latte", "price": "3.50"}]}
        placed = client.post(
            "/ordering/order/place-order", json={**order, "total": "3.50"}, headers=CUSTOMER
        )
        assert placed.status_code == 201, placed.text
        served.wait_idle(client)
    with _browser_support().chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{served.url}/", wait_until="load")
        assert page.inner_text("h1") == "CoffeeShop"
        assert page.locator("#contexts li").all_inner_texts() == ["Ordering", "Bar", "Display"]
        # health and each consumer's lag, polled from /health
        page.wait_for_function("document.getElementById('status').textContent === 'ok'")
        names = page.locator("#consumers tbody td:first-child").all_inner_texts()
        assert {"Ordering.OrderHistory", "Display.Pickup"} <= set(names)
        # the log needs a token: the page asks for one, then tails the log live
        page.wait_for_selector("#token-form:not([hidden])")
        page.fill("#token", READER_TOKEN)
        page.click("#token-form button")
        page.wait_for_function(
            "[...document.querySelectorAll('#tail li')]"
            ".some(li => li.textContent.includes('Bar.TicketOpened'))"
        )
        # live: an order placed now shows up without a reload
        with served.client() as client:
            again = client.post(
                "/ordering/order/place-order", json={**order, "total": "3.50"}, headers=CUSTOMER
            )
        assert again.status_code == 201, again.text
        page.wait_for_function(
            "[...document.querySelectorAll('#tail li')]"
            ".filter(li => li.textContent.includes('Ordering.OrderPlaced')).length === 2"
        )
        # the documentation and the model's board are linked from it
        links = page.eval_on_selector_all("nav a", "links => links.map(a => a.pathname)")
        assert links == ["/docs", "/board", "/openapi.json", "/health"]
        page.click("text=Event Storming board")
        page.wait_for_selector("text=OrderPlaced")
        assert "CoffeeShop" in page.title()
        assert errors == []
