"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.ordering.policies import PaidWhenChargedBase


class PaidWhenCharged(PaidWhenChargedBase):
    """The policy PaidWhenCharged: override its mapping here."""

    # An override, for example:
    #
    # from stormgen.runtime import Command, Envelope
    # from coffee_shop.ordering.payment_gateway import CardCharged
    #
    # def commands(self, event: CardCharged, envelope: Envelope) -> list[Command]:
    #     return super().commands(event, envelope)
