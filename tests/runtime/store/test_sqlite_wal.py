"""The SQLite WAL stays small: emptied once it grows past its limit.

SQLite's own checkpoints cannot restart the WAL while a reader uses it, and without a
size limit the file keeps the largest size it ever reached.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from coffee_domain import PlaceOrder, definitions, latte

from stormgen.runtime import Application, RetrySettings
from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.errors import InvalidStoreURL
from stormgen.runtime.store import open_store
from stormgen.runtime.store.sqlite import SQLiteStore

LIMIT = 64 * 1024


def _wal(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@contextmanager
def _reader(path: Path) -> Iterator[None]:
    """Another connection holding a read snapshot: no checkpoint can restart the WAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM events").fetchone()
        yield
    finally:
        conn.close()


def test_maintain_empties_a_wal_past_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SQLiteStore(path, wal_limit=LIMIT)
    try:
        with _reader(path):
            for n in range(100):
                store.append(f"s-{n}", [NewEvent(type="Big", data={"text": "x" * 2000})], None)
        assert _wal(path) > LIMIT
        store.maintain()
        assert _wal(path) == 0
        assert store.last_position() == 100
        store.maintain()  # nothing to do: no error
    finally:
        store.close()


def test_a_running_application_keeps_its_wal_under_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    retry = RetrySettings(idle_timeout=0.05, maintain_interval=0.05)
    app = Application.open(f"sqlite:///{path}?wal_limit={LIMIT}", retry=retry, **definitions())
    try:
        app.start()
        with _reader(path):
            for n in range(60):
                customer = f"customer {n} " + "x" * 1000
                app.handle(PlaceOrder(customer=customer, drinks=[latte()], total=latte().price))
            assert _wal(path) > LIMIT
        # the reader is gone: the consumers' thread empties the WAL
        assert _eventually(lambda: _wal(path) <= LIMIT), f"the WAL stayed at {_wal(path)} bytes"
    finally:
        app.close()


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_bad_wal_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURL, match="wal_limit"):
        open_store(f"sqlite:///{tmp_path}/x.db?wal_limit=lots")
