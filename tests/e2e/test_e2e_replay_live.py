"""`stormgen replay` while the service runs and clients place orders (issue 18, defect 1).

A real server process on a real store (a SQLite file, and PostgreSQL where one is
configured), a few client threads placing orders over HTTP, and the replay as a
process of its own in the middle of the traffic. Afterwards the views must be exactly
what a fresh rebuild from the log gives, and /health must not call them caught up
before they are.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import CUSTOMER, MODEL, Server, stormgen

pytestmark = pytest.mark.slow

CLIENTS = 4
WARMUP_ORDERS = 150  # placed before the first replay starts
REPLAYS = 3  # one after another, orders flowing all along


class Traffic:
    """Client threads placing orders until told to stop; what they placed, by id."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.placed: set[str] = set()
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(30)

    def count(self) -> int:
        with self._lock:
            return len(self.placed)

    def _send(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=20) as client:
            while not self.stopping.is_set():
                n = uuid.uuid4().hex[:8]
                body = {
                    "customer": f"customer {n}",
                    "drinks": [{"name": "Flat white", "price": "3.25"}],
                    "total": "3.25",
                }
                response = client.post(
                    "/ordering/order/place-order",
                    json=body,
                    headers={**CUSTOMER, "Idempotency-Key": f"replay-{n}"},
                )
                if response.status_code != 201:
                    self.errors.append(f"{response.status_code} {response.text}")
                    return
                with self._lock:
                    self.placed.add(response.json()["id"])


def _rows(application: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: application.view_rows(name) for name in sorted(application.views)}


def _replay_during_traffic(workdir: Path, store: str) -> None:
    server = Server(workdir, store).start()
    try:
        with Traffic(server) as traffic:
            deadline = time.monotonic() + 30
            while traffic.count() < WARMUP_ORDERS and time.monotonic() < deadline:
                assert not traffic.errors, traffic.errors
                time.sleep(0.02)
            for _ in range(REPLAYS):
                replayed = stormgen("replay", str(MODEL), "--store", store, cwd=workdir)
                assert replayed.returncode == 0, replayed.stderr
                assert "replayed 3 views up to position" in replayed.stderr
            time.sleep(0.3)  # orders keep coming after the replay, too
        assert not traffic.errors, traffic.errors
        with server.client() as client:
            health = server.wait_idle(client, timeout=60)
        assert health["status"] == "ok"
    finally:
        server.stop()

    # the views the service left, caught up, are what a fresh rebuild from the log gives
    src = workdir / ".stormgen" / "build" / "coffee_shop" / "src"
    sys.path.insert(0, str(src))
    try:
        open_application = importlib.import_module("coffee_shop.app").open_application
        with open_application(store) as application:
            placed = {
                str(e.stream_id) for e in application.events() if e.type == "Ordering.OrderPlaced"
            }
            assert traffic.placed <= placed
            live = _rows(application)
            application.replay()
            rebuilt = _rows(application)
    finally:
        sys.path.remove(str(src))
    assert len(rebuilt["Ordering.OrderHistory"]) == len(placed)
    for name in rebuilt:
        assert len(live[name]) == len(rebuilt[name]), name
        assert live[name] == rebuilt[name], name


def test_replay_while_the_service_runs_sqlite(workdir: Path) -> None:
    db = workdir / f"replay-live-{uuid.uuid4().hex[:6]}.db"
    _replay_during_traffic(workdir, f"sqlite:///{db}")


def test_replay_while_the_service_runs_postgres(workdir: Path, postgres_url: str) -> None:
    _replay_during_traffic(workdir, postgres_url)
