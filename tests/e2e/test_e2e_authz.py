"""Who may read what (issue 18, defect 9; issue 17, item 4), over real HTTP.

The raw log (`/events`, `/events/stream`, an instance's `/events`, `/failures` and its
retry) answers an `operator` token only; actors' tokens read views and instances'
state; an external system's token only posts that system's events; without a token
nothing but `/health` and the documents answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import BARISTA, CUSTOMER, GATEWAY, OPERATOR, Server

ORDER = {"customer": "Grace", "drinks": [{"name": "Mocha", "price": "4.20"}], "total": "4.20"}
NOBODY: dict[str, str] = {}
WHO = {"operator": OPERATOR, "customer": CUSTOMER, "gateway": GATEWAY, "none": NOBODY}


@pytest.fixture(scope="module")
def order_id(server: Server) -> str:
    with server.client() as c:
        placed = c.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER)
        assert placed.status_code == 201, placed.text
        server.wait_idle(c)
        found: str = placed.json()["id"]
        return found


def _get(c: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
    if path.startswith("/events/stream"):
        # the stream never ends: its status and first bytes are enough
        with c.stream("GET", path, headers=headers) as response:
            response.read() if response.status_code != 200 else next(response.iter_bytes())
            return response
    return c.get(path, headers=headers)


LOG = (200, 403, 403, 401)  # operator, customer, gateway, no token
ACTORS = (200, 200, 403, 401)
# the routes ({id} is a placed order) and their answers to each principal of WHO
READS = [
    ("/events", LOG),
    ("/events/stream?after=0", LOG),
    ("/ordering/order/{id}/events", LOG),
    ("/failures", LOG),
    ("/ordering/order/{id}", ACTORS),
    ("/ordering/views/order-history", ACTORS),
    ("/ordering/views/order-history/{id}", ACTORS),
    ("/health", (200, 200, 200, 200)),
]


@pytest.mark.parametrize(("route", "expected"), READS, ids=[r for r, _ in READS])
def test_reads_by_principal(
    server: Server, order_id: str, route: str, expected: tuple[int, ...]
) -> None:
    path = route.format(id=order_id)
    with server.client() as c:
        for (who, headers), status in zip(WHO.items(), expected, strict=True):
            response = _get(c, path, headers)
            assert response.status_code == status, (who, response.text)
            if status >= 400:
                body = response.json()
                assert body["status"] == status
                assert body["error"] == ("forbidden" if status == 403 else "unauthorized")
                assert "Grace" not in response.text  # nothing of the log leaks
    if route == "/events":
        with server.client() as c:
            events = c.get(path, headers=OPERATOR).json()["events"]
        # the operator sees the decrypted personal data: the raw log is theirs
        assert any(e["data"].get("customer") == "Grace" for e in events)


def test_forbidden_log_reads_say_who_may(server: Server, order_id: str) -> None:
    with server.client() as c:
        refused = c.get("/events", headers=CUSTOMER).json()
        assert refused["message"] == (
            "the event log is for operators: only a token mapped to 'operator' may use it"
        )
        system = c.get(f"/ordering/order/{order_id}", headers=GATEWAY).json()
        assert system["message"] == (
            "PaymentGateway is an external system: its token posts its events and reads nothing"
        )


def test_retrying_a_failure_is_for_operators(server: Server) -> None:
    with server.client() as c:
        path = "/failures/Ordering.OrderHistory/1/retry"
        # the operator gets past authorization (there is no such parked failure: 404)
        assert c.post(path, headers=OPERATOR).status_code == 404
        assert c.post(path, headers=CUSTOMER).status_code == 403
        assert c.post(path, headers=BARISTA).status_code == 403
        assert c.post(path, headers=GATEWAY).status_code == 403
        assert c.post(path).status_code == 401


def test_writes_by_principal(server: Server, order_id: str) -> None:
    place = "/ordering/order/place-order"
    declined = "/ordering/external/payment-gateway/card-declined"
    body = {"order_id": order_id, "reason": "stolen card"}
    with server.client() as c:
        assert c.post(place, json=ORDER, headers=CUSTOMER).status_code == 201
        for headers in (OPERATOR, GATEWAY, BARISTA):
            assert c.post(place, json=ORDER, headers=headers).status_code == 403
        assert c.post(place, json=ORDER).status_code == 401
        for headers in (OPERATOR, CUSTOMER, BARISTA):
            refused = c.post(declined, json=body, headers=headers)
            assert refused.status_code == 403
            assert refused.json()["message"].startswith("only PaymentGateway's token may post")
        assert c.post(declined, json=body, headers=GATEWAY).status_code == 202


def test_no_notes_when_every_system_and_the_operator_have_tokens(server: Server) -> None:
    log = server.log.read_text()
    assert "bearer tokens required: 4 configured" in log
    assert "no token is mapped" not in log
    assert "issues none of the served commands" not in log


@pytest.fixture(scope="module")
def without_gateway(workdir: Path) -> Iterator[Server]:
    """A server whose tokens map none to the payment gateway nor to `operator`, one to a typo."""
    db = workdir / f"closed-{uuid.uuid4().hex[:8]}.db"
    running = Server(workdir, f"sqlite:///{db}", "c1=Customer,b1=Barista,x1=Custmer").start()
    yield running
    running.stop()


def test_a_system_without_a_token_has_its_routes_closed(without_gateway: Server) -> None:
    with without_gateway.client() as c:
        placed = c.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER)
        assert placed.status_code == 201
        body = {"order_id": placed.json()["id"], "reason": "stolen card"}
        path = "/ordering/external/payment-gateway/card-declined"
        for headers in (CUSTOMER, BARISTA):
            refused = c.post(path, json=body, headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.json()["message"] == (
                "no token is mapped to Ordering.PaymentGateway, "
                "so this service accepts none of its events"
            )
        # and the log is closed to everyone without an operator token
        assert c.get("/events", headers=CUSTOMER).status_code == 403
    log = without_gateway.log.read_text()
    notes = [line for line in log.splitlines() if "token" in line and "required" not in line]
    assert notes == [
        "no token is mapped to Ordering.PaymentGateway: its inbound events are refused (403)",
        "Custmer (a token's principal) issues none of the served commands and is no external "
        "system: it reads views and state as an actor",
        "no token is mapped to operator: the raw log (/events, /events/stream, instances' "
        "/events, /failures) answers 403 to every token",
    ]


def test_openapi_still_lists_every_route(server: Server) -> None:
    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert "/events" in document["paths"]
    assert document["paths"]["/events"]["get"]["security"] == [{"bearer": []}]
