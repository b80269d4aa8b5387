"""Background passes: every consumer over what is new, in one transaction (`run_pass`)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coffee_domain import (
    PAYMENT_EVENTS,
    CardCharged,
    ChargeCard,
    OrderHistory,
    OrderPlaced,
    PlaceOrder,
    Tickets,
    definitions,
    latte,
)
from runtime_support import Stores, make_stores

from stormgen.runtime import Command, Envelope, Event, NewEvent, View


def place(app: Any, customer: str = "Ada") -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal("3.50")))


def wait_caught_up(app: Any, timeout: float = 10, *, passes: bool = False) -> None:
    """Wait for every consumer to reach the log's head (running passes meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if passes:
            app.consumers.run_pass()
        if all(p["behind"] == 0 for p in app.progress().values()):
            return
        time.sleep(0.01)
    raise AssertionError(f"the consumers did not catch up: {app.progress()}")


def test_a_chain_of_policies_and_the_views_after_it_take_one_pass(stores: Stores) -> None:
    app = stores.app(**definitions())
    orders = [place(app, f"c{i}") for i in range(3)]
    done, more = app.consumers.run_pass()
    # the charge sent and its answer (the gateway asked before the transaction), paid,
    # ticket opened, and both views up to date: five events per order, one pass
    assert app.store.last_position() == 15
    assert (done, more) == (15, False)
    assert all(p["behind"] == 0 for p in app.progress().values())
    assert sorted(row["status"] for row in app.view_rows(OrderHistory)) == ["paid"] * 3
    tickets = sorted(row["ticket_id"] for row in app.view_rows(Tickets))
    assert tickets == sorted(str(order.id) for order in orders)
    # nothing left: another pass does nothing
    assert app.consumers.run_pass() == (15, False)
    assert app.store.last_position() == 15


@dataclass(frozen=True, slots=True)
class NameRow:
    order_id: uuid.UUID
    customer: str = ""


class Touchy(View[NameRow]):
    """Fails on every order of the customer "boom"."""

    name = "Ordering.Touchy"
    row_type = NameRow
    key = "order_id"
    events = (OrderPlaced,)

    def update(self, row: NameRow, event: Event, envelope: Envelope) -> NameRow:
        assert isinstance(event, OrderPlaced)
        if event.customer == "boom":
            raise ValueError("boom")
        return NameRow(order_id=row.order_id, customer=event.customer)


def test_a_failing_consumer_is_rolled_back_alone_and_goes_on_alone(stores: Stores) -> None:
    app = stores.app(**definitions(views=[OrderHistory(), Tickets(), Touchy()]))
    orders = [place(app, name) for name in ("a", "boom", "c")]
    app.consumers.run_pass()
    # the others kept their work: the chain and the other views went through
    assert sorted(row["status"] for row in app.view_rows(OrderHistory)) == ["paid"] * 3
    assert len(app.view_rows(Tickets)) == 3
    # the failing view retries alone, records each failure and parks the event; the
    # passes take it back when it is done
    wait_caught_up(app, passes=True)
    assert sorted(row["customer"] for row in app.view_rows(Touchy)) == ["a", "c"]
    (parked,) = app.parked("Ordering.Touchy")
    assert parked.attempts == 3
    failures = [e.data for e in app.failures() if e.data["consumer"] == "Ordering.Touchy"]
    assert [f["attempt"] for f in failures] == [1, 2, 3]
    assert {f["event_id"] for f in failures} == {
        e.id
        for e in app.events(types=["Ordering.OrderPlaced"])
        if e.data["order_id"] == str(orders[1].id)
    }
    # and the passes take it back: a new order reaches it in the next pass
    place(app, "d")
    app.consumers.run_pass()
    assert sorted(row["customer"] for row in app.view_rows(Touchy)) == ["a", "c", "d"]


class WritingGateway:
    """Charges, after checking that another thread can append meanwhile: the store's
    write lock is not held while an external system is asked."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.blocked = 0

    def send(self, command: Command, command_id: uuid.UUID) -> Sequence[Event]:
        assert isinstance(command, ChargeCard)
        probe = threading.Thread(
            target=self.app.store.append,
            args=(f"probe-{command_id}", [NewEvent(type="Probe", data={})], None),
        )
        probe.start()
        probe.join(5)
        if probe.is_alive():
            self.blocked += 1
            probe.join()
        return [CardCharged(order_id=command.order_id, amount=command.amount)]


def test_external_systems_are_asked_outside_the_pass_transaction(stores: Stores) -> None:
    app = stores.app(**definitions(system_events={"Ordering.PaymentGateway": PAYMENT_EVENTS}))
    gateway = WritingGateway(app)
    app.ports["Ordering.PaymentGateway"] = gateway
    place(app, "a")
    app.consumers.run_pass()
    place(app, "b")  # after a pass that appended: the next one asks again, outside
    app.consumers.run_pass()
    assert gateway.blocked == 0
    assert len(app.events(types=["Probe"])) == 2
    assert sorted(row["status"] for row in app.view_rows(OrderHistory)) == ["paid"] * 2


def test_background_passes_serve_the_journey(stores: Stores) -> None:
    app = stores.app(**definitions())
    app.start()
    try:
        orders = [place(app, f"c{i}") for i in range(20)]
        wait_caught_up(app)
        assert app.store.last_position() == 100  # five events per order
        assert len(app.view_rows(Tickets)) == len(orders)
    finally:
        app.stop()
    # stopping wrote every consumer's progress
    for name in app.consumers.names():
        assert app.store.get_checkpoint(name) == 100


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_processes_running_the_same_chain_take_each_step_once(
    kind: str, tmp_path: Path
) -> None:
    # two applications on one store run the same policies and views in passes at once:
    # claims and command ids keep every step single (on PostgreSQL their passes may
    # also deadlock: one consumer's savepoint then fails and it goes on alone)
    for stores in make_stores(kind, tmp_path):
        url = stores.url()
        one, two = stores.app(url, **definitions()), stores.app(url, **definitions())
        one.start()
        two.start()
        try:
            orders = [place(one if i % 2 else two, f"c{i}") for i in range(30)]
            for app in (one, two):
                wait_caught_up(app, timeout=30)
        finally:
            one.stop()
            two.stop()
        for step in ("Ordering.CardCharged", "Ordering.OrderPaid", "Bar.TicketOpened"):
            assert len(one.events(types=[step])) == len(orders), step
        assert sorted(row["status"] for row in one.view_rows(OrderHistory)) == ["paid"] * 30
        assert len(one.view_rows(Tickets)) == len(orders)
