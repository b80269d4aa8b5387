"""The state cache: instance states kept between commands, brought up to date from the log.

A command decides on a cached state without reading the log first; the append's
version check catches a stale entry, and any other outcome is confirmed on the log.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from coffee_domain import Cancel, MarkPaid, Order, OrderStatus, PlaceOrder, Tally, latte
from runtime_support import Stores

from stormgen.runtime import (
    Aggregate,
    AlreadyExists,
    Application,
    Command,
    Event,
    Rejected,
    VersionConflict,
)
from stormgen.runtime.crypto import KeyRing
from stormgen.runtime.messages import REDACTED


def place(app: Application, customer: str = "Ada") -> Any:
    return app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=Decimal("3.50")))


def shared_url(stores: Stores) -> str:
    # memory://NAME is one store per name and process: two applications share it
    return stores.url()


def test_commands_keep_the_state_cached_and_equal_to_a_fresh_load(stores: Stores) -> None:
    url = shared_url(stores)
    app = stores.app(url, aggregates=[Tally()])
    order = place(app)
    for _ in range(5):
        app.handle(MarkPaid(order_id=order.id, amount=Decimal("1.25")))
    cached = app.state_cache.get(order.stream)
    assert cached is not None and cached.version == 6
    # an application without a cache folds the log itself: the same state
    fresh = stores.app(url, aggregates=[Tally()], state_cache=0)
    assert fresh.state(Order, order.id).state == cached.state
    assert app.state(Order, order.id).state == cached.state
    assert cached.state.paid == Decimal("6.25")


def test_another_writers_events_are_read_after_the_cached_version(stores: Stores) -> None:
    url = shared_url(stores)
    mine = stores.app(url, aggregates=[Tally()])
    theirs = stores.app(url, aggregates=[Tally()])
    order = place(mine)
    mine.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    # the other application writes behind this one's cache
    theirs.handle(MarkPaid(order_id=order.id, amount=Decimal(10)))
    theirs.handle(MarkPaid(order_id=order.id, amount=Decimal(100)))
    assert mine.state(Order, order.id).state.paid == Decimal(111)
    result = mine.handle(MarkPaid(order_id=order.id, amount=Decimal(1000)))
    assert result.stream_version == 5
    assert mine.state(Order, order.id).state.paid == Decimal(1111)
    assert theirs.state(Order, order.id).state.paid == Decimal(1111)


def test_expected_version_is_checked_against_the_log_not_the_cache(stores: Stores) -> None:
    url = shared_url(stores)
    mine = stores.app(url, aggregates=[Order()])
    theirs = stores.app(url, aggregates=[Order()])
    order = place(mine)
    theirs.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    # this application's cache says version 1; the log says 2
    with pytest.raises(VersionConflict):
        mine.handle(Cancel(order_id=order.id, reason="changed my mind"), expected_version=1)
    with pytest.raises(Rejected):  # paid orders cannot be cancelled (the guard sees v2)
        mine.handle(Cancel(order_id=order.id, reason="changed my mind"), expected_version=2)


def test_a_lost_race_drops_the_entry_and_the_retry_decides_on_the_new_state(
    sqlite_stores: Stores,
) -> None:
    url = sqlite_stores.url()
    apps = [sqlite_stores.app(url, aggregates=[Tally()]) for _ in range(2)]
    order = place(apps[0])
    for app in apps:
        app.state(Order, order.id)  # both cache version 1

    def pay(app: Application) -> None:
        for _ in range(20):
            app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))

    threads = [threading.Thread(target=pay, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for app in apps:
        loaded = app.state(Order, order.id)
        assert loaded.version == 41 and loaded.state.paid == Decimal(40)


def test_a_forget_elsewhere_reaches_a_cached_state_through_the_key(stores: Stores) -> None:
    url = shared_url(stores)
    mine = stores.app(url, aggregates=[Order()])
    theirs = stores.app(url, aggregates=[Order()])
    mine.keys = KeyRing(mine.store, ttl=0.0)  # no key caching: see the forget at once
    order = place(mine, "Ada")
    assert mine.state(Order, order.id).state.customer == "Ada"
    assert mine.state_cache.get(order.stream) is not None
    theirs.forget(Order, order.id)
    # the cached state holds plain pii sealed under a key that is gone: not used again
    assert mine.state(Order, order.id).state.customer == REDACTED
    paid = mine.handle(MarkPaid(order_id=order.id, amount=Decimal("3.50")))
    assert paid.stream_version == 2
    state = mine.state(Order, order.id).state
    assert state.customer == REDACTED and state.status is OrderStatus.Paid


def test_forget_in_process_drops_the_entry(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()])
    order = place(app, "Ada")
    app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    generation = app.state_cache.generation
    app.forget(Order, order.id)
    assert app.state_cache.get(order.stream) is None
    assert app.state_cache.generation == generation + 1
    assert app.state(Order, order.id).state.customer == REDACTED


def test_the_cache_is_bounded_and_can_be_turned_off(stores: Stores) -> None:
    url = shared_url(stores)
    app = stores.app(url, aggregates=[Order()], state_cache=2)
    orders = [place(app, name) for name in ("Ada", "Bo", "Cy")]
    assert len(app.state_cache) == 2
    assert app.state_cache.get(orders[0].stream) is None  # the least recently used
    assert app.state(Order, orders[0].id).state.customer == "Ada"
    off = stores.app(url, aggregates=[Order()], state_cache=0)
    paid = off.handle(MarkPaid(order_id=orders[1].id, amount=Decimal(1)))
    assert paid.stream_version == 2 and len(off.state_cache) == 0
    assert off.state(Order, orders[1].id).state.status is OrderStatus.Paid
    # the first application's entry for Bo is stale: the next read catches up
    assert app.state(Order, orders[1].id).state.status is OrderStatus.Paid


def test_time_travel_reads_the_log_not_the_cache(stores: Stores) -> None:
    app = stores.app(aggregates=[Tally()])
    order = place(app)
    first = app.handle(MarkPaid(order_id=order.id, amount=Decimal(1)))
    app.handle(MarkPaid(order_id=order.id, amount=Decimal(2)))
    past = app.state(Order, order.id, at=first.events[-1].position)
    assert past.version == 2 and past.state.paid == Decimal(1)
    assert app.state(Order, order.id).state.paid == Decimal(3)


# -- a shelf whose guard can turn from "no" to "yes" as other writers add stock ----------
@dataclass(frozen=True)
class Open(Command, name="Depot.Open", aggregate="Depot.Shelf", creates=True):
    shelf_id: str
    count: int


@dataclass(frozen=True)
class Stock(Command, name="Depot.Stock", aggregate="Depot.Shelf"):
    shelf_id: str
    count: int


@dataclass(frozen=True)
class Take(Command, name="Depot.Take", aggregate="Depot.Shelf"):
    shelf_id: str


@dataclass(frozen=True)
class Tidy(Command, name="Depot.Tidy", aggregate="Depot.Shelf"):
    shelf_id: str


@dataclass(frozen=True)
class Stocked(Event, name="Depot.Stocked", aggregate="Depot.Shelf"):
    shelf_id: str
    count: int


@dataclass(frozen=True)
class Taken(Event, name="Depot.Taken", aggregate="Depot.Shelf"):
    shelf_id: str


@dataclass(frozen=True)
class ShelfState:
    items: int = 0


class Shelf(Aggregate[ShelfState]):
    name = "Depot.Shelf"
    id_field = "shelf_id"
    id_type = str
    state_type = ShelfState
    commands = (Open, Stock, Take, Tidy)
    events = (Stocked, Taken)

    def initial_state(self) -> ShelfState:
        return ShelfState()

    def decide(self, state: ShelfState, command: Command) -> list[Event]:
        match command:
            case Open() | Stock():
                return [Stocked(shelf_id=command.shelf_id, count=command.count)]
            case Take():
                if state.items < 1:
                    raise Rejected("the shelf is empty")
                return [Taken(shelf_id=command.shelf_id)]
            case Tidy():
                # tidying an empty shelf does nothing; a full one is taken from
                return [Taken(shelf_id=command.shelf_id)] if state.items else []
        raise TypeError(command)

    def apply(self, state: ShelfState, event: Event) -> ShelfState:
        match event:
            case Stocked():
                return ShelfState(state.items + event.count)
            case Taken():
                return ShelfState(state.items - 1)
        return state


def test_a_rejection_on_a_stale_state_is_confirmed_on_the_log(stores: Stores) -> None:
    url = shared_url(stores)
    mine = stores.app(url, aggregates=[Shelf()])
    theirs = stores.app(url, aggregates=[Shelf()])
    mine.handle(Open(shelf_id="s1", count=1))
    mine.handle(Take(shelf_id="s1"))  # the cache now says: empty, version 2
    theirs.handle(Stock(shelf_id="s1", count=5))
    # the cached state rejects; the log's state (6 stocked, 1 taken) accepts
    result = mine.handle(Take(shelf_id="s1"))
    assert result.stream_version == 4
    assert mine.state(Shelf, "s1").state.items == 4
    # and a real rejection still comes through
    for _ in range(4):
        theirs.handle(Take(shelf_id="s1"))
    with pytest.raises(Rejected, match="empty"):
        mine.handle(Take(shelf_id="s1"))


def test_no_events_on_a_stale_state_is_confirmed_on_the_log(stores: Stores) -> None:
    url = shared_url(stores)
    mine = stores.app(url, aggregates=[Shelf()])
    theirs = stores.app(url, aggregates=[Shelf()])
    mine.handle(Open(shelf_id="s1", count=1))
    mine.handle(Take(shelf_id="s1"))
    theirs.handle(Stock(shelf_id="s1", count=2))
    # stale: nothing to do at version 2; the log says there are two items
    result = mine.handle(Tidy(shelf_id="s1"))
    assert result.stream_version == 4 and len(result.events) == 1
    # up to date and nothing to do: answered at the current version, nothing written
    theirs.handle(Take(shelf_id="s1"))
    idle = mine.handle(Tidy(shelf_id="s1"))
    assert idle.events == [] and idle.stream_version == 5


def test_a_stale_cache_loses_the_append_and_decides_again(stores: Stores) -> None:
    url = shared_url(stores)
    mine = stores.app(url, aggregates=[Shelf()])
    theirs = stores.app(url, aggregates=[Shelf()])
    mine.handle(Open(shelf_id="s1", count=1))
    theirs.handle(Take(shelf_id="s1"))
    theirs.handle(Stock(shelf_id="s1", count=3))
    # the cache says 1 item at version 1: the append at version 1 conflicts, the retry
    # decides on the log's 3 items
    result = mine.handle(Take(shelf_id="s1"))
    assert result.stream_version == 4
    assert mine.state(Shelf, "s1").state.items == 2
    assert theirs.state(Shelf, "s1").state.items == 2


def test_creating_an_instance_another_writer_created_is_refused(stores: Stores) -> None:
    url = shared_url(stores)
    mine = stores.app(url, aggregates=[Order()])
    theirs = stores.app(url, aggregates=[Order()])
    order_id = uuid.uuid4()
    theirs.handle(PlaceOrder(customer="Bo", drinks=[latte()], total=Decimal(1), order_id=order_id))
    # nothing cached here: the create is tried at version 0 and conflicts
    with pytest.raises(AlreadyExists):
        mine.handle(
            PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(1), order_id=order_id)
        )
    # with an expected version too: the log says why (it exists), not just "conflict"
    with pytest.raises(AlreadyExists):
        mine.handle(
            PlaceOrder(customer="Ada", drinks=[latte()], total=Decimal(1), order_id=order_id),
            expected_version=0,
        )
    assert mine.state(Order, order_id).state.customer == "Bo"
    assert len(mine.history(Order, order_id)) == 1
