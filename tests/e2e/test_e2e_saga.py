"""The checkout saga of examples/shop_saga.storm served for real (`stormgen run
--test-clock`, SQLite) and driven over HTTP: a card the fake gateway declines
releases the reservation (the compensation) and cancels the order; an order the
customer never confirms is released and cancelled, once, when the test clock passes
its 15 minutes, for the reason the process's timer reads in the Orders view (a lookup;
on SQLite and PostgreSQL); either way the process instance reads as ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import REPO, STORMGEN, Server, wait_for

MODEL = REPO / "examples" / "shop_saga.storm"


class SagaServer(Server):
    def command(self) -> list[str]:
        options = ["--port", str(self.port), "--store", self.store, "--test-clock", *self.args]
        return [*STORMGEN, "run", str(MODEL), *options]


def _place(c: httpx.Client) -> str:
    body = {"sku": "mug", "quantity": 2, "total": "18.00"}
    response = c.post("/sales/order/place-order", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _instance(c: httpx.Client, key: str) -> dict[str, Any] | None:
    response = c.get(f"/sales/processes/checkout/{key}")
    return response.json() if response.status_code == 200 else None


def _order(c: httpx.Client, key: str) -> dict[str, Any]:
    response = c.get(f"/sales/order/{key}")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()["state"]
    return state


def _reservation(c: httpx.Client, key: str) -> dict[str, Any] | None:
    response = c.get(f"/sales/reservation/{key}")
    return response.json()["state"] if response.status_code == 200 else None


def _events(c: httpx.Client, type_: str) -> list[dict[str, Any]]:
    events = c.get("/events", params={"limit": 1000}).json()["events"]
    return [e for e in events if e["type"] == type_]


def test_a_declined_card_releases_the_reservation(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    server = SagaServer(tmp_path, store, None, "--fake", "PaymentGateway=ChargeDeclined")
    server.start()
    try:
        with server.client() as c:
            order = _place(c)
            ended = wait_for(lambda: (i := _instance(c, order)) and i["ended"] and i)
            assert ended["timers"] == [] and ended["state"]["paid"] is False
            server.wait_idle(c)
            assert _order(c, order)["status"] == "Cancelled"
            assert (_reservation(c, order) or {})["released"] is True
            cancelled = _events(c, "Sales.OrderCancelled")
            assert [e["data"]["reason"] for e in cancelled] == ["card declined: " + _reason(c)]
            assert len(_events(c, "Sales.ReservationReleased")) == 1
            row = c.get(f"/sales/views/reservations/{order}").json()
            assert row["released"] is True and row["quantity"] == 2
    finally:
        server.stop()


def _reason(c: httpx.Client) -> str:
    """The reason the fake gateway's decline carried (a placeholder it filled)."""
    declined = _events(c, "Sales.PaymentGateway.ChargeDeclined")
    assert len(declined) == 1, declined
    return str(declined[0]["data"]["reason"])


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'events.db'}"


def test_an_unpaid_order_is_released_after_15_minutes_once(tmp_path: Path, store: str) -> None:
    fake = "PaymentGateway=ConfirmationRequested"
    server = SagaServer(tmp_path, store, None, "--fake", fake).start()
    try:
        with server.client() as c:
            order = _place(c)
            wait_for(lambda: (_instance(c, order) or {}).get("timers"))
            wait_for(lambda: (_reservation(c, order) or {}).get("quantity") == 2)
            server.wait_idle(c)
            row = c.get(f"/sales/views/orders/{order}").json()
            assert row["status"] == "awaiting confirmation"
            moved = c.post("/_test/clock", json={"seconds": 14 * 60})
            assert moved.status_code == 200, moved.text
            server.wait_idle(c)
            assert _order(c, order)["status"] == "Placed"
            assert not (_instance(c, order) or {}).get("ended")

            moved = c.post("/_test/clock", json={"seconds": 2 * 60})
            assert moved.status_code == 200, moved.text
            ended = wait_for(lambda: (i := _instance(c, order)) and i["ended"] and i)
            assert ended["timers"] == []
            server.wait_idle(c)
            # moving the clock further fires nothing again
            c.post("/_test/clock", json={"seconds": 60 * 60})
            server.wait_idle(c)
            assert _order(c, order)["status"] == "Cancelled"
            assert (_reservation(c, order) or {})["released"] is True
            fired = _events(c, "$TimerFired")
            assert [e["data"]["timer"] for e in fired] == ["PaymentDue"]
            # the timer's handler read the Orders row: the bank had asked to confirm
            cancelled = _events(c, "Sales.OrderCancelled")
            assert [e["data"]["reason"] for e in cancelled] == [
                "the bank's confirmation never came"
            ]
            assert len(_events(c, "Sales.ReservationReleased")) == 1
    finally:
        server.stop()


def test_a_charged_and_reserved_order_is_confirmed(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    server = SagaServer(tmp_path, store, None).start()  # the fake answers Charged
    try:
        with server.client() as c:
            order = _place(c)
            ended = wait_for(lambda: (i := _instance(c, order)) and i["ended"] and i)
            assert ended["state"]["paid"] is True and ended["state"]["reserved"] is True
            assert ended["timers"] == []
            server.wait_idle(c)
            assert _order(c, order)["status"] == "Confirmed"
            assert (_reservation(c, order) or {})["released"] is False
            row = c.get(f"/warehouse/views/packing-list/{order}").json()
            assert row["confirmed"] is True and row["sku"] == "mug"
            c.post("/_test/clock", json={"seconds": 16 * 60})
            server.wait_idle(c)
            assert _events(c, "$TimerFired") == []
            assert _events(c, "Sales.OrderCancelled") == []
    finally:
        server.stop()
