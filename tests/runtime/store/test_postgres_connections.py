"""The PostgreSQL store's pooled connections: one the server closed is never handed out.

A server restart, a terminated backend or a cut proxy leaves the pool holding
connections that fail at their first statement; the store notices before use.
(The whole outage, a server stopped and started, is in tests/e2e/test_e2e_faults.py.)
"""

from __future__ import annotations

import time

import psycopg
import pytest
from runtime_support import pg_base_url, with_schema

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.errors import InvalidStoreURL
from stormgen.runtime.store import open_store
from stormgen.runtime.store.postgres import PostgresStore


def _terminate(pid: int) -> None:
    """End a backend from another connection and wait until it is gone."""
    with psycopg.connect(pg_base_url(), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 30
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} did not end"
            time.sleep(0.01)


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(schema: str) -> None:
    store = open_store(with_schema(pg_base_url(), schema))
    assert isinstance(store, PostgresStore)
    try:
        store.append("S/1", [NewEvent(type="T", data={})], None)
        with store._connection() as conn:  # the pool's one idle connection
            pid = conn.info.backend_pid
        _terminate(pid)
        assert store.last_position() == 1
        store.append("S/2", [NewEvent(type="T", data={})], None)
        with store._connection() as conn:
            assert conn.info.backend_pid != pid
    finally:
        store.close()


def test_a_bad_acquire_timeout_is_refused(schema: str) -> None:
    url = with_schema(pg_base_url(), schema)
    with pytest.raises(InvalidStoreURL, match="expected seconds above 0"):
        open_store(f"{url}&acquire_timeout=0")
    with pytest.raises(InvalidStoreURL, match="'soon'"):
        open_store(f"{url}&acquire_timeout=soon")
