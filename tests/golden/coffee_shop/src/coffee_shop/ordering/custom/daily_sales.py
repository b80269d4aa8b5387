"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.ordering.views import DailySalesBase


class DailySales(DailySalesBase):
    """The view DailySales: override how an event updates a row here."""

    # An override, for example:
    #
    # from stormgen.runtime import Delete, Envelope, Event
    # from coffee_shop.ordering.views import DailySalesRow
    #
    # def update(self, row: DailySalesRow, event: Event, envelope: Envelope) -> DailySalesRow | Delete:
    #     return super().update(row, event, envelope)
