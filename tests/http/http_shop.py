"""A small coffee shop written by hand on the runtime, to test the HTTP layer in-process.

It mirrors a part of examples/coffee_shop.storm (orders, the payment gateway, tickets,
views) without going through the generator, so these tests only need the runtime.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from stormgen.runtime import (
    DELETE,
    Aggregate,
    Application,
    Command,
    Delete,
    Envelope,
    Event,
    Policy,
    Rejected,
    View,
)
from stormgen.runtime.http import ServeError, serve


class Size(enum.Enum):
    Small = "Small"
    Medium = "Medium"
    Large = "Large"


@dataclass(frozen=True)
class Drink:
    name: str
    price: Decimal
    size: Size = Size.Medium


# -- Ordering ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PlaceOrder(
    Command,
    name="Ordering.PlaceOrder",
    aggregate="Ordering.Order",
    creates=True,
    by=("Customer",),
):
    order_id: UUID | None
    customer: str
    drinks: list[Drink]
    total: Decimal


@dataclass(frozen=True)
class MarkPaid(Command, name="Ordering.MarkPaid", aggregate="Ordering.Order"):
    order_id: UUID
    amount: Decimal


@dataclass(frozen=True)
class Cancel(Command, name="Ordering.Cancel", aggregate="Ordering.Order", by=("Customer",)):
    order_id: UUID
    reason: str


@dataclass(frozen=True)
class OrderPlaced(
    Event, name="Ordering.OrderPlaced", aggregate="Ordering.Order", pii=("customer",)
):
    order_id: UUID
    customer: str
    drinks: list[Drink]
    total: Decimal


@dataclass(frozen=True)
class OrderPaid(Event, name="Ordering.OrderPaid", aggregate="Ordering.Order"):
    order_id: UUID
    amount: Decimal
    drinks: list[Drink]


@dataclass(frozen=True)
class OrderCancelled(Event, name="Ordering.OrderCancelled", aggregate="Ordering.Order"):
    order_id: UUID
    reason: str


@dataclass(frozen=True)
class ChargeCard(
    Command, name="Ordering.PaymentGateway.ChargeCard", system="Ordering.PaymentGateway"
):
    order_id: UUID
    amount: Decimal


@dataclass(frozen=True)
class CardCharged(
    Event, name="Ordering.PaymentGateway.CardCharged", system="Ordering.PaymentGateway"
):
    order_id: UUID
    amount: Decimal


@dataclass(frozen=True)
class CardDeclined(
    Event, name="Ordering.PaymentGateway.CardDeclined", system="Ordering.PaymentGateway"
):
    order_id: UUID
    reason: str


@dataclass(frozen=True)
class OrderState:
    customer: str = ""
    drinks: list[Drink] = field(default_factory=list)
    total: Decimal = Decimal(0)
    status: str = "Placed"


class Order(Aggregate[OrderState]):
    name = "Ordering.Order"
    id_field = "order_id"
    state_type = OrderState
    commands = (PlaceOrder, MarkPaid, Cancel)
    events = (OrderPlaced, OrderPaid, OrderCancelled)

    def initial_state(self) -> OrderState:
        return OrderState()

    def decide(self, state: OrderState, command: Command) -> Sequence[Event]:
        match command:
            case PlaceOrder():
                if not command.drinks:
                    raise Rejected("an order needs at least one drink")
                if command.total <= 0:
                    raise Rejected("the total must be positive")
                assert command.order_id is not None
                return [
                    OrderPlaced(command.order_id, command.customer, command.drinks, command.total)
                ]
            case MarkPaid():
                if state.status != "Placed":
                    raise Rejected("only a placed order can be paid")
                if command.amount != state.total:
                    raise Rejected("the amount must equal the order total")
                return [OrderPaid(command.order_id, command.amount, state.drinks)]
            case Cancel():
                if state.status != "Placed":
                    raise Rejected("only an unpaid order can be cancelled")
                return [OrderCancelled(command.order_id, command.reason)]
        raise TypeError(command)

    def apply(self, state: OrderState, event: Event) -> OrderState:
        match event:
            case OrderPlaced():
                return OrderState(event.customer, event.drinks, event.total)
            case OrderPaid():
                return replace(state, status="Paid")
            case OrderCancelled():
                return replace(state, status="Cancelled")
        return state


class ChargeOnOrder(Policy):
    name = "Ordering.ChargeOnOrder"
    events = (OrderPlaced,)

    def react(self, event: Event, envelope: Envelope) -> Sequence[Command]:
        assert isinstance(event, OrderPlaced)
        return [ChargeCard(event.order_id, event.total)]


class PaidWhenCharged(Policy):
    name = "Ordering.PaidWhenCharged"
    events = (CardCharged,)

    def react(self, event: Event, envelope: Envelope) -> Sequence[Command]:
        assert isinstance(event, CardCharged)
        return [MarkPaid(event.order_id, event.amount)]


class CancelWhenDeclined(Policy):
    name = "Ordering.CancelWhenDeclined"
    events = (CardDeclined,)

    def react(self, event: Event, envelope: Envelope) -> Sequence[Command]:
        assert isinstance(event, CardDeclined)
        return [Cancel(event.order_id, "card declined: " + event.reason)]


@dataclass(frozen=True)
class OrderHistoryRow:
    order_id: UUID
    customer: str | None = None
    total: Decimal = Decimal(0)
    status: str = "placed"


class OrderHistory(View[OrderHistoryRow]):
    name = "Ordering.OrderHistory"
    row_type = OrderHistoryRow
    key = "order_id"
    pii = frozenset({"customer"})
    events = (OrderPlaced, OrderPaid, OrderCancelled)

    def update(self, row: OrderHistoryRow, event: Event, envelope: Envelope) -> Any:
        match event:
            case OrderPlaced():
                return replace(row, customer=event.customer, total=event.total)
            case OrderPaid():
                return replace(row, status="paid")
            case OrderCancelled():
                return replace(row, status="cancelled")
        return row


@dataclass(frozen=True)
class DailySalesRow:
    day: date
    orders: int = 0
    revenue: Decimal = Decimal(0)


class DailySales(View[DailySalesRow]):
    name = "Ordering.DailySales"
    row_type = DailySalesRow
    key = "day"
    events = (OrderPaid,)

    def key_of(self, event: Event, envelope: Envelope) -> Any:
        return envelope.recorded_at.date()

    def update(self, row: DailySalesRow, event: Event, envelope: Envelope) -> Any:
        assert isinstance(event, OrderPaid)
        return replace(row, orders=row.orders + 1, revenue=row.revenue + event.amount)


# -- Bar ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenTicket(Command, name="Bar.OpenTicket", aggregate="Bar.Ticket", creates=True):
    ticket_id: UUID
    drinks: list[Drink]


@dataclass(frozen=True)
class StartBrewing(Command, name="Bar.StartBrewing", aggregate="Bar.Ticket", by=("Barista",)):
    ticket_id: UUID


@dataclass(frozen=True)
class HTTPRequestDone(Command, name="Bar.HTTPRequestDone", aggregate="Bar.Ticket", by=("Barista",)):
    """A command with an awkward name, to check the path segment."""

    ticket_id: UUID


@dataclass(frozen=True)
class TicketOpened(Event, name="Bar.TicketOpened", aggregate="Bar.Ticket"):
    ticket_id: UUID
    drinks: list[Drink]


@dataclass(frozen=True)
class BrewingStarted(Event, name="Bar.BrewingStarted", aggregate="Bar.Ticket"):
    ticket_id: UUID


@dataclass(frozen=True)
class TicketState:
    drinks: list[Drink] = field(default_factory=list)
    status: str = "Queued"


class Ticket(Aggregate[TicketState]):
    name = "Bar.Ticket"
    id_field = "ticket_id"
    state_type = TicketState
    commands = (OpenTicket, StartBrewing, HTTPRequestDone)
    events = (TicketOpened, BrewingStarted)

    def initial_state(self) -> TicketState:
        return TicketState()

    def decide(self, state: TicketState, command: Command) -> Sequence[Event]:
        match command:
            case OpenTicket():
                return [TicketOpened(command.ticket_id, command.drinks)]
            case StartBrewing():
                if state.status != "Queued":
                    raise Rejected("this ticket is not waiting")
                return [BrewingStarted(command.ticket_id)]
            case HTTPRequestDone():
                return []
        raise TypeError(command)

    def apply(self, state: TicketState, event: Event) -> TicketState:
        match event:
            case TicketOpened():
                return TicketState(event.drinks)
            case BrewingStarted():
                return replace(state, status="Brewing")
        return state


class QueuePaidOrder(Policy):
    name = "Bar.QueuePaidOrder"
    events = (OrderPaid,)

    def react(self, event: Event, envelope: Envelope) -> Sequence[Command]:
        assert isinstance(event, OrderPaid)
        return [OpenTicket(event.order_id, event.drinks)]


@dataclass(frozen=True)
class PickupRow:
    ticket_id: UUID
    ready: bool = False


class Pickup(View[PickupRow]):
    name = "Display.Pickup"
    row_type = PickupRow
    key = "ticket_id"
    events = (TicketOpened,)

    def update(self, row: PickupRow, event: Event, envelope: Envelope) -> PickupRow | Delete:
        return row if isinstance(event, TicketOpened) else DELETE


# -- Library: an aggregate with a text id, for ids that need URL-encoding ---------------
@dataclass(frozen=True)
class AddBook(
    Command, name="Library.AddBook", aggregate="Library.Book", creates=True, by=("Librarian",)
):
    isbn: str
    title: str


@dataclass(frozen=True)
class RenameBook(Command, name="Library.RenameBook", aggregate="Library.Book", by=("Librarian",)):
    isbn: str
    title: str


@dataclass(frozen=True)
class BookTitled(Event, name="Library.BookTitled", aggregate="Library.Book"):
    isbn: str
    title: str


@dataclass(frozen=True)
class BookState:
    title: str = ""


class Book(Aggregate[BookState]):
    name = "Library.Book"
    id_field = "isbn"
    id_type = str
    state_type = BookState
    commands = (AddBook, RenameBook)
    events = (BookTitled,)

    def initial_state(self) -> BookState:
        return BookState()

    def decide(self, state: BookState, command: Command) -> Sequence[Event]:
        assert isinstance(command, AddBook | RenameBook)
        return [BookTitled(command.isbn, command.title)]

    def apply(self, state: BookState, event: Event) -> BookState:
        assert isinstance(event, BookTitled)
        return BookState(event.title)


@dataclass(frozen=True)
class TitleRow:
    isbn: str
    title: str = ""


class Titles(View[TitleRow]):
    name = "Library.Titles"
    row_type = TitleRow
    key = "isbn"
    events = (BookTitled,)

    def update(self, row: TitleRow, event: Event, envelope: Envelope) -> TitleRow:
        assert isinstance(event, BookTitled)
        return replace(row, title=event.title)


def open_shop(url: str = "memory://", **options: Any) -> Application:
    """An application for the hand-written shop on the store ``url``."""
    return Application.open(
        url,
        aggregates=[Order(), Ticket(), Book()],
        views=[OrderHistory(), DailySales(), Pickup(), Titles()],
        policies=[ChargeOnOrder(), PaidWhenCharged(), CancelWhenDeclined(), QueuePaidOrder()],
        system_events={"Ordering.PaymentGateway": (CardCharged, CardDeclined)},
        **options,
    )


def assert_serve_refuses(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, match: str
) -> None:
    """`serve` of the shop with the variable `name` set to `value` ends with a one-line
    `ServeError` matching `match` (no server started, nothing left open)."""
    application = open_shop()
    try:
        monkeypatch.setenv(name, value)
        with pytest.raises(ServeError, match=match):
            serve(application, announce=lambda _: None)
    finally:
        application.close()
