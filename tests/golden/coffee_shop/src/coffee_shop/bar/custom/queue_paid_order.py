"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.bar.policies import QueuePaidOrderBase


class QueuePaidOrder(QueuePaidOrderBase):
    """The policy QueuePaidOrder: override its mapping here."""

    # An override, for example:
    #
    # from stormgen.runtime import Command, Envelope
    # from coffee_shop.ordering.order import OrderPaid
    #
    # def commands(self, event: OrderPaid, envelope: Envelope) -> list[Command]:
    #     return super().commands(event, envelope)
