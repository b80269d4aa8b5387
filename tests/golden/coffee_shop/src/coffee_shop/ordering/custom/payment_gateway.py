"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.ordering.payment_gateway import FakePaymentGateway


class PaymentGatewayAdapter(FakePaymentGateway):
    """The adapter to PaymentGateway: replace the fake with real calls here."""

    # An override, for example:
    #
    # from collections.abc import Sequence
    # from uuid import UUID
    # from stormgen.runtime import Command, Event
    #
    # def send(self, command: Command, command_id: UUID) -> Sequence[Event]:
    #     # call the real system here; raising makes a failure event and a retry
    #     return super().send(command, command_id)
