"""Forking the past: a new store with the log up to a position, on any backend."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from coffee_domain import MarkPaid, Order, OrderStatus, PlaceOrder, Tally, definitions, latte
from runtime_support import Stores

from stormgen.runtime import REDACTED, Application


def test_fork_copies_the_log_up_to_a_position_into_another_store(
    stores: Stores, tmp_path: Path
) -> None:
    app = stores.app(aggregates=[Tally()])
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    for _ in range(4):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    forgotten = app.handle(PlaceOrder(customer="Bo", drinks=[latte()], total=Decimal(2)))
    app.forget(Order, forgotten.id)

    target = f"sqlite:///{tmp_path}/fork.db"
    seen: list[tuple[int, int]] = []
    app.fork(target, up_to_position=3, progress=lambda d, e: seen.append((d, e))).close()
    assert seen[-1] == (3, 3)
    with Application.open(target, aggregates=[Tally()]) as past:
        assert past.store.last_position() == 3
        loaded = past.state(Order, order.id)
        assert loaded.version == 3 and loaded.state.paid == Decimal(2)
        assert loaded.state.customer == "Ada"  # keys travel with the fork
        # an alternative future: the fork takes new commands of its own
        past.handle(MarkPaid(order_id=order.id, amount=Decimal(10)))
        assert past.state(Order, order.id).state.paid == Decimal(12)
    assert app.state(Order, order.id).state.paid == Decimal(4)

    whole = f"memory://fork-{id(app)}"
    copy = app.fork(whole)
    with Application(copy, aggregates=[Tally()], owns_store=True) as everything:
        assert everything.state(Order, forgotten.id).state.customer == REDACTED
        assert [e.id for e in everything.events()] == [e.id for e in app.events()]


def test_a_fork_rebuilds_views_and_reruns_nothing_twice(sqlite_stores: Stores) -> None:
    app = sqlite_stores.app(**definitions())
    order = app.handle(PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(3)))
    app.run_consumers()
    target = sqlite_stores.url()
    app.fork(target).close()
    past = sqlite_stores.app(target, **definitions())
    # views are derived: rebuilt from the copied log; policies' commands are deduplicated
    past.run_consumers()
    assert past.state(Order, order.id).state.status is OrderStatus.Paid
    assert [e.id for e in past.events()] == [e.id for e in app.events()]
    assert len(past.view_rows("Bar.Tickets")) == 1
