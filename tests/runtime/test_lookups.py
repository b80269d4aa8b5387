"""Lookups: a definition reads a view's row by key through the application (every store).

`Application` binds each aggregate, policy and process to one `Lookups` over its store: `row`
decodes the row into the view's row class (pii opened), or gives None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from coffee_domain import (
    HandOver,
    OpenTicket,
    OrderHistoryRow,
    OrderPlaced,
    PlaceOrder,
    Ticket,
    TicketState,
    definitions,
    latte,
)
from runtime_support import Stores

from stormgen.runtime import (
    Command,
    Event,
    Process,
    Rejected,
    Step,
    StormgenRuntimeError,
    TestClock,
    on_event,
    on_timer,
)


class CheckedTicket(Ticket):
    """A ticket handed over only when the order's history row says it is placed."""

    def decide(self, state: TicketState, command: Command) -> list[Event]:
        if isinstance(command, HandOver):
            row: OrderHistoryRow | None = self.lookups.row(
                "Ordering.OrderHistory", command.ticket_id
            )
            if row is None:
                raise Rejected("no such order in the history yet")
            if row.customer != "Ada":
                raise Rejected(f"not Ada's order but {row.customer}'s")
        return list(super().decide(state, command))


def test_a_guard_reads_a_views_row_by_key(stores: Stores) -> None:
    app = stores.app(**definitions(aggregates=[definitions()["aggregates"][0], CheckedTicket()]))
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal("3.50")))
    app.handle(OpenTicket(ticket_id=order.stream_id, drinks=1))
    with pytest.raises(Rejected, match="no such order in the history yet"):
        app.handle(HandOver(ticket_id=order.stream_id))  # the view has not caught up
    app.run_consumers()
    row = app.lookups.row("Ordering.OrderHistory", order.stream_id)
    # decoded to the row class, its pii column opened
    assert isinstance(row, OrderHistoryRow)
    assert (row.customer, row.total, row.drinks) == ("Ada", Decimal("3.50"), 1)
    app.handle(HandOver(ticket_id=order.stream_id))
    assert app.lookups.row("Ordering.OrderHistory", "00000000-0000-0000-0000-000000000000") is None


def test_definitions_are_bound_to_their_application(sqlite_stores: Stores) -> None:
    ticket = CheckedTicket()
    # before an application binds it, a lookup says what is missing
    with pytest.raises(StormgenRuntimeError, match="needs an application"):
        ticket.lookups.row("Ordering.OrderHistory", "x")
    app = sqlite_stores.app(**definitions(aggregates=[ticket]))
    assert ticket.lookups is app.lookups
    assert all(p.lookups is app.lookups for p in app.policies.values())
    with pytest.raises(StormgenRuntimeError, match=r"no view 'Shop\.Nothing'"):
        app.lookups.row("Shop.Nothing", "x")


@dataclass(frozen=True, slots=True)
class ThanksState:
    order_id: UUID
    customer: str = ""
    status: str = ""


class Thanks(Process[ThanksState]):
    """A minute after an order is placed, its history row says whom to thank and how the
    order stands (a timer's handler reading a view: it has had that minute to catch up)."""

    name = "Ordering.Thanks"
    key = "order_id"
    state_type = ThanksState
    events = (OrderPlaced,)
    starts = (OrderPlaced,)
    timers = ("Thank",)

    @on_event(OrderPlaced)
    def placed(self, step: Step[ThanksState], event: OrderPlaced) -> None:
        step.timer("Thank", after=timedelta(minutes=1))

    @on_timer("Thank")
    def thank(self, step: Step[ThanksState]) -> None:
        row: OrderHistoryRow | None = self.lookups.row("Ordering.OrderHistory", step.key)
        if row is None:
            step.skip()
            return
        step.assign(customer=row.customer or "", status=row.status)
        step.end()


def test_a_process_reads_a_views_row_by_key(stores: Stores) -> None:
    clock = TestClock()
    thanks = Thanks()
    app = stores.app(**definitions(processes=[thanks], clock=clock))
    assert thanks.lookups is app.lookups
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal("3.50")))
    app.run_consumers()  # charged and paid by the policies; the view caught up
    clock.advance(timedelta(minutes=2))
    app.run_consumers()
    instance = app.process_instance(Thanks, order.stream_id)
    # read in the timer's run, the row decoded (its pii column opened)
    assert instance is not None and instance.ended
    assert (instance.state.customer, instance.state.status) == ("Ada", "paid")
