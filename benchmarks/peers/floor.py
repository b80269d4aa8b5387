"""The floor of bench_service.py: the coffee shop's order flow by hand, FastAPI + sqlite3.

What it does per order, and why it is the same work as the generated service:

- the same request: FastAPI parses and validates the ``PlaceOrder`` body (pydantic, the
  model's two rules) on uvicorn with the same settings;
- the same rows, in one SQLite file (WAL, ``synchronous=FULL``): the five log rows of
  the order's chain the generated service appends (``OrderPlaced``, the ``ChargeCard``
  command recorded as sent, the gateway's ``CardCharged``, ``OrderPaid``,
  ``TicketOpened``; each a JSON document with its stream, version, time and metadata),
  the order history row (written placed, then paid), the day's sales row (upserted) and
  the pickup row. The log's table is keyed by a plain ``INTEGER PRIMARY KEY``, as one
  would write it today and as a new stormgen store's is since its schema 5 (no
  AUTOINCREMENT counter to update: one page less written per commit);
- the same chain: charge the card (a fake gateway: a function answering "charged"),
  mark the order paid, open the ticket, update the three views.

What it leaves out, and why it is a floor: the chain runs synchronously inside the
request's one transaction (one commit per order instead of one per hop), nothing
decides on a loaded state (the order it has just made is in a local variable), and
there is no idempotency, no checkpoints and no retry. One connection behind a lock
serves every request (SQLite has one writer anyway). Nor does it do what the generated
service adds per order beyond the chain: the model's ``PaymentDeadline`` process (three
more log rows, ``$ProcessStarted``, ``$TimerSet`` and ``$ProcessEnded``; the instance's
row written twice; a durable timer row written and deleted), the customer's name sealed
as pii (a key row per order, AES-GCM in the event and in the history row) and an
idempotency row per policy command and gateway answer (three). All of it is work the
floor does not pay for: the ratios against it are conservative.

    python benchmarks/peers/floor.py FOLDER --port PORT
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import PlaceOrder, arguments, drinks_json, make_app, serve

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    stream TEXT NOT NULL,
    stream_version INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    envelope TEXT NOT NULL,
    UNIQUE (stream, stream_version)
);
CREATE TABLE IF NOT EXISTS order_history (
    key TEXT PRIMARY KEY, customer TEXT NOT NULL, total TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS daily_sales (
    key TEXT PRIMARY KEY, orders INTEGER NOT NULL, revenue TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pickup (key TEXT PRIMARY KEY, ready INTEGER NOT NULL);
"""


class Shop:
    """The order flow on one SQLite connection: one transaction per order."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self.lock = threading.Lock()

    def log(self, kind: str, stream: str, version: int, data: dict[str, Any], cause: str) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        envelope = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "stream": stream,
            "stream_version": version,
            "recorded_at": now,
            "data": data,
            "metadata": {"correlation_id": cause, "causation_id": cause},
        }
        self.conn.execute(
            "INSERT INTO events (type, stream, stream_version, recorded_at, envelope) "
            "VALUES (?, ?, ?, ?, ?)",
            (kind, stream, version, now, json.dumps(envelope)),
        )

    def place(self, order: PlaceOrder) -> str:
        order_id = str(uuid.uuid4())
        cause = str(uuid.uuid4())
        drinks = drinks_json(order)
        total = str(order.total)
        stream = f"Ordering.Order/{order_id}"
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                placed = {"order_id": order_id, "customer": order.customer, "drinks": drinks}
                self.log("Ordering.OrderPlaced", stream, 1, {**placed, "total": total}, cause)
                self.conn.execute(
                    "INSERT INTO order_history VALUES (?, ?, ?, 'placed')",
                    (order_id, order.customer, total),
                )
                charge = {"order_id": order_id, "amount": total}
                gateway = "Ordering.PaymentGateway"
                count = self.conn.execute(
                    "SELECT COUNT(*) FROM events WHERE stream = ?", (gateway,)
                ).fetchone()[0]
                self.log("$CommandSent", gateway, count + 1, charge, cause)
                charged = fake_gateway(charge)
                self.log(f"{gateway}.CardCharged", gateway, count + 2, charged, cause)
                paid = {"order_id": order_id, "amount": total, "drinks": drinks}
                self.log("Ordering.OrderPaid", stream, 2, paid, cause)
                self.conn.execute(
                    "UPDATE order_history SET status = 'paid' WHERE key = ?", (order_id,)
                )
                day = dt.date.today().isoformat()
                sales = self.conn.execute(
                    "SELECT orders, revenue FROM daily_sales WHERE key = ?", (day,)
                ).fetchone()
                orders, revenue = sales or (0, "0")
                self.conn.execute(
                    "INSERT OR REPLACE INTO daily_sales VALUES (?, ?, ?)",
                    (day, orders + 1, str(Decimal(revenue) + order.total)),
                )
                ticket = {"ticket_id": order_id, "drinks": drinks}
                self.log("Bar.TicketOpened", f"Bar.Ticket/{order_id}", 1, ticket, cause)
                self.conn.execute("INSERT INTO pickup VALUES (?, 0)", (order_id,))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return order_id

    def pickup(self, ticket_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT key, ready FROM pickup WHERE key = ?", (ticket_id,)
            ).fetchone()
        return None if row is None else {"ticket_id": row[0], "ready": bool(row[1])}


def fake_gateway(charge: dict[str, str]) -> dict[str, str]:
    """The card processor's fake: every charge succeeds."""
    return {"order_id": charge["order_id"], "amount": charge["amount"]}


def main() -> None:
    args = arguments(__doc__ or "")
    shop = Shop(Path(args.folder) / "floor.db")
    serve(make_app(shop.place, shop.pickup), args.port)


if __name__ == "__main__":
    main()
