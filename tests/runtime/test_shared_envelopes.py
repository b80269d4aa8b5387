"""Decoded envelopes reused by the command path and the consumers read like fresh ones."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from coffee_domain import MarkPaid, Order, OrderHistory, PlaceOrder, definitions, latte
from runtime_support import Stores

from stormgen.runtime import REDACTED


def test_a_commands_result_is_what_reading_the_log_gives(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    placed = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal("3.50")))
    paid = app.handle(MarkPaid(order_id=placed.id, amount=Decimal("3.50")))
    for result in (placed, paid):
        read = [app.envelope(r) for r in app.store.read_stream(result.stream)]
        fresh = result.events[0]
        again = next(e for e in read if e.id == fresh.id)
        assert fresh.to_json() == again.to_json()
        assert fresh.event == again.event
    assert placed.events[0].data["customer"] == "Ada"


def test_a_shared_envelope_is_not_used_after_its_stream_is_forgotten(stores: Stores) -> None:
    app = stores.app(**definitions())
    placed = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal("3.50")))
    [recorded] = app.store.read_stream(placed.stream)
    assert app.shared_envelope(recorded).data["customer"] == "Ada"
    assert app.shared_envelope(recorded) is app.shared_envelope(recorded)  # decoded once
    app.forget(Order, placed.id)
    after = app.shared_envelope(recorded)
    assert after.data["customer"] == REDACTED
    assert after.redacted == {"customer"}
    # a view built after the forget never sees the plaintext again
    app.run_consumers()
    row = app.view_row(OrderHistory, placed.id)
    assert row is not None and row["customer"] == REDACTED


def test_an_envelope_is_shared_only_for_the_same_event_id(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    one = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal("3.50")))
    paid = app.handle(MarkPaid(order_id=one.id, amount=Decimal("3.50")))
    [_, recorded] = app.store.read_stream(paid.stream)
    shared = app.shared_envelope(recorded)
    assert shared.id == recorded.id
    # another event at that position (a rolled-back append's position reused)
    other = app.store.read_stream(one.stream)[0]
    impostor = msgspec.structs.replace(recorded, id=other.id)
    assert app.shared_envelope(impostor) is not shared
