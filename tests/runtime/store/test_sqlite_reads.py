"""How the SQLite store reads a page of the log: up to the page's last event, not up to
the head the reader gives (SQLite scans the position index up to one upper bound)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store.sqlite import SQLiteStore

STEP = 100  # SQLite's virtual machine instructions between two progress calls


def instructions(conn: sqlite3.Connection, read: object) -> int:
    """About how many instructions SQLite ran for ``read()`` (in steps of STEP)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, STEP)
    try:
        read()  # type: ignore[operator]
    finally:
        conn.set_progress_handler(None, STEP)
    return steps[0] * STEP


def test_a_page_reads_as_far_as_its_last_event_whatever_the_head(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "log.db") as store:
        for start in range(0, 6000, 500):
            batch = [
                NewEvent(type="Placed" if n < 100 else "Other", data={"n": n})
                for n in range(start, start + 500)
            ]
            store.append(f"S/{start}", batch, 0)
        head = store.last_position()
        conn = store._conn()

        def near() -> None:
            page = store.read_all(0, 50, ["Placed"], 60)
            assert [e.data["n"] for e in page] == list(range(50))

        def far() -> None:
            page = store.read_all(0, 50, ["Placed"], head)
            assert [e.data["n"] for e in page] == list(range(50))

        # the same 50 events whether the head is just past them or 6,000 events on
        assert instructions(conn, far) < 2 * instructions(conn, near) + 1000
        # and a page that has to look far for its events still finds them all
        rest = store.read_all(50, 500, ["Placed"], head)
        assert [e.data["n"] for e in rest] == list(range(50, 100))
        assert store.read_all(100, 50, ["Placed"], head) == []
