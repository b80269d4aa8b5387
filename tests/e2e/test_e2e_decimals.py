"""Decimals on the wire (issue 18, defect 6), over real HTTP.

`"total": "1e999999999"` was accepted (201), then the daily-sales view failed with
`decimal.Overflow` and parked the event for ever. Decimals in requests are now
plain-notation strings within 15 integer and 10 fraction digits, or a 422 naming the
field; events stored before the rule still read.
"""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import CUSTOMER, GATEWAY, MODEL, OPERATOR, Server

ORDER = {"customer": "Ada", "drinks": [{"name": "Tea", "price": "2.50"}], "total": "2.50"}
ATTACKS = ["1e999999999", "1e999999", " 3.5 ", "1_000", "NaN", "1234567890123456", "0.12345678901"]


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid"
    assert body["field"] == field
    assert f"'{field}'" in body["message"]
    assert "a decimal is a string in plain notation" in body["message"]


@pytest.mark.parametrize("text", ATTACKS)
def test_out_of_range_decimals_are_422_naming_the_field(server: Server, text: str) -> None:
    with server.client() as c:
        place = "/ordering/order/place-order"
        _refused(c.post(place, json={**ORDER, "total": text}, headers=CUSTOMER), "total")
        drinks = [{"name": "Tea", "price": "2.50"}, {"name": "Tea", "price": text}]
        response = c.post(place, json={**ORDER, "drinks": drinks}, headers=CUSTOMER)
        _refused(response, "drinks[1].price")
        charged = {"order_id": str(uuid.uuid4()), "amount": text}
        path = "/ordering/external/payment-gateway/card-charged"
        _refused(c.post(path, json=charged, headers=GATEWAY), "amount")


def test_json_numbers_are_not_decimals(server: Server) -> None:
    with server.client() as c:
        response = c.post(
            "/ordering/order/place-order", json={**ORDER, "total": 2.5}, headers=CUSTOMER
        )
        _refused(response, "total")


def test_valid_decimals_still_work_and_no_view_breaks(server: Server) -> None:
    with server.client() as c:
        before = c.get("/health").json()
        for text in ATTACKS:  # none of these reach the log
            c.post("/ordering/order/place-order", json={**ORDER, "total": text}, headers=CUSTOMER)
        widest = "123456789012345.0123456789"
        placed = c.post(
            "/ordering/order/place-order",
            json={**ORDER, "drinks": [{"name": "Urn", "price": widest}], "total": widest},
            headers=CUSTOMER,
        )
        assert placed.status_code == 201, placed.text
        assert placed.json()["events"][0]["data"]["total"] == widest
        health = server.wait_idle(c)
        # placed, the charge sent, charged, paid, ticket; the payment deadline's
        # instance started with its timer set, then ended
        assert health["position"] == before["position"] + 8
        assert health["parked"] == 0
        today = datetime.now(UTC).date().isoformat()
        sales = c.get(f"/ordering/views/daily-sales/{today}", headers=CUSTOMER).json()
        assert Decimal(sales["revenue"]) >= Decimal(widest)


def test_openapi_publishes_the_pattern(server: Server) -> None:
    from stormgen.runtime.codec import DECIMAL_PATTERN

    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    schemas = document["components"]["schemas"]
    place = schemas["OrderingPlaceOrder"]["properties"]["total"]
    assert place["type"] == "string"
    assert place["pattern"] == DECIMAL_PATTERN
    assert schemas["Drink"]["properties"]["price"]["pattern"] == DECIMAL_PATTERN


def test_events_stored_before_the_rule_still_read(workdir: Path, monkeypatch: Any) -> None:
    # an OrderPlaced with the attacker's total, written as the old API would have
    monkeypatch.chdir(workdir)
    from stormgen.cli.run import load_service

    service = load_service(MODEL)
    order_module = importlib.import_module(f"{service.package}.ordering.order")
    shared = importlib.import_module(f"{service.package}.shared")
    url = f"sqlite:///{workdir / f'old-{uuid.uuid4().hex[:6]}.db'}"
    order_id = uuid.uuid4()
    with service.open(url) as application:
        application.handle(
            order_module.PlaceOrder(
                order_id=order_id,
                customer="Mallory",
                drinks=(shared.Drink(name="Tea", price=Decimal("1e999999")),),
                total=Decimal("1e999999999"),
            ),
            actor="Customer",
        )
    server = Server(workdir, url).start()
    try:
        with server.client() as c:
            [placed] = [
                e
                for e in c.get("/events", headers=OPERATOR).json()["events"]
                if e["type"] == "Ordering.OrderPlaced"
            ]
            assert placed["data"]["total"] == "1E+999999999"
            assert placed["data"]["drinks"][0]["price"] == "1E+999999"
            state = c.get(f"/ordering/order/{order_id}", headers=CUSTOMER)
            assert state.status_code == 200
            assert state.json()["state"]["total"] == "1E+999999999"
            history = c.get(f"/ordering/order/{order_id}/events", headers=OPERATOR)
            assert history.status_code == 200
            assert history.json()["events"][0]["data"]["total"] == "1E+999999999"
    finally:
        server.stop()
