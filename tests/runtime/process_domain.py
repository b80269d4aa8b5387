"""A process on the hand-written coffee shop domain: an order not paid within 15
minutes is cancelled (with the paid and cancelled orders' instances ended)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from coffee_domain import Cancel, OrderCancelled, OrderPaid, OrderPlaced

from stormgen.runtime import Process, Step, on_event, on_timer


@dataclass(frozen=True, slots=True)
class CheckoutState:
    total: Decimal = Decimal(0)
    paid: bool = False
    reminders: int = 0


class Checkout(Process[CheckoutState]):
    name = "Ordering.Checkout"
    key = "order_id"
    key_type = UUID
    state_type = CheckoutState
    events = (OrderPlaced, OrderPaid, OrderCancelled)
    starts = (OrderPlaced,)
    timers = ("PaymentDue",)
    #: set by a test to make the timer's handler fail
    failing = False

    @on_event(OrderPlaced)
    def placed(self, step: Step[CheckoutState], event: OrderPlaced) -> None:
        step.timer("PaymentDue", after=timedelta(minutes=15))

    @on_event(OrderPaid)
    def paid(self, step: Step[CheckoutState], event: OrderPaid) -> None:
        step.assign(paid=True)
        step.cancel("PaymentDue")
        step.end()

    @on_event(OrderCancelled)
    def cancelled(self, step: Step[CheckoutState], event: OrderCancelled) -> None:
        step.end()

    @on_timer("PaymentDue")
    def payment_due(self, step: Step[CheckoutState]) -> None:
        if self.failing:
            raise RuntimeError("the payment service is away")
        if not step.state.paid:
            step.assign(reminders=step.state.reminders + 1)
            step.issue(Cancel(order_id=step.key, reason="not paid in time"))
