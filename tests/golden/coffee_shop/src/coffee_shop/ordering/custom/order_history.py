"""Your code: stormgen wrote this file once and never overwrites it."""

from __future__ import annotations

from coffee_shop.ordering.views import OrderHistoryBase


class OrderHistory(OrderHistoryBase):
    """The view OrderHistory: override how an event updates a row here."""

    # An override, for example:
    #
    # from stormgen.runtime import Delete, Envelope, Event
    # from coffee_shop.ordering.views import OrderHistoryRow
    #
    # def update(self, row: OrderHistoryRow, event: Event, envelope: Envelope) -> OrderHistoryRow | Delete:
    #     return super().update(row, event, envelope)
