"""Benchmark the runtime's storage against the eventsourcing library and raw SQL.

Usage: ``python benchmarks/bench_runtime.py [--quick] [--durable] [--postgres URL] [--json]``
(``--no-sqlite`` with ``--postgres``: PostgreSQL only)

Workloads (each contender on its own fresh database):

- command: N aggregates x M commands, one transaction per command: load the
  instance, decide, append one event (stormgen: ``Application.handle``; eventsourcing:
  ``repository.get`` + method + ``save``; raw: one transaction doing SELECT + INSERT).
  The ``stormgen`` column runs with the runtime's default state cache (10,000 states;
  a command decides on the cached state and the append's version check catches a
  stale one); the ``eventsourcing`` column without its cache (its default). Two
  command-only runs complete the picture: stormgen with ``state_cache=0`` and
  eventsourcing with ``AGGREGATE_CACHE_MAXSIZE`` and ``AGGREGATE_CACHE_FASTFORWARD=n``
  (the same I/O: no read before deciding), reported as ``command_with_caches`` and
  ``command_without_caches``;
- append: one stream, 10,000 events appended in batches of 100;
- load: read a 10,000-event stream back, decoded into events;
- catchup: read the whole log from position 0 in pages of 1,000, decoded into events
  (stormgen: a ``Subscription``; eventsourcing: ``select_notifications`` + mapper).

The raw contender keeps one column per envelope field (data and metadata as JSON text)
and decodes rows with the stdlib; stormgen's SQLite store keeps each event's envelope
as one JSON text beside the columns it filters on (docs/runtime.md, "Store decisions").
Every contender decodes every event fully: stormgen's reads build each envelope with
its data and metadata as dicts (nothing is decoded lazily).

stormgen's load and catchup stop at recorded events (envelopes with JSON data), while
eventsourcing's mapper builds domain event objects; ``load_typed`` and
``catchup_typed`` (stormgen only) also decode each event into its typed class with
``Application.decode_all``, the like-for-like figure.

Durability settings are the same for all three contenders. By default the figures
measure software cost: SQLite in WAL mode with ``synchronous=FULL`` (the stormgen
default, and the sqlite3 default eventsourcing keeps) on files in /dev/shm, where fsync
is free, and PostgreSQL with ``synchronous_commit=off`` (set through ``PGOPTIONS`` for
every connection); this VM's fsync takes 0.2-5 ms and varies from run to run, which
would drown the comparison. ``--durable`` puts the SQLite files on disk and keeps
``synchronous_commit=on``.

The machine is shared, so the contenders take turns: each command round (one command
per aggregate) and each repetition of the other workloads runs for all three in a
rotating order (stormgen's typed read right after its plain one, in the same round).
``command`` is total commands / total time; ``append`` is the best of
three repetitions, the reads (a few ms each) the best of ten: on a shared machine three
were too few for steady ratios. Prints a table of events/s and ratios, then LAST one
JSON line ``{"sqlite": {...}, "postgres": {...}}``.
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
from typing import Any, Protocol

import psycopg

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store import EventStore, open_store
from stormgen.runtime.subscription import Subscription

WORKLOADS = ("command", "append", "load", "catchup")
REPEATS = 3
#: repetitions of the read workloads (cheap, and noisier than the writes)
READ_REPEATS = 10
PAGE = 1000
#: the state cache size of both frameworks where it is on (stormgen's default)
CACHE_SIZE = 10_000


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


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Contender(Protocol):
    """One way of doing the four workloads."""

    name: str

    def command_round(self, n: int) -> int:
        """Send command number ``n`` to every aggregate; return how many were handled."""

    def append(self, r: int) -> int:
        """Append the big stream number ``r``; return how many events."""

    def load(self) -> int:
        """Load big stream 0, decoded; return how many events."""

    def catchup(self) -> int:
        """Read the whole log, decoded; return how many events."""

    def close(self) -> None: ...


# -- stormgen ----------------------------------------------------------------------------
def stormgen_command_app(
    store: EventStore, *, store_only: bool = False, state_cache: int = 10_000
) -> tuple[Callable[[str, int], None], str]:
    """Return a command runner on the runtime's domain layer, else a hand-written loop."""
    if not store_only:
        try:
            return _application_runner(store, state_cache), "Application.handle"
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


def _application_runner(store: EventStore, state_cache: int) -> Callable[[str, int], None]:
    """Build a one-aggregate service with the runtime's domain layer (Application)."""
    from stormgen.runtime import Aggregate, Application, Command, Event

    # declared as the generator declares messages and state (frozen, slotted, kw_only)

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Increment(Command, name="Bench.Increment", aggregate="Bench.Counter"):
        counter_id: str
        by: int
        note: str
        total: str

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Start(Command, name="Bench.Start", aggregate="Bench.Counter", creates=True):
        counter_id: str
        by: int
        note: str
        total: str

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Incremented(Event, name="Bench.Incremented", aggregate="Bench.Counter"):
        counter_id: str
        by: int
        note: str
        total: str

    @dataclass(frozen=True, slots=True, kw_only=True)
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
            return CounterState(count=state.count + event.by)

    # Bench.Step too: the typed load and catchup decode the big streams with this app
    app = Application(
        store, aggregates=[Counter()], messages=[step_class()], state_cache=state_cache
    )

    def run(ident: str, n: int) -> None:
        kind = Start if n == 0 else Increment
        app.handle(kind(counter_id=ident, **payload(n)))

    run.app = app  # type: ignore[attr-defined]
    return run


class Stormgen:
    name = "stormgen"

    def __init__(
        self, url: str, sizes: Sizes, *, store_only: bool = False, state_cache: int = 10_000
    ) -> None:
        self.store = open_store(url)
        self.sizes = sizes
        self.run, self.how = stormgen_command_app(
            self.store, store_only=store_only, state_cache=state_cache
        )
        if store_only:
            self.name = "store-only"
        elif not state_cache:
            self.name = "stormgen-nocache"
        self.idents = [str(uuid.uuid4()) for _ in range(sizes.aggregates)]

    def command_round(self, n: int) -> int:
        for ident in self.idents:
            self.run(ident, n)
        return len(self.idents)

    def append(self, r: int) -> int:
        version = 0
        for start in range(0, self.sizes.stream_events, self.sizes.batch):
            batch = [
                NewEvent(type="Bench.Step", data=payload(i))
                for i in range(start, start + self.sizes.batch)
            ]
            version = self.store.append(f"Bench.Big/{r}", batch, version).stream_version
        return self.sizes.stream_events

    def load(self) -> int:
        return len(self.store.read_stream("Bench.Big/0"))

    def catchup(self) -> int:
        last = self.store.last_position()
        count = 0
        for batch in Subscription(self.store, after_position=0, batch_size=PAGE).batches():
            count += len(batch)
            if batch[-1].position >= last:
                break
        return count

    def _typed(self) -> Callable[[Any], list[Any]]:
        return self.run.app.decode_all  # type: ignore[attr-defined,no-any-return]

    def load_typed(self) -> int:
        """Load big stream 0 decoded into typed events (`Application.decode_all`)."""
        decode = self._typed()
        return len(decode(self.store.read_stream("Bench.Big/0")))

    def catchup_typed(self) -> int:
        """Read the whole log decoded into typed events (as views and policies get them)."""
        decode = self._typed()
        last = self.store.last_position()
        count = 0
        for batch in Subscription(self.store, after_position=0, batch_size=PAGE).batches():
            count += len(decode(batch))
            if batch[-1].position >= last:
                break
        return count

    def close(self) -> None:
        self.store.close()


_STEP: Any = None


def step_class() -> Any:
    """The typed event of the big stream (``Bench.Step``), defined once."""
    global _STEP
    if _STEP is None:
        from stormgen.runtime import Event

        # declared as the generator declares events (frozen, slotted, kw_only)
        @dataclass(frozen=True, slots=True, kw_only=True)
        class Step(Event, name="Bench.Step"):
            by: int
            note: str
            total: str

        _STEP = Step
    return _STEP


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


class Eventsourcing:
    name = "eventsourcing"

    def __init__(self, env: dict[str, str], sizes: Sizes, *, cache: bool = False) -> None:
        self.counter_class, app_class = eventsourcing_classes()
        if cache:
            # its aggregate cache, updated on save and not read before deciding, as
            # stormgen's state cache does (eventsourcing then assumes a single writer;
            # stormgen confirms on the log)
            env = {
                **env,
                "AGGREGATE_CACHE_MAXSIZE": str(CACHE_SIZE),
                "AGGREGATE_CACHE_FASTFORWARD": "n",
            }
            self.name = "eventsourcing-cache"
        self.app = app_class(env=env)
        self.sizes = sizes
        self.ids: list[Any] = []
        self.bigs: list[Any] = []

    def command_round(self, n: int) -> int:
        if n == 0:
            for _ in range(self.sizes.aggregates):
                counter = self.counter_class()
                self.app.save(counter)
                self.ids.append(counter.id)
        else:
            for ident in self.ids:
                counter = self.app.repository.get(ident)
                counter.increment(**payload(n))
                self.app.save(counter)
        return self.sizes.aggregates

    def append(self, r: int) -> int:
        big = self.counter_class()
        self.app.save(big)
        self.bigs.append(big.id)
        for start in range(0, self.sizes.stream_events, self.sizes.batch):
            for i in range(start, start + self.sizes.batch):
                big.increment(**payload(i))
            self.app.save(big)
        return self.sizes.stream_events

    def load(self) -> int:
        mapper = self.app.mapper
        stored = self.app.recorder.select_events(self.bigs[0])
        return len([mapper.to_domain_event(s) for s in stored])

    def catchup(self) -> int:
        mapper = self.app.mapper
        count = 0
        start = 1
        while True:
            batch = self.app.recorder.select_notifications(start, PAGE)
            if not batch:
                return count
            for notification in batch:
                mapper.to_domain_event(notification)
            count += len(batch)
            start = batch[-1].id + 1

    def close(self) -> None:
        self.app.close()


# -- raw SQL (no framework: the same rows and guarantees, stdlib json) ----------------------
RAW_COLUMNS = "id, type, version, stream, stream_id, stream_version, recorded_at, data, metadata"
SQLITE_RAW_SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,
    version INTEGER NOT NULL, stream TEXT NOT NULL, stream_id TEXT,
    stream_version INTEGER NOT NULL, recorded_at TEXT NOT NULL, data TEXT NOT NULL,
    metadata TEXT NOT NULL, UNIQUE (stream, stream_version))
"""
PG_RAW_SCHEMA = """
CREATE TABLE events (
    position bigint PRIMARY KEY, id text NOT NULL, type text NOT NULL,
    version integer NOT NULL, stream text NOT NULL, stream_id text,
    stream_version integer NOT NULL, recorded_at timestamptz NOT NULL, data jsonb NOT NULL,
    metadata jsonb NOT NULL, UNIQUE (stream, stream_version))
"""


class RawSQLite:
    name = "raw"

    def __init__(self, path: Path, sizes: Sizes) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.executescript(SQLITE_RAW_SCHEMA)
        self.insert = f"INSERT INTO events ({RAW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        self.sizes = sizes
        self.idents = [str(uuid.uuid4()) for _ in range(sizes.aggregates)]

    def command_round(self, n: int) -> int:
        conn = self.conn
        for ident in self.idents:
            stream = f"Bench.Counter/{ident}"
            conn.execute("BEGIN IMMEDIATE")
            count = version = 0
            for sv, data in conn.execute(
                "SELECT stream_version, data FROM events WHERE stream = ? ORDER BY stream_version",
                (stream,),
            ):
                count += json.loads(data)["by"]
                version = sv
            row = (
                str(uuid.uuid4()),
                "Bench.Incremented",
                1,
                stream,
                ident,
                version + 1,
                now_text(),
                json.dumps(payload(n)),
                "{}",
            )
            conn.execute(self.insert, row)
            conn.execute("COMMIT")
        return len(self.idents)

    def append(self, r: int) -> int:
        version = 0
        for start in range(0, self.sizes.stream_events, self.sizes.batch):
            self.conn.execute("BEGIN IMMEDIATE")
            at = now_text()
            rows = [
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
                for k, i in enumerate(range(start, start + self.sizes.batch))
            ]
            self.conn.executemany(self.insert, rows)
            self.conn.execute("COMMIT")
            version += self.sizes.batch
        return self.sizes.stream_events

    def load(self) -> int:
        rows = self.conn.execute(
            f"SELECT position, {RAW_COLUMNS} FROM events WHERE stream = ? ORDER BY stream_version",
            ("Bench.Big/0",),
        ).fetchall()
        return len([decode_raw_row(row) for row in rows])

    def catchup(self) -> int:
        position = count = 0
        while True:
            rows = self.conn.execute(
                f"SELECT position, {RAW_COLUMNS} FROM events WHERE position > ? "
                "ORDER BY position LIMIT ?",
                (position, PAGE),
            ).fetchall()
            if not rows:
                return count
            for row in rows:
                decode_raw_row(row)
            count += len(rows)
            position = rows[-1][0]

    def close(self) -> None:
        self.conn.close()


def decode_raw_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a hand-written reader does with a SQLite row: parse time and JSON."""
    p, i, t, v, s, sid, sv, at, d, m = row
    return (p, i, t, v, s, sid, sv, datetime.fromisoformat(at), json.loads(d), json.loads(m))


class RawPostgres:
    name = "raw"

    def __init__(self, url: str, schema: str, sizes: Sizes) -> None:
        options = f"{os.environ.get('PGOPTIONS', '')} -c search_path={schema}".strip()
        self.conn = psycopg.connect(url, autocommit=True, options=options)
        self.conn.execute(f"CREATE SCHEMA {schema}")
        self.conn.execute(PG_RAW_SCHEMA)
        self.insert = (
            f"INSERT INTO events (position, {RAW_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
        self.sizes = sizes
        self.idents = [str(uuid.uuid4()) for _ in range(sizes.aggregates)]

    def next_position(self) -> int:
        # The store's guarantee: appends serialized, positions commit in order.
        self.conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        row = self.conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        assert row is not None
        return int(row[0])

    def command_round(self, n: int) -> int:
        conn = self.conn
        for ident in self.idents:
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
                position = self.next_position()
                row = (
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
                )
                conn.execute(self.insert, row)
        return len(self.idents)

    def append(self, r: int) -> int:
        version = 0
        for start in range(0, self.sizes.stream_events, self.sizes.batch):
            with self.conn.transaction():
                position = self.next_position()
                at = datetime.now(UTC)
                rows = [
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
                    for k, i in enumerate(range(start, start + self.sizes.batch))
                ]
                with self.conn.cursor() as cur:
                    cur.executemany(self.insert, rows)
            version += self.sizes.batch
        return self.sizes.stream_events

    def load(self) -> int:
        # psycopg decodes jsonb and timestamptz itself.
        rows = self.conn.execute(
            f"SELECT position, {RAW_COLUMNS} FROM events WHERE stream = %s ORDER BY stream_version",
            ("Bench.Big/0",),
        ).fetchall()
        return len(rows)

    def catchup(self) -> int:
        position = count = 0
        while True:
            rows = self.conn.execute(
                f"SELECT position, {RAW_COLUMNS} FROM events WHERE position > %s "
                "ORDER BY position LIMIT %s",
                (position, PAGE),
            ).fetchall()
            if not rows:
                return count
            count += len(rows)
            position = rows[-1][0]

    def close(self) -> None:
        self.conn.close()


# -- running --------------------------------------------------------------------------------
def measure(
    contenders: list[Contender], sizes: Sizes, command_only: list[Contender]
) -> dict[str, dict[str, float]]:
    """Run every workload for every contender, taking turns; return events per second.

    ``command_only`` contenders take part in the command rounds only.
    """
    everyone = contenders + command_only
    names = [c.name for c in everyone]
    spent = dict.fromkeys(names, 0.0)
    done = dict.fromkeys(names, 0)

    def turns(k: int) -> list[Contender]:
        # Rotate who goes first so none always runs right after the same neighbour.
        return contenders[k % len(contenders) :] + contenders[: k % len(contenders)]

    for n in range(sizes.commands):
        k = n % len(everyone)
        for c in everyone[k:] + everyone[:k]:
            started = time.perf_counter()
            done[c.name] += c.command_round(n)
            spent[c.name] += time.perf_counter() - started
    rates: dict[str, dict[str, float]] = {
        name: {"command": done[name] / spent[name]} for name in names
    }
    for c in command_only:
        c.close()
    steps: list[tuple[str, Callable[[Contender, int], int]]] = [
        ("append", lambda c, r: c.append(r)),
        ("load", lambda c, r: c.load()),
        ("catchup", lambda c, r: c.catchup()),
    ]
    # stormgen only: its load and catchup above stop at envelopes with JSON data; these
    # decode into typed events, as eventsourcing's mapper does. Each runs right after
    # stormgen's plain read in the same round, so it is timed next to eventsourcing's.
    typed: dict[str, Callable[[Any], int]] = {
        "load": lambda c: c.load_typed(),
        "catchup": lambda c: c.catchup_typed(),
    }

    def timed(c: Contender, workload: str, run: Callable[[], int]) -> None:
        started = time.perf_counter()
        count = run()
        elapsed = time.perf_counter() - started
        rates[c.name][workload] = max(rates[c.name].get(workload, 0.0), count / elapsed)

    for workload, step in steps:
        for r in range(REPEATS if workload == "append" else READ_REPEATS):
            for c in turns(r):
                timed(c, workload, lambda: step(c, r))  # noqa: B023 (called at once)
                if workload in typed and hasattr(c, f"{workload}_typed"):
                    timed(c, f"{workload}_typed", lambda: typed[workload](c))  # noqa: B023
    return rates


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
    sg = Stormgen(f"sqlite:///{folder / 'stormgen.db'}", sizes)
    es = Eventsourcing(
        {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(folder / "eventsourcing.db"),
        },
        sizes,
    )
    raw = RawSQLite(folder / "raw.db", sizes)
    extra: list[Contender] = [
        Stormgen(f"sqlite:///{folder / 'store-only.db'}", sizes, store_only=True),
        Stormgen(f"sqlite:///{folder / 'nocache.db'}", sizes, state_cache=0),
        Eventsourcing(
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(folder / "eventsourcing-cache.db"),
            },
            sizes,
            cache=True,
        ),
    ]
    contenders: list[Contender] = [sg, es, raw]
    try:
        rates = measure(contenders, sizes, extra)
    finally:
        for c in contenders:
            c.close()
    return command_extras(rates, durability, sg.how)


def command_extras(rates: dict[str, dict[str, float]], durability: str, how: str) -> dict[str, Any]:
    """Fold the command-only contenders into the result as `command_*` figures."""
    store_only = rates.pop("store-only")["command"]
    nocache = rates.pop("stormgen-nocache")["command"]
    es_cache = rates.pop("eventsourcing-cache")["command"]
    return {
        **rates,
        "durability": durability,
        "command_via": how,
        "store_only_command": store_only,
        "command_with_caches": {
            "stormgen": rates["stormgen"]["command"],
            "eventsourcing": es_cache,
        },
        "command_without_caches": {
            "stormgen": nocache,
            "eventsourcing": rates["eventsourcing"]["command"],
        },
    }


def run_postgres(sizes: Sizes, url: str, durability: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    with temporary_schemas(url) as schemas:
        schemas += [
            f"bench_sg_{tag}",
            f"bench_es_{tag}",
            f"bench_raw_{tag}",
            f"bench_so_{tag}",
            f"bench_nc_{tag}",
            f"bench_esc_{tag}",
        ]
        sep = "&" if "?" in url else "?"
        sg = Stormgen(f"{url}{sep}schema={schemas[0]}", sizes)
        parts = psycopg.conninfo.conninfo_to_dict(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schemas[1]}")
        es_env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(parts.get("dbname", "postgres")),
            "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
            "POSTGRES_PORT": str(parts.get("port", "5432")),
            "POSTGRES_USER": str(parts.get("user", "postgres")),
            "POSTGRES_PASSWORD": str(parts.get("password", "")),
        }
        es = Eventsourcing({**es_env, "POSTGRES_SCHEMA": schemas[1]}, sizes)
        raw = RawPostgres(url, schemas[2], sizes)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schemas[5]}")
        extra: list[Contender] = [
            Stormgen(f"{url}{sep}schema={schemas[3]}", sizes, store_only=True),
            Stormgen(f"{url}{sep}schema={schemas[4]}", sizes, state_cache=0),
            Eventsourcing({**es_env, "POSTGRES_SCHEMA": schemas[5]}, sizes, cache=True),
        ]
        contenders: list[Contender] = [sg, es, raw]
        try:
            rates = measure(contenders, sizes, extra)
        finally:
            for c in contenders:
                c.close()
    return command_extras(rates, durability, sg.how)


def print_table(name: str, result: dict[str, Any]) -> None:
    print(f"\n{name}: events/s ({result['durability']}; command via {result['command_via']})")
    print(
        f"{'workload':<10}{'stormgen':>12}{'eventsourcing':>15}{'raw':>12}{'x es':>8}{'% raw':>8}"
    )
    for w in WORKLOADS:
        sg, es, raw = result["stormgen"][w], result["eventsourcing"][w], result["raw"][w]
        print(f"{w:<10}{sg:>12,.0f}{es:>15,.0f}{raw:>12,.0f}{sg / es:>8.2f}{100 * sg / raw:>7.0f}%")
    for w in ("load", "catchup"):
        typed, es = result["stormgen"][f"{w}_typed"], result["eventsourcing"][w]
        print(
            f"{w}, stormgen decoding typed events (Application.decode_all): {typed:,.0f}/s = "
            f"{typed / es:.2f}x eventsourcing's {w} (which decodes into domain events)"
        )
    so = result["store_only_command"]
    raw_command = result["raw"]["command"]
    print(
        f"command, store only (hand-written load/decide/append in one unit of work, no "
        f"domain layer): {so:,.0f}/s = {100 * so / raw_command:.0f}% of raw"
    )
    for label, key in (("with", "command_with_caches"), ("without", "command_without_caches")):
        pair = result[key]
        sg, es = pair["stormgen"], pair["eventsourcing"]
        print(
            f"command, both {label} their state caches: stormgen {sg:,.0f}/s, eventsourcing "
            f"{es:,.0f}/s = {sg / es:.2f}x; stormgen {100 * sg / raw_command:.0f}% of raw"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--postgres", metavar="URL", help="also run against PostgreSQL")
    parser.add_argument("--json", action="store_true", help="print the JSON line last")
    parser.add_argument(
        "--no-sqlite", action="store_true", help="PostgreSQL only (with --postgres)"
    )
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
    if not (args.no_sqlite and args.postgres):
        with tempfile.TemporaryDirectory(prefix="stormgen-bench-", dir=folder_root) as folder:
            results["sqlite"] = run_sqlite(sizes, Path(folder), sqlite_durability)
        print_table("SQLite", results["sqlite"])
    if args.postgres:
        results["postgres"] = run_postgres(sizes, args.postgres, pg_durability)
        print_table("PostgreSQL", results["postgres"])
    rounded = {
        backend: {
            k: (
                {w: round(v) for w, v in r.items()}
                if isinstance(r, dict)
                else round(r)
                if isinstance(r, float)
                else r
            )
            for k, r in res.items()
            if k not in ("command_via",)
        }
        for backend, res in results.items()
    }
    print(json.dumps(rounded))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
