"""A view with an `order by`: the list endpoint pages in that order, `after` being the
last row's key (`next_after`); an `after` naming no row is 422 naming `after`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from http_shop import Order, OrderPaid, OrderPlaced

from stormgen.runtime import Application, Envelope, Event, View
from stormgen.runtime.http import create_app


@dataclass(frozen=True)
class BigOrderRow:
    order_id: UUID
    total: Decimal = Decimal(0)
    paid: bool = False


class BigOrders(View[BigOrderRow]):
    """Orders, the largest first; the unpaid first among equal totals."""

    name = "Ordering.BigOrders"
    row_type = BigOrderRow
    key = "order_id"
    events = (OrderPlaced, OrderPaid)
    order = (("total", True), ("paid", False))

    def update(self, row: BigOrderRow, event: Event, envelope: Envelope) -> Any:
        if isinstance(event, OrderPlaced):
            return replace(row, total=event.total)
        return replace(row, paid=True)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Application]]:
    app = Application.open(
        f"sqlite:///{tmp_path / 'events.db'}", aggregates=[Order()], views=[BigOrders()]
    )
    with TestClient(create_app(app, tokens="", run_consumers=False)) as c:
        yield c, app
    app.close()


def test_an_ordered_view_pages_in_its_order(client: tuple[TestClient, Application]) -> None:
    http, app = client
    totals = ["3.50", "12.00", "7.25", "12.00", "0.99", "7.25", "100.00"]
    for total in totals:
        drink = {"name": "Latte", "price": total, "size": "Large"}
        body = {"customer": "Ada", "drinks": [drink], "total": total}
        response = http.post("/ordering/order/place-order", json=body)
        assert response.status_code == 201, response.text
    app.run_consumers()
    everything = http.get("/ordering/views/big-orders").json()["rows"]
    expected = sorted(everything, key=lambda r: (-Decimal(r["total"]), r["order_id"]))
    assert [r["order_id"] for r in everything] == [r["order_id"] for r in expected]
    assert [r["total"] for r in everything][:2] == ["100.00", "12.00"]
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 3}
    while True:
        page = http.get("/ordering/views/big-orders", params=query)
        assert page.status_code == 200, page.text
        seen += [r["order_id"] for r in page.json()["rows"]]
        query["after"] = page.json()["next_after"]
        if query["after"] is None:
            break
    assert seen == [r["order_id"] for r in expected]


def test_after_naming_no_row_is_422(client: tuple[TestClient, Application]) -> None:
    http, _ = client
    missing = "00000000-0000-0000-0000-000000000001"
    response = http.get("/ordering/views/big-orders", params={"after": missing})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid" and body.get("field") == "after", body
    assert "no row" in body["message"]
