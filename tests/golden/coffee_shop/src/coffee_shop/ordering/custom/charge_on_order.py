"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.ordering.policies import ChargeOnOrderBase


class ChargeOnOrder(ChargeOnOrderBase):
    """The policy ChargeOnOrder: override its mapping here."""

    # An override, for example:
    #
    # from stormgen.runtime import Command, Envelope
    # from coffee_shop.ordering.order import OrderPlaced
    #
    # def commands(self, event: OrderPlaced, envelope: Envelope) -> list[Command]:
    #     return super().commands(event, envelope)
