"""Joining two distinct pasts: `merge` of two forks of one log, on every backend pair."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coffee_domain import (
    Cancel,
    MarkPaid,
    Order,
    OrderHistory,
    OrderStatus,
    PlaceOrder,
    Ticket,
    definitions,
    latte,
)
from runtime_support import FAST_RETRY, Stores, make_stores

from stormgen.runtime import (
    REDACTED,
    Application,
    ClientKey,
    EventStore,
    MergeError,
    StoreError,
    merge,
    open_store,
)
from stormgen.runtime.merge import DISREGARDED, MERGE_STREAM, MERGED, lineage
from stormgen.runtime.store.base import MERGE_IN_PROGRESS

PAIRS = [
    ("memory", "memory"),
    ("sqlite", "sqlite"),
    ("postgres", "postgres"),
    ("sqlite", "postgres"),
    ("postgres", "sqlite"),
    ("memory", "sqlite"),
    ("sqlite", "memory"),
    ("memory", "postgres"),
    ("postgres", "memory"),
]


@pytest.fixture(params=PAIRS, ids=["-".join(p) for p in PAIRS])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Stores of the two sides' backends (the merge goes to the second's kind)."""
    first, second = request.param
    gens = [make_stores(first, tmp_path / "a"), make_stores(second, tmp_path / "b")]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    made = [next(g) for g in gens]
    yield made
    for g in gens:
        next(g, None)


def _open(stores: Stores, url: str | None = None) -> Application:
    return stores.app(url, **definitions())


def _target(stores: Stores) -> EventStore:
    """An empty store to merge into, kept open (a memory store lives while open)."""
    store = open_store(stores.url())
    stores.apps.append(Application(store, owns_store=True))
    return store


def _on(store: EventStore) -> Application:
    """An application of the coffee shop on a merged store (the store stays open)."""
    return Application(store, retry=FAST_RETRY, **definitions())


def _place(app: Application, customer: str, total: int = 3) -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal(total))).id


def _fork(stores: Stores, app: Application) -> Application:
    # the fork's store stays open (a memory store lives as long as it is open)
    forked = Application(app.fork(stores.url()), owns_store=True, retry=FAST_RETRY, **definitions())
    stores.apps.append(forked)
    return forked


def test_a_fork_records_its_origin_and_later_forks_keep_it(stores: Stores) -> None:
    app = _open(stores)
    _place(app, "Ada")
    child = _fork(stores, app)
    (origin,) = lineage(child.store)
    assert origin["kind"] == "fork" and origin["store_id"] == app.store.identity()
    assert origin["position"] == 1 and origin["event_id"] == app.events()[0].id
    _place(child, "Bo")
    grandchild = _fork(stores, child)
    first, second = lineage(grandchild.store)
    assert first["store_id"] == child.store.identity() and first["position"] == 2
    assert second == origin
    assert lineage(app.store) == []


def test_streams_written_on_one_side_are_taken_whole_in_time_order(pair: list[Stores]) -> None:
    sa, sb = pair
    a = _open(sa)
    ada = _place(a, "Ada")
    b = _fork(sb, a)
    bo = _place(a, "Bo")  # a only
    cy = _place(b, "Cy")  # b only
    a.handle(MarkPaid(order_id=bo, amount=Decimal(1)))
    b.handle(MarkPaid(order_id=ada, amount=Decimal(2)))  # ada: written on b only
    to = _target(sb)
    report = a.merge(b.store, to)
    assert report.written and not report.conflicts
    assert report.common_prefix == 1 and report.after_fork == {"a": 2, "b": 2}
    merged = _on(to)
    events = merged.events()
    assert [e.position for e in events] == list(range(1, 7))
    assert events[-1].type == MERGED
    a_ids, b_ids = [e.id for e in a.events()], [e.id for e in b.events()]
    ordered = sorted(
        [(e.recorded_at, 0, e.id) for e in a.events()[1:]]
        + [(e.recorded_at, 1, e.id) for e in b.events()[1:]]
    )
    assert [e.id for e in events[:-1]] == [a_ids[0], *[i for _, _, i in ordered]]
    sides = {e.id: e.metadata["merge"] for e in events[1:-1]}
    assert sides[a_ids[1]] == {"side": "a", "position": 2}
    assert sides[b_ids[2]] == {"side": "b", "position": 3}
    state = merged.state(Order, ada).state
    assert state.paid == Decimal(2) and state.status is OrderStatus.Paid
    assert merged.state(Order, bo).state.paid == Decimal(1)
    assert merged.state(Order, cy).state.customer == "Cy"  # b's key came along
    assert lineage(merged.store)[0]["kind"] == "merge"


def test_a_conflict_stops_the_merge_and_reports_both_sides(pair: list[Stores]) -> None:
    sa, sb = pair
    a = _open(sa)
    ada = _place(a, "Ada")
    b = _fork(sb, a)
    a.handle(MarkPaid(order_id=ada, amount=Decimal(1)))
    b.handle(MarkPaid(order_id=ada, amount=Decimal(2)))
    to = _target(sb)
    report = a.merge(b.store, to)
    assert report.stopped and not report.written
    (conflict,) = report.conflicts
    assert conflict.stream == Order.stream(ada) and conflict.kept is None
    assert [e["type"] for e in conflict.a.events] == ["Ordering.OrderPaid"]
    assert conflict.a.state is not None and conflict.a.state["paid"] == "1"
    assert conflict.b.state is not None and conflict.b.state["paid"] == "2"
    assert any("--prefer" in line for line in report.lines())
    assert to.last_position() == 0


def test_prefer_keeps_one_side_and_records_the_other_as_disregarded(pair: list[Stores]) -> None:
    sa, sb = pair
    a = _open(sa)
    ada = _place(a, "Ada")
    b = _fork(sb, a)
    a.handle(Cancel(order_id=ada, reason="out of milk"))
    b.handle(MarkPaid(order_id=ada, amount=Decimal(2)))
    to = _target(sb)
    report = a.merge(b.store, to, prefer="b")
    assert report.written and report.disregarded == 1
    assert report.conflicts[0].kept == "b"
    assert any("disregarded" in line for line in report.lines())
    merged = _on(to)
    state = merged.state(Order, ada).state
    assert state.paid == Decimal(2) and state.status is OrderStatus.Paid
    facts = merged.events(stream=MERGE_STREAM)
    assert [f.type for f in facts] == [DISREGARDED, MERGED]
    fact = facts[0].data
    assert fact["side"] == "a" and fact["stream"] == Order.stream(ada)
    assert fact["event"]["id"] == a.events()[-1].id
    assert [e.position for e in merged.events()] == list(range(1, 5))


def test_forgotten_on_either_side_stays_forgotten(pair: list[Stores]) -> None:
    sa, sb = pair
    a = _open(sa)
    ada, bo = _place(a, "Ada"), _place(a, "Bo")
    b = _fork(sb, a)
    a.forget(Order, ada)
    b.forget(Order, bo)
    b.handle(MarkPaid(order_id=ada, amount=Decimal(1)))  # ada goes on, on b
    to = _target(sb)
    report = a.merge(b.store, to)
    assert sorted(report.forgotten) == sorted([Order.stream(ada), Order.stream(bo)])
    merged = _on(to)
    assert merged.state(Order, ada).state.customer == REDACTED
    assert merged.state(Order, bo).state.customer == REDACTED
    assert merged.state(Order, ada).state.paid == Decimal(1)
    markers = [e.data["stream"] for e in merged.events(stream="$system")]
    assert sorted(markers) == sorted([Order.stream(ada), Order.stream(bo)])


def test_a_policy_chain_that_ran_on_both_sides_has_no_effect_twice(pair: list[Stores]) -> None:
    sa, sb = pair
    a = _open(sa)
    ada = _place(a, "Ada")
    b = _fork(sb, a)
    cy = _place(a, "Cy")  # so a's chain for ada is at other positions than b's
    a.run_consumers()  # charged, paid, ticket opened: on a
    b.run_consumers()  # and all of it again on b
    bo = _place(b, "Bo")  # on b only, its policies not run yet
    to = _target(sb)
    report = a.merge(b.store, to, prefer="a")
    streams = {c.stream for c in report.conflicts}
    assert streams == {Order.stream(ada), Ticket.stream(ada)}
    # both sides sent the gateway the same command (its id is deterministic): kept once
    assert report.same == 1
    merged = _on(to)
    ids = [e.id for e in merged.events()]
    assert len(ids) == len(set(ids)) == report.events
    before = merged.store.last_position()
    merged.run_consumers()
    # bo's chain runs once in the merge; nothing of ada's runs again
    assert merged.state(Order, ada).state.paid == Decimal(3)
    assert merged.state(Order, bo).state.paid == Decimal(3)
    assert len(merged.store.read_stream(Ticket.stream(ada))) == 1
    assert len(merged.store.read_stream(Ticket.stream(bo))) == 1
    new = [e.type for e in merged.events(after=before)]
    assert new.count("Ordering.OrderPaid") == 1 and new.count("Bar.TicketOpened") == 1
    merged.run_consumers()
    assert merged.store.last_position() == before + len(new)
    # views are rebuilt from the merged log
    rows = {r["customer"]: r["status"] for r in merged.view_rows(OrderHistory)}
    assert rows == {"Ada": "paid", "Bo": "paid", "Cy": "paid"}
    assert merged.state(Order, cy).state.paid == Decimal(3)


def test_idempotency_keys_of_both_sides_are_remembered(pair: list[Stores]) -> None:
    sa, sb = pair
    a = _open(sa)
    _place(a, "Ada")
    b = _fork(sb, a)
    on_a = a.handle(
        PlaceOrder(customer="Bo", drinks=[latte()], total=Decimal(1)), idempotency_key="k-a"
    )
    on_b = b.handle(
        PlaceOrder(customer="Cy", drinks=[latte()], total=Decimal(1)), idempotency_key="k-b"
    )
    to = _target(sb)
    a.merge(b.store, to)
    merged = _on(to)
    assert merged.was_handled("k-a") and merged.was_handled("k-b")
    again = merged.handle(
        PlaceOrder(customer="Cy", drinks=[latte()], total=Decimal(1)), idempotency_key="k-b"
    )
    assert again.id == on_b.id and again.duplicate
    assert merged.state(Order, on_a.id).state.customer == "Bo"


def test_dry_run_writes_nothing(sqlite_stores: Stores, tmp_path: Path) -> None:
    a = _open(sqlite_stores)
    _place(a, "Ada")
    b = _fork(sqlite_stores, a)
    _place(b, "Bo")
    target = tmp_path / "never.db"
    report = a.merge(b.store, f"sqlite:///{target}", dry_run=True)
    assert report.dry_run and not report.written and report.events == 3
    assert not target.exists()


def test_stores_without_a_common_prefix_are_refused(sqlite_stores: Stores, tmp_path: Path) -> None:
    a, b = _open(sqlite_stores), _open(sqlite_stores)
    _place(a, "Ada")
    _place(b, "Bo")
    target = tmp_path / "never.db"
    with pytest.raises(MergeError, match="no common prefix"):
        merge(a.store, b.store, f"sqlite:///{target}")
    assert not target.exists()


def test_a_store_of_another_model_is_refused(sqlite_stores: Stores) -> None:
    a = _open(sqlite_stores)
    _place(a, "Ada")
    b = _fork(sqlite_stores, a)
    b.store.append("Other.Thing/1", [_foreign()], None)
    with pytest.raises(MergeError, match="another model"):
        a.merge(b.store, sqlite_stores.url())


def _foreign() -> Any:
    from stormgen.runtime import NewEvent

    return NewEvent(type="Other.ThingHappened", data={})


def test_an_interrupted_merge_is_refused_and_a_rerun_works(sqlite_stores: Stores) -> None:
    a = _open(sqlite_stores)
    _place(a, "Ada")
    b = _fork(sqlite_stores, a)
    _place(b, "Bo")
    to = sqlite_stores.url()
    with open_store(to) as target, target.transaction() as uow:
        uow.set_meta(MERGE_IN_PROGRESS, "2026-01-01T00:00:00Z")
    with pytest.raises(StoreError, match="unfinished merge"):
        Application.open(to, retry=FAST_RETRY, **definitions())
    assert a.merge(b.store, to).written
    assert _open(sqlite_stores, to).store.last_position() == 3


def test_a_disregarded_command_is_not_run_again(pair: list[Stores]) -> None:
    sa, sb = pair
    a = _open(sa)
    ada = _place(a, "Ada")
    b = _fork(sb, a)
    a.handle(Cancel(order_id=ada, reason="out of milk"))  # a runs no policy at all
    dee = _place(a, "Dee")
    b.run_consumers()  # on b ada was charged, paid and got a ticket
    to = _target(sb)
    report = a.merge(b.store, to, prefer="a")
    assert [c.stream for c in report.conflicts] == [Order.stream(ada)]
    merged = _on(to)
    merged.run_consumers()
    # b's charge is in the log (the gateway's stream is shared); the MarkPaid it caused
    # on b was disregarded, and its key keeps the policy from issuing it once more
    assert merged.state(Order, ada).state.status is OrderStatus.Cancelled
    assert merged.failures() == []
    assert merged.state(Order, dee).state.status is OrderStatus.Paid
    assert len(merged.store.read_stream(Ticket.stream(ada))) == 1


def test_a_client_retry_of_a_disregarded_request_is_a_duplicate(sqlite_stores: Stores) -> None:
    a = _open(sqlite_stores)
    ada = _place(a, "Ada")
    b = _fork(sqlite_stores, a)
    a.handle(MarkPaid(order_id=ada, amount=Decimal(3)))
    key = ClientKey.of("shop-app", "Ordering.Cancel", "cancel-1", {"reason": "late"})
    b.handle(Cancel(order_id=ada, reason="late"), idempotency_key=key)
    to = _target(sqlite_stores)
    assert a.merge(b.store, to, prefer="a").disregarded == 1
    merged = _on(to)
    again = merged.handle(Cancel(order_id=ada, reason="late"), idempotency_key=key)
    assert again.duplicate
    assert merged.state(Order, ada).state.status is OrderStatus.Paid
