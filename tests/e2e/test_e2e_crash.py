"""SIGKILL the server while a client sends commands: nothing acknowledged is lost or doubled."""

from __future__ import annotations

import importlib
import random
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from e2e_support import CUSTOMER, OPERATOR, Server

COMMANDS = 500
CLIENTS = 4


def _send(server: Server, todo: list[int], acked: dict[str, dict[str, Any]]) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        while todo:
            try:
                n = todo.pop()
            except IndexError:
                return
            body = {
                "customer": f"customer {n}",
                "drinks": [{"name": "Flat white", "price": f"{n % 7 + 1}.25"}],
                "total": f"{n % 7 + 1}.25",
            }
            try:
                response = c.post(
                    "/ordering/order/place-order",
                    json=body,
                    headers={**CUSTOMER, "Idempotency-Key": f"crash-{n}"},
                )
            except httpx.TransportError:
                return  # the server is gone: this command was never acknowledged
            assert response.status_code == 201, response.text
            acked[response.json()["id"]] = response.json()


def _all_events(c: httpx.Client) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = c.get(f"/events?after={after}&limit=1000", headers=OPERATOR).json()
        events += page["events"]
        if not page["events"]:
            return events
        after = page["next_after"]


def _view_rows(application: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: application.view_rows(name) for name in sorted(application.views)}


def test_sigkill_loses_nothing_acknowledged(workdir: Path) -> None:
    db = workdir / f"crash-{uuid.uuid4().hex[:6]}.db"
    server = Server(workdir, f"sqlite:///{db}").start()
    acked: dict[str, dict[str, Any]] = {}
    todo = list(range(COMMANDS))
    clients = [
        threading.Thread(target=_send, args=(server, todo, acked), daemon=True)
        for _ in range(CLIENTS)
    ]
    for t in clients:
        t.start()
    # once commands flow, kill at a random moment while commands and policies are in flight
    started = time.monotonic()
    while len(acked) < 5 and time.monotonic() - started < 30:
        time.sleep(0.005)
    deadline = time.monotonic() + random.uniform(0.0, 1.2)
    while time.monotonic() < deadline and todo:
        time.sleep(0.005)
    server.kill()
    for t in clients:
        t.join(15)
    assert acked, "no command was acknowledged before the kill"

    server.start()
    try:
        with server.client() as c:
            server.wait_idle(c, timeout=60)
            events = _all_events(c)
    finally:
        server.stop()

    # every acknowledged command's events are there exactly once
    ids = Counter(e["id"] for e in events)
    assert not [i for i, n in ids.items() if n > 1], "an event is stored twice"
    for order_id, answer in acked.items():
        for event in answer["events"]:
            assert ids[event["id"]] == 1, f"acknowledged event of {order_id} missing"
    # positions are a gapless total order; stream versions are gapless per stream
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    versions: dict[str, list[int]] = {}
    for e in events:
        versions.setdefault(e["stream"], []).append(e["stream_version"])
    for stream, seen in versions.items():
        if not stream.startswith("$"):
            assert seen == list(range(1, len(seen) + 1)), stream
    # the policies ran once per order across the crash: one charge, payment and ticket each
    per_type = Counter((e["type"], e["data"].get("order_id") or e.get("stream_id")) for e in events)
    placed = {e["stream_id"] for e in events if e["type"] == "Ordering.OrderPlaced"}
    assert set(acked) <= placed
    for order_id in placed:
        assert per_type[("Ordering.OrderPlaced", order_id)] == 1
        assert per_type[("Ordering.PaymentGateway.CardCharged", order_id)] == 1
        assert per_type[("Ordering.OrderPaid", order_id)] == 1
        assert per_type[("Bar.TicketOpened", order_id)] == 1

    # each view equals a fresh replay of the log
    project = workdir / ".stormgen" / "build" / "coffee_shop"
    sys.path.insert(0, str(project / "src"))
    try:
        app_module = importlib.import_module("coffee_shop.app")
        with app_module.open_application(f"sqlite:///{db}") as application:
            live = _view_rows(application)
            assert len(live["Ordering.OrderHistory"]) == len(placed)
            application.replay()
            assert _view_rows(application) == live
    finally:
        sys.path.remove(str(project / "src"))
