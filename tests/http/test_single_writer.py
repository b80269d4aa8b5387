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
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from http_shop import Drink, PlaceOrder, assert_serve_refuses, open_shop
from thread_server import ThreadServer

from stormgen.runtime import Application, Rejected
from stormgen.runtime.application import CommandResult
from stormgen.runtime.http import create_app
from stormgen.runtime.http.app import chain_backlog_from_env, chain_lag_from_env
from stormgen.runtime.http.limits import LimitsError
from stormgen.runtime.http.writer import BUSY, CHAIN_BACKLOG, CHAIN_LAG, CommandWriter

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


class Crowd:
    """Command requests arriving at the writer's count, two or more in at any time
    (as the HTTP layer counts them under a load of several clients), until `ease`."""

    def __init__(self, writer: CommandWriter) -> None:
        self.writer = writer
        self.easing = threading.Event()
        writer.request_started()
        writer.request_started()
        self.thread = threading.Thread(target=self._arrive, daemon=True)
        self.thread.start()
        time.sleep(BUSY * 1.5)  # a busy stretch: under load from here on

    def _arrive(self) -> None:
        while not self.easing.wait(0.002):
            self.writer.request_started()
            self.writer.request_ended()

    def ease(self) -> None:
        self.easing.set()
        self.thread.join(5)
        self.writer.request_ended()
        self.writer.request_ended()


def held_round(
    shop: Application, writer: CommandWriter, placed: list[PlaceOrder]
) -> tuple[list[Any], threading.Thread, threading.Event]:
    """One writer round holding a pass and `placed` (queued behind a blocked command);
    returns the commands' outcomes once answered, the consumers' thread running the
    pass, and an event set when the pass has returned."""
    release = threading.Event()
    passed = threading.Event()

    def consumers() -> None:
        shop.consumers.run_pass()
        passed.set()

    thread = threading.Thread(target=consumers)

    async def send() -> list[Any]:
        first = asyncio.ensure_future(writer.run(release.wait, 5))
        await asyncio.sleep(0.05)
        thread.start()  # its pass queues behind the blocked round, before the commands
        await asyncio.sleep(0.1)
        rest = [asyncio.ensure_future(writer.run(shop.handle, command)) for command in placed]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *rest)

    return asyncio.run(send())[1:], thread, passed


def test_under_load_the_commands_go_first_and_the_chain_follows_when_it_eases(
    shop: Application,
) -> None:
    for command in [order() for _ in range(3)]:
        shop.handle(command)  # the chain has something to do: the pass takes it
    writer = CommandWriter(shop)
    writer.take_passes(backlog=1000)
    crowd = Crowd(writer)
    placed = [order() for _ in range(4)]
    try:
        outcomes, thread, passed = held_round(shop, writer, placed)
        # answered and committed while the pass waits: the views have not moved
        assert all(isinstance(o, CommandResult) for o in outcomes)
        assert len(shop.store.read_all(0)) == 7
        time.sleep(0.2)
        assert not passed.is_set()
        assert shop.view_row("Ordering.OrderHistory", placed[0].order_id) is None
        crowd.ease()  # the load eases: the chain's turn
        assert passed.wait(10)
        thread.join(10)
    finally:
        writer.stop()
    shop.run_consumers()
    for command in placed:
        row = shop.view_row("Ordering.OrderHistory", command.order_id)
        assert row is not None and row["customer"] == "Ada"


def runs_in_step(shop: Application, writer: CommandWriter) -> None:
    """Under load, a round's commands run inside the held pass: its views hold them
    once they are answered (the chain is past one of its bounds)."""
    crowd = Crowd(writer)
    placed = [order() for _ in range(4)]
    try:
        outcomes, thread, passed = held_round(shop, writer, placed)
        assert all(isinstance(o, CommandResult) for o in outcomes)
        assert passed.wait(10)
        thread.join(10)
        for command in placed:
            row = shop.view_row("Ordering.OrderHistory", command.order_id)
            assert row is not None and row["customer"] == "Ada"
    finally:
        crowd.ease()
        writer.stop()


def test_a_chain_trailing_by_its_backlog_runs_in_step_with_the_commands(
    shop: Application,
) -> None:
    for command in [order() for _ in range(3)]:
        shop.handle(command)
    writer = CommandWriter(shop)
    writer.take_passes(backlog=3)  # the chain trails by 3 events already
    runs_in_step(shop, writer)


def test_a_chain_trailing_by_its_lag_runs_in_step_with_the_commands(
    shop: Application,
) -> None:
    for command in [order() for _ in range(3)]:
        shop.handle(command)
    time.sleep(0.3)  # the oldest event the chain has not processed is 0.3 s old
    writer = CommandWriter(shop)
    writer.take_passes(backlog=1000, lag=0.2)
    runs_in_step(shop, writer)


def test_a_pass_held_back_runs_when_the_writer_stops(shop: Application) -> None:
    shop.handle(order())
    writer = CommandWriter(shop)
    writer.take_passes(backlog=1000)
    crowd = Crowd(writer)  # under load, and it does not ease before the writer stops
    placed = [order()]
    outcomes, thread, passed = held_round(shop, writer, placed)
    assert isinstance(outcomes[0], CommandResult) and not passed.is_set()
    writer.stop()  # nothing is left waiting: the held pass runs first
    thread.join(10)
    assert passed.is_set()
    crowd.ease()
    assert shop.view_row("Ordering.OrderHistory", placed[0].order_id) is not None


def test_served_under_load_every_order_completes_its_chain(shop: Application) -> None:
    """A real server and eight clients at once: the commands may go first while they
    press, yet every order's chain completes; answered requests, rejected ones and
    malformed ones alike leave the writer's count of requests in flight."""
    app = create_app(shop, tokens="", run_consumers=True, chain_backlog=10_000)
    writer = app.state.api.writer
    placed: list[str] = []
    refused: list[int] = []

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for n in range(15):
                body: dict[str, Any] = dict(BODY)
                if n % 5 == 4:
                    body = {**BODY, "drinks": []}  # the aggregate rejects it
                elif n % 5 == 3:
                    body = {"customer": 5}  # malformed
                answer = http.post("/ordering/order/place-order", json=body)
                if answer.status_code == 201:
                    placed.append(answer.json()["id"])
                else:
                    refused.append(answer.status_code)

    with ThreadServer(app) as server:
        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(60)
        assert len(placed) == 8 * 9 and sorted(set(refused)) == [409, 422], refused
        # a client may see its answer before the server's loop has counted it out
        # (the count drops right after the answer's last write)
        deadline = time.monotonic() + 10
        while writer.serving and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.serving == 0
        with httpx.Client(base_url=server.url, timeout=30) as http:
            deadline = time.monotonic() + 60
            waiting = set(placed)
            while waiting:
                assert time.monotonic() < deadline, f"{len(waiting)} orders never reached pickup"
                waiting = {
                    i for i in waiting if http.get(f"/display/views/pickup/{i}").status_code != 200
                }
                time.sleep(0.02)


@pytest.mark.parametrize(
    ("read", "name", "default", "given", "bads", "message"),
    [
        (
            chain_backlog_from_env,
            "STORMGEN_CHAIN_BACKLOG",
            CHAIN_BACKLOG,
            {"0": 0, " 250 ": 250},
            ("-1", "lots", "2.5"),
            "STORMGEN_CHAIN_BACKLOG must be a whole number",
        ),
        (
            chain_lag_from_env,
            "STORMGEN_CHAIN_LAG",
            CHAIN_LAG,
            {"0": 0, " 2.5 ": 2.5},
            ("-1", "soon", "nan", "inf"),
            "STORMGEN_CHAIN_LAG must be a number of seconds",
        ),
    ],
    ids=["backlog", "lag"],
)
def test_a_chain_bound_is_read_from_the_environment_and_checked(
    monkeypatch: pytest.MonkeyPatch,
    read: Callable[[dict[str, str]], float],
    name: str,
    default: float,
    given: dict[str, float],
    bads: tuple[str, ...],
    message: str,
) -> None:
    assert read({}) == default
    for text, value in given.items():
        assert read({name: text}) == value
    for bad in bads:
        with pytest.raises(LimitsError, match=message):
            read({name: bad})
    assert_serve_refuses(monkeypatch, name, "many", message)


def test_the_api_is_under_load_when_crowded_without_a_real_break(
    shop: Application,
) -> None:
    writer = CommandWriter(shop)
    assert not writer.under_load()
    writer.request_started()
    time.sleep(BUSY * 1.5)
    assert not writer.under_load()  # one request at a time is no load, however long
    writer.request_started()  # a second one in meanwhile: crowded, busy for long
    assert writer.under_load()
    writer.request_ended()
    writer.request_ended()
    writer.request_started()  # the next wave at once (no real break)
    writer.request_started()
    assert writer.under_load()
    writer.request_ended()
    writer.request_ended()
    time.sleep(BUSY)  # a real break: the stretch is over
    assert not writer.under_load()
    writer.request_started()
    writer.request_started()
    assert not writer.under_load()  # crowded, but busy only since just now
    writer.request_ended()
    writer.request_ended()
