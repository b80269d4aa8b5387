"""The base classes dispatch to the methods marked for a message class (runtime.dispatch).

The coffee shop's messages (coffee_domain), with definitions written the way generated
code is: marked methods, `require` guards, `commands`/`applies`, no `decide`/`apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from coffee_domain import (
    CardCharged,
    CardDeclined,
    ChargeCard,
    MarkPaid,
    OrderCancelled,
    OrderHistoryRow,
    OrderPaid,
    OrderPlaced,
    OrderState,
    OrderStatus,
    PlaceOrder,
    latte,
)

from stormgen.runtime.aggregate import Aggregate
from stormgen.runtime.application import Application
from stormgen.runtime.dispatch import key_for, on_command, on_event
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.messages import Command, Envelope, Event
from stormgen.runtime.policies import FakePort, Policy, copy_fields
from stormgen.runtime.rejections import Rejected, require
from stormgen.runtime.testing import RECORDED_AT, when
from stormgen.runtime.views import View

ALL_PAID = UUID(int=0)


class MarkedOrder(Aggregate[OrderState]):
    name, id_field, state_type = "Ordering.Order", "order_id", OrderState
    commands, events = (PlaceOrder, MarkPaid), (OrderPlaced, OrderPaid)

    def initial_state(self) -> OrderState:
        return OrderState()

    @on_command(PlaceOrder)
    def place(self, state: OrderState, command: PlaceOrder) -> list[Event]:
        require(len(command.drinks) > 0, "an order needs at least one drink")
        return [copy_fields(OrderPlaced, command)]

    @on_command(MarkPaid)
    def mark_paid(self, state: OrderState, command: MarkPaid) -> list[Event]:
        require(state.status == OrderStatus.Placed, "only a placed order can be paid")
        return [OrderPaid(order_id=command.order_id, amount=command.amount)]

    @on_event(OrderPlaced)
    def placed(self, state: OrderState, event: OrderPlaced, recorded: RecordedEvent) -> OrderState:
        return replace(state, customer=f"{event.customer} #{recorded.position}", total=event.total)

    @on_event(OrderPaid)
    def paid(self, state: OrderState, event: OrderPaid) -> OrderState:
        return replace(state, status=OrderStatus.Paid, paid=state.paid + event.amount)


class UsersOrder(MarkedOrder):
    """A user's subclass: overrides a marked method without marking it again."""

    def mark_paid(self, state: OrderState, command: MarkPaid) -> list[Event]:
        require(command.amount < 100, "ask the manager")
        return super().mark_paid(state, command)


@dataclass(frozen=True, slots=True)
class Tipped(OrderPaid, name="Ordering.Tipped", aggregate="Ordering.Order"):
    """A subclass of an event: applied by its base's method, as `isinstance` would."""


def placed(customer: str = "Ada", total: str = "3.50") -> PlaceOrder:
    return PlaceOrder(customer=customer, drinks=[latte(total)], total=Decimal(total))


def test_an_aggregate_dispatches_commands_and_events_to_marked_methods() -> None:
    order = UsersOrder()
    command = placed()
    events, state = when(order, order.initial_state(), command)
    assert events == [copy_fields(OrderPlaced, command)]
    assert state.customer == "Ada #1"  # the method taking `recorded` ran, from evolve
    paid = MarkPaid(order_id=command.order_id, amount=Decimal("3.50"))
    events, state = when(order, state, paid)
    assert events == [OrderPaid(order_id=command.order_id, amount=Decimal("3.50"))]
    assert (state.status, state.paid) == (OrderStatus.Paid, Decimal("3.50"))
    # apply alone (no envelope) applies what needs none and leaves the rest as it is
    tipped = Tipped(order_id=command.order_id, amount=Decimal(1))
    assert order.apply(OrderState(), tipped).paid == Decimal(1)
    assert order.apply(OrderState(), events[0]).status == OrderStatus.Paid
    assert order.apply(OrderState(), copy_fields(OrderPlaced, command)) == OrderState()
    assert RECORDED_AT.year == 2026


def test_guards_read_as_written_and_the_override_is_the_one_called() -> None:
    order = UsersOrder()
    with pytest.raises(Rejected) as rejected:
        when(order, order.initial_state(), PlaceOrder(customer="Ada", drinks=[], total=Decimal(1)))
    assert rejected.value.message == "an order needs at least one drink"
    big = MarkPaid(order_id=UUID(int=1), amount=Decimal(100))
    with pytest.raises(Rejected) as rejected:
        when(order, order.initial_state(), big)
    assert rejected.value.message == "ask the manager"
    with pytest.raises(TypeError, match=r"Ordering\.Order does not handle ChargeCard"):
        order.decide(order.initial_state(), ChargeCard(order_id=UUID(int=1), amount=Decimal(1)))


def test_a_definition_marking_nothing_must_override_apply() -> None:
    class Bare(Aggregate[int]):
        name, id_field = "Ordering.Bare", "order_id"

        def initial_state(self) -> int:
            return 0

    with pytest.raises(TypeError, match="must override apply"):
        Bare().apply(0, OrderPaid(order_id=UUID(int=1), amount=Decimal(1)))


class PaidTotal(View[OrderHistoryRow]):
    """Placed orders a row each; every payment summed into the row of ALL_PAID."""

    name, key, events = "Ordering.PaidTotal", "order_id", (OrderPlaced, OrderPaid)
    row_type = OrderHistoryRow

    @key_for(OrderPaid)
    def all_paid(self, event: OrderPaid, envelope: Envelope) -> UUID:
        return ALL_PAID

    @on_event(OrderPlaced)
    def on_placed(self, row: OrderHistoryRow, event: OrderPlaced, envelope: Envelope) -> Any:
        return replace(row, customer=event.customer)

    @on_event(OrderPaid)
    def on_paid(self, row: OrderHistoryRow, event: OrderPaid, envelope: Envelope) -> Any:
        return replace(row, total=row.total + event.amount, status="paid")


class PayBigOrders(Policy):
    name, events = "Ordering.PayBigOrders", (OrderPlaced,)

    def applies(self, event: OrderPlaced, envelope: Envelope) -> bool:
        return event.total > 5

    def commands(self, event: OrderPlaced, envelope: Envelope) -> list[Command]:
        return [MarkPaid(order_id=event.order_id, amount=event.total)]


def test_views_and_policies_dispatch_through_the_runtime() -> None:
    parts: dict[str, Any] = {"views": [PaidTotal()], "policies": [PayBigOrders()]}
    with Application.open("memory://", aggregates=[MarkedOrder()], **parts) as app:
        small = app.handle(placed("Ada", "3.50")).id
        app.handle(placed("Bob", "7"))  # paid by the policy: its `applies` holds
        app.handle(placed("Cy", "9"))
        app.run_consumers()
        assert app.load("Ordering.Order", small).state.status == OrderStatus.Placed
        assert app.view_row("Ordering.PaidTotal", ALL_PAID) == {
            "order_id": str(ALL_PAID),
            "customer": None,
            "total": "16",
            "status": "paid",
            "drinks": 0,
        }
        assert app.view_row("Ordering.PaidTotal", small)["customer"] == "Ada"  # type: ignore[index]


class Gateway(FakePort):
    def __init__(self) -> None:
        super().__init__((CardCharged, CardDeclined))

    @on_command(ChargeCard)
    def decline(self, command: ChargeCard) -> CardDeclined:
        return CardDeclined(order_id=command.order_id, reason="no funds")


def test_a_fake_port_answers_with_its_marked_method_else_its_first_event() -> None:
    gateway = Gateway()
    charge = ChargeCard(order_id=UUID(int=1), amount=Decimal(5))
    assert gateway.send(charge, UUID(int=9)) == [
        CardDeclined(order_id=UUID(int=1), reason="no funds")
    ]
    paid = MarkPaid(order_id=UUID(int=1), amount=Decimal(5))
    assert gateway.send(paid, UUID(int=8)) == [CardCharged(order_id=UUID(int=1), amount=Decimal(5))]
    assert gateway.sent == [charge, paid]


def test_a_view_applies_a_subclass_by_its_base_and_leaves_other_events() -> None:
    row = OrderHistoryRow(order_id=UUID(int=1))
    envelope: Any = None  # not read by these methods
    tipped = PaidTotal().update(row, Tipped(order_id=UUID(int=1), amount=Decimal(2)), envelope)
    assert tipped == replace(row, total=Decimal(2), status="paid")
    cancelled = OrderCancelled(order_id=UUID(int=1), reason="changed my mind")
    assert PaidTotal().update(row, cancelled, envelope) is row
