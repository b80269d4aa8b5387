"""Decoding many records at once gives what decoding each one gives, errors included."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from coffee_domain import (
    Drink,
    MarkPaid,
    Order,
    OrderCancelled,
    OrderPlaced,
    PlaceOrder,
    Size,
    latte,
)
from runtime_support import Stores, collections_counted

from stormgen.runtime import NewEvent, UnknownEventType, UpcastError
from stormgen.runtime.codec import DecodeError, decoder, many_decoder, to_data
from stormgen.runtime.messages import REDACTED


def test_decode_all_matches_decode_on_a_mixed_log(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()], state_cache=0)
    ada = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal("3.50")))
    bo = app.handle(PlaceOrder(customer="Bo", drinks=[latte()], total=Decimal(4)))
    app.handle(MarkPaid(order_id=ada.id, amount=Decimal("3.50")))
    # an old schema version (renamed and dropped fields) among current ones
    app.store.append(
        bo.stream,
        [
            NewEvent(
                type="Ordering.OrderCancelled",
                version=1,
                data={"order_id": str(bo.id), "why": "too slow", "note": "dropped"},
                stream_id=str(bo.id),
            )
        ],
        1,
    )
    app.forget(Order, bo.id)  # Bo's pii now reads redacted; Ada's decrypts
    records = [r for r in app.store.read_all() if not r.type.startswith("$")]
    assert [r.type for r in records] == [
        "Ordering.OrderPlaced",
        "Ordering.OrderPlaced",
        "Ordering.OrderPaid",
        "Ordering.OrderCancelled",
    ]
    events = app.decode_all(records)
    assert events == [app.decode(r) for r in records]
    placed_ada, placed_bo, _, cancelled = events
    assert isinstance(placed_ada, OrderPlaced) and placed_ada.customer == "Ada"
    assert isinstance(placed_bo, OrderPlaced) and placed_bo.customer == REDACTED
    assert cancelled == OrderCancelled(order_id=bo.id, reason="too slow", cancelled_by="customer")
    assert app.decode_all([]) == []


def test_decode_all_raises_what_decode_raises(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    app.store.append(
        order.stream,
        [NewEvent(type="Ordering.OrderPaid", data={"order_id": "x"}, stream_id=str(order.id))],
        1,
    )
    records = app.store.read_stream(order.stream)
    with pytest.raises(UpcastError, match="order_id"):
        app.decode(records[1])
    with pytest.raises(UpcastError, match="order_id"):
        app.decode_all(records)
    app.store.append(
        order.stream,
        [NewEvent(type="Ordering.Teleported", data={}, stream_id=str(order.id))],
        2,
    )
    with pytest.raises(UnknownEventType):
        app.decode_all(app.store.read_stream(order.stream, 2))


@dataclass(frozen=True)
class PlainDrink:
    """`Drink` without slots: msgspec leaves its defaults on the class, not the instance."""

    name: str
    price: Decimal
    size: Size = Size.Medium


@pytest.mark.parametrize("cls", [Drink, PlainDrink])
def test_many_decoder_fills_defaults_like_decoder(cls: type[Any]) -> None:
    datas = [{"name": "latte", "price": "3.50"}, {"name": "tea", "price": "2", "size": "Large"}]
    many = many_decoder(cls)(datas)
    assert many == [decoder(cls)(d) for d in datas]
    assert many[0].size is Size.Medium
    assert to_data(many[0])["size"] == "Medium"  # stored in the instance, so encoded
    assert many[1].size is Size.Large
    with pytest.raises(DecodeError) as info:
        many_decoder(cls)([{"name": "latte", "price": "3.50"}, {"name": "x", "price": []}])
    assert info.value.path == "$[1].price"


def test_a_load_decodes_in_bulk_through_the_cache_too(stores: Stores) -> None:
    url = stores.url()
    app = stores.app(url, aggregates=[Order()])
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    other = stores.app(url, aggregates=[Order()], state_cache=0)
    other.handle(MarkPaid(order_id=order.id, amount=Decimal(3)))
    loaded = app.state(Order, order.id)
    assert loaded.version == 2 and loaded.state.paid == Decimal(3)
    assert loaded.state == other.state(Order, order.id).state


def test_a_long_batch_is_decoded_with_the_cycle_collector_paused(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()], state_cache=0)
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    records = app.store.read_stream(order.stream) * 300
    with collections_counted() as started:
        long = app.decode_all(records)
        during_long = len(started)
        short = app.decode_all(records[:40])
        during_short = len(started) - during_long
    assert long == [long[0]] * 300 and short == long[:40]
    # one event each is a tracked allocation: 300 collections without the pause; a
    # short batch (one command's events) is decoded as it comes
    assert during_long <= 3
    assert during_short >= 40
    assert gc.isenabled()
    # a collector the caller disabled stays disabled; an error leaves it running
    gc.disable()
    try:
        app.decode_all(records)
        assert not gc.isenabled()
    finally:
        gc.enable()
    app.store.append(
        order.stream,
        [NewEvent(type="Ordering.OrderPaid", data={"order_id": "x"}, stream_id=str(order.id))],
        1,
    )
    bad = app.store.read_stream(order.stream) * 100
    with pytest.raises(UpcastError, match="order_id"):
        app.decode_all(bad)
    assert gc.isenabled()
