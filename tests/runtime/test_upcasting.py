"""Old schema versions read as the current one; unknown types fail clearly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from coffee_domain import Order, OrderCancelled, OrderStatus, PlaceOrder, latte
from runtime_support import Stores

from stormgen.runtime import (
    Event,
    NewEvent,
    Registry,
    UnknownEventType,
    UpcastError,
)


def stored_v1_cancel(order_id: uuid.UUID) -> NewEvent:
    # what v1 of OrderCancelled looked like: the reason was called `why`, an extra field
    # `note` existed, and `cancelled_by` did not
    return NewEvent(
        type="Ordering.OrderCancelled",
        version=1,
        data={"order_id": str(order_id), "why": "too slow", "note": "dropped in v2"},
        stream_id=str(order_id),
    )


def test_an_old_version_reads_with_renames_defaults_and_dropped_fields(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    app.store.append(order.stream, [stored_v1_cancel(order.id)], 1)
    [_, cancelled] = app.history(Order, order.id)
    assert cancelled.event == OrderCancelled(
        order_id=order.id, reason="too slow", cancelled_by="customer"
    )
    # the envelope shows the current schema: its version and its field names
    assert cancelled.version == 2 and cancelled.recorded.version == 1
    assert cancelled.data == {
        "order_id": str(order.id),
        "reason": "too slow",
        "cancelled_by": "customer",
    }
    # handlers (apply) see the current schema too
    assert app.state(Order, order.id).state.status is OrderStatus.Cancelled


def test_an_unknown_event_type_is_a_clear_error_for_its_aggregate(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    app.store.append(
        order.stream,
        [NewEvent(type="Ordering.OrderTeleported", data={}, stream_id=str(order.id))],
        1,
    )
    with pytest.raises(UnknownEventType, match=r"Ordering\.OrderTeleported"):
        app.state(Order, order.id)
    # readers of the log that don't care still get it, untyped
    envelope = app.events()[-1]
    assert envelope.event is None and envelope.type == "Ordering.OrderTeleported"


def test_a_newer_version_than_known_is_refused(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    future = NewEvent(
        type="Ordering.OrderCancelled",
        version=3,
        data={"order_id": str(order.id), "reason": "x"},
        stream_id=str(order.id),
    )
    app.store.append(order.stream, [future], 1)
    with pytest.raises(UnknownEventType, match="v3"):
        app.state(Order, order.id)


@dataclass(frozen=True)
class Renamed(Event, name="T.Renamed", version=3, was={"title": ["heading", "caption"]}):
    title: str
    size: int = 1


def test_a_field_renamed_twice_reads_from_either_old_name() -> None:
    registry = Registry([Renamed])
    assert registry.decode("T.Renamed", 1, {"caption": "a"}) == Renamed("a")
    assert registry.decode("T.Renamed", 2, {"heading": "b", "size": 2}) == Renamed("b", 2)
    assert registry.decode("T.Renamed", 3, {"title": "c"}) == Renamed("c")


def test_upcaster_functions_lift_one_version_at_a_time() -> None:
    registry = Registry([Renamed])

    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "size": data.pop("count") * 10}

    registry.add_upcaster("T.Renamed", 1, v1_to_v2)
    assert registry.decode("T.Renamed", 1, {"caption": "a", "count": 2}) == Renamed("a", 20)


def test_data_that_cannot_fit_the_current_schema_says_why() -> None:
    registry = Registry([Renamed])
    with pytest.raises(UpcastError, match="title"):
        registry.decode("T.Renamed", 1, {"size": 2})
    with pytest.raises(UnknownEventType):
        registry.decode("T.Nothing", 1, {})


def test_the_registry_checks_message_metadata() -> None:
    @dataclass(frozen=True)
    class Bad(Event, name="T.Bad", pii=("nope",)):
        field: str

    with pytest.raises(ValueError, match="nope"):
        Registry([Bad])

    @dataclass(frozen=True)
    class Twin(Event, name="T.Renamed"):
        title: str

    with pytest.raises(ValueError, match="two classes"):
        Registry([Renamed, Twin])
