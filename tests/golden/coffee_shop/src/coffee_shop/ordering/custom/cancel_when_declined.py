"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.ordering.policies import CancelWhenDeclinedBase


class CancelWhenDeclined(CancelWhenDeclinedBase):
    """The policy CancelWhenDeclined: override its mapping here."""

    # An override, for example:
    #
    # from stormgen.runtime import Command, Envelope
    # from coffee_shop.ordering.payment_gateway import CardDeclined
    #
    # def commands(self, event: CardDeclined, envelope: Envelope) -> list[Command]:
    #     return super().commands(event, envelope)
