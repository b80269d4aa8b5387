"""Merging two SQLite logs against forking one: the rates side by side.

Builds store A with ``--events`` events (20 per stream, a few hundred bytes each), forks
its first 80% into B, then appends the other 20% to each side again (A and B go on with
different streams, so there is no conflict): two logs of ``--events`` events with a
common prefix of 80%. Then, each into a fresh SQLite file:

- ``fork``: `stormgen.runtime.store.fork` copying the whole of A (``--events`` events);
- ``merge``: `stormgen.runtime.merge` of A and B (reads both logs, compares the prefix
  by event ids, writes prefix + both tails: 120% of ``--events``).

Rates are events written per second; ``ratio`` is the merge's rate over the fork's
(the target is at least 0.5). The files live in /dev/shm when it exists, so the
figures are software cost (``synchronous=FULL`` as by default).

Usage: ``python benchmarks/bench_merge.py [--events N]`` (JSON, last line)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stormgen.runtime.envelope import RecordedEvent, new_event_id
from stormgen.runtime.merge import merge
from stormgen.runtime.store import fork, open_store
from stormgen.runtime.store.base import EventStore

PER_STREAM = 20
BATCH = 1000


def _fill(store: EventStore, start: int, count: int, label: str, at: datetime) -> None:
    """Append ``count`` events after position ``start`` (import: the fastest writer)."""
    position = start
    versions: dict[str, int] = {}
    while position < start + count:
        batch = []
        for _ in range(min(BATCH, start + count - position)):
            position += 1
            stream = f"Shop.Order/{label}-{(position - start - 1) // PER_STREAM}"
            version = versions[stream] = versions.get(stream, 0) + 1
            batch.append(
                RecordedEvent(
                    new_event_id(),
                    "Shop.OrderChanged",
                    1,
                    stream,
                    None,
                    version,
                    position,
                    at + timedelta(microseconds=position),
                    {"n": position, "customer": "Ada Lovelace", "total": "12.50", "note": "x" * 80},
                    {"correlation_id": new_event_id()},
                )
            )
        store.import_events(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events of each log")
    args = parser.parse_args()
    total = args.events
    prefix = total * 4 // 5
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        url = {name: f"sqlite:///{tmp}/{name}.db" for name in ("a", "b", "fork", "merged")}
        at = datetime(2026, 1, 1, tzinfo=UTC)
        with open_store(url["a"]) as a:
            _fill(a, 0, prefix, "p", at)
            fork(a, url["b"]).close()
            _fill(a, prefix, total - prefix, "a", at + timedelta(seconds=1))
        with open_store(url["b"]) as b:
            _fill(b, prefix, total - prefix, "b", at + timedelta(seconds=1, microseconds=1))

        with open_store(url["a"]) as a:
            started = time.perf_counter()
            fork(a, url["fork"]).close()
            fork_seconds = time.perf_counter() - started
            started = time.perf_counter()
            report = merge(a, url["b"], url["merged"])
            merge_seconds = time.perf_counter() - started
    merged = report.events
    fork_rate = total / fork_seconds
    merge_rate = merged / merge_seconds
    print(
        json.dumps(
            {
                "events_per_log": total,
                "common_prefix": report.common_prefix,
                "fork": {"events": total, "seconds": round(fork_seconds, 2)},
                "merge": {"events": merged, "seconds": round(merge_seconds, 2)},
                "fork_events_per_s": round(fork_rate),
                "merge_events_per_s": round(merge_rate),
                "ratio": round(merge_rate / fork_rate, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
