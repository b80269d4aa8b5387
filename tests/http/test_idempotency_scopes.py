"""Whose an Idempotency-Key is: a real server (uvicorn in a thread), a real client
(httpx), a real SQLite file.

A client's key belongs to its caller (its bearer token) and its command type; the ids
policies give their commands live where no client can write; a key reused for another
request is a 422, the same request again a replay.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_shop import open_shop
from thread_server import ThreadServer

from stormgen.runtime import Application, RetrySettings, command_id
from stormgen.runtime.http import create_app

FAST = RetrySettings(max_attempts=2, base_delay=0.001, max_delay=0.01, idle_timeout=0.05)
TOKENS = "c1=Customer,c2=Customer,b1=Barista,g1=PaymentGateway"
ADA = {"Authorization": "Bearer c1"}
BOB = {"Authorization": "Bearer c2"}
BARISTA = {"Authorization": "Bearer b1"}
GATEWAY = {"Authorization": "Bearer g1"}
PLACE = "/ordering/order/place-order"

ORDER = {
    "customer": "Ada",
    "drinks": [{"name": "Latte", "price": "3.50", "size": "Large"}],
    "total": "3.50",
}
JUNK = {"customer": "Bob", "drinks": [{"name": "Water", "price": "0.10"}], "total": "0.10"}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Application]:
    app = open_shop(f"sqlite:///{tmp_path / 'events.db'}", retry=FAST)
    yield app
    app.close()


@pytest.fixture
def memory_shop() -> Iterator[Application]:
    """A store without the command writer (commands on the request threads)."""
    app = open_shop(f"memory://idem-{uuid.uuid4().hex}", retry=FAST)
    yield app
    app.close()


def serve(shop: Application, tokens: str) -> ThreadServer:
    # the tests run the views and policies themselves (run_consumers), to be deterministic
    return ThreadServer(create_app(shop, tokens=tokens, run_consumers=False))


@pytest.fixture
def secured(shop: Application) -> Iterator[httpx.Client]:
    with serve(shop, TOKENS) as server, httpx.Client(base_url=server.url, timeout=20) as c:
        yield c


@pytest.fixture
def open_api(shop: Application) -> Iterator[httpx.Client]:
    with serve(shop, "") as server, httpx.Client(base_url=server.url, timeout=20) as c:
        yield c


def place(c: httpx.Client, headers: dict[str, str], **body: Any) -> httpx.Response:
    response = c.post(PLACE, json={**ORDER, **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response


def test_a_client_cannot_use_a_policys_key_to_stop_another_customers_order(
    secured: httpx.Client, shop: Application
) -> None:
    """Bob watches the log, takes the id of Ada's OrderPlaced and posts a junk order
    under the key ChargeOnOrder derives from it: Ada's order is charged all the same."""
    victim = place(secured, ADA).json()
    placed = victim["events"][0]["id"]
    policy_key = str(command_id("Ordering.ChargeOnOrder", placed, 0))
    junk = secured.post(PLACE, json=JUNK, headers={**BOB, "Idempotency-Key": policy_key})
    assert junk.status_code == 201, junk.text
    assert "Idempotent-Replayed" not in junk.headers
    shop.run_consumers()
    state = secured.get(f"/ordering/order/{victim['id']}", headers=ADA).json()
    assert state["state"]["status"] == "Paid"
    ticket = secured.get(f"/bar/ticket/{victim['id']}", headers=BARISTA)
    assert ticket.status_code == 200, ticket.text
    assert shop.parked() == []
    # Bob's own retry is still his own replay
    again = secured.post(PLACE, json=JUNK, headers={**BOB, "Idempotency-Key": policy_key})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == junk.json()["id"]


def test_a_key_another_token_used_is_not_replayed_to_it(secured: httpx.Client) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    ada = place(secured, {**ADA, **key}).json()
    bob = place(secured, {**BOB, **key}, customer="Bob")
    assert "Idempotent-Replayed" not in bob.headers
    assert bob.json()["id"] != ada["id"]
    assert "Ada" not in bob.text
    assert bob.json()["events"][0]["data"]["customer"] == "Bob"
    # each caller's retry replays that caller's own answer
    for headers, first, name in ((ADA, ada, "Ada"), (BOB, bob.json(), "Bob")):
        retry = place(secured, {**headers, **key}, customer=name)
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json() == first


def ticket_for(c: httpx.Client, shop: Application, headers: dict[str, str]) -> str:
    """A paid order's ticket, opened by the policies."""
    order_id: str = place(c, headers).json()["id"]
    shop.run_consumers()
    return order_id


def test_a_baristas_key_used_by_a_place_order_is_the_baristas_own(
    secured: httpx.Client, shop: Application
) -> None:
    ticket = ticket_for(secured, shop, ADA)
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    place(secured, {**ADA, **key})
    brew = secured.post(f"/bar/ticket/{ticket}/start-brewing", json={}, headers={**BARISTA, **key})
    assert brew.status_code == 200, brew.text
    assert "Idempotent-Replayed" not in brew.headers
    assert [e["type"] for e in brew.json()["events"]] == ["Bar.BrewingStarted"]
    state = secured.get(f"/bar/ticket/{ticket}", headers=BARISTA).json()
    assert state["state"]["status"] == "Brewing"


def test_one_callers_key_on_two_command_types_is_two_keys(
    open_api: httpx.Client, shop: Application
) -> None:
    """In open mode every request is one caller's: the command type still scopes keys."""
    ticket = ticket_for(open_api, shop, {})
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    place(open_api, key)
    brew = open_api.post(f"/bar/ticket/{ticket}/start-brewing", json={}, headers=key)
    assert brew.status_code == 200, brew.text
    assert [e["type"] for e in brew.json()["events"]] == ["Bar.BrewingStarted"]


def test_a_key_reused_for_another_request_is_a_422(secured: httpx.Client) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = place(secured, {**ADA, **key})
    # the same request again (keys in another order): the first answer, replayed
    same = {"total": "3.50", **ORDER}
    again = secured.post(PLACE, json=same, headers={**ADA, **key})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # another body under the same key: refused, nothing written
    before = secured.get("/health").json()["position"]
    other = secured.post(PLACE, json={**ORDER, "total": "9.00"}, headers={**ADA, **key})
    assert other.status_code == 422, other.text
    body = other.json()
    assert body["status"] == 422 and body["error"] == "key_reused"
    assert "different request" in body["message"]
    assert secured.get("/health").json()["position"] == before
    # a command on an instance: the path is part of the request
    order_id = first.json()["id"]
    cancel_key = {**ADA, "Idempotency-Key": f"cancel-{uuid.uuid4()}"}
    cancel = secured.post(
        f"/ordering/order/{order_id}/cancel", json={"reason": "x"}, headers=cancel_key
    )
    assert cancel.status_code == 200, cancel.text
    elsewhere = place(secured, ADA).json()["id"]
    moved = secured.post(
        f"/ordering/order/{elsewhere}/cancel", json={"reason": "x"}, headers=cancel_key
    )
    assert moved.status_code == 422 and moved.json()["error"] == "key_reused"
    state = secured.get(f"/ordering/order/{elsewhere}", headers=ADA).json()
    assert state["state"]["status"] == "Placed"


def test_a_systems_event_key_is_scoped_and_fingerprinted_too(secured: httpx.Client) -> None:
    order_id = place(secured, ADA).json()["id"]
    route = "/ordering/external/payment-gateway/card-charged"
    key = {**GATEWAY, "Idempotency-Key": f"charge-{uuid.uuid4()}"}
    charged = {"order_id": order_id, "amount": "3.50"}
    first = secured.post(route, json=charged, headers=key)
    assert first.status_code == 202, first.text
    again = secured.post(route, json=charged, headers=key)
    assert again.status_code == 202 and again.json() == first.json()
    other = secured.post(route, json={**charged, "amount": "1.00"}, headers=key)
    assert other.status_code == 422 and other.json()["error"] == "key_reused"


def test_a_reused_key_is_a_422_without_the_command_writer_too(memory_shop: Application) -> None:
    with serve(memory_shop, TOKENS) as server, httpx.Client(base_url=server.url) as c:
        key = {**ADA, "Idempotency-Key": "k"}
        first = place(c, key)
        assert place(c, key).json() == first.json()
        other = c.post(PLACE, json={**ORDER, "customer": "Eve"}, headers=key)
        assert other.status_code == 422 and other.json()["error"] == "key_reused"
