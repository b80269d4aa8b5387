"""The peer of bench_service.py: the coffee shop's order flow with Python's eventsourcing.

Written as a user of ``eventsourcing`` 9.5 would write it, behind the same FastAPI routes
(``common.py``) on uvicorn with the same settings:

- ``Ordering``, a ``ProcessApplication`` with the ``Order`` aggregate: ``PlaceOrder`` makes
  an order (``Placed``); its policy marks the order paid (``Paid``, with the order's
  drinks) when the payment gateway reports the card charged;
- ``Payments``, a ``ProcessApplication`` standing for the card processor and its fake:
  on ``Order.Placed`` it records the charge asked (``Charge.Requested``) and the fake's
  answer (``Charge.Charged``), as the generated service records the command sent to the
  gateway and the gateway's event;
- ``Bar``, a ``ProcessApplication`` with the ``Ticket`` aggregate: on ``Order.Paid`` it
  opens the order's ticket (``Ticket.Opened``, the ticket id taken from the order id);
- a ``System`` of the three (``Ordering -> Payments -> Ordering``, ``Ordering -> Bar``)
  run by the ``MultiThreadedRunner``: the chain runs in the background, after the
  request's answer, as in the generated service;
- the three views as eventsourcing ``Projection`` classes writing into SQLite tracking
  recorders (each row and its tracking position in one transaction): the order history
  and the day's sales from ``Ordering``, the pickup display from ``Bar``. eventsourcing's
  SQLite recorder offers no subscriptions (its ``ProjectionRunner`` needs one), so a
  small runner here reads the application's notifications after its last tracked
  position, woken when the application records events, as the generated service's
  views are.

Per order that is five events, three view rows (the order history row written twice)
and the processes' tracking positions, on SQLite files in WAL mode with
``synchronous=FULL`` (SQLite's default, which eventsourcing keeps; checked at start).
The aggregate cache is on (``AGGREGATE_CACHE_MAXSIZE``), as the generated service's state
cache is. Each hop of the chain is a transaction of its own (eventsourcing commits an
application's recording, or a projection's row, with its tracking position), so an
order costs several commits, where the generated service groups the hops of many
orders into one.

Why it is the same work, and where it is less: the flow, its five events, its views
and its guarantees (each hop recorded once with its position: at-least-once delivery,
effects once) are the generated service's. The generated service does more per order
than this peer: the model's ``PaymentDeadline`` process (``$ProcessStarted``,
``$TimerSet`` and ``$ProcessEnded``: eight events per order, not five; the instance's
row written twice; a durable timer row written and deleted), the customer's name sealed
as pii (a key row per order, AES-GCM in the event and in the history row), and an
idempotency row per policy command and per gateway answer (three). Leaving those out
favours this peer: the ratios against it are conservative.

    python benchmarks/peers/eventsourcing_peer.py FOLDER --port PORT
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import PlaceOrder, arguments, drinks_json, make_app, serve
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.system import MultiThreadedRunner, ProcessApplication, System
from eventsourcing.utils import Environment

# ---------------------------------------------------------------- the domain


class Order(Aggregate):
    @event("Placed")
    def __init__(self, customer: str, drinks: list[dict[str, str]], total: Decimal) -> None:
        self.customer = customer
        self.drinks = drinks
        self.total = total
        self.status = "Placed"

    def mark_paid(self, amount: Decimal) -> None:
        if self.status != "Placed":
            raise ValueError("only a placed order can be paid")
        if amount != self.total:
            raise ValueError("the amount must equal the order total")
        self._paid(amount, self.drinks)

    @event("Paid")
    def _paid(self, amount: Decimal, drinks: list[dict[str, str]]) -> None:
        self.status = "Paid"


class Charge(Aggregate):
    """A card charge asked of the payment gateway, and its answer."""

    @event("Requested")
    def __init__(self, order_id: uuid.UUID, amount: Decimal) -> None:
        self.order_id = order_id
        self.amount = amount
        self.charged = False

    @event("Charged")
    def charged_by_gateway(self, order_id: uuid.UUID, amount: Decimal) -> None:
        self.charged = True

    @staticmethod
    def create_id(order_id: uuid.UUID, amount: Decimal) -> uuid.UUID:
        return uuid.uuid5(order_id, "charge")


class Ticket(Aggregate):
    @event("Opened")
    def __init__(self, ticket_id: uuid.UUID, drinks: list[dict[str, str]]) -> None:
        self.drinks = drinks
        self.status = "Queued"

    @staticmethod
    def create_id(ticket_id: uuid.UUID, drinks: list[dict[str, str]]) -> uuid.UUID:
        return ticket_id


# ---------------------------------------------------------------- the applications


class Woken(Application):
    """Wakes the views' runners when it has recorded events."""

    recorded: threading.Condition

    def _notify(self, recordings: list[Any]) -> None:
        super()._notify(recordings)
        with self.recorded:
            self.recorded.notify_all()


class Ordering(ProcessApplication, Woken):
    recorded = threading.Condition()

    def place_order(self, order: PlaceOrder) -> uuid.UUID:
        placed = Order(order.customer, drinks_json(order), order.total)
        self.save(placed)
        return placed.id

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Events of other applications this one does not react to."""

    @policy.register
    def _(self, domain_event: Charge.Charged, processing_event: ProcessingEvent) -> None:
        order = self.repository.get(domain_event.order_id)
        order.mark_paid(domain_event.amount)
        processing_event.collect_events(order)


class Payments(ProcessApplication):
    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Events of other applications this one does not react to."""

    @policy.register
    def _(self, domain_event: Order.Placed, processing_event: ProcessingEvent) -> None:
        charge = Charge(domain_event.originator_id, domain_event.total)
        answer = fake_gateway(charge.order_id, charge.amount)
        charge.charged_by_gateway(*answer)
        processing_event.collect_events(charge)


def fake_gateway(order_id: uuid.UUID, amount: Decimal) -> tuple[uuid.UUID, Decimal]:
    """The card processor's fake: every charge succeeds."""
    return order_id, amount


class Bar(ProcessApplication, Woken):
    recorded = threading.Condition()

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Events of other applications this one does not react to."""

    @policy.register
    def _(self, domain_event: Order.Paid, processing_event: ProcessingEvent) -> None:
        ticket = Ticket(domain_event.originator_id, domain_event.drinks)
        processing_event.collect_events(ticket)


SYSTEM = System(pipes=[[Ordering, Payments, Ordering], [Ordering, Bar]])


# ---------------------------------------------------------------- the views


class ViewRecorder(SQLiteTrackingRecorder):
    """View tables beside the tracking table; a row and its position in one transaction."""

    tables = """
    CREATE TABLE IF NOT EXISTS order_history (
        key TEXT PRIMARY KEY, customer TEXT NOT NULL, total TEXT NOT NULL, status TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS daily_sales (
        key TEXT PRIMARY KEY, orders INTEGER NOT NULL, revenue TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS pickup (key TEXT PRIMARY KEY, ready INTEGER NOT NULL);
    """

    def construct_create_table_statements(self) -> list[str]:
        ours = [statement for statement in self.tables.split(";") if statement.strip()]
        return [*super().construct_create_table_statements(), *ours]

    def write(self, tracking: Tracking, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self.datastore.transaction(commit=True) as c:
            for sql, params in statements:
                c.execute(sql, params)
            self._insert_tracking(c, tracking)

    def one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return c.fetchone()


class OrderViews(Projection[ViewRecorder]):
    """The order history and the day's sales."""

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])

    @process_event.register
    def _(self, domain_event: Order.Placed, tracking: Tracking) -> None:
        row = (str(domain_event.originator_id), domain_event.customer, str(domain_event.total))
        self.view.write(tracking, [("INSERT INTO order_history VALUES (?, ?, ?, 'placed')", row)])

    @process_event.register
    def _(self, domain_event: Order.Paid, tracking: Tracking) -> None:
        day = domain_event.timestamp.date().isoformat()
        sales = self.view.one("SELECT orders, revenue FROM daily_sales WHERE key = ?", (day,))
        orders, revenue = (sales[0], sales[1]) if sales else (0, "0")
        revenue = str(Decimal(revenue) + domain_event.amount)
        key = str(domain_event.originator_id)
        self.view.write(
            tracking,
            [
                ("UPDATE order_history SET status = 'paid' WHERE key = ?", (key,)),
                ("INSERT OR REPLACE INTO daily_sales VALUES (?, ?, ?)", (day, orders + 1, revenue)),
            ],
        )


class PickupView(Projection[ViewRecorder]):
    """The pickup display."""

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])

    @process_event.register
    def _(self, domain_event: Ticket.Opened, tracking: Tracking) -> None:
        row = (str(domain_event.originator_id),)
        self.view.write(tracking, [("INSERT INTO pickup VALUES (?, 0)", row)])


def run_projection(
    app: Ordering | Bar, projection: Projection[ViewRecorder], stopping: threading.Event
) -> None:
    """Feed ``projection`` the application's events after its last tracked position."""
    recorder = app.recorder
    while not stopping.is_set():
        with app.recorded:
            last = projection.view.max_tracking_id(app.name) or 0
            notifications = recorder.select_notifications(last, 100, inclusive_of_start=False)
            if not notifications:
                app.recorded.wait(0.5)
                continue
        for notification in notifications:
            domain_event = app.mapper.to_domain_event(notification)
            projection.process_event(domain_event, Tracking(app.name, notification.id))


def main() -> None:
    args = arguments(__doc__ or "")
    folder = Path(args.folder)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "AGGREGATE_CACHE_MAXSIZE": "10000",
        "ORDERING_SQLITE_DBNAME": str(folder / "ordering.db"),
        "PAYMENTS_SQLITE_DBNAME": str(folder / "payments.db"),
        "BAR_SQLITE_DBNAME": str(folder / "bar.db"),
    }
    runner = MultiThreadedRunner(SYSTEM, env=env)
    runner.start()
    ordering = runner.get(Ordering)
    bar = runner.get(Bar)
    views = Environment(
        "Views", {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ""}
    )
    views["SQLITE_DBNAME"] = str(folder / "views.db")
    factory = InfrastructureFactory[ViewRecorder].construct(env=views)
    order_views = OrderViews(factory.tracking_recorder(ViewRecorder))
    pickup_view = PickupView(factory.tracking_recorder(ViewRecorder))
    check_synchronous(pickup_view.view)
    stopping = threading.Event()
    threads = [
        threading.Thread(target=run_projection, args=(ordering, order_views, stopping)),
        threading.Thread(target=run_projection, args=(bar, pickup_view, stopping)),
    ]
    for thread in threads:
        thread.start()

    def place(order: PlaceOrder) -> str:
        return str(ordering.place_order(order))

    def pickup(ticket_id: str) -> dict[str, Any] | None:
        row = pickup_view.view.one("SELECT key, ready FROM pickup WHERE key = ?", (ticket_id,))
        return None if row is None else {"ticket_id": row[0], "ready": bool(row[1])}

    try:
        serve(make_app(place, pickup), args.port)
    finally:
        stopping.set()
        for app in (ordering, bar):
            with app.recorded:
                app.recorded.notify_all()
        for thread in threads:
            thread.join()
        runner.stop()


def check_synchronous(view: ViewRecorder) -> None:
    """eventsourcing leaves SQLite's ``synchronous`` at its default: make sure it is FULL."""
    found = view.one("PRAGMA synchronous", ())[0]
    if found != 2:
        raise SystemExit(f"SQLite's synchronous is {found}, not FULL (2)")


if __name__ == "__main__":
    main()
