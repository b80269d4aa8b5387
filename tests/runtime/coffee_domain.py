"""A small hand-written coffee shop domain (Ordering, Bar) on the runtime's API."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from stormgen.runtime import (
    DELETE,
    Aggregate,
    Command,
    Delete,
    Envelope,
    Event,
    Policy,
    Rejected,
    View,
    copy_fields,
)


class Size(enum.Enum):
    Small = "Small"
    Medium = "Medium"
    Large = "Large"


class OrderStatus(enum.Enum):
    Placed = "Placed"
    Paid = "Paid"
    Cancelled = "Cancelled"


@dataclass(frozen=True, slots=True)
class Drink:
    name: str
    price: Decimal
    size: Size = Size.Medium


# -- Ordering.Order ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlaceOrder(Command, name="Ordering.PlaceOrder", aggregate="Ordering.Order", creates=True):
    customer: str
    drinks: list[Drink]
    total: Decimal
    order_id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, slots=True)
class MarkPaid(Command, name="Ordering.MarkPaid", aggregate="Ordering.Order"):
    order_id: UUID
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Cancel(Command, name="Ordering.Cancel", aggregate="Ordering.Order"):
    order_id: UUID
    reason: str


@dataclass(frozen=True, slots=True)
class OrderPlaced(
    Event, name="Ordering.OrderPlaced", aggregate="Ordering.Order", pii=("customer",)
):
    order_id: UUID
    customer: str
    drinks: list[Drink]
    total: Decimal


@dataclass(frozen=True, slots=True)
class OrderPaid(Event, name="Ordering.OrderPaid", aggregate="Ordering.Order"):
    order_id: UUID
    amount: Decimal


@dataclass(frozen=True, slots=True)
class OrderCancelled(
    Event,
    name="Ordering.OrderCancelled",
    aggregate="Ordering.Order",
    version=2,
    was={"reason": "why"},
):
    order_id: UUID
    reason: str
    cancelled_by: str = "customer"


@dataclass(frozen=True, slots=True)
class OrderState:
    customer: str = ""
    drinks: list[Drink] = field(default_factory=list)
    total: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.Placed
    paid: Decimal = Decimal(0)


class Order(Aggregate[OrderState]):
    name = "Ordering.Order"
    id_field = "order_id"
    state_type = OrderState
    snapshot_every = 3
    commands = (PlaceOrder, MarkPaid, Cancel)
    events = (OrderPlaced, OrderPaid, OrderCancelled)

    def initial_state(self) -> OrderState:
        return OrderState()

    def decide(self, state: OrderState, command: Command) -> list[Event]:
        match command:
            case PlaceOrder():
                if not command.drinks:
                    raise Rejected("an order needs at least one drink")
                if command.total <= 0:
                    raise Rejected("the total must be positive")
                return [copy_fields(OrderPlaced, command)]
            case MarkPaid():
                if state.status != OrderStatus.Placed:
                    raise Rejected("only a placed order can be paid")
                return [OrderPaid(order_id=command.order_id, amount=command.amount)]
            case Cancel():
                if state.status != OrderStatus.Placed:
                    raise Rejected("only an unpaid order can be cancelled")
                return [OrderCancelled(order_id=command.order_id, reason=command.reason)]
        raise TypeError(command)

    def apply(self, state: OrderState, event: Event) -> OrderState:
        match event:
            case OrderPlaced():
                return replace(
                    state, customer=event.customer, drinks=event.drinks, total=event.total
                )
            case OrderPaid():
                return replace(state, status=OrderStatus.Paid, paid=state.paid + event.amount)
            case OrderCancelled():
                return replace(state, status=OrderStatus.Cancelled)
        return state


class Tally(Order):
    """An order whose every payment counts, to grow long streams easily."""

    def decide(self, state: OrderState, command: Command) -> list[Event]:
        if isinstance(command, MarkPaid):
            return [OrderPaid(order_id=command.order_id, amount=command.amount)]
        return super().decide(state, command)


# -- Ordering.PaymentGateway (external) ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChargeCard(Command, name="Ordering.ChargeCard", system="Ordering.PaymentGateway"):
    order_id: UUID
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CardCharged(Event, name="Ordering.CardCharged", system="Ordering.PaymentGateway"):
    order_id: UUID
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CardDeclined(Event, name="Ordering.CardDeclined", system="Ordering.PaymentGateway"):
    order_id: UUID
    reason: str


PAYMENT_EVENTS: tuple[type[Event], ...] = (CardCharged, CardDeclined)


class ChargeOnOrder(Policy):
    name = "Ordering.ChargeOnOrder"
    events = (OrderPlaced,)

    def react(self, event: Event, envelope: Envelope) -> list[Command]:
        assert isinstance(event, OrderPlaced)
        return [copy_fields(ChargeCard, event, amount=event.total)]


class PaidWhenCharged(Policy):
    name = "Ordering.PaidWhenCharged"
    events = (CardCharged,)

    def react(self, event: Event, envelope: Envelope) -> list[Command]:
        assert isinstance(event, CardCharged)
        return [copy_fields(MarkPaid, event)]


# -- Bar.Ticket ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpenTicket(Command, name="Bar.OpenTicket", aggregate="Bar.Ticket", creates=True):
    ticket_id: UUID
    drinks: int


@dataclass(frozen=True, slots=True)
class HandOver(Command, name="Bar.HandOver", aggregate="Bar.Ticket"):
    ticket_id: UUID


@dataclass(frozen=True, slots=True)
class TicketOpened(Event, name="Bar.TicketOpened", aggregate="Bar.Ticket"):
    ticket_id: UUID
    drinks: int


@dataclass(frozen=True, slots=True)
class TicketHandedOver(Event, name="Bar.TicketHandedOver", aggregate="Bar.Ticket"):
    ticket_id: UUID


@dataclass(frozen=True, slots=True)
class TicketState:
    drinks: int = 0
    handed_over: bool = False


class Ticket(Aggregate[TicketState]):
    name = "Bar.Ticket"
    id_field = "ticket_id"
    state_type = TicketState
    commands = (OpenTicket, HandOver)
    events = (TicketOpened, TicketHandedOver)

    def initial_state(self) -> TicketState:
        return TicketState()

    def decide(self, state: TicketState, command: Command) -> list[Event]:
        match command:
            case OpenTicket():
                return [TicketOpened(ticket_id=command.ticket_id, drinks=command.drinks)]
            case HandOver():
                if state.handed_over:
                    raise Rejected("the ticket was already handed over")
                return [TicketHandedOver(ticket_id=command.ticket_id)]
        raise TypeError(command)

    def apply(self, state: TicketState, event: Event) -> TicketState:
        match event:
            case TicketOpened():
                return TicketState(drinks=event.drinks)
            case TicketHandedOver():
                return replace(state, handed_over=True)
        return state


class TicketForPaidOrder(Policy):
    name = "Bar.TicketForPaidOrder"
    events = (OrderPaid,)

    def react(self, event: Event, envelope: Envelope) -> list[Command]:
        assert isinstance(event, OrderPaid)
        if event.amount <= 0:
            return []
        return [OpenTicket(ticket_id=event.order_id, drinks=1)]


# -- views ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderHistoryRow:
    order_id: UUID
    customer: str | None = None
    total: Decimal = Decimal(0)
    status: str = "placed"
    drinks: int = 0


class OrderHistory(View[OrderHistoryRow]):
    name = "Ordering.OrderHistory"
    row_type = OrderHistoryRow
    key = "order_id"
    pii = frozenset({"customer"})
    events = (OrderPlaced, OrderPaid, OrderCancelled)

    def update(
        self, row: OrderHistoryRow, event: Event, envelope: Envelope
    ) -> OrderHistoryRow | Delete:
        match event:
            case OrderPlaced():
                return replace(
                    row, customer=event.customer, total=event.total, drinks=len(event.drinks)
                )
            case OrderPaid():
                return replace(row, status="paid")
            case OrderCancelled():
                return replace(row, status="cancelled")
        return row


@dataclass(frozen=True)
class CountRow:
    key: str
    orders: int = 0


class OrderCount(View[CountRow]):
    """Counts placed orders in one row: an event applied twice, or skipped, shows."""

    name = "Ordering.OrderCount"
    row_type = CountRow
    key = "key"
    events = (OrderPlaced,)

    def key_of(self, event: Event, envelope: Envelope) -> Any:
        return "all"

    def update(self, row: CountRow, event: Event, envelope: Envelope) -> CountRow:
        return replace(row, orders=row.orders + 1)


@dataclass(frozen=True, slots=True)
class TicketRow:
    ticket_id: UUID
    drinks: int = 0


class Tickets(View[TicketRow]):
    name = "Bar.Tickets"
    row_type = TicketRow
    key = "ticket_id"
    events = (TicketOpened, TicketHandedOver)

    def update(self, row: TicketRow, event: Event, envelope: Envelope) -> TicketRow | Delete:
        if isinstance(event, TicketHandedOver):
            return DELETE
        assert isinstance(event, TicketOpened)
        return replace(row, drinks=event.drinks)


def definitions(**overrides: Any) -> dict[str, Any]:
    """The whole coffee shop, as keyword arguments to `Application`."""
    out: dict[str, Any] = {
        "aggregates": [Order(), Ticket()],
        "views": [OrderHistory(), Tickets()],
        "policies": [ChargeOnOrder(), PaidWhenCharged(), TicketForPaidOrder()],
        "system_events": {"Ordering.PaymentGateway": PAYMENT_EVENTS},
    }
    out.update(overrides)
    return out


def latte(price: str = "3.50") -> Drink:
    return Drink(name="latte", price=Decimal(price), size=Size.Large)
