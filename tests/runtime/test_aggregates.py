"""Commands on aggregates: decide, append, load, conflicts, idempotency, snapshots."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from coffee_domain import (
    Cancel,
    MarkPaid,
    Order,
    OrderCancelled,
    OrderHistory,
    OrderPaid,
    OrderPlaced,
    OrderState,
    OrderStatus,
    PlaceOrder,
    Tally,
    definitions,
    latte,
)
from runtime_support import ENVELOPE_FIELDS, Stores

from stormgen.runtime import (
    AlreadyExists,
    Application,
    Command,
    Event,
    NotFound,
    Rejected,
    UnknownCommand,
    VersionConflict,
)


def place(app: Application, customer: str = "Ada", **kw: Any) -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal("3.50")), **kw)


def test_a_command_records_events_and_evolves_state(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    result = place(app, actor="Customer")
    assert result.stream_version == 1
    assert result.stream == f"Ordering.Order/{result.id}"
    assert result.stream_id == str(result.id)
    [placed] = result.events
    assert isinstance(placed.event, OrderPlaced)
    assert placed.type == "Ordering.OrderPlaced" and placed.version == 1
    assert placed.position == 1 and placed.stream_version == 1
    assert placed.data["total"] == "3.50"
    envelope = placed.to_json()
    assert set(envelope) == set(ENVELOPE_FIELDS)
    assert envelope["recorded_at"].endswith("Z")

    paid = app.handle(MarkPaid(order_id=result.id, amount=Decimal("3.50")))
    assert paid.stream_version == 2
    loaded = app.state(Order, result.id)
    assert loaded.version == 2
    assert loaded.state.status is OrderStatus.Paid
    assert loaded.state.customer == "Ada"
    assert [e.type for e in app.history(Order, result.id)] == [
        "Ordering.OrderPlaced",
        "Ordering.OrderPaid",
    ]


def test_metadata_carries_command_correlation_causation_and_actor(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    result = place(app, actor="Customer", correlation_id="corr-1", metadata={"trace": "t"})
    meta = result.events[0].metadata
    assert meta["actor"] == "Customer"
    assert meta["correlation_id"] == "corr-1"
    assert meta["causation_id"] == meta["command_id"]
    assert uuid.UUID(meta["command_id"])
    assert meta["trace"] == "t"


def test_a_guard_rejects_and_nothing_is_written(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    with pytest.raises(Rejected, match="at least one drink"):
        app.handle(PlaceOrder(customer="Ada", drinks=[], total=Decimal(1)))
    order = place(app)
    app.handle(Cancel(order_id=order.id, reason="changed my mind"))
    with pytest.raises(Rejected, match="only a placed order can be paid"):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    assert app.store.last_position() == 2


def test_unknown_instances_and_existing_ones(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    missing = uuid.uuid4()
    with pytest.raises(NotFound, match="does not exist"):
        app.handle(MarkPaid(order_id=missing, amount=Decimal(1)))
    with pytest.raises(NotFound):
        app.state(Order, missing)
    with pytest.raises(NotFound):
        app.history(Order, missing)
    order = place(app)
    with pytest.raises(AlreadyExists, match="already exists"):
        app.handle(PlaceOrder(order_id=order.id, customer="B", drinks=[latte()], total=Decimal(1)))
    assert app.store.last_position() == 1


def test_expected_version_conflicts(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    order = place(app)
    with pytest.raises(VersionConflict) as info:
        app.handle(Cancel(order_id=order.id, reason="x"), expected_version=3)
    assert info.value.expected == 3 and info.value.actual == 1
    assert app.handle(Cancel(order_id=order.id, reason="x"), expected_version=1).stream_version == 2


class RacingOrder(Order):
    """Lets another writer append between this command's load and its append, once."""

    def __init__(self) -> None:
        self.app: Application | None = None
        self.raced = 0
        self.decided = 0

    def decide(self, state: OrderState, command: Command) -> list[Event]:
        self.decided += 1
        if isinstance(command, MarkPaid) and self.raced == 0 and self.app is not None:
            self.raced += 1
            self.app.handle(MarkPaid(order_id=command.order_id, amount=Decimal("0.50")))
            # the racing payment made it paid: pretend this decision saw it unpaid
            state = replace(state, status=OrderStatus.Placed)
        if isinstance(command, MarkPaid):
            return [OrderPaid(order_id=command.order_id, amount=command.amount)]
        return super().decide(state, command)


def test_a_conflicting_writer_is_retried_without_if_match(stores: Stores) -> None:
    racing = RacingOrder()
    app = stores.app(aggregates=[racing])
    racing.app = app
    order = place(app)
    result = app.handle(MarkPaid(order_id=order.id, amount=Decimal(3)))
    # the first decision lost the race, the retry reloaded and won
    assert result.stream_version == 3
    assert app.state(Order, order.id).state.paid == Decimal("3.50")
    assert app.store.stream_version(order.stream) == 3


def test_a_conflicting_writer_with_if_match_is_a_conflict(stores: Stores) -> None:
    racing = RacingOrder()
    app = stores.app(aggregates=[racing])
    racing.app = app
    order = place(app)
    with pytest.raises(VersionConflict):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal(3)), expected_version=1)
    assert app.store.stream_version(order.stream) == 2


def test_concurrent_commands_on_one_instance_all_land(stores: Stores) -> None:
    app = stores.app(aggregates=[Tally()])
    order = place(app)
    errors: list[BaseException] = []

    def pay() -> None:
        try:
            for _ in range(5):
                app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # every payment landed once, in a gapless stream, each decided on the state before it
    versions = [e.stream_version for e in app.history(Order, order.id)]
    assert versions == list(range(1, 22))
    assert app.state(Order, order.id).state.paid == Decimal(20)


def test_an_idempotency_key_returns_the_first_result(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    first = place(app, idempotency_key="key-1")
    again = app.handle(
        PlaceOrder(order_id=first.id, customer="Ada", drinks=[latte()], total=Decimal("3.50")),
        idempotency_key="key-1",
    )
    assert again.duplicate and not first.duplicate
    assert again.stream_version == first.stream_version
    assert [e.id for e in again.events] == [e.id for e in first.events]
    assert app.store.last_position() == 1
    # a retried create whose id was generated anew still answers with the first id
    retried = place(app, idempotency_key="key-1")
    assert retried.duplicate and retried.id == first.id and retried.stream == first.stream
    assert app.store.last_position() == 1


def test_a_creates_command_without_an_id_gets_one(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    a, b = place(app), place(app)
    assert isinstance(a.id, uuid.UUID) and a.id != b.id


def test_a_command_no_aggregate_handles_is_refused(stores: Stores) -> None:
    app = stores.app(aggregates=[])
    with pytest.raises(UnknownCommand):
        place(app)


def test_a_snapshot_is_taken_every_n_events_and_loads_the_same_state(stores: Stores) -> None:
    app = stores.app(aggregates=[Tally()])
    order = place(app)
    for _ in range(6):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    snap = app.store.get_snapshot(order.stream)
    assert snap is not None and snap.version == 6
    assert snap.state["paid"] == "5"  # the order, then five payments
    loaded = app.state(Order, order.id)
    assert loaded.version == 7 and loaded.state.paid == Decimal(6)
    # the snapshot is used: doctor it and see the doctored value come back
    doctored = replace(snap, state={**snap.state, "paid": "100"})
    app.store.save_snapshot(doctored)
    app.state_cache.clear()  # the state cache sits in front of snapshots
    assert app.state(Order, order.id).state.paid == Decimal(101)


def test_a_snapshot_of_another_schema_is_ignored(stores: Stores) -> None:
    app = stores.app(aggregates=[Tally()])
    order = place(app)
    for _ in range(3):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    snap = app.store.get_snapshot(order.stream)
    assert snap is not None
    # a snapshot written by an older model: different hash and a shape that no longer fits
    app.store.save_snapshot(replace(snap, state={"paid": "999"}, schema_hash="old"))
    assert app.state(Order, order.id).state.paid == Decimal(3)
    # same hash but unreadable data: still ignored, never a failure
    app.store.save_snapshot(replace(snap, state={"paid": "lots", "status": 7}))
    assert app.state(Order, order.id).state.paid == Decimal(3)
    # the next command works and writes a fresh snapshot at the next multiple
    for _ in range(3):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    fresh = app.store.get_snapshot(order.stream)
    assert fresh is not None and fresh.version == 6 and fresh.state["paid"] == "5"


def test_time_travel_by_position_and_by_time(stores: Stores) -> None:
    app = stores.app(aggregates=[Tally()])
    order = place(app)
    app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    for _ in range(4):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    assert app.state(Order, order.id).state.paid == Decimal(5)
    at_two = app.state(Order, order.id, at=2)
    assert at_two.version == 2 and at_two.state.paid == Decimal(1)
    at_time = app.state(Order, order.id, at=middle)
    assert at_time.version == 2 and at_time.state.paid == Decimal(1)
    with pytest.raises(NotFound):
        app.state(Order, order.id, at=datetime(2000, 1, 1, tzinfo=UTC))
    # a snapshot after the asked position is not used for the past
    assert app.store.get_snapshot(order.stream) is not None
    assert app.state(Order, order.id, at=4).state.paid == Decimal(3)


def test_events_reads_the_log_and_streams(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    a = place(app)
    b = place(app, customer="Bo")
    app.handle(Cancel(order_id=a.id, reason="x"))
    assert [e.position for e in app.events()] == [1, 2, 3]
    assert [e.position for e in app.events(after=1, limit=1)] == [2]
    assert [e.position for e in app.events(stream=a.stream)] == [1, 3]
    assert [e.type for e in app.events(types=["Ordering.OrderCancelled"])] == [
        "Ordering.OrderCancelled"
    ]
    cancelled = app.events(stream=a.stream)[1]
    assert isinstance(cancelled.event, OrderCancelled)
    assert cancelled.event.cancelled_by == "customer"
    assert b.stream_version == 1


def test_definitions_of_the_whole_domain_load(stores: Stores) -> None:
    app = stores.app(**definitions())
    assert set(app.aggregates) == {"Ordering.Order", "Bar.Ticket"}
    assert "Ordering.PaymentGateway" in app.ports


def test_definitions_with_clashing_names_are_refused(sqlite_stores: Stores) -> None:
    with pytest.raises(ValueError, match=r"two aggregate definitions are named Ordering\.Order"):
        sqlite_stores.app(aggregates=[Order(), Tally()])
    with pytest.raises(ValueError, match="two view definitions"):
        sqlite_stores.app(views=[OrderHistory(), OrderHistory()])
