"""Group commit: commands run together in one SQLite transaction, each failing alone."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_shop import Cancel, Drink, PlaceOrder, open_shop

from stormgen.runtime import Application, Rejected
from stormgen.runtime.application import CommandResult
from stormgen.runtime.errors import StoreError
from stormgen.runtime.http import create_app
from stormgen.runtime.http.writer import CommandWriter
from stormgen.runtime.reading import UNSEALED
from stormgen.runtime.state import Cached


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Application]:
    app = open_shop(f"sqlite:///{tmp_path / 'events.db'}")
    yield app
    app.close()


def order(ident: uuid.UUID | None = None, drinks: int = 1) -> PlaceOrder:
    return PlaceOrder(
        order_id=ident,
        customer="Ada",
        drinks=[Drink("Latte", Decimal("3.50"))] * drinks,
        total=Decimal("3.50") * max(drinks, 1),
    )


def handler(app: Application, command: Any, **options: Any) -> Callable[[], CommandResult]:
    return lambda: app.handle(command, **options)


def test_a_group_commits_every_command_and_a_rejection_fails_only_its_own(
    shop: Application,
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    outcomes = shop.handle_together(
        [
            handler(shop, order(first)),
            handler(shop, order(drinks=0)),  # a guard rejects it
            handler(shop, order(second)),
            handler(shop, Cancel(order_id=first, reason="changed my mind")),  # same stream
            handler(shop, order(first)),  # exists since the first unit
        ]
    )
    placed, rejected, other, cancelled, again = outcomes
    assert isinstance(placed, CommandResult) and placed.stream_version == 1
    assert isinstance(rejected, Rejected)
    assert isinstance(other, CommandResult) and other.id == second
    assert isinstance(cancelled, CommandResult) and cancelled.stream_version == 2
    assert isinstance(again, Rejected)  # AlreadyExists
    types = [e.type for e in shop.store.read_all(0)]
    assert types == ["Ordering.OrderPlaced", "Ordering.OrderPlaced", "Ordering.OrderCancelled"]
    # the states cached inside the group are everyone's after the commit
    assert shop.load("Ordering.Order", first).version == 2


def test_one_idempotency_key_twice_in_a_group_writes_once(shop: Application) -> None:
    one, two = shop.handle_together(
        [
            handler(shop, order(), idempotency_key="k-1"),
            handler(shop, order(), idempotency_key="k-1"),
        ]
    )
    assert isinstance(one, CommandResult) and isinstance(two, CommandResult)
    assert not one.duplicate and two.duplicate
    assert two.id == one.id and two.stream_version == one.stream_version
    assert len(shop.store.read_all(0)) == 1


def test_a_group_remembers_each_key_with_its_append_and_writes_nothing_else(
    shop: Application,
) -> None:
    """The store's append records the key; no index or checkpoint is written beside it."""
    statements: list[str] = []
    shop.store._conn().set_trace_callback(statements.append)  # the writer's connection
    outcomes = shop.handle_together(
        [handler(shop, order(), idempotency_key=f"k-{i}") for i in range(3)]
        + [handler(shop, order())]
    )
    shop.store._conn().set_trace_callback(None)
    results = [o for o in outcomes if isinstance(o, CommandResult)]
    assert len(results) == 4
    writes = [s.split("(")[0].strip() for s in statements if s.startswith(("INSERT", "UPDATE"))]
    # the orders' pii keys, their events and the three keys: no index, no checkpoint
    assert set(writes) == {
        "INSERT INTO stream_keys",
        "INSERT INTO events",
        "INSERT INTO idempotency_keys",
    }
    assert writes.count("INSERT INTO idempotency_keys") == 3
    for i, result in enumerate(results[:3]):
        # the application's own keys (not a client's): the internal namespace
        remembered = shop.store.remembered(f"internal/k-{i}")
        assert remembered == {
            "stream": result.stream,
            "stream_version": 1,
            "first_position": result.events[0].position,
            "last_position": result.events[-1].position,
        }


def test_a_rolled_back_group_remembers_none_of_its_keys(shop: Application) -> None:
    shop.handle(order(), idempotency_key="k-0")

    def keyed_then_broken() -> CommandResult:
        shop.handle(order(), idempotency_key="k-1")
        raise RuntimeError("a bug in a unit")

    with pytest.raises(RuntimeError), shop.batch():
        keyed_then_broken()
    assert shop.was_handled("k-0")
    assert not shop.was_handled("k-1")
    again = shop.handle(order(), idempotency_key="k-1")
    assert not again.duplicate
    assert shop.was_handled("k-1")


def test_batches_do_not_nest(shop: Application) -> None:
    with shop.batch(), pytest.raises(RuntimeError, match="does not nest"), shop.batch():
        pass
    with shop.batch():  # the failed attempt left the thread free for the next one
        shop.handle(order())


def test_an_error_that_is_no_answer_rolls_back_and_runs_each_alone(shop: Application) -> None:
    kept = uuid.uuid4()
    calls = {"broken": 0}

    def broken() -> CommandResult:
        calls["broken"] += 1
        shop.handle(order())  # written, then undone with the group
        raise RuntimeError("a bug in a unit")

    outcomes = shop.handle_together([handler(shop, order(kept)), broken])
    assert isinstance(outcomes[0], CommandResult) and outcomes[0].id == kept
    assert isinstance(outcomes[1], RuntimeError)
    assert calls["broken"] == 2  # once in the group, once alone
    events = shop.store.read_all(0)
    # the kept order once (the group's copy was rolled back), the broken unit's own
    # append once (from its run alone, which then raised after it)
    assert [e.stream for e in events].count(outcomes[0].stream) == 1
    assert len(events) == 2


def test_a_failed_commit_answers_nothing_from_the_group(shop: Application) -> None:
    """When the store fails, the group is undone and each command fails by itself."""
    first = uuid.uuid4()

    def close_then_place() -> CommandResult:
        result = shop.handle(order(first))
        shop.store.close()  # the commit after this unit cannot happen
        return result

    outcomes = shop.handle_together([close_then_place, handler(shop, order())])
    assert all(isinstance(o, Exception) for o in outcomes), outcomes


def test_states_decided_in_a_group_stay_its_own_until_the_commit(shop: Application) -> None:
    ident = uuid.uuid4()
    seen: list[Any] = []

    def place_then_look() -> CommandResult:
        result = shop.handle(order(ident))
        # another thread, meanwhile: neither the cache nor the log show the order yet
        look = threading.Thread(target=lambda: seen.append(shop.state_cache.get(result.stream)))
        look.start()
        look.join()
        return result

    placed, _ = shop.handle_together([place_then_look, handler(shop, order())])
    assert seen == [None]
    assert isinstance(placed, CommandResult)
    hit = shop.state_cache.get(placed.stream)
    assert hit is not None and hit.version == 1


def test_the_writer_groups_what_arrives_while_it_is_busy(shop: Application) -> None:
    writer = CommandWriter(shop)
    groups: list[int] = []
    original = shop.handle_together
    release = threading.Event()

    def counting(units: Any) -> Any:
        groups.append(len(units))
        if len(groups) == 1:
            release.wait(5)  # hold the first group while the others queue up
        return original(units)

    shop.handle_together = counting  # type: ignore[method-assign]

    async def send() -> list[Any]:
        first = asyncio.ensure_future(writer.run(shop.handle, order()))
        while not groups:
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(writer.run(shop.handle, order())) for _ in range(9)]
        rest.append(asyncio.ensure_future(writer.run(shop.handle, order(drinks=0))))
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        outcomes = asyncio.run(send())
    finally:
        writer.stop()
    assert groups == [1, 10]
    assert all(isinstance(o, CommandResult) for o in outcomes[:10])
    assert isinstance(outcomes[10], Rejected)
    assert len(shop.store.read_all(0)) == 10


def test_the_writer_answers_after_the_commit(shop: Application) -> None:
    """An answer means the events are in the log, readable by another connection."""
    writer = CommandWriter(shop)
    streams: list[int] = []

    async def send() -> None:
        results = await asyncio.gather(*(writer.run(shop.handle, order()) for _ in range(20)))
        for result in results:
            visible = threading.Thread(
                target=lambda r=result: streams.append(shop.store.stream_version(r.stream))
            )
            visible.start()
            visible.join()

    try:
        asyncio.run(send())
    finally:
        writer.stop()
    assert streams == [1] * 20


def test_the_api_answers_the_same_through_the_writer(shop: Application) -> None:
    with TestClient(create_app(shop, tokens="", run_consumers=False)) as client:
        api = client.app.state.api  # type: ignore[attr-defined]
        assert api.writer is not None
        body = {"customer": "Ada", "drinks": [{"name": "Latte", "price": "3.50"}], "total": "3.50"}
        placed = client.post("/ordering/order/place-order", json=body)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        again = client.post("/ordering/order/place-order", json={**body, "order_id": order_id})
        assert again.status_code == 409 and again.json()["error"] == "exists"
        shop.store.close()
        failed = client.post("/ordering/order/place-order", json=body)
        assert failed.status_code == 503, failed.text


def test_a_savepoint_after_sqlite_rolled_back_the_transaction_raises(
    shop: Application,
) -> None:
    store = shop.store
    with pytest.raises(StoreError, match="rolled back"), store.transaction() as uow:
        uow._conn.execute("ROLLBACK")  # type: ignore[attr-defined]  # as SQLite does on I/O errors
        with store.transaction():
            pass


def test_held_entries_are_put_after_the_block_and_dropped_when_it_raises(
    shop: Application,
) -> None:
    cache = shop.state_cache
    entry = Cached(1, 1, object(), UNSEALED)
    with cache.held():
        cache.put("s-1", entry, cache.generation)
        assert cache.get("s-1") is entry  # this thread sees its own
        other: list[Any] = []
        look = threading.Thread(target=lambda: other.append(cache.get("s-1")))
        look.start()
        look.join()
        assert other == [None]
    assert cache.get("s-1") is entry
    with pytest.raises(RuntimeError), cache.held():
        cache.put("s-2", entry, cache.generation)
        raise RuntimeError("rolled back")
    assert cache.get("s-2") is None
    with cache.held():
        cache.put("s-3", entry, cache.generation)
        cache.forget("s-3")  # a forget in between: the held entry is refused
    assert cache.get("s-3") is None


@pytest.mark.parametrize(("kind", "grouped"), [("sqlite", True), ("memory", False)])
def test_the_api_groups_commands_where_the_store_says_it_gains(
    kind: str, grouped: bool, tmp_path: Path
) -> None:
    """The API asks the store (`EventStore.group_commit`), not for a class of store."""
    url = f"sqlite:///{tmp_path / 'events.db'}" if kind == "sqlite" else "memory://"
    app = open_shop(url)
    try:
        assert app.store.group_commit is grouped
        api = create_app(app, tokens="", run_consumers=False).state.api
        assert (api.writer is not None) is grouped
    finally:
        app.close()
