"""Consumer progress: only relevant events wake a consumer; checkpoints written lazily."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

from coffee_domain import (
    PAYMENT_EVENTS,
    Cancel,
    ChargeOnOrder,
    OpenTicket,
    Order,
    OrderCount,
    OrderHistory,
    OrderPlaced,
    PaidWhenCharged,
    PlaceOrder,
    Ticket,
    Tickets,
    latte,
)
from runtime_support import FAST_RETRY, Stores

from stormgen.runtime import Command, Envelope, Event, Policy


def place(app: Any, customer: str = "Ada") -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal("3.50")))


def open_ticket(app: Any) -> Any:
    return app.handle(OpenTicket(ticket_id=uuid.uuid4(), drinks=1))


def test_other_types_move_a_consumer_in_memory_then_lazily(stores: Stores) -> None:
    app = stores.app(aggregates=[Order(), Ticket()], views=[Tickets()])
    for _ in range(3):
        place(app)
    # nothing of its types: no transaction, the stored checkpoint stays where it was
    assert app.consumers.run_once("Bar.Tickets") == 0
    assert app.store.get_checkpoint("Bar.Tickets") == 0
    assert app.progress()["Bar.Tickets"] == {"position": 3, "behind": 0}
    app.consumers.flush()
    assert app.store.get_checkpoint("Bar.Tickets") == 3
    # a relevant event moves rows and checkpoint together, from the in-memory position
    ticket = open_ticket(app)
    assert app.consumers.run_once("Bar.Tickets") == 1
    assert app.store.get_checkpoint("Bar.Tickets") == 4
    assert app.view_rows(Tickets) == [{"ticket_id": str(ticket.id), "drinks": 1}]


def test_a_lagging_checkpoint_is_written_once_past_the_limit(sqlite_stores: Stores) -> None:
    retry = dataclasses.replace(FAST_RETRY, checkpoint_lag=5, checkpoint_interval=3600)
    app = sqlite_stores.app(aggregates=[Order(), Ticket()], views=[Tickets()], retry=retry)
    for _ in range(3):
        place(app)
    app.consumers.run_once("Bar.Tickets")
    assert app.store.get_checkpoint("Bar.Tickets") == 0
    for _ in range(3):
        place(app)
    app.consumers.run_once("Bar.Tickets")
    assert app.store.get_checkpoint("Bar.Tickets") == 6


def test_a_crash_rereads_what_was_not_written_and_applies_nothing_twice(
    sqlite_stores: Stores,
) -> None:
    url = sqlite_stores.url()
    defs: dict[str, Any] = {"aggregates": [Order(), Ticket()], "views": [OrderCount()]}
    app = sqlite_stores.app(url, **defs)
    place(app)
    assert app.consumers.run_once("Ordering.OrderCount") == 1
    for _ in range(3):
        open_ticket(app)
    app.consumers.run_once("Ordering.OrderCount")
    assert app.progress()["Ordering.OrderCount"]["position"] == 4
    assert app.store.get_checkpoint("Ordering.OrderCount") == 1  # not written yet
    # another process starts on the same file as if the first had been killed now
    again = sqlite_stores.app(url, **defs)
    assert again.progress()["Ordering.OrderCount"] == {"position": 1, "behind": 3}
    place(again)
    again.run_consumers()
    app.run_consumers()
    assert again.view_row(OrderCount, "all") == {"key": "all", "orders": 2}
    assert again.store.get_checkpoint("Ordering.OrderCount") == 5


def test_background_consumers_wake_only_for_their_events(stores: Stores) -> None:
    # an idle timeout longer than the test: a consumer runs only when the dispatcher wakes
    # it; and no timed checkpoint write either, however slow a loaded machine runs the test
    retry = dataclasses.replace(FAST_RETRY, idle_timeout=60, checkpoint_interval=60)
    app = stores.app(aggregates=[Order(), Ticket()], views=[OrderHistory(), Tickets()], retry=retry)
    app.start()
    try:
        orders = [place(app, f"c{i}") for i in range(5)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(p["behind"] == 0 for p in app.progress().values()):
                break
            time.sleep(0.01)
        assert all(p["behind"] == 0 for p in app.progress().values())
        assert len(app.view_rows(OrderHistory)) == len(orders)
        # the ticket view was never woken: caught up in memory, nothing written
        assert app.store.get_checkpoint("Bar.Tickets") == 0
        assert app.store.get_checkpoint("Ordering.OrderHistory") == 5
        ticket = open_ticket(app)
        deadline = time.monotonic() + 30
        while not app.view_rows(Tickets) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.view_rows(Tickets) == [{"ticket_id": str(ticket.id), "drinks": 1}]
    finally:
        app.stop()
    # stopping writes what was kept in memory
    assert app.store.get_checkpoint("Ordering.OrderHistory") == 6
    assert app.store.get_checkpoint("Bar.Tickets") == 6


class GatedPolicy(Policy):
    """Reacts to orders with nothing, once the test opens its gate (outside any
    transaction: the log stays writable meanwhile)."""

    name = "Ordering.Gated"
    events = (OrderPlaced,)

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()

    def react(self, event: Event, envelope: Envelope) -> list[Command]:
        self.entered.set()
        self.gate.wait(10)
        return []


def test_a_consumer_busy_when_other_types_arrive_does_not_trail_them(stores: Stores) -> None:
    # no idle timeout within the test: only the dispatcher's call moves the policy along
    retry = dataclasses.replace(FAST_RETRY, idle_timeout=60, checkpoint_interval=60)
    policy = GatedPolicy()
    app = stores.app(aggregates=[Order(), Ticket()], policies=[policy], retry=retry)
    app.start()
    try:
        place(app)
        assert policy.entered.wait(10)
        # the policy is in the middle of its batch (up to position 1) while events of
        # other types arrive: the dispatcher cannot move it along now
        for _ in range(2):
            open_ticket(app)
        time.sleep(0.2)
        policy.gate.set()
        deadline = time.monotonic() + 30
        while app.progress()[policy.name]["behind"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.progress()[policy.name] == {"position": 3, "behind": 0}
    finally:
        policy.gate.set()
        app.stop()


def test_a_policy_batch_commits_once_and_a_failing_command_is_isolated(stores: Stores) -> None:
    app = stores.app(
        aggregates=[Order(), Ticket()],
        policies=[ChargeOnOrder(), PaidWhenCharged()],
        system_events={"Ordering.PaymentGateway": PAYMENT_EVENTS},
    )
    orders = [place(app, f"c{i}") for i in range(3)]
    # the second order is cancelled before its payment comes in: MarkPaid is refused
    app.handle(Cancel(order_id=orders[1].id, reason="changed my mind"))
    app.run_consumers()
    paid = [e.data["order_id"] for e in app.events(types=["Ordering.OrderPaid"])]
    assert sorted(paid) == sorted([str(orders[0].id), str(orders[2].id)])
    charged = app.events(types=["Ordering.CardCharged"])
    assert len(charged) == 3  # the gateway's answers, each recorded once
    assert len(app.ports["Ordering.PaymentGateway"].sent) == 3  # type: ignore[attr-defined]
    (parked,) = app.parked("Ordering.PaidWhenCharged")
    assert parked.error == "Rejected: only a placed order can be paid"
    assert app.store.get_checkpoint("Ordering.PaidWhenCharged") == app.store.last_position()
    # redelivering the whole batch repeats nothing
    with app.store.transaction() as uow:
        uow.reset_checkpoint("Ordering.PaidWhenCharged", 0)
        uow.reset_checkpoint("Ordering.ChargeOnOrder", 0)
    before = [e.id for e in app.events() if not e.type.startswith("$")]
    app.run_consumers()
    assert [e.id for e in app.events() if not e.type.startswith("$")] == before
