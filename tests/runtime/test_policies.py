"""Policies: cross-aggregate flows, external ports, redelivery, failures as events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from coffee_domain import (
    PAYMENT_EVENTS,
    CardCharged,
    ChargeCard,
    MarkPaid,
    Order,
    OrderPaid,
    OrderStatus,
    PaidWhenCharged,
    PlaceOrder,
    Ticket,
    TicketForPaidOrder,
    Tickets,
    definitions,
    latte,
)
from runtime_support import FAST_RETRY, Stores

from stormgen.runtime import (
    Command,
    Envelope,
    Event,
    FakePort,
    Policy,
    RetrySettings,
    command_id,
)


def place(app: Any, customer: str = "Ada", total: str = "3.50") -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal(total)))


def test_an_order_flows_through_payment_to_the_bar(stores: Stores) -> None:
    app = stores.app(**definitions())
    order = place(app)
    app.run_consumers()
    types = [e.type for e in app.events()]
    assert types == [
        "Ordering.OrderPlaced",
        "$CommandSent",
        "Ordering.CardCharged",
        "Ordering.OrderPaid",
        "Bar.TicketOpened",
    ]
    sent, charged, paid, opened = app.events(after=1)
    # the charge sent to the gateway is in the log (test_commands_sent.py), then its answer
    assert sent.stream == charged.stream and sent.metadata["command"] == "Ordering.ChargeCard"
    # the fake port answered with the system's first event, fields copied by name
    assert charged.stream == "Ordering.PaymentGateway" and charged.stream_id is None
    assert charged.data == {"order_id": str(order.id), "amount": "3.50"}
    assert app.state(Order, order.id).state.status is OrderStatus.Paid
    assert app.state(Ticket, order.id).state.drinks == 1
    assert app.view_rows(Tickets) == [{"ticket_id": str(order.id), "drinks": 1}]
    # one correlation id follows the chain; each causation id names the cause
    placed = order.events[0]
    correlation = placed.metadata["correlation_id"]
    assert {e.metadata["correlation_id"] for e in app.events()} == {correlation}
    assert paid.metadata["causation_id"] == charged.id
    assert opened.metadata["causation_id"] == paid.id
    assert paid.metadata["actor"] == "Ordering.PaidWhenCharged"
    assert paid.metadata["command_id"] == str(command_id("Ordering.PaidWhenCharged", charged.id, 0))
    port = app.ports["Ordering.PaymentGateway"]
    assert isinstance(port, FakePort)
    assert port.sent == [ChargeCard(order_id=order.id, amount=Decimal("3.50"))]


def test_a_policy_condition_can_issue_nothing(stores: Stores) -> None:
    app = stores.app(aggregates=[Order(), Ticket()], policies=[TicketForPaidOrder()])
    order = place(app)
    app.handle(MarkPaid(order_id=order.id, amount=Decimal(0)))
    app.run_consumers()
    assert [e.type for e in app.events()] == ["Ordering.OrderPlaced", "Ordering.OrderPaid"]


def test_redelivery_never_duplicates_an_effect(stores: Stores) -> None:
    app = stores.app(**definitions())
    for _ in range(3):
        place(app)
    app.run_consumers()
    before = [(e.id, e.type) for e in app.events()]
    assert len(before) == 15
    # every policy sees every event again (as after a crash before its checkpoint)
    with app.store.transaction() as uow:
        for policy in app.policies:
            uow.reset_checkpoint(policy, 0)
    app.run_consumers()
    assert [(e.id, e.type) for e in app.events()] == before
    # the external system is not even asked again: its answer is in the log
    assert len(app.ports["Ordering.PaymentGateway"].sent) == 3  # type: ignore[attr-defined]


def test_policies_run_in_background_threads(stores: Stores) -> None:
    app = stores.app(**definitions())
    app.start()
    try:
        order = place(app)
        deadline = time.monotonic() + 30
        # done when the ticket is shown and every consumer has caught up with the log
        while time.monotonic() < deadline:
            if app.view_rows(Tickets) and all(p["behind"] == 0 for p in app.progress().values()):
                break
            time.sleep(0.02)
        assert app.view_rows(Tickets) == [{"ticket_id": str(order.id), "drinks": 1}]
        assert app.store.last_position() == 5
        assert all(p["behind"] == 0 for p in app.progress().values())
    finally:
        app.stop()


class FlakyGateway:
    """A payment gateway that is down for the first `down` calls."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.calls = 0
        self.times: list[float] = []

    def send(self, command: Command, command_id: uuid.UUID) -> Sequence[Event]:
        self.calls += 1
        self.times.append(time.monotonic())
        if self.calls <= self.down:
            raise ConnectionError("gateway unreachable")
        assert isinstance(command, ChargeCard)
        return [CardCharged(order_id=command.order_id, amount=command.amount)]


def test_a_raising_adapter_is_retried_with_backoff(stores: Stores) -> None:
    gateway = FlakyGateway(down=2)
    retry = RetrySettings(max_attempts=3, base_delay=0.02, factor=2.0)
    app = stores.app(**definitions(ports={"Ordering.PaymentGateway": gateway}), retry=retry)
    order = place(app)
    app.run_consumers()
    assert gateway.calls == 3
    gaps = [b - a for a, b in zip(gateway.times, gateway.times[1:], strict=False)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04  # exponential backoff
    failures = [f.data for f in app.failures()]
    assert [(f["consumer"], f["attempt"], f["parked"]) for f in failures] == [
        ("Ordering.ChargeOnOrder", 1, False),
        ("Ordering.ChargeOnOrder", 2, False),
    ]
    assert failures[0]["error"] == "ConnectionError: gateway unreachable"
    assert failures[0]["event_type"] == "Ordering.OrderPlaced"
    assert app.parked() == []
    assert app.state(Order, order.id).state.status is OrderStatus.Paid


def test_a_rejected_policy_command_is_parked_and_can_be_retried(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()], policies=[PaidWhenCharged()], messages=PAYMENT_EVENTS)
    stray = uuid.uuid4()  # a charge for an order that does not exist (yet)
    [charged] = app.record_external([CardCharged(order_id=stray, amount=Decimal(2))])
    other = place(app)
    app.record_external([CardCharged(order_id=other.id, amount=Decimal(1))])
    app.run_consumers()
    failures = app.failures()
    assert [f.data["attempt"] for f in failures] == [1, 2, 3]
    assert failures[-1].data["parked"] is True
    assert "NotFound" in failures[-1].data["error"]
    assert failures[-1].metadata["causation_id"] == charged.id
    [parked] = app.parked("Ordering.PaidWhenCharged")
    assert parked.position == charged.position and parked.event_id == charged.id
    # the policy went on with the rest
    assert app.state(Order, other.id).state.status is OrderStatus.Paid
    assert app.progress()["Ordering.PaidWhenCharged"]["behind"] == 0
    # once the order exists, the parked event can be retried
    app.handle(PlaceOrder(order_id=stray, customer="Late", drinks=[latte()], total=Decimal(2)))
    assert app.retry_parked("Ordering.PaidWhenCharged", charged.position) is True
    assert app.parked() == []
    assert app.state(Order, stray).state.status is OrderStatus.Paid
    with pytest.raises(KeyError):
        app.retry_parked("Ordering.PaidWhenCharged", charged.position)


class PayTwice(Policy):
    """Issues two commands per event; the second one fails once."""

    name = "Ordering.PayTwice"
    events = (CardCharged,)

    def __init__(self) -> None:
        self.failed = False

    def react(self, event: Event, envelope: Envelope) -> list[Command]:
        assert isinstance(event, CardCharged)
        if not self.failed:
            self.failed = True
            return [MarkPaid(order_id=event.order_id, amount=event.amount), BrokenCommand()]
        return [MarkPaid(order_id=event.order_id, amount=event.amount)]


class BrokenCommand(Command, name="Ordering.Broken", aggregate="Ordering.Nowhere"):
    pass


def test_a_retried_event_does_not_repeat_commands_that_succeeded(stores: Stores) -> None:
    class CountingOrder(Order):
        def decide(self, state: Any, command: Command) -> list[Event]:
            if isinstance(command, MarkPaid):
                return [OrderPaid(order_id=command.order_id, amount=command.amount)]
            return super().decide(state, command)

    app = stores.app(
        aggregates=[CountingOrder()],
        policies=[PayTwice()],
        messages=PAYMENT_EVENTS,
        retry=FAST_RETRY,
    )
    order = place(app)
    app.record_external([CardCharged(order_id=order.id, amount=Decimal(1))])
    app.run_consumers()
    # attempt 1 paid then failed on the broken command; attempt 2 paid again: deduplicated
    assert [f.data["attempt"] for f in app.failures()] == [1]
    assert app.state(Order, order.id).state.paid == Decimal(1)
    assert app.store.stream_version(order.stream) == 2
