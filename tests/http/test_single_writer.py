"""The single writer: the API's commands and the views' and policies' passes on one thread.

While the API serves with its consumers running, the command writer takes the passes
over: each round runs the commands that arrived inside a pass (one transaction, one
commit), each command in a savepoint of its own; nothing is answered before the commit.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_shop import Drink, PlaceOrder, open_shop

from stormgen.runtime import Application, Rejected
from stormgen.runtime.application import CommandResult
from stormgen.runtime.http import create_app
from stormgen.runtime.http.writer import CommandWriter

BODY = {"customer": "Ada", "drinks": [{"name": "Latte", "price": "3.50"}], "total": "3.50"}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Application]:
    app = open_shop(f"sqlite:///{tmp_path / 'events.db'}")
    yield app
    app.close()


def order(drinks: int = 1) -> PlaceOrder:
    return PlaceOrder(
        order_id=uuid.uuid4(),
        customer="Ada",
        drinks=[Drink("Latte", Decimal("3.50"))] * drinks,
        total=Decimal("3.50") * max(drinks, 1),
    )


def passes_on(shop: Application) -> list[str]:
    """Record the name of the thread running each pass's transaction (the real one)."""
    threads: list[str] = []
    passes = shop.consumers.passes
    original = passes._transact

    def recording(*args: Any) -> None:
        threads.append(threading.current_thread().name)
        original(*args)

    passes._transact = recording  # type: ignore[method-assign]
    return threads


def test_served_with_consumers_every_pass_runs_on_the_writer(shop: Application) -> None:
    threads = passes_on(shop)
    with TestClient(create_app(shop, tokens="", run_consumers=True)) as client:
        assert shop.consumers.pass_writer is not None
        ids = []
        for _ in range(10):
            placed = client.post("/ordering/order/place-order", json=BODY)
            assert placed.status_code == 201, placed.text
            ids.append(placed.json()["id"])
        deadline = time.monotonic() + 30
        while any(client.get(f"/display/views/pickup/{i}").status_code != 200 for i in ids):
            assert time.monotonic() < deadline, "the chain did not complete"
            time.sleep(0.01)
        ran_on = set(threads)
    # the whole chain ran, and only the writer wrote it
    assert ran_on == {"stormgen-commands"}
    # stopped: the passes are the consumers' own again
    assert shop.consumers.pass_writer is None
    assert len(shop.store.read_all(0)) == 10 * 5


def test_a_round_commits_the_commands_with_a_pass_and_fails_each_alone(
    shop: Application,
) -> None:
    """No background thread here: the views move in the round that holds the pass."""
    writer = CommandWriter(shop)
    writer.take_passes()
    threads = passes_on(shop)
    release = threading.Event()

    def held() -> None:
        release.wait(5)  # the first round waits while the others queue up

    def broken() -> None:
        raise RuntimeError("a bug in one command")

    placed = [order() for _ in range(5)]
    passed: list[tuple[int, bool]] = []

    async def send() -> list[Any]:
        first = asyncio.ensure_future(writer.run(held))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(writer.run(shop.handle, command)) for command in placed]
        rest.append(asyncio.ensure_future(writer.run(shop.handle, order(drinks=0))))
        rest.append(asyncio.ensure_future(writer.run(broken)))
        await asyncio.sleep(0.05)
        # a pass asked now waits behind the commands: they run inside its transaction
        consumers = threading.Thread(target=lambda: passed.append(shop.consumers.run_pass()))
        consumers.start()
        await asyncio.sleep(0.1)
        release.set()
        outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
        consumers.join(10)
        return outcomes

    try:
        outcomes = asyncio.run(send())
    finally:
        writer.stop()
    assert all(isinstance(o, CommandResult) for o in outcomes[1:6])
    assert isinstance(outcomes[6], Rejected)
    assert isinstance(outcomes[7], RuntimeError)
    assert threads == ["stormgen-commands"] and len(passed) == 1
    assert len(shop.store.read_all(0)) == 5
    for command in placed:
        row = shop.view_row("Ordering.OrderHistory", command.order_id)
        assert row is not None and row["customer"] == "Ada"


def test_a_pass_asked_while_the_writer_is_stopped_runs_in_its_caller(shop: Application) -> None:
    writer = CommandWriter(shop)
    writer.take_passes()
    assert shop.consumers.pass_writer is not None
    threads = passes_on(shop)
    shop.handle(order())  # not through the writer: the next pass takes it
    assert shop.consumers.run_pass()[0] >= 1
    assert threads == ["stormgen-commands"]
    writer.stop()
    assert shop.consumers.pass_writer is None
    shop.handle(order())
    shop.consumers.run_pass()
    assert threads == ["stormgen-commands", threading.current_thread().name]
    assert len(shop.view_rows("Ordering.OrderHistory")) == 2
