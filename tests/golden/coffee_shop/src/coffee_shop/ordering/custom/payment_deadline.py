"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.ordering.payment_deadline import PaymentDeadlineBase


class PaymentDeadline(PaymentDeadlineBase):
    """The process PaymentDeadline: override how it handles an event here."""

    # An override, for example:
    #
    # from stormgen.runtime import Event, Envelope, Step
    # from coffee_shop.ordering.payment_deadline import PaymentDeadlineState
    #
    # def handle(self, step: Step[PaymentDeadlineState], event: Event, envelope: Envelope) -> None:
    #     super().handle(step, event, envelope)
