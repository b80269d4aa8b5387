"""Commands a policy sends to an external system leave a `$CommandSent` record in the log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from coffee_domain import (
    PAYMENT_EVENTS,
    ChargeCard,
    ChargeOnOrder,
    Order,
    OrderPlaced,
    PlaceOrder,
    definitions,
    latte,
)
from runtime_support import Stores

from stormgen.runtime import COMMAND_SENT, REDACTED, Command, Envelope, Event, Policy, command_id
from stormgen.runtime.crypto import is_encrypted


class SilentGateway:
    """A system that takes every command and answers nothing (its answer comes later)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Command, uuid.UUID]] = []

    def send(self, command: Command, command_id: uuid.UUID) -> Sequence[Event]:
        self.sent.append((command, command_id))
        return []


@dataclass(frozen=True, slots=True)
class SendReceipt(Command, name="Ordering.SendReceipt", system="Ordering.Mailer", pii=("email",)):
    order_id: UUID
    email: str


class ReceiptOnOrder(Policy):
    name = "Ordering.ReceiptOnOrder"
    events = (OrderPlaced,)

    def react(self, event: Event, envelope: Envelope) -> list[Command]:
        assert isinstance(event, OrderPlaced)
        return [SendReceipt(order_id=event.order_id, email=f"{event.customer}@example.com")]


def place(app: Any, customer: str = "Ada") -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal("3.50")))


def redeliver(app: Any) -> None:
    """Every policy sees every event again (as after a crash before its checkpoint)."""
    with app.store.transaction() as uow:
        for policy in app.policies:
            uow.reset_checkpoint(policy, 0)
    app.run_consumers()


def test_a_command_answered_with_nothing_is_recorded_and_never_sent_twice(stores: Stores) -> None:
    gateway = SilentGateway()
    app = stores.app(
        aggregates=[Order()],
        policies=[ChargeOnOrder()],
        system_events={"Ordering.PaymentGateway": PAYMENT_EVENTS},
        ports={"Ordering.PaymentGateway": gateway},
    )
    order = place(app)
    app.run_consumers()
    placed, sent = app.events()
    cid = command_id("Ordering.ChargeOnOrder", placed.id, 0)
    assert gateway.sent == [(ChargeCard(order_id=order.id, amount=Decimal("3.50")), cid)]
    # the fact that it was sent: in the system's stream, under the command's id
    assert sent.type == COMMAND_SENT and sent.event is None
    assert sent.stream == "Ordering.PaymentGateway" and sent.stream_id is None
    assert sent.id == str(cid)
    assert sent.data == {"order_id": str(order.id), "amount": "3.50"}
    assert sent.metadata["command"] == "Ordering.ChargeCard"
    assert sent.metadata["command_id"] == str(cid)
    assert sent.metadata["causation_id"] == placed.id
    assert sent.metadata["correlation_id"] == placed.metadata["correlation_id"]
    assert sent.metadata["actor"] == "Ordering.ChargeOnOrder"
    # a redelivered event asks the system no second time, and nothing new is written
    redeliver(app)
    assert len(gateway.sent) == 1
    assert [e.id for e in app.events()] == [placed.id, sent.id]


def test_the_answers_follow_the_record_of_the_command(stores: Stores) -> None:
    app = stores.app(**definitions())
    place(app)
    app.run_consumers()
    types = [e.type for e in app.events()]
    assert types[:3] == ["Ordering.OrderPlaced", COMMAND_SENT, "Ordering.CardCharged"]
    placed, sent, charged = app.events()[:3]
    # one chain: the event caused the command, the command caused the answer
    assert sent.metadata["causation_id"] == placed.id
    assert charged.metadata["causation_id"] == sent.id == charged.metadata["command_id"]
    assert (sent.stream_version, charged.stream_version) == (1, 2)


def test_a_sent_commands_pii_is_sealed_and_can_be_forgotten(stores: Stores) -> None:
    mailer = SilentGateway()
    app = stores.app(
        aggregates=[Order()], policies=[ReceiptOnOrder()], ports={"Ordering.Mailer": mailer}
    )
    order = place(app)
    app.run_consumers()
    [record] = [r for r in app.store.read_all(0) if r.type == COMMAND_SENT]
    assert is_encrypted(record.data["email"]) and record.data["order_id"] == str(order.id)
    [sent] = app.events(types=[COMMAND_SENT])
    assert sent.data == {"order_id": str(order.id), "email": "Ada@example.com"}
    app.forget_stream("Ordering.Mailer")
    [sent] = app.events(types=[COMMAND_SENT])
    assert sent.data["email"] == REDACTED and sent.redacted == frozenset({"email"})
