"""Benchmark the runtime's domain layer: the codec, commands, view replays, pii sealing.

Usage: ``python benchmarks/bench_domain.py [--quick]`` — prints one JSON object.

- codec: encode and decode a typical event (nested value objects, decimals, a datetime)
  with the runtime's codec (msgspec) and with a careful hand-written typed codec;
- handle: ``Application.handle`` commands per second on memory:// and a SQLite file
  (the state from the runtime's state cache, on by default; decide; append with its
  own durable transaction);
- replay: events per second through ``Application.replay`` of one view on SQLite;
- pii: events per second decoded with and without an encrypted (``pii``) field.
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from stormgen.runtime import (
    Aggregate,
    Application,
    Command,
    Delete,
    Envelope,
    Event,
    View,
    from_data,
    to_data,
)


class Size(enum.Enum):
    Small = "Small"
    Large = "Large"


@dataclass(frozen=True)
class Drink:
    name: str
    price: Decimal
    size: Size = Size.Small


@dataclass(frozen=True)
class Placed(Event, name="Bench.Placed", aggregate="Bench.Order"):
    order_id: uuid.UUID
    customer: str
    drinks: list[Drink]
    total: Decimal
    at: dt.datetime


@dataclass(frozen=True)
class SecretPlaced(Event, name="Bench.SecretPlaced", aggregate="Bench.Order", pii=("customer",)):
    order_id: uuid.UUID
    customer: str
    drinks: list[Drink]
    total: Decimal
    at: dt.datetime


@dataclass(frozen=True)
class Place(Command, name="Bench.Place", aggregate="Bench.Order", creates=True):
    customer: str
    total: Decimal
    secret: bool = False
    order_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class Add(Command, name="Bench.Add", aggregate="Bench.Order"):
    order_id: uuid.UUID
    price: Decimal


@dataclass(frozen=True)
class State:
    total: Decimal = Decimal(0)
    count: int = 0


DRINKS = [Drink("latte", Decimal("3.50"), Size.Large), Drink("tea", Decimal("2.10"))]
NOW = dt.datetime(2026, 11, 27, 13, 5, tzinfo=dt.UTC)


class BenchOrder(Aggregate[State]):
    name = "Bench.Order"
    id_field = "order_id"
    state_type = State
    snapshot_every = 50
    commands = (Place, Add)
    events = (Placed, SecretPlaced)

    def initial_state(self) -> State:
        return State()

    def decide(self, state: State, command: Command) -> list[Event]:
        if isinstance(command, Place):
            cls = SecretPlaced if command.secret else Placed
            return [cls(command.order_id, command.customer, DRINKS, command.total, NOW)]
        assert isinstance(command, Add)
        return [Placed(command.order_id, "x", [], command.price, NOW)]

    def apply(self, state: State, event: Event) -> State:
        assert isinstance(event, Placed | SecretPlaced)
        return State(state.total + event.total, state.count + 1)


@dataclass(frozen=True)
class Row:
    order_id: uuid.UUID
    total: Decimal = Decimal(0)
    count: int = 0


class Totals(View[Row]):
    name = "Bench.Totals"
    row_type = Row
    key = "order_id"
    events = (Placed,)

    def update(self, row: Row, event: Event, envelope: Envelope) -> Row | Delete:
        assert isinstance(event, Placed)
        return replace(row, total=row.total + event.total, count=row.count + 1)


# -- a hand-written typed codec for the same event, as a careful person would write it --
def hand_encode(e: Placed) -> dict[str, Any]:
    return {
        "order_id": str(e.order_id),
        "customer": e.customer,
        "drinks": [{"name": d.name, "price": str(d.price), "size": d.size.value} for d in e.drinks],
        "total": str(e.total),
        "at": e.at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }


def hand_decode(d: dict[str, Any]) -> Placed:
    return Placed(
        order_id=uuid.UUID(d["order_id"]),
        customer=str(d["customer"]),
        drinks=[
            Drink(x["name"], Decimal(x["price"]), Size(x.get("size", "Small"))) for x in d["drinks"]
        ],
        total=Decimal(d["total"]),
        at=dt.datetime.fromisoformat(d["at"].replace("Z", "+00:00")),
    )


def rate(n: int, fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def bench_codec(n: int) -> dict[str, float]:
    event = Placed(uuid.uuid4(), "Ada", DRINKS, Decimal("5.60"), NOW)
    data = to_data(event)
    assert hand_encode(event) == data and hand_decode(data) == event == from_data(Placed, data)
    return {
        "encode_msgspec_per_s": round(rate(n, lambda: to_data(event))),
        "encode_hand_per_s": round(rate(n, lambda: hand_encode(event))),
        "decode_msgspec_per_s": round(rate(n, lambda: from_data(Placed, data))),
        "decode_hand_per_s": round(rate(n, lambda: hand_decode(data))),
    }


def bench_handle(url: str, n: int) -> dict[str, float]:
    with Application.open(url, aggregates=[BenchOrder()]) as app:
        ids = [app.handle(Place("Ada", Decimal(1))).id for _ in range(10)]
        start = time.perf_counter()
        for i in range(n):
            app.handle(Add(ids[i % len(ids)], Decimal(1)))
        elapsed = time.perf_counter() - start
        return {"commands_per_s": round(n / elapsed)}


def bench_replay(url: str, n: int) -> dict[str, float]:
    with Application.open(url, aggregates=[BenchOrder()], views=[Totals()]) as app:
        ids = [app.handle(Place("Ada", Decimal(1))).id for _ in range(20)]
        for start in range(0, n, 500):
            from stormgen.runtime import NewEvent

            for oid in ids[:1]:
                batch = [
                    NewEvent(
                        type="Bench.Placed",
                        data=hand_encode(Placed(oid, "x", DRINKS, Decimal(1), NOW)),
                        stream_id=str(oid),
                    )
                    for _ in range(min(500, n - start))
                ]
                app.store.append(f"Bench.Order/{oid}", batch, None)
        started = time.perf_counter()
        done = app.replay(Totals)
        elapsed = time.perf_counter() - started
        return {"events": done, "events_per_s": round(done / elapsed)}


def bench_pii(n: int) -> dict[str, float]:
    with Application.open("memory://", aggregates=[BenchOrder()]) as app:
        plain = app.handle(Place("Ada", Decimal(1)))
        sealed = app.handle(Place("Ada", Decimal(1), secret=True))
        plain_rec = plain.events[0].recorded
        sealed_rec = sealed.events[0].recorded
        return {
            "decode_plain_per_s": round(rate(n, lambda: app.envelope(plain_rec))),
            "decode_pii_per_s": round(rate(n, lambda: app.envelope(sealed_rec))),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    scale = 1 if args.quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp)
        results = {
            "codec": bench_codec(2_000 * scale),
            "handle_memory": bench_handle("memory://", 200 * scale),
            "handle_sqlite": bench_handle(f"sqlite:///{db}/handle.db", 100 * scale),
            "replay_sqlite": bench_replay(f"sqlite:///{db}/replay.db", 1_000 * scale),
            "pii": bench_pii(1_000 * scale),
        }
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
