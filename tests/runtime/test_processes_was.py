"""A process's state field renamed with `was`: instances stored before the rename read
their value under the earlier name as the current one, on every backend (the stream's
fold, time travel, the instances' rows, and a sealed pii value)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from coffee_domain import Drink, MarkPaid, Order, OrderCancelled, OrderPaid, OrderPlaced, PlaceOrder
from process_domain import Checkout
from runtime_support import Stores
from test_processes_pii import Greeting

from stormgen.runtime import Application, Process, Step, TestClock, on_event
from stormgen.runtime.processes import stream_name
from stormgen.runtime.store.memory import MemoryStore


@dataclass(frozen=True, slots=True)
class NudgingState:
    total: Decimal = Decimal(0)
    paid: bool = False
    nudges: int = 0


class Nudging(Process[NudgingState]):
    """`Checkout` once its `reminders: int` became `nudges: int was reminders`."""

    name = Checkout.name
    key = "order_id"
    key_type = UUID
    state_type = NudgingState
    events = (OrderPlaced, OrderPaid, OrderCancelled)
    starts = (OrderPlaced,)
    timers = ("PaymentDue",)
    was = {"nudges": "reminders"}

    @on_event(OrderCancelled)
    def cancelled(self, step: Step[NudgingState], event: OrderCancelled) -> None:
        step.assign(nudges=step.state.nudges + 10)
        step.end()


@dataclass(frozen=True, slots=True)
class RenamedGreetingState:
    client: str = ""
    total: Decimal = Decimal(0)
    greeted: int = 0


class RenamedGreeting(Process[RenamedGreetingState]):
    """`Greeting` once its pii `customer: str` became `client: str was customer`."""

    name = Greeting.name
    key = "order_id"
    key_type = UUID
    state_type = RenamedGreetingState
    events = (OrderPlaced, OrderPaid)
    starts = (OrderPlaced,)
    timers = ("Hello",)
    pii = frozenset({"client"})
    was = {"client": ("customer",)}

    @on_event(OrderPaid)
    def paid(self, step: Step[RenamedGreetingState], event: OrderPaid) -> None:
        step.assign(greeted=step.state.greeted + 5)


def _place(app: Application) -> PlaceOrder:
    order = PlaceOrder(customer="Ada", drinks=[Drink("latte", Decimal("3.50"))], total=Decimal(7))
    app.handle(order)
    app.run_consumers()
    return order


def test_a_renamed_state_field_reads_old_instances_under_its_new_name(stores: Stores) -> None:
    url = stores.url()
    clock = TestClock()
    before = stores.app(url, aggregates=[Order()], processes=[Checkout()], clock=clock)
    order = _place(before)
    clock.advance(timedelta(minutes=16))
    assert before.fire_timers() == 1  # `reminders` changed to 1, a Cancel issued
    old = before.process_instance(Checkout, order.order_id)
    assert old is not None and old.state.reminders == 1
    position = before.store.last_position()

    # the model changed: a service of the new model reads the instance stored before
    after = stores.app(url, aggregates=[Order()], processes=[Nudging()], clock=clock)
    instance = after.process_instance(Nudging, order.order_id)
    assert instance is not None and instance.state.nudges == 1 and not instance.ended
    [row] = after.process_instances(Nudging)
    assert row["state"] == {"total": "7", "paid": False, "nudges": 1}
    # a run goes on from the renamed value: the cancellation adds 10 and ends it
    after.run_consumers()
    ended = after.process_instance(Nudging, order.order_id)
    assert ended is not None and ended.ended and ended.state.nudges == 11
    [row] = after.process_instances(Nudging)
    assert row["state"]["nudges"] == 11 and "reminders" not in row["state"]
    # time travel reads the stream as it was, renamed too
    then = after.process_instance(Nudging, order.order_id, position)
    assert then is not None and then.state.nudges == 1 and not then.ended


def test_a_renamed_pii_state_field_opens_the_value_sealed_under_its_old_name(
    stores: Stores,
) -> None:
    url = stores.url()
    clock = TestClock()
    before = stores.app(url, aggregates=[Order()], processes=[Greeting()], clock=clock)
    order = _place(before)
    stream = stream_name(Greeting.name, str(order.order_id))

    after = stores.app(url, aggregates=[Order()], processes=[RenamedGreeting()], clock=clock)
    instance = after.process_instance(RenamedGreeting, order.order_id)
    assert instance is not None and instance.state.client == "Ada"
    assert [doc["state"]["client"] for doc in after.process_instances(RenamedGreeting)] == ["Ada"]
    # a change to another field keeps the old sealed value, read back again
    after.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    after.run_consumers()
    assert after.store.stream_version(stream) == 3  # started, timer set, changed
    assert [doc["state"] for doc in after.process_instances(RenamedGreeting)] == [
        {"client": "Ada", "total": "7", "greeted": 5}
    ]
    # forgetting the subject still redacts it
    after.forget(Order, order.order_id)
    gone = after.process_instance(RenamedGreeting, order.order_id)
    assert gone is not None and gone.state.client == "[redacted]"


class Misnamed(Nudging):
    """`was` names a field the state does not have (a typo of `nudges`)."""

    was = {"nudge": "reminders"}


class MisnamedPii(RenamedGreeting):
    """`pii` names a field the state does not have (its earlier name)."""

    pii = frozenset({"customer"})


def test_was_or_pii_naming_no_state_field_is_refused_when_the_application_is_made() -> None:
    with pytest.raises(ValueError, match=r"Ordering\.Checkout: was names nudge, which"):
        Application(MemoryStore(), aggregates=[Order()], processes=[Misnamed()])
    with pytest.raises(ValueError, match="pii names customer, which RenamedGreetingState"):
        Application(MemoryStore(), aggregates=[Order()], processes=[MisnamedPii()])
    # the processes above, named right, are taken
    app = Application(MemoryStore(), aggregates=[Order()], processes=[Nudging()])
    app.close()
