"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.display.views import PickupBase


class Pickup(PickupBase):
    """The view Pickup: override how an event updates a row here."""

    # An override, for example:
    #
    # from stormgen.runtime import Delete, Envelope, Event
    # from coffee_shop.display.views import PickupRow
    #
    # def update(self, row: PickupRow, event: Event, envelope: Envelope) -> PickupRow | Delete:
    #     return super().update(row, event, envelope)
