"""Benchmark the runtime's storage against the eventsourcing library and raw SQL.

Usage: ``python benchmarks/bench_runtime.py [--quick] [--postgres URL] [--json]``

Workloads (each on a fresh database per contender):

- command: N aggregates x M commands, one transaction per command: load the
  instance, decide, append one event (stormgen: ``Application.handle``);
- append: one stream, 10,000 events appended in batches of 100;
- load: read a 10,000-event stream back, decoded into events;
- catchup: a subscription reading the whole log from position 0, decoded into events.

Durability settings are the same for all three contenders. By default the figures
measure software cost: SQLite in WAL mode with ``synchronous=FULL`` (the stormgen
default, and the sqlite3 default eventsourcing keeps) on files in /dev/shm, where fsync
is free, and PostgreSQL with ``synchronous_commit=off`` (set through ``PGOPTIONS`` for
every connection); this VM's fsync takes 0.2-5 ms and varies from run to run, which
would drown the comparison. ``--durable`` puts the SQLite files on disk and keeps
``synchronous_commit=on``. Every workload runs on fresh databases; rates are the best
of three runs. Prints a table of events/s and ratios, then LAST one JSON line
``{"sqlite": {...}, "postgres": {...}}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store import EventStore, open_store
from stormgen.runtime.subscription import Subscription

WORKLOADS = ("command", "append", "load", "catchup")


@dataclass
class Sizes:
    aggregates: int
    commands: int
    stream_events: int
    batch: int


FULL = Sizes(aggregates=1000, commands=20, stream_events=10_000, batch=100)
QUICK = Sizes(aggregates=100, commands=10, stream_events=2_000, batch=100)


def payload(i: int) -> dict[str, Any]:
    """A small, typical event body."""
    return {"by": 1, "note": f"step {i}", "total": "7.50"}


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


REPEATS = 3


def best_of(fn: Callable[[int], int], repeats: int = REPEATS) -> float:
    """Run ``fn(rep)`` several times; return the best rate (the least disturbed run)."""
    rates = []
    for r in range(repeats):
        started = time.perf_counter()
        count = fn(r)
        rates.append(rate(count, time.perf_counter() - started))
    return max(rates)


def timed(fn: Callable[[], int]) -> float:
    """Run ``fn`` (returning how many events it handled); return events per second."""
    started = time.perf_counter()
    count = fn()
    return rate(count, time.perf_counter() - started)


# -- stormgen ----------------------------------------------------------------------------
def stormgen_command_app(store: EventStore) -> tuple[Callable[[str, int], None], str]:
    """Return a command runner on the runtime's domain layer, else a hand-written loop."""
    try:
        return _application_runner(store), "Application.handle"
    except ImportError:
        pass

    def run(ident: str, n: int) -> None:
        stream = f"Bench.Counter/{ident}"
        with store.transaction() as uow:
            count = version = 0
            for e in uow.read_stream(stream):
                count += e.data["by"]
                version = e.stream_version
            uow.append(stream, [NewEvent(type="Bench.Incremented", data=payload(n))], version)

    return run, "hand-written load/decide/append"


def _application_runner(store: EventStore) -> Callable[[str, int], None]:
    """Build a one-aggregate service with the runtime's domain layer (Application)."""
    from dataclasses import dataclass as frozen_dc

    from stormgen.runtime import Aggregate, Application, Command, Event

    @frozen_dc(frozen=True)
    class Increment(Command, name="Bench.Increment", aggregate="Bench.Counter"):  # type: ignore[call-arg]
        counter_id: str
        by: int
        note: str
        total: str

    @frozen_dc(frozen=True)
    class Start(Command, name="Bench.Start", aggregate="Bench.Counter", creates=True):  # type: ignore[call-arg]
        counter_id: str
        by: int
        note: str
        total: str

    @frozen_dc(frozen=True)
    class Incremented(Event, name="Bench.Incremented", aggregate="Bench.Counter"):  # type: ignore[call-arg]
        counter_id: str
        by: int
        note: str
        total: str

    @frozen_dc(frozen=True)
    class CounterState:
        count: int = 0

    class Counter(Aggregate[CounterState]):
        name = "Bench.Counter"
        id_field = "counter_id"
        id_type = str
        state_type = CounterState
        commands = (Start, Increment)
        events = (Incremented,)

        def initial_state(self) -> CounterState:
            return CounterState()

        def decide(self, state: CounterState, command: Command) -> list[Event]:
            assert isinstance(command, Start | Increment)
            return [
                Incremented(
                    counter_id=command.counter_id,
                    by=command.by,
                    note=command.note,
                    total=command.total,
                )
            ]

        def apply(self, state: CounterState, event: Event) -> CounterState:
            assert isinstance(event, Incremented)
            return CounterState(state.count + event.by)

    app = Application(store, aggregates=[Counter()])

    def run(ident: str, n: int) -> None:
        kind = Start if n == 0 else Increment
        app.handle(kind(counter_id=ident, **payload(n)))

    return run


def stormgen_workloads(url: str, sizes: Sizes) -> tuple[dict[str, float], str]:
    out: dict[str, float] = {}
    store = open_store(url)
    try:
        run, how = stormgen_command_app(store)
        idents = [str(uuid.uuid4()) for _ in range(sizes.aggregates)]

        def commands() -> int:
            for n in range(sizes.commands):
                for ident in idents:
                    run(ident, n)
            return sizes.aggregates * sizes.commands

        out["command"] = timed(commands)

        def append(r: int) -> int:
            version = 0
            for start in range(0, sizes.stream_events, sizes.batch):
                batch = [
                    NewEvent(type="Bench.Step", data=payload(i))
                    for i in range(start, start + sizes.batch)
                ]
                version = store.append(f"Bench.Big/{r}", batch, version).stream_version
            return sizes.stream_events

        out["append"] = best_of(append)
        out["load"] = best_of(lambda r: len(store.read_stream("Bench.Big/0")))
        last = store.last_position()

        def catchup() -> int:
            sub = Subscription(store, after_position=0, batch_size=1000)
            count = 0
            for batch in sub.batches():
                count += len(batch)
                if batch[-1].position >= last:
                    break
            return count

        out["catchup"] = best_of(lambda r: catchup())
    finally:
        store.close()
    return out, how


# -- eventsourcing -----------------------------------------------------------------------
_ES_CLASSES: tuple[Any, Any] | None = None


def eventsourcing_classes() -> tuple[Any, Any]:
    """Define the eventsourcing aggregate and application once (topics are global)."""
    global _ES_CLASSES
    if _ES_CLASSES is None:
        from eventsourcing.application import Application
        from eventsourcing.domain import Aggregate, event

        class Counter(Aggregate):  # type: ignore[misc]
            @event("Created")
            def __init__(self) -> None:
                self.count = 0

            @event("Incremented")
            def increment(self, by: int, note: str, total: str) -> None:
                self.count += by

        class Counters(Application):  # type: ignore[misc]
            pass

        _ES_CLASSES = (Counter, Counters)
    return _ES_CLASSES


def eventsourcing_workloads(env: dict[str, str], sizes: Sizes) -> dict[str, float]:
    Counter, Counters = eventsourcing_classes()
    out: dict[str, float] = {}
    app = Counters(env=env)
    try:
        ids: list[Any] = []

        def commands() -> int:
            for n in range(sizes.commands):
                if n == 0:
                    for _ in range(sizes.aggregates):
                        counter = Counter()
                        app.save(counter)
                        ids.append(counter.id)
                    continue
                for ident in ids:
                    counter = app.repository.get(ident)
                    counter.increment(**payload(n))
                    app.save(counter)
            return sizes.aggregates * sizes.commands

        out["command"] = timed(commands)

        bigs: list[Any] = []

        def append(r: int) -> int:
            big = Counter()
            app.save(big)
            bigs.append(big.id)
            for start in range(0, sizes.stream_events, sizes.batch):
                for i in range(start, start + sizes.batch):
                    big.increment(**payload(i))
                app.save(big)
            return sizes.stream_events

        out["append"] = best_of(append)

        def load() -> int:
            mapper = app.mapper
            events = [mapper.to_domain_event(s) for s in app.recorder.select_events(bigs[0])]
            return len(events)

        out["load"] = best_of(lambda r: load())

        def catchup() -> int:
            mapper = app.mapper
            count = 0
            start = 1
            while True:
                batch = app.recorder.select_notifications(start, 1000)
                if not batch:
                    return count
                for notification in batch:
                    mapper.to_domain_event(notification)
                count += len(batch)
                start = batch[-1].id + 1

        out["catchup"] = best_of(lambda r: catchup())
    finally:
        app.close()
    return out


# -- raw SQL (no framework) ----------------------------------------------------------------
SQLITE_RAW_SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    version INTEGER NOT NULL, stream TEXT NOT NULL, stream_id TEXT,
    stream_version INTEGER NOT NULL, recorded_at TEXT NOT NULL, data TEXT NOT NULL,
    metadata TEXT NOT NULL, UNIQUE (stream, stream_version))
"""
RAW_COLUMNS = "id, type, version, stream, stream_id, stream_version, recorded_at, data, metadata"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def raw_sqlite_workloads(path: Path, sizes: Sizes) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(SQLITE_RAW_SCHEMA)
    insert = f"INSERT INTO events ({RAW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    out: dict[str, float] = {}
    idents = [str(uuid.uuid4()) for _ in range(sizes.aggregates)]

    def commands() -> int:
        for n in range(sizes.commands):
            for ident in idents:
                stream = f"Bench.Counter/{ident}"
                conn.execute("BEGIN IMMEDIATE")
                count = version = 0
                for sv, data in conn.execute(
                    "SELECT stream_version, data FROM events WHERE stream = ? "
                    "ORDER BY stream_version",
                    (stream,),
                ):
                    count += json.loads(data)["by"]
                    version = sv
                conn.execute(
                    insert,
                    (
                        str(uuid.uuid4()),
                        "Bench.Incremented",
                        1,
                        stream,
                        ident,
                        version + 1,
                        now_text(),
                        json.dumps(payload(n)),
                        "{}",
                    ),
                )
                conn.execute("COMMIT")
        return sizes.aggregates * sizes.commands

    out["command"] = timed(commands)

    def append(r: int) -> int:
        version = 0
        for start in range(0, sizes.stream_events, sizes.batch):
            conn.execute("BEGIN IMMEDIATE")
            at = now_text()
            conn.executemany(
                insert,
                [
                    (
                        str(uuid.uuid4()),
                        "Bench.Step",
                        1,
                        f"Bench.Big/{r}",
                        None,
                        version + k + 1,
                        at,
                        json.dumps(payload(i)),
                        "{}",
                    )
                    for k, i in enumerate(range(start, start + sizes.batch))
                ],
            )
            conn.execute("COMMIT")
            version += sizes.batch
        return sizes.stream_events

    out["append"] = best_of(append)

    def load() -> int:
        rows = conn.execute(
            "SELECT position, id, type, version, stream_version, recorded_at, data, metadata "
            "FROM events WHERE stream = ? ORDER BY stream_version",
            ("Bench.Big/0",),
        ).fetchall()
        events = [
            (p, i, t, v, sv, datetime.fromisoformat(at), json.loads(d), json.loads(m))
            for p, i, t, v, sv, at, d, m in rows
        ]
        return len(events)

    out["load"] = best_of(lambda r: load())

    def catchup() -> int:
        position = count = 0
        while True:
            rows = conn.execute(
                "SELECT position, id, type, version, stream, stream_version, recorded_at, "
                "data, metadata FROM events WHERE position > ? ORDER BY position LIMIT 1000",
                (position,),
            ).fetchall()
            if not rows:
                return count
            for row in rows:
                (datetime.fromisoformat(row[6]), json.loads(row[7]), json.loads(row[8]))
            count += len(rows)
            position = rows[-1][0]

    out["catchup"] = best_of(lambda r: catchup())
    conn.close()
    return out


PG_RAW_SCHEMA = """
CREATE TABLE events (
    position bigint PRIMARY KEY, id text NOT NULL UNIQUE, type text NOT NULL,
    version integer NOT NULL, stream text NOT NULL, stream_id text,
    stream_version integer NOT NULL, recorded_at timestamptz NOT NULL, data jsonb NOT NULL,
    metadata jsonb NOT NULL, UNIQUE (stream, stream_version))
"""


def raw_postgres_workloads(url: str, schema: str, sizes: Sizes) -> dict[str, float]:
    options = f"{os.environ.get('PGOPTIONS', '')} -c search_path={schema}".strip()
    conn = psycopg.connect(url, autocommit=True, options=options)
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(PG_RAW_SCHEMA)
    insert = (
        f"INSERT INTO events (position, {RAW_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    out: dict[str, float] = {}
    idents = [str(uuid.uuid4()) for _ in range(sizes.aggregates)]

    def next_position() -> int:
        # The same guarantee as the store: appends serialized, positions in commit order.
        conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        row = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        assert row is not None
        return int(row[0])

    def commands() -> int:
        for n in range(sizes.commands):
            for ident in idents:
                stream = f"Bench.Counter/{ident}"
                with conn.transaction():
                    count = version = 0
                    for sv, data in conn.execute(
                        "SELECT stream_version, data FROM events WHERE stream = %s "
                        "ORDER BY stream_version",
                        (stream,),
                    ):
                        count += data["by"]
                        version = sv
                    position = next_position()
                    conn.execute(
                        insert,
                        (
                            position + 1,
                            str(uuid.uuid4()),
                            "Bench.Incremented",
                            1,
                            stream,
                            ident,
                            version + 1,
                            datetime.now(UTC),
                            json.dumps(payload(n)),
                            "{}",
                        ),
                    )
        return sizes.aggregates * sizes.commands

    out["command"] = timed(commands)

    def append(r: int) -> int:
        version = 0
        for start in range(0, sizes.stream_events, sizes.batch):
            with conn.transaction():
                position = next_position()
                at = datetime.now(UTC)
                with conn.cursor() as cur:
                    cur.executemany(
                        insert,
                        [
                            (
                                position + k + 1,
                                str(uuid.uuid4()),
                                "Bench.Step",
                                1,
                                f"Bench.Big/{r}",
                                None,
                                version + k + 1,
                                at,
                                json.dumps(payload(i)),
                                "{}",
                            )
                            for k, i in enumerate(range(start, start + sizes.batch))
                        ],
                    )
            version += sizes.batch
        return sizes.stream_events

    out["append"] = best_of(append)

    def load() -> int:
        rows = conn.execute(
            "SELECT position, id, type, version, stream_version, recorded_at, data, metadata "
            "FROM events WHERE stream = %s ORDER BY stream_version",
            ("Bench.Big/0",),
        ).fetchall()
        return len(rows)

    out["load"] = best_of(lambda r: load())

    def catchup() -> int:
        position = count = 0
        while True:
            rows = conn.execute(
                f"SELECT position, {RAW_COLUMNS} FROM events WHERE position > %s "
                "ORDER BY position LIMIT 1000",
                (position,),
            ).fetchall()
            if not rows:
                return count
            count += len(rows)
            position = rows[-1][0]

    out["catchup"] = best_of(lambda r: catchup())
    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()
    return out


# -- running --------------------------------------------------------------------------------
@contextlib.contextmanager
def temporary_schemas(url: str) -> Iterator[list[str]]:
    schemas: list[str] = []
    try:
        yield schemas
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def run_sqlite(sizes: Sizes, folder: Path, durability: str) -> dict[str, Any]:
    stormgen, how = stormgen_workloads(f"sqlite:///{folder / 'stormgen.db'}", sizes)
    es = eventsourcing_workloads(
        {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(folder / "eventsourcing.db"),
        },
        sizes,
    )
    raw = raw_sqlite_workloads(folder / "raw.db", sizes)
    return {
        "stormgen": stormgen,
        "eventsourcing": es,
        "raw": raw,
        "durability": durability,
        "command_via": how,
    }


def run_postgres(sizes: Sizes, url: str, durability: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    with temporary_schemas(url) as schemas:
        schemas += [f"bench_sg_{tag}", f"bench_es_{tag}", f"bench_raw_{tag}"]
        sep = "&" if "?" in url else "?"
        stormgen, how = stormgen_workloads(f"{url}{sep}schema={schemas[0]}", sizes)
        parts = psycopg.conninfo.conninfo_to_dict(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schemas[1]}")
        es = eventsourcing_workloads(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": str(parts.get("dbname", "postgres")),
                "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
                "POSTGRES_PORT": str(parts.get("port", "5432")),
                "POSTGRES_USER": str(parts.get("user", "postgres")),
                "POSTGRES_PASSWORD": str(parts.get("password", "")),
                "POSTGRES_SCHEMA": schemas[1],
            },
            sizes,
        )
        raw = raw_postgres_workloads(url, schemas[2], sizes)
    return {
        "stormgen": stormgen,
        "eventsourcing": es,
        "raw": raw,
        "durability": durability,
        "command_via": how,
    }


def print_table(name: str, result: dict[str, Any]) -> None:
    print(f"\n{name}: events/s ({result['durability']}; command via {result['command_via']})")
    print(
        f"{'workload':<10}{'stormgen':>12}{'eventsourcing':>15}{'raw':>12}{'x es':>8}{'% raw':>8}"
    )
    for w in WORKLOADS:
        sg, es, raw = result["stormgen"][w], result["eventsourcing"][w], result["raw"][w]
        print(f"{w:<10}{sg:>12,.0f}{es:>15,.0f}{raw:>12,.0f}{sg / es:>8.2f}{100 * sg / raw:>7.0f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--postgres", metavar="URL", help="also run against PostgreSQL")
    parser.add_argument("--json", action="store_true", help="print the JSON line last")
    parser.add_argument(
        "--durable",
        action="store_true",
        help="measure with the disk's fsync: SQLite files in a temporary folder on disk, "
        "PostgreSQL with synchronous_commit=on (default: software cost, see below)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.durable:
        folder_root = None
        sqlite_durability = "on disk: WAL + synchronous=FULL (fsync per commit) for all three"
        pg_durability = "synchronous_commit=on (fsync per commit) for all three"
    else:
        # This VM's fsync takes 0.2-5 ms and varies run to run: it would hide the
        # software cost we want to compare. tmpfs makes fsync free for all three alike.
        shm = Path("/dev/shm")
        folder_root = str(shm) if shm.is_dir() else None
        sqlite_durability = (
            "WAL + synchronous=FULL for all three, files on tmpfs (fsync is free: "
            "software cost only)"
            if folder_root
            else "on disk: WAL + synchronous=FULL (fsync per commit) for all three"
        )
        os.environ["PGOPTIONS"] = (
            os.environ.get("PGOPTIONS", "") + " -c synchronous_commit=off"
        ).strip()
        pg_durability = "synchronous_commit=off for all three (software cost only)"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stormgen-bench-", dir=folder_root) as folder:
        results["sqlite"] = run_sqlite(sizes, Path(folder), sqlite_durability)
    print_table("SQLite", results["sqlite"])
    if args.postgres:
        results["postgres"] = run_postgres(sizes, args.postgres, pg_durability)
        print_table("PostgreSQL", results["postgres"])
    rounded = {
        backend: {
            k: ({w: round(v) for w, v in r.items()} if isinstance(r, dict) else r)
            for k, r in res.items()
            if k != "command_via"
        }
        for backend, res in results.items()
    }
    print(json.dumps(rounded))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
