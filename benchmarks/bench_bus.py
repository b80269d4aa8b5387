"""The bus's speed (docs/autonomous.md), on a private NATS JetStream server.

- ``relay``: events/s the outbox relay publishes into JetStream with acks (the coffee
  shop's Ordering context, ``--events`` OrderPlaced events waiting in its SQLite log),
  beside a raw nats-py loop publishing the same messages with acks (``raw_publish``);
- ``inbox``: events/s an inbox receives, appends (pii sealed, idempotency key) and acks,
  beside a raw nats-py pull-fetch-and-ack loop inserting each message into SQLite
  (``raw_fetch_insert``; one commit per fetched batch, as the inbox does);
- ``journey``: the coffee shop as three services (``stormgen up``) and as one process on
  one store, ``--clients`` HTTP clients placing orders for ``--seconds``: orders/s, and
  the latency from an order's answer to its pickup row on the display (p50, p99, a
  sample of the orders).

    python benchmarks/bench_bus.py [--events 5000] [--clients 8] [--seconds 10]

Prints JSON (its last line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from e2e_support import MODEL, clean_env, free_port  # noqa: E402
from nats_support import NatsServer  # noqa: E402

from stormgen.cli.run import load_service  # noqa: E402
from stormgen.runtime.bus import (  # noqa: E402
    RELAY_CHECKPOINT,
    Bus,
    BusSettings,
    wire,
)
from stormgen.runtime.bus.inbox import Inbox  # noqa: E402

ORDER = {"customer": "Ada", "drinks": [{"name": "Latte", "price": "3.50"}], "total": "3.50"}


def _quiet(line: str) -> None:
    return None


def _wait(check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.005)


def relay_and_inbox(url: str, folder: Path, events: int) -> dict[str, Any]:
    os.chdir(folder)
    service = load_service(MODEL)
    order = __import__(f"{service.package}.ordering.order", fromlist=["PlaceOrder"])
    shared = __import__(f"{service.package}.shared", fromlist=["Drink"])
    settings = BusSettings.parse(url)
    drink = shared.Drink(name="Latte", price=Decimal("3.50"))
    app = service.open(f"sqlite:///{folder / 'ordering.db'}", ["Ordering"])
    for _ in range(events):
        app.handle(
            order.PlaceOrder(
                order_id=uuid.uuid4(), customer="Ada", drinks=(drink,), total=Decimal("3.50")
            )
        )
    records = app.store.read_all(0)
    messages = [wire.event_message(app.envelope(r)) for r in records]
    # the relay
    bus = Bus(app, settings, "bench", ["Ordering"], _quiet)
    started = time.perf_counter()
    bus.start()
    last = app.store.last_position()
    _wait(lambda: app.store.get_checkpoint(RELAY_CHECKPOINT) >= last)
    relay_s = time.perf_counter() - started
    bus.stop()

    async def raw_publish() -> float:
        import nats

        client = await nats.connect(url)
        js = client.jetstream()
        await js.add_stream(name="RAW", subjects=["raw.>"], duplicate_window=120)
        begin = time.perf_counter()
        for (payload, headers), record in zip(messages, records, strict=True):
            await js.publish(f"raw.{record.type}", payload, headers=headers)
        took = time.perf_counter() - begin
        await client.close()
        return took

    raw_publish_s = asyncio.run(raw_publish())

    # the inbox: the relayed OrderPlaced events into a store of their own
    target = service.open(f"sqlite:///{folder / 'inbox.db'}", ["Ordering"])
    names = wire.Names("bench")
    inbox = Inbox(settings, target.store, target.reader, names, "Ordering", "Bench",
                  {"Ordering.OrderPlaced"}, _quiet)  # fmt: skip
    started = time.perf_counter()
    inbox.start()
    _wait(lambda: inbox.received >= events)
    inbox_s = time.perf_counter() - started
    inbox.stop()
    assert len(target.store.read_all(0)) == events

    async def raw_fetch_insert() -> float:
        import nats
        from nats.js.api import ConsumerConfig

        db = sqlite3.connect(folder / "raw.db")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE events (id TEXT PRIMARY KEY, subject TEXT, data TEXT)")
        client = await nats.connect(url)
        js = client.jetstream()
        sub = await js.pull_subscribe(
            "stormgen.bench.Ordering.OrderPlaced",
            "raw",
            stream=names.stream("Ordering"),
            config=ConsumerConfig(ack_wait=30),
        )
        begin = time.perf_counter()
        got = 0
        while got < events:
            batch = await sub.fetch(256, timeout=5)
            for message in batch:
                db.execute(
                    "INSERT INTO events VALUES (?, ?, ?)",
                    (message.headers["Nats-Msg-Id"], message.subject, message.data.decode()),
                )
            db.commit()
            for message in batch:
                await message.ack()
            got += len(batch)
        took = time.perf_counter() - begin
        await client.close()
        db.close()
        return took

    raw_inbox_s = asyncio.run(raw_fetch_insert())
    app.close()
    target.close()
    relay_rate, raw_rate = events / relay_s, events / raw_publish_s
    inbox_rate, raw_in_rate = events / inbox_s, events / raw_inbox_s
    return {
        "relay": {
            "events_per_s": round(relay_rate),
            "raw_publish_per_s": round(raw_rate),
            "ratio": round(relay_rate / raw_rate, 2),
        },
        "inbox": {
            "events_per_s": round(inbox_rate),
            "raw_fetch_insert_per_s": round(raw_in_rate),
            "ratio": round(inbox_rate / raw_in_rate, 2),
        },
    }


def journey(ordering: str, display: str, clients: int, seconds: float) -> dict[str, Any]:
    """Orders placed by `clients` for `seconds`; a sample's order -> pickup latency."""
    placed: list[int] = [0] * clients
    errors: list[str] = []
    sample: queue.Queue[tuple[str, float]] = queue.Queue()
    latencies: list[float] = []
    stop = threading.Event()

    def client(index: int) -> None:
        with httpx.Client(base_url=ordering, timeout=30) as http:
            while not stop.is_set():
                answer = http.post("/ordering/order/place-order", json=ORDER)
                if answer.status_code != 201:
                    errors.append(answer.text)
                    continue
                placed[index] += 1
                if placed[index] % 5 == 0:
                    sample.put((answer.json()["id"], time.perf_counter()))

    def observer() -> None:
        with httpx.Client(base_url=display, timeout=30) as http:
            while not (stop.is_set() and sample.empty()):
                try:
                    order_id, at = sample.get(timeout=0.2)
                except queue.Empty:
                    continue
                while http.get(f"/display/views/pickup/{order_id}").status_code != 200:
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - at)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    watcher = threading.Thread(target=observer)
    for thread in [*threads, watcher]:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    watcher.join()
    latencies.sort()
    return {
        "orders_per_s": round(sum(placed) / seconds, 1),
        "pickup_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "pickup_latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "sampled": len(latencies),
        "errors": len(errors),
    }


def _ready(url: str) -> None:
    _wait(lambda: _answers(url), timeout=120)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def journeys(url: str, folder: Path, clients: int, seconds: float) -> dict[str, Any]:
    env = clean_env(PYTHONUNBUFFERED="1")
    base = free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "stormgen", "up", str(MODEL), "--bus", url, "--port", str(base)],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert up.stdout is not None
    urls = {}
    for line in up.stdout:
        found = re.match(r"^(\w+)\s+(http://\S+)", line)
        if found:
            urls[found.group(1)] = found.group(2)
        if line.startswith("bus "):
            break
    try:
        three = journey(urls["Ordering"], urls["Display"], clients, seconds)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
    port = free_port()
    one = subprocess.Popen(
        [sys.executable, "-m", "stormgen", "run", str(MODEL), "--port", str(port),
         "--store", f"sqlite:///{folder / 'one.db'}"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        local = f"http://127.0.0.1:{port}"
        _ready(local)
        single = journey(local, local, clients, seconds)
    finally:
        one.terminate()
        one.wait(60)
    return {"three_services": three, "one_process": single}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    server = NatsServer().start()
    folder = Path(tempfile.mkdtemp(prefix="stormgen-bench-bus-"))
    try:
        result: dict[str, Any] = {"events": args.events, "clients": args.clients}
        result.update(relay_and_inbox(server.url, folder, args.events))
        result["journey"] = journeys(server.url, folder, args.clients, args.seconds)
    finally:
        server.remove()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
