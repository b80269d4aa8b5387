"""Autonomous contexts in one test process: each context an application on a SQLite
file of its own, linked by a real NATS JetStream server of the module's own
(docs/autonomous.md). The relay, the inboxes, forgetting across services, redelivery
and bad messages."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from e2e_support import MODEL, clean_env, wait_for
from nats_support import NatsCluster, NatsServer

import stormgen
from stormgen.cli.run import Service, load_service
from stormgen.render.asyncapi import asyncapi_document
from stormgen.runtime import REDACTED, Application
from stormgen.runtime.bus import RELAY_CHECKPOINT, Bus, BusConfigError, BusSettings, open_bus

MEMBERS = Path(__file__).with_name("members.storm")


@pytest.fixture(scope="module")
def nats() -> Iterator[NatsServer]:
    server = NatsServer().start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def shop(workdir: Path) -> Iterator[Service]:
    old = Path.cwd()
    os.chdir(workdir)
    try:
        yield load_service(MODEL)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def members(workdir: Path) -> Iterator[Service]:
    old = Path.cwd()
    os.chdir(workdir)
    try:
        yield load_service(MEMBERS)
    finally:
        os.chdir(old)
        for name in [m for m in sys.modules if m == "members" or m.startswith("members.")]:
            del sys.modules[name]


@dataclass
class Node:
    """One context running autonomously: its application, its store, its bus link."""

    app: Application
    bus: Bus
    stopped: bool = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.bus.stop()
            self.app.close()


@pytest.fixture
def nodes(workdir: Path, nats: NatsServer) -> Iterator[Any]:
    """Start contexts of a service, each on its own fresh SQLite store."""
    started: list[Node] = []
    run = uuid.uuid4().hex[:8]

    def start(
        service: Service,
        context: str,
        namespace: str | None = None,
        settings: BusSettings | None = None,
    ) -> Node:
        store = f"sqlite:///{workdir / f'bus-{run}-{context}.db'}"
        app = service.open(store, [context])
        settings = settings or BusSettings.parse(nats.url)
        bus = Bus(app, settings, namespace or f"t{run}", [context], _quiet)
        app.start()
        bus.start()
        node = Node(app, bus)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def _quiet(line: str) -> None:
    return None


def place_order(shop: Service, app: Application, customer: str = "Ada") -> uuid.UUID:
    order = importlib.import_module(f"{shop.package}.ordering.order")
    shared = importlib.import_module(f"{shop.package}.shared")
    order_id = uuid.uuid4()
    drink = shared.Drink(name="Tea", price=Decimal("2.00"))
    app.handle(
        order.PlaceOrder(order_id=order_id, customer=customer, drinks=(drink,), total=Decimal("2")),
        actor="Customer",
    )
    return order_id


def types_in(app: Application) -> list[str]:
    return [e.type for e in app.events()]


async def _raw(url: str, job: Any) -> Any:
    import nats as nats_py

    client = await nats_py.connect(url)
    try:
        return await job(client.jetstream())
    finally:
        await client.close()


def test_published_events_flow_to_the_contexts_that_consume_them(
    shop: Service, nodes: Any, nats: NatsServer
) -> None:
    contexts = ("Ordering", "Bar", "Display")
    ordering, bar, display = (nodes(shop, c, "coffee_shop") for c in contexts)
    order_id = place_order(shop, ordering.app)
    row = wait_for(lambda: display.app.view_row("Display.Pickup", order_id), timeout=20)
    assert row == {"ticket_id": str(order_id), "ready": False}
    # each store holds its own facts and what it consumes, nothing else
    assert "Bar.TicketOpened" not in types_in(ordering.app)
    assert [t for t in types_in(bar.app) if t.startswith("Ordering.")] == ["Ordering.OrderPaid"]
    assert types_in(display.app) == ["Bar.TicketOpened"]
    paid = next(e for e in bar.app.events() if e.type == "Ordering.OrderPaid")
    source = next(e for e in ordering.app.events() if e.type == "Ordering.OrderPaid")
    assert paid.id == source.id and paid.stream == source.stream
    assert paid.metadata["source"]["bus_stream"] == "STORMGEN_COFFEE_SHOP_ORDERING"
    assert paid.metadata["source"]["position"] == source.position
    ordering.app.forget("Ordering.Order", order_id)
    wait_for(lambda: "$Forgotten" in types_in(bar.app), timeout=20)

    # the broker holds the published language, one subject per type, ids and headers
    async def read(js: Any) -> list[Any]:
        sub = await js.pull_subscribe(
            "stormgen.coffee_shop.Ordering.>", stream="STORMGEN_COFFEE_SHOP_ORDERING"
        )
        return list(await sub.fetch(10, timeout=2))

    messages = asyncio.run(_raw(nats.url, read))
    assert [m.subject for m in messages] == [
        "stormgen.coffee_shop.Ordering.OrderPlaced",
        "stormgen.coffee_shop.Ordering.OrderPaid",
        "stormgen.coffee_shop.Ordering.$Forgotten",
    ]
    placed = next(e for e in ordering.app.events() if e.type == "Ordering.OrderPlaced")
    assert messages[0].headers["Nats-Msg-Id"] == placed.id
    assert messages[0].headers["Stormgen-Aggregate-Id"] == str(order_id)
    # the relay publishes pii in plain text (the consumer seals it with its own key)
    assert json.loads(messages[0].data)["data"]["customer"] == "Ada"
    # the AsyncAPI document names exactly the subjects seen on the wire
    document = asyncapi_document(stormgen.load(MODEL).model)
    addresses = {c["address"] for c in document["channels"].values()}
    assert {m.subject for m in messages} <= addresses
    assert (
        document["channels"]["Ordering.OrderPaid"]["x-nats-stream"] == messages[1].metadata.stream
    )

    # Bar's durable consumer takes exactly what Bar consumes (NATS 2.10 and later; one
    # filter subject per consumer before: the published language, the rest acked unread)
    async def consumer(js: Any) -> tuple[str, Any]:
        info = await js.consumer_info("STORMGEN_COFFEE_SHOP_ORDERING", "coffee_shop_Bar")
        return str(js._nc._server_info["version"]), info.config

    version, config = asyncio.run(_raw(nats.url, consumer))
    if tuple(int(p) for p in version.split(".")[:2]) >= (2, 10):
        assert config.filter_subjects == [
            "stormgen.coffee_shop.Ordering.OrderPaid",
            "stormgen.coffee_shop.Ordering.$Forgotten",
        ]
    else:
        assert config.filter_subject == "stormgen.coffee_shop.Ordering.>"
    # /health's figures: nothing waits
    status = wait_for(lambda: _settled(bar.bus.status()), timeout=10)
    assert status["relay"]["lag"] == 0 and status["relay"]["connected"]
    assert status["inbox"]["Ordering"]["durable"] == "coffee_shop_Bar"
    assert ordering.app.store.get_checkpoint(RELAY_CHECKPOINT) == ordering.app.store.last_position()


def _settled(status: dict[str, Any]) -> dict[str, Any] | None:
    inboxes = status["inbox"].values()
    done = all(i["pending"] == 0 and i["connected"] for i in inboxes)
    return status if done and status.get("relay", {"lag": 0})["lag"] == 0 else None


def test_a_redelivered_or_republished_event_changes_nothing(
    shop: Service, nodes: Any, nats: NatsServer
) -> None:
    ordering, bar = nodes(shop, "Ordering", "shop2"), nodes(shop, "Bar", "shop2")
    orders = [place_order(shop, ordering.app) for _ in range(3)]
    wait_for(lambda: types_in(bar.app).count("Bar.TicketOpened") == 3, timeout=20)
    before = types_in(bar.app)

    # the stream holds the published events in the log's order
    async def ids(js: Any) -> list[str]:
        sub = await js.pull_subscribe("stormgen.shop2.Ordering.>", stream="STORMGEN_SHOP2_ORDERING")
        return [m.headers["Nats-Msg-Id"] for m in await sub.fetch(6, timeout=2)]

    published = [e.id for e in ordering.app.events() if e.type.startswith("Ordering.Order")]
    assert asyncio.run(_raw(nats.url, ids)) == published

    # the same message again under another message id: the broker keeps it, the inbox not
    async def republish(js: Any) -> None:
        sub = await js.pull_subscribe(
            "stormgen.shop2.Ordering.OrderPaid", stream="STORMGEN_SHOP2_ORDERING"
        )
        for message in await sub.fetch(3, timeout=2):
            headers = dict(message.headers)
            headers["Nats-Msg-Id"] = uuid.uuid4().hex
            await js.publish(message.subject, message.data, headers=headers)

    asyncio.run(_raw(nats.url, republish))
    # and the relay starting over from the beginning: the broker drops its duplicates
    ordering.bus.stop()
    with ordering.app.store.transaction() as uow:
        uow.reset_checkpoint(RELAY_CHECKPOINT)
    ordering.bus.start()
    wait_for(lambda: _settled(bar.bus.status()), timeout=20)
    assert types_in(bar.app) == before
    assert len({e.stream for e in bar.app.events() if e.type == "Bar.TicketOpened"}) == len(orders)


def test_bad_messages_become_failures_and_never_block_the_inbox(
    shop: Service, nodes: Any, nats: NatsServer
) -> None:
    ordering, bar = nodes(shop, "Ordering", "shop3"), nodes(shop, "Bar", "shop3")
    place_order(shop, ordering.app)
    wait_for(lambda: "Bar.TicketOpened" in types_in(bar.app), timeout=20)
    subject = "stormgen.shop3.Ordering.OrderPaid"
    envelope = {
        "id": str(uuid.uuid4()),
        "type": "Ordering.OrderPaid",
        "version": 1,
        "stream": "Ordering.Order/x",
        "data": {"order_id": str(uuid.uuid4()), "amount": "2", "drinks": []},
    }
    bad = [
        (subject, b"{not json"),
        (subject, json.dumps({**envelope, "type": "Ordering.OrderRefunded"}).encode()),
        (subject, json.dumps({**envelope, "id": str(uuid.uuid4()), "version": 9}).encode()),
        (
            subject,
            json.dumps({**envelope, "id": str(uuid.uuid4()), "data": {"amount": "2"}}).encode(),
        ),
    ]

    async def send(js: Any) -> None:
        for subj, payload in bad:
            await js.publish(subj, payload, headers={"Nats-Msg-Id": uuid.uuid4().hex})

    asyncio.run(_raw(nats.url, send))
    failures = wait_for(lambda: len(bar.app.failures()) >= 4 and bar.app.failures(), timeout=20)
    errors = [f.data["error"] for f in failures]
    assert len(failures) == 4
    assert any("not JSON" in e for e in errors)
    assert any("OrderRefunded is not an event this context consumes" in e for e in errors)
    assert any("v9" in e for e in errors)
    assert any("order_id" in e for e in errors)
    assert all(f.data["parked"] and f.data["kind"] == "inbox" for f in failures)
    assert failures[0].data["message"] == "{not json"
    # the inbox goes on: the next order gets through, nothing is redelivered forever
    place_order(shop, ordering.app)
    wait_for(lambda: types_in(bar.app).count("Bar.TicketOpened") == 2, timeout=20)
    assert wait_for(lambda: _settled(bar.bus.status()), timeout=10)
    assert len(bar.app.failures()) == len(failures)


def test_forgetting_crosses_the_bus(members: Service, nodes: Any) -> None:
    club, mail = nodes(members, "Club", "club1"), nodes(members, "Mail", "club1")
    member = importlib.import_module(f"{members.package}.club.member")
    ident = uuid.uuid4()
    club.app.handle(member.Join(member_id=ident, name="Grace"), actor="Person")
    row = wait_for(lambda: mail.app.view_row("Mail.Greetings", ident), timeout=20)
    assert row["name"] == "Grace"
    # sealed in Mail's own store with Mail's own key
    joined = next(e for e in mail.app.store.read_all(0) if e.type == "Club.Joined")
    assert "Grace" not in json.dumps(joined.data)
    club.app.forget("Club.Member", ident)
    wait_for(lambda: mail.app.view_row("Mail.Greetings", ident)["name"] == REDACTED, timeout=20)
    marker = [e for e in mail.app.events() if e.type == "$Forgotten"]
    assert len(marker) == 1 and marker[0].data == {"stream": joined.stream}
    assert mail.app.events(stream=joined.stream)[0].data["name"] == REDACTED


def test_a_wrong_bus_url_is_refused_with_the_reason() -> None:
    for url, words in [
        ("http://127.0.0.1:4222", "expected nats://"),
        ("nats://127.0.0.1", "is not HOST:PORT"),
        ("nats://127.0.0.1:99999", "is not HOST:PORT"),
    ]:
        with pytest.raises(BusConfigError, match=words):
            BusSettings.parse(url)
    with pytest.raises(BusConfigError, match="STORMGEN_BUS_RETENTION"):
        BusSettings.parse("nats://h:1", {"STORMGEN_BUS_RETENTION": "forever"})
    settings = BusSettings.parse("nats://a:1,b:2", {"STORMGEN_BUS_RETENTION": "12h"})
    assert settings.servers == ("nats://a:1", "nats://b:2") and settings.retention == 43200
    assert open_bus(None, None, "x") is None  # type: ignore[arg-type]


def test_without_a_bus_health_says_nothing_of_one(shop: Service, workdir: Path) -> None:
    from stormgen.runtime.http.health import HealthCheck

    with shop.open(f"sqlite:///{workdir / f'plain-{uuid.uuid4().hex[:6]}.db'}") as app:
        assert app.bus is None
        assert "bus" not in HealthCheck(app).look()


def test_contexts_on_postgresql_schemas_of_their_own(
    shop: Service, nats: NatsServer, workdir: Path
) -> None:
    """Each context on its own PostgreSQL schema (runs when STORMGEN_TEST_POSTGRES is set)."""
    import psycopg

    base = os.environ.get("STORMGEN_TEST_POSTGRES")
    if not base:
        pytest.skip("STORMGEN_TEST_POSTGRES is not set: no PostgreSQL server to test against")
    run = uuid.uuid4().hex[:8]
    schemas = {c: f"bus_{run}_{c.lower()}" for c in ("Ordering", "Bar", "Display")}
    sep = "&" if "?" in base else "?"
    started: list[Node] = []
    try:
        for context, schema in schemas.items():
            app = shop.open(f"{base}{sep}schema={schema}", [context])
            bus = Bus(app, BusSettings.parse(nats.url), f"pg{run}", [context], _quiet)
            app.start()
            bus.start()
            started.append(Node(app, bus))
        ordering, bar, display = started
        order_id = place_order(shop, ordering.app)
        assert wait_for(lambda: display.app.view_row("Display.Pickup", order_id), timeout=30)
        assert [t for t in types_in(bar.app) if t.startswith("Ordering.")] == ["Ordering.OrderPaid"]
    finally:
        for node in started:
            node.stop()
        with psycopg.connect(base, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_events_follows_the_bus(shop: Service, nodes: Any, nats: NatsServer) -> None:
    tail = subprocess.Popen(
        [sys.executable, "-m", "stormgen", "events", "--bus", nats.url, "--limit", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert tail.stderr is not None
        assert "tailing stormgen.>" in tail.stderr.readline()
        ordering = nodes(shop, "Ordering", "tail1")
        order_id = place_order(shop, ordering.app)
        out, _ = tail.communicate(timeout=30)
        lines = [json.loads(line) for line in out.splitlines()]
        assert [e["type"] for e in lines] == ["Ordering.OrderPlaced", "Ordering.OrderPaid"]
        assert {e["stream_id"] for e in lines} == {str(order_id)}
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()


def test_a_three_node_cluster_keeps_the_journey_going_while_a_node_is_down(
    shop: Service, nodes: Any
) -> None:
    cluster = NatsCluster().start()
    try:
        settings = BusSettings.parse(cluster.url, {"STORMGEN_BUS_REPLICAS": "3"})
        ordering, bar, display = (
            nodes(shop, c, "cluster1", settings) for c in ("Ordering", "Bar", "Display")
        )
        orders = [place_order(shop, ordering.app) for _ in range(3)]
        shown = lambda: {r["ticket_id"] for r in display.app.view_rows("Display.Pickup")}  # noqa: E731
        assert wait_for(lambda: shown() == {str(o) for o in orders}, timeout=60)
        cluster.nodes[0].kill()
        orders += [place_order(shop, ordering.app) for _ in range(3)]
        assert wait_for(lambda: shown() == {str(o) for o in orders}, timeout=60)
        cluster.nodes[0].start()
        orders += [place_order(shop, ordering.app) for _ in range(3)]
        assert wait_for(lambda: shown() == {str(o) for o in orders}, timeout=60)
        # nothing acknowledged lost, nothing doubled
        paid = [e.stream_id for e in bar.app.events() if e.type == "Ordering.OrderPaid"]
        assert sorted(paid) == sorted(str(o) for o in orders)
        assert types_in(display.app).count("Bar.TicketOpened") == len(orders)
        for node in (ordering, bar, display):
            node.stop()
    finally:
        cluster.remove()
