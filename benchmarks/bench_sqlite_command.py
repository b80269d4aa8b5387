"""What one command costs on SQLite, rung by rung, from an empty transaction up.

Usage: ``python benchmarks/bench_sqlite_command.py [--streams N] [--rounds R]``

Each rung appends one event to one of ``N`` streams per call, on its own file in
/dev/shm (WAL, ``synchronous=FULL``: fsync is free there, so this is software cost),
and the rungs take turns, one round (a call per stream) each, ``R`` rounds; the figure
is CPU time (``time.process_time``: the process's own and the kernel's on its behalf)
per call, the lowest and the median round, and the pages (WAL frames) a call writes,
counted over 200 calls after the rounds. The rungs:

- ``begin-commit``: ``BEGIN IMMEDIATE; COMMIT``, nothing written: the locks alone;
- ``insert``: ``BEGIN IMMEDIATE``, one ``INSERT`` into the events table, ``COMMIT``;
- ``head-insert``: the statements of the store's append by hand: the stream's version
  and the last position in one ``SELECT``, the ``INSERT``, in one transaction; on the
  events table of schema 5 (a rowid, no AUTOINCREMENT);
- ``head-insert-counted``: the same on the table of schemas 1 to 4 (AUTOINCREMENT, the
  last position read from ``sqlite_sequence``, whose row each commit writes);
- ``store-append``: ``SQLiteStore.append`` of one event;
- ``command``: ``Application.handle`` with its state cache on (``bench_runtime.py``'s
  one-aggregate service);
- ``eventsourcing``: the eventsourcing library's command with its aggregate cache
  (``bench_runtime.py``'s contender: ``repository.get``, the method, ``save``).

The rows the hand-written rungs insert hold an envelope of the size the store writes
(one text made beforehand: these rungs time SQLite, not building rows). Prints a
table, then one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_runtime import Eventsourcing, Sizes, _application_runner, payload
from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store.sqlite import SQLiteStore

_COLUMNS = (
    "type TEXT NOT NULL, stream TEXT NOT NULL, stream_version INTEGER NOT NULL,"
    " recorded_at TEXT NOT NULL, envelope TEXT NOT NULL, UNIQUE (stream, stream_version)"
)
_INSERT = (
    "INSERT INTO events (position, type, stream, stream_version, recorded_at, envelope)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_AT = "2026-12-07T12:00:00.000000Z"

_WAL_HEADER = 32
_FRAME_HEADER = 24
#: calls whose WAL frames are counted (at most ~4 frames each: under the 1,000 at
#: which SQLite checkpoints by itself)
_FRAMES_CALLS = 200

#: a rung: called with (stream id, round number), appends one event to that stream
Rung = Callable[[str, int], None]


def envelope(stream: str) -> str:
    """An envelope of the size the store writes for the benchmark's event."""
    ids = str(uuid.uuid4())
    metadata = {"command_id": ids, "correlation_id": ids, "causation_id": ids}
    fields = [ids, "Bench.Incremented", 1, stream, stream[-36:], 1, 1, _AT, payload(1), metadata]
    return json.dumps(fields, separators=(",", ":"))


def connect(path: Path, counted: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if counted else "INTEGER PRIMARY KEY"
    conn.execute(f"CREATE TABLE events (position {key}, {_COLUMNS})")
    return conn


def by_hand(path: Path, *, head: bool, counted: bool = False) -> Rung:
    """Append one row per call with sqlite3 alone (with the store's head query or not)."""
    conn = connect(path, counted)
    last = "max(position) FROM events"
    if counted:
        last = "seq FROM sqlite_sequence WHERE name = 'events'"
    select = f"SELECT (SELECT max(stream_version) FROM events WHERE stream = ?), (SELECT {last})"
    versions: dict[str, int] = {}
    positions = [0]
    text = envelope(f"Bench.Counter/{uuid.uuid4()}")

    def run(ident: str, n: int) -> None:
        stream = f"Bench.Counter/{ident}"
        conn.execute("BEGIN IMMEDIATE")
        if head:
            current, position = conn.execute(select, (stream,)).fetchone()
            current, position = current or 0, position or 0
        else:
            current, position = versions.get(stream, 0), positions[0]
        conn.execute(_INSERT, (position + 1, "Bench.Incremented", stream, current + 1, _AT, text))
        conn.execute("COMMIT")
        versions[stream] = current + 1
        positions[0] = position + 1

    return run


def begin_commit(path: Path) -> Rung:
    conn = connect(path, False)

    def run(ident: str, n: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")

    return run


def store_append(path: Path) -> Rung:
    store = SQLiteStore(path)
    versions: dict[str, int] = {}

    def run(ident: str, n: int) -> None:
        stream = f"Bench.Counter/{ident}"
        event = NewEvent(type="Bench.Incremented", data=payload(n))
        versions[stream] = store.append(stream, [event], versions.get(stream, 0)).stream_version

    return run


def command(path: Path) -> Rung:
    return _application_runner(SQLiteStore(path), 10_000)


def eventsourcing(path: Path, streams: int) -> Rung:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    es = Eventsourcing(env, Sizes(streams, 1, 1, 1), cache=True)
    ids: dict[str, Any] = {}

    def run(ident: str, n: int) -> None:
        if ident not in ids:
            counter = es.counter_class()
            es.app.save(counter)
            ids[ident] = counter.id
            return
        counter = es.app.repository.get(ids[ident])
        counter.increment(**payload(n))
        es.app.save(counter)

    return run


def wal_frames(path: Path, run: Rung, idents: list[str], n: int) -> float | None:
    """WAL frames (pages) written per call: the WAL emptied, then one call per stream
    (few enough that no automatic checkpoint starts within them)."""
    side = sqlite3.connect(path, isolation_level=None)
    try:
        busy = side.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        (page,) = side.execute("PRAGMA page_size").fetchone()
    finally:
        side.close()
    if busy:
        return None
    for ident in idents:
        run(ident, n)
    written = max(0, Path(f"{path}-wal").stat().st_size - _WAL_HEADER)
    return written / (page + _FRAME_HEADER) / len(idents)


def measure(streams: int, rounds: int, folder: Path) -> dict[str, dict[str, float | None]]:
    rungs: dict[str, tuple[Rung, Path]] = {
        name: (make(folder / f"{name}.db"), folder / f"{name}.db")
        for name, make in (
            ("begin-commit", begin_commit),
            ("insert", lambda p: by_hand(p, head=False)),
            ("head-insert", lambda p: by_hand(p, head=True)),
            ("head-insert-counted", lambda p: by_hand(p, head=True, counted=True)),
            ("store-append", store_append),
            ("command", command),
            ("eventsourcing", lambda p: eventsourcing(p, streams)),
        )
    }
    idents = [str(uuid.uuid4()) for _ in range(streams)]
    spent: dict[str, list[float]] = {name: [] for name in rungs}
    for n in range(rounds + 1):
        names = list(rungs)
        k = n % len(names)  # rotate who goes first
        for name in names[k:] + names[:k]:
            run = rungs[name][0]
            started = time.process_time()
            for ident in idents:
                run(ident, n)
            if n:  # round 0 creates the streams
                spent[name].append((time.process_time() - started) / streams * 1e6)
    few = idents[: min(streams, _FRAMES_CALLS)]
    return {
        name: {
            "min_us": min(times),
            "median_us": statistics.median(times),
            "wal_frames": wal_frames(rungs[name][1], rungs[name][0], few, rounds + 1),
        }
        for name, times in spent.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    root = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="stormgen-bench-", dir=root) as folder:
        result = measure(args.streams, args.rounds, Path(folder))
    es = float(result["eventsourcing"]["median_us"] or 0)
    print(f"CPU µs per call, {args.streams} streams, {args.rounds} rounds (lowest, median round)")
    print(f"{'rung':22s} {'lowest':>8s} {'median':>8s}  {'WAL pages':>9s}  eventsourcing / rung")
    for name, r in result.items():
        frames = "" if r["wal_frames"] is None else f"{r['wal_frames']:.2f}"
        ratio = es / r["median_us"]
        print(f"{name:22s} {r['min_us']:8.1f} {r['median_us']:8.1f}  {frames:>9s}  {ratio:5.2f}x")
    print(
        f"3x eventsourcing leaves {es / 3:.0f} µs a command; the store's SQL by hand takes "
        f"{result['head-insert']['median_us'] or 0:.0f} µs of it"
    )
    print(
        json.dumps(
            {
                k: {m: None if v is None else round(v, 2) for m, v in r.items()}
                for k, r in result.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
