"""The coffee-shop journey through the real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from e2e_support import BARISTA, CUSTOMER, OPERATOR, TOKENS, Server, wait_for

ORDER = {
    "customer": "Ada",
    "drinks": [
        {"name": "Latte", "size": "Large", "price": "4.00"},
        {"name": "Espresso", "price": "3.50"},
    ],
    "total": "7.50",
}

# what the service answers: every field, the omitted size filled with its default
DRINKS = [
    {"name": "Latte", "size": "Large", "price": "4.00"},
    {"name": "Espresso", "size": "Medium", "price": "3.50"},
]


def journey(server: Server) -> None:
    """Order -> charged by the fake gateway -> paid -> ticket -> brewed -> handed over."""
    with server.client() as c:
        placed = c.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        uuid.UUID(order_id)
        assert placed.json()["stream_version"] == 1

        def paid() -> dict[str, Any] | None:
            state: dict[str, Any] = c.get(f"/ordering/order/{order_id}", headers=CUSTOMER).json()
            return state if state["state"]["status"] == "Paid" else None

        state = wait_for(paid)
        assert state["stream_version"] == 2
        assert state["state"]["total"] == "7.50"
        # the Espresso was ordered without a size: the model's default shows everywhere
        assert state["state"]["drinks"] == DRINKS

        # the bar opened a ticket with the order's id; the display shows it as not ready
        pickup = f"/display/views/pickup/{order_id}"
        row = wait_for(lambda: c.get(pickup, headers=BARISTA).status_code == 200)
        assert row
        assert c.get(pickup, headers=BARISTA).json() == {"ticket_id": order_id, "ready": False}
        ticket = c.get(f"/bar/ticket/{order_id}", headers=BARISTA).json()
        assert ticket["state"]["status"] == "Queued"
        assert ticket["state"]["drinks"] == DRINKS

        for command in ("start-brewing", "finish-brewing"):
            response = c.post(f"/bar/ticket/{order_id}/{command}", json={}, headers=BARISTA)
            assert response.status_code == 200, response.text
        wait_for(lambda: c.get(pickup, headers=BARISTA).json().get("ready") is True)
        handed = c.post(f"/bar/ticket/{order_id}/hand-over", json={}, headers=BARISTA)
        assert handed.status_code == 200
        assert handed.json()["stream_version"] == 4
        wait_for(lambda: c.get(pickup, headers=BARISTA).status_code == 404)

        history = c.get(f"/ordering/views/order-history/{order_id}", headers=CUSTOMER).json()
        assert history == {
            "order_id": order_id, "customer": "Ada", "total": "7.50", "status": "paid",
        }  # fmt: skip
        listed = c.get("/ordering/views/order-history?status=paid", headers=CUSTOMER).json()
        assert [r["order_id"] for r in listed["rows"]] == [order_id]

        today = datetime.now(UTC).date().isoformat()
        sales = c.get(f"/ordering/views/daily-sales/{today}", headers=CUSTOMER).json()
        assert sales["orders"] == 1
        assert Decimal(sales["revenue"]) == Decimal("7.50")

        # the log holds the whole chain, one correlation id from the order to the ticket
        everything = c.get("/events?limit=100", headers=OPERATOR).json()["events"]
        # the payment deadline's records (its own stream) interleave with the chain
        deadline = [e for e in everything if e["stream"].startswith("$process-")]
        assert [e["type"] for e in deadline] == [
            "$ProcessStarted",
            "$TimerSet",
            "$ProcessEnded",
        ]
        log = [e for e in everything if not e["stream"].startswith("$process-")]
        types = [e["type"] for e in log]
        assert types == [
            "Ordering.OrderPlaced",
            "$CommandSent",
            "Ordering.PaymentGateway.CardCharged",
            "Ordering.OrderPaid",
            "Bar.TicketOpened",
            "Bar.BrewingStarted",
            "Bar.DrinksReady",
            "Bar.TicketHandedOver",
        ]
        assert [log[i]["data"]["drinks"] for i in (0, 3, 4)] == [DRINKS] * 3
        chain = {e["metadata"]["correlation_id"] for e in log[:5] + deadline}
        assert len(chain) == 1
        # the charge sent to the gateway: its record, then the answer it caused
        assert log[1]["metadata"]["command"] == "Ordering.PaymentGateway.ChargeCard"
        assert log[2]["metadata"]["causation_id"] == log[1]["id"]
        assert log[0]["metadata"]["actor"] == "Customer"
        assert log[5]["metadata"]["actor"] == "Barista"
        health = server.wait_idle(c)
        assert health["parked"] == 0


def test_journey_on_sqlite(workdir: Path) -> None:
    server = Server(workdir, f"sqlite:///{workdir / f'journey-{uuid.uuid4().hex[:6]}.db'}")
    server.start()
    try:
        journey(server)
    finally:
        server.stop()


def test_journey_on_postgres(workdir: Path, postgres_url: str) -> None:
    server = Server(workdir, postgres_url).start()
    try:
        journey(server)
    finally:
        server.stop()


def test_open_mode_is_refused_off_loopback(workdir: Path) -> None:
    from e2e_support import MODEL, clean_env, stormgen

    done = stormgen(
        "run", str(MODEL), "--host", "0.0.0.0", "--store", "memory://", cwd=workdir,
        env=clean_env(),
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to serve an open API on 0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr


def test_open_mode_on_loopback_says_so(workdir: Path) -> None:
    server = Server(workdir, "memory://", tokens=None).start()
    try:
        with server.client() as c:
            placed = c.post("/ordering/order/place-order", json=ORDER)
            assert placed.status_code == 201
            # without tokens every route stays open, the raw log included
            order_id = placed.json()["id"]
            for path in ("/events", "/failures", f"/ordering/order/{order_id}/events"):
                assert c.get(path).status_code == 200, path
            with c.stream("GET", "/events/stream?after=0") as stream:
                assert stream.status_code == 200
    finally:
        server.stop()
    assert "open development mode" in server.log.read_text()


def test_bad_store_url_is_one_sentence(workdir: Path) -> None:
    from e2e_support import MODEL, stormgen

    done = stormgen("run", str(MODEL), "--store", "mysql://x", cwd=workdir)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown store scheme 'mysql'")
    assert "Traceback" not in done.stderr


def test_one_process_per_context_sharing_one_store(workdir: Path) -> None:
    """Ordering, Bar and Display served apart: events cross through the shared log."""
    split_contexts(workdir, f"sqlite:///{workdir / f'split-{uuid.uuid4().hex[:6]}.db'}")


def test_one_process_per_context_sharing_postgres(workdir: Path, postgres_url: str) -> None:
    split_contexts(workdir, postgres_url)


def split_contexts(workdir: Path, store: str) -> None:
    servers = {
        name: Server(workdir, store, TOKENS, "--context", name)
        for name in ("Ordering", "Bar", "Display")
    }
    try:
        for server in servers.values():
            server.launch()
        for server in servers.values():
            server.ready()
        with (
            servers["Ordering"].client() as ordering,
            servers["Bar"].client() as bar,
            servers["Display"].client() as display,
        ):
            assert (
                bar.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER).status_code
                == 404
            )
            order_id = ordering.post(
                "/ordering/order/place-order", json=ORDER, headers=CUSTOMER
            ).json()["id"]
            # the Bar process's policy opens the ticket from Ordering's OrderPaid
            wait_for(lambda: bar.get(f"/bar/ticket/{order_id}", headers=BARISTA).status_code == 200)
            assert (
                bar.post(
                    f"/bar/ticket/{order_id}/start-brewing", json={}, headers=BARISTA
                ).status_code
                == 200
            )
            pickup = f"/display/views/pickup/{order_id}"
            wait_for(lambda: display.get(pickup, headers=BARISTA).status_code == 200)
            consumers = display.get("/health").json()["consumers"]
            assert set(consumers) == {"Display.Pickup"}
    finally:
        for server in servers.values():
            server.stop()
