"""Views: rows and checkpoint in one transaction, replay, queries, delete, failures."""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coffee_domain import (
    Cancel,
    HandOver,
    OpenTicket,
    Order,
    OrderHistory,
    OrderHistoryRow,
    OrderPlaced,
    PlaceOrder,
    Ticket,
    Tickets,
    latte,
)
from runtime_support import Stores, make_stores

from stormgen.runtime import DecodeError, Delete, Envelope, Event, View


def place(app: Any, customer: str, total: str = "3.50") -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal(total)))


def test_a_view_follows_the_log(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()], views=[OrderHistory()])
    a = place(app, "Ada")
    b = place(app, "Bo", "5")
    app.handle(Cancel(order_id=b.id, reason="x"))
    assert app.run_consumers() == 3
    assert app.view_row(OrderHistory, a.id) == {
        "order_id": str(a.id),
        "customer": "Ada",
        "total": "3.50",
        "status": "placed",
        "drinks": 1,
    }
    row = app.view_row("Ordering.OrderHistory", str(b.id))
    assert row is not None and row["status"] == "cancelled" and row["total"] == "5"
    assert app.view_row(OrderHistory, uuid.uuid4()) is None
    assert app.progress()["Ordering.OrderHistory"] == {"position": 3, "behind": 0}


def test_queries_filter_by_columns_and_page_by_key(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()], views=[OrderHistory()])
    orders = [place(app, f"c{i}", str(i + 1)) for i in range(5)]
    app.handle(Cancel(order_id=orders[1].id, reason="x"))
    app.handle(Cancel(order_id=orders[3].id, reason="x"))
    app.run_consumers()
    everything = app.view_rows(OrderHistory)
    keys = [r["order_id"] for r in everything]
    assert keys == sorted(str(o.id) for o in orders)
    cancelled = app.view_rows(OrderHistory, {"status": "cancelled"})
    assert {r["order_id"] for r in cancelled} == {str(orders[1].id), str(orders[3].id)}
    # filter values may arrive as text (query strings)
    assert [r["total"] for r in app.view_rows(OrderHistory, {"total": "3"})] == ["3"]
    assert len(app.view_rows(OrderHistory, {"drinks": "1"})) == 5
    page1 = app.view_rows(OrderHistory, limit=2)
    page2 = app.view_rows(OrderHistory, after=page1[-1]["order_id"], limit=2)
    page3 = app.view_rows(OrderHistory, after=page2[-1]["order_id"], limit=2)
    assert [r["order_id"] for r in page1 + page2 + page3] == keys
    with pytest.raises(DecodeError, match="no column"):
        app.view_rows(OrderHistory, {"colour": "red"})
    with pytest.raises(DecodeError, match="no column"):
        app.view_rows(OrderHistory, {"customer": "c1"})  # pii columns are sealed
    with pytest.raises(DecodeError):
        app.view_rows(OrderHistory, {"drinks": "many"})


def test_a_handler_can_delete_rows(stores: Stores) -> None:
    app = stores.app(aggregates=[Ticket()], views=[Tickets()])
    one, two = uuid.uuid4(), uuid.uuid4()
    app.handle(OpenTicket(ticket_id=one, drinks=2))
    app.handle(OpenTicket(ticket_id=two, drinks=1))
    app.run_consumers()
    assert len(app.view_rows(Tickets)) == 2
    app.handle(HandOver(ticket_id=one))
    app.run_consumers()
    assert app.view_rows(Tickets) == [{"ticket_id": str(two), "drinks": 1}]


def test_replay_rebuilds_the_same_rows_and_is_idempotent(stores: Stores) -> None:
    app = stores.app(aggregates=[Order(), Ticket()], views=[OrderHistory(), Tickets()])
    for i in range(4):
        place(app, f"c{i}")
    app.handle(OpenTicket(ticket_id=uuid.uuid4(), drinks=3))
    app.run_consumers()
    before = (app.view_rows(OrderHistory), app.view_rows(Tickets))
    seen: list[tuple[int, int]] = []
    assert app.replay(OrderHistory, progress=lambda done, end: seen.append((done, end))) == 4
    assert seen[-1] == (5, 5)
    assert app.replay() == 5
    assert app.replay() == 5
    assert (app.view_rows(OrderHistory), app.view_rows(Tickets)) == before


def test_views_are_plain_sql_tables(sqlite_stores: Stores) -> None:
    url = sqlite_stores.url()
    app = sqlite_stores.app(url, aggregates=[Order()], views=[OrderHistory()])
    order = place(app, "Ada")
    app.run_consumers()
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, status, drinks FROM view_ordering_order_history").fetchall()
    assert rows == [(str(order.id), "placed", 1)]


def test_a_restarted_application_goes_on_from_its_checkpoint(sqlite_stores: Stores) -> None:
    url = sqlite_stores.url()
    app = sqlite_stores.app(url, aggregates=[Order()], views=[OrderHistory()])
    place(app, "Ada")
    app.run_consumers()
    app.close()
    again = sqlite_stores.app(url, aggregates=[Order()], views=[OrderHistory()])
    place(again, "Bo")
    assert again.run_consumers() == 1
    assert len(again.view_rows(OrderHistory)) == 2


class Fragile(View[OrderHistoryRow]):
    """Fails on customers named "Boom" (a bug in a view handler)."""

    name = "Ordering.Fragile"
    row_type = OrderHistoryRow
    key = "order_id"
    events = (OrderPlaced,)

    def __init__(self) -> None:
        self.fail_for = {"Boom"}

    def update(
        self, row: OrderHistoryRow, event: Event, envelope: Envelope
    ) -> OrderHistoryRow | Delete:
        assert isinstance(event, OrderPlaced)
        if event.customer in self.fail_for:
            raise ValueError(f"cannot show {event.customer}")
        return replace(row, total=event.total)


def test_a_failing_view_handler_parks_the_event_and_goes_on(stores: Stores) -> None:
    fragile = Fragile()
    app = stores.app(aggregates=[Order()], views=[fragile])
    ok1 = place(app, "Ada")
    bad = place(app, "Boom")
    ok2 = place(app, "Cy")
    app.run_consumers()
    # the batch rolled back and the good events were applied one by one
    assert {r["order_id"] for r in app.view_rows(Fragile)} == {str(ok1.id), str(ok2.id)}
    failures = [f.data for f in app.failures()]
    assert [f["attempt"] for f in failures] == [1, 2, 3]
    assert [f["parked"] for f in failures] == [False, False, True]
    assert all(f["consumer"] == "Ordering.Fragile" and f["kind"] == "view" for f in failures)
    assert failures[0]["position"] == 2 and failures[0]["event_id"] == bad.events[0].id
    assert "ValueError: cannot show Boom" in failures[0]["error"]
    [parked] = app.parked()
    assert (parked.consumer, parked.position, parked.attempts) == ("Ordering.Fragile", 2, 3)
    assert app.progress()["Ordering.Fragile"]["behind"] == 0
    # still broken: a retry fails again and stays parked
    assert app.retry_parked("Ordering.Fragile", 2) is False
    assert app.parked()[0].attempts == 4
    # fixed: the retry applies it and unparks it
    fragile.fail_for = set()
    assert app.retry_parked("Ordering.Fragile", 2) is True
    assert app.parked() == []
    assert app.view_row(Fragile, bad.id) is not None
    assert app.failures()[-1].type == "$FailureResolved"


class FlakyHistory(OrderHistory):
    """An order history whose OrderPlaced handler fails for some customers."""

    name = "Ordering.FlakyHistory"

    def __init__(self) -> None:
        self.fail_for = {"Boom"}

    def update(
        self, row: OrderHistoryRow, event: Event, envelope: Envelope
    ) -> OrderHistoryRow | Delete:
        if isinstance(event, OrderPlaced):
            if event.customer in self.fail_for:
                raise ValueError(f"cannot show {event.customer}")
            return replace(row, customer=event.customer, total=event.total, status="placed")
        return super().update(row, event, envelope)


def test_a_retried_parked_event_never_lands_after_newer_ones(stores: Stores) -> None:
    flaky = FlakyHistory()
    app = stores.app(aggregates=[Order()], views=[flaky])
    boom = place(app, "Boom")
    app.run_consumers()
    assert [p.position for p in app.parked()] == [1]
    # a newer event for the same row is applied while the older one is parked
    app.handle(Cancel(order_id=boom.id, reason="changed my mind"))
    app.run_consumers()
    assert app.view_row(FlakyHistory, boom.id)["status"] == "cancelled"
    # fixed and retried: the row is as if the events had come in order
    flaky.fail_for = set()
    assert app.retry_parked("Ordering.FlakyHistory", 1) is True
    row = app.view_row(FlakyHistory, boom.id)
    assert (row["customer"], row["total"], row["status"]) == ("Boom", "3.50", "cancelled")
    # and a rebuild from the log agrees
    app.replay(FlakyHistory)
    assert app.view_row(FlakyHistory, boom.id) == row


def test_a_changed_view_shape_is_rebuilt(sqlite_stores: Stores, tmp_path: Path) -> None:
    url = sqlite_stores.url()
    app = sqlite_stores.app(url, aggregates=[Order()], views=[OrderHistory()])
    place(app, "Ada")
    app.run_consumers()
    app.close()

    @dataclass(frozen=True)
    class WiderRow:
        order_id: uuid.UUID
        total: Decimal = Decimal(0)
        currency: str = "EUR"

    class Wider(View[WiderRow]):
        name = "Ordering.OrderHistory"
        row_type = WiderRow
        key = "order_id"
        events = (OrderPlaced,)

        def update(self, row: WiderRow, event: Event, envelope: Envelope) -> WiderRow | Delete:
            assert isinstance(event, OrderPlaced)
            return replace(row, total=event.total)

    again = sqlite_stores.app(url, aggregates=[Order()], views=[Wider()])
    again.run_consumers()
    [row] = again.view_rows(Wider, {"currency": "EUR"})
    assert row["total"] == "3.50"


@dataclass(frozen=True)
class CountRow:
    name: str
    orders: int = 0


class OrderCount(View[CountRow]):
    """One row counting every order: double-applied events would show."""

    name = "Ordering.OrderCount"
    row_type = CountRow
    key = "name"
    events = (OrderPlaced,)

    def key_of(self, event: Event, envelope: Envelope) -> Any:
        return "all"

    def update(self, row: CountRow, event: Event, envelope: Envelope) -> CountRow | Delete:
        return replace(row, orders=row.orders + 1)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_processes_running_one_view_apply_each_event_once(kind: str, tmp_path: Path) -> None:
    for stores in make_stores(kind, tmp_path):
        url = stores.url()
        one = stores.app(url, aggregates=[Order()], views=[OrderCount()])
        two = stores.app(url, aggregates=[Order()], views=[OrderCount()])
        one.start()
        two.start()
        try:
            for i in range(40):
                place(one if i % 2 else two, f"c{i}")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if one.progress()["Ordering.OrderCount"]["behind"] == 0:
                    break
                time.sleep(0.02)
        finally:
            one.stop()
            two.stop()
        assert one.view_row(OrderCount, "all") == {"name": "all", "orders": 40}


class Crash(BaseException):
    """Stands for the process dying in the middle of a batch."""


class CrashingCount(OrderCount):
    def __init__(self, crash_at: int) -> None:
        self.crash_at = crash_at
        self.seen = 0

    def update(self, row: CountRow, event: Event, envelope: Envelope) -> CountRow | Delete:
        self.seen += 1
        if self.seen == self.crash_at:
            raise Crash
        return super().update(row, event, envelope)


def test_rows_and_checkpoint_commit_together_or_not_at_all(stores: Stores) -> None:
    url = stores.url()
    app = stores.app(url, aggregates=[Order()], views=[CrashingCount(crash_at=4)])
    for i in range(6):
        place(app, f"c{i}")
    with pytest.raises(Crash):
        app.run_consumers()
    # the batch's three earlier rows were rolled back with the checkpoint
    assert app.view_row(OrderCount, "all") is None
    assert app.store.get_checkpoint("Ordering.OrderCount") == 0
    if stores.kind == "memory":
        return  # a memory store does not outlive its application: no restart
    app.close()
    # after a restart every event is applied exactly once
    again = stores.app(url, aggregates=[Order()], views=[OrderCount()])
    again.run_consumers()
    assert again.view_row(OrderCount, "all") == {"name": "all", "orders": 6}
