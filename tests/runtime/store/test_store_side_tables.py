"""Contract: the side tables kept in the same database (views, snapshots, keys, failures)."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
from runtime_support import pg_base_url
from store_backends import Backend

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store import EventStore, ParkedFailure, Snapshot, ViewRow, view_table_name
from stormgen.runtime.store.memory import MemoryStore
from stormgen.runtime.store.postgres import PostgresStore
from stormgen.runtime.store.sqlite import SQLiteStore

VIEW = "Ordering.OrderSummary"
COLUMNS = {"customer": "text", "paid": "boolean", "total": "numeric", "drinks": "integer"}


def order(customer: str, paid: bool, total: str, drinks: int) -> dict[str, object]:
    return {"customer": customer, "paid": paid, "total": total, "drinks": drinks, "note": None}


def test_view_table_name_is_plain_sql() -> None:
    assert view_table_name("Ordering.OrderSummary") == "view_ordering_order_summary"
    assert view_table_name("Kitchen.HTTPQueue") == "view_kitchen_httpqueue"


def test_view_rows_upsert_query_page_delete(store: EventStore) -> None:
    assert store.ensure_view_table(VIEW, COLUMNS) is True
    assert store.ensure_view_table(VIEW, COLUMNS) is False
    with store.transaction() as uow:
        uow.upsert_row(VIEW, "o1", order("Ada", True, "7.50", 2))
        uow.upsert_row(VIEW, "o2", order("Bob", False, "3.00", 1))
        uow.upsert_row(VIEW, "o3", order("Ada", False, "4.25", 3))
        uow.upsert_row(VIEW, "o2", order("Bob", True, "3.00", 1))
    assert store.get_row(VIEW, "o2") == order("Bob", True, "3.00", 1)
    assert store.get_row(VIEW, "missing") is None
    assert [r.key for r in store.query_rows(VIEW)] == ["o1", "o2", "o3"]
    assert [r.key for r in store.query_rows(VIEW, {"customer": "Ada"})] == ["o1", "o3"]
    assert [r.key for r in store.query_rows(VIEW, {"paid": True})] == ["o1", "o2"]
    assert store.query_rows(VIEW, {"customer": "Ada", "paid": False}) == [
        ViewRow("o3", order("Ada", False, "4.25", 3))
    ]
    assert [r.key for r in store.query_rows(VIEW, {"drinks": 1})] == ["o2"]
    assert [r.key for r in store.query_rows(VIEW, after_key="o1", limit=1)] == ["o2"]
    with pytest.raises(ValueError, match="note"):
        store.query_rows(VIEW, {"note": "x"})
    with store.transaction() as uow:
        assert uow.delete_row(VIEW, "o1") is True
        assert uow.delete_row(VIEW, "o1") is False
    assert [r.key for r in store.query_rows(VIEW)] == ["o2", "o3"]
    with store.transaction() as uow:
        uow.clear_view(VIEW)
    assert store.query_rows(VIEW) == []


def test_view_rows_and_checkpoint_commit_together(store: EventStore) -> None:
    store.ensure_view_table(VIEW, COLUMNS)
    with pytest.raises(RuntimeError), store.transaction() as uow:
        uow.upsert_row(VIEW, "o1", order("Ada", True, "7.50", 2))
        uow.set_checkpoint(VIEW, 1)
        raise RuntimeError("crash between row and checkpoint")
    assert store.get_row(VIEW, "o1") is None
    assert store.get_checkpoint(VIEW) == 0
    with store.transaction() as uow:
        uow.upsert_row(VIEW, "o1", order("Ada", True, "7.50", 2))
        uow.set_checkpoint(VIEW, 1)
    assert store.get_row(VIEW, "o1") is not None
    assert store.get_checkpoint(VIEW) == 1


def test_changed_view_columns_recreate_the_table(store: EventStore) -> None:
    store.ensure_view_table(VIEW, COLUMNS)
    with store.transaction() as uow:
        uow.upsert_row(VIEW, "o1", order("Ada", True, "7.50", 2))
    assert store.ensure_view_table(VIEW, {"customer": "text"}) is True
    assert store.query_rows(VIEW) == []
    with pytest.raises(ValueError, match="type"):
        store.ensure_view_table(VIEW, {"customer": "varchar"})
    store.drop_view_table(VIEW)
    assert store.ensure_view_table(VIEW, {"customer": "text"}) is True


def test_views_are_queryable_with_plain_sql(db_backend: Backend) -> None:
    store = db_backend.open()
    store.ensure_view_table(VIEW, COLUMNS)
    with store.transaction() as uow:
        uow.upsert_row(VIEW, "o1", order("Ada", True, "7.50", 2))
        uow.upsert_row(VIEW, "o2", order("Bob", False, "3.00", 1))
    query = "SELECT key, customer, total FROM view_ordering_order_summary WHERE paid ORDER BY key"
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            rows = conn.execute(query).fetchall()
        assert rows == [("o1", "Ada", "7.50")]
    else:
        assert isinstance(store, PostgresStore)
        with psycopg.connect(pg_base_url(), options=f"-c search_path={store.schema}") as conn:
            rows = conn.execute(query).fetchall()
        assert [(k, c, str(t)) for k, c, t in rows] == [("o1", "Ada", "7.50")]


def test_snapshots(store: EventStore) -> None:
    assert store.get_snapshot("Shop.Order/1") is None
    snap = Snapshot("Shop.Order/1", 3, 17, {"status": "paid", "total": "7.50"}, "h1")
    store.save_snapshot(snap)
    assert store.get_snapshot("Shop.Order/1") == snap
    assert store.get_snapshot("Shop.Order/1", max_position=16) is None
    assert store.get_snapshot("Shop.Order/1", max_position=17) == snap
    newer = Snapshot("Shop.Order/1", 5, 30, {"status": "done"}, "h2")
    store.save_snapshot(newer)
    assert store.get_snapshot("Shop.Order/1") == newer
    with store.transaction() as uow:
        uow.delete_snapshot("Shop.Order/1")
    assert store.get_snapshot("Shop.Order/1") is None


def test_encryption_keys_put_get_delete(store: EventStore) -> None:
    key = bytes(range(32))
    store.put_key("Shop.Customer/1", key)
    assert store.get_key("Shop.Customer/1") == key
    assert store.get_key("Shop.Customer/2") is None
    assert store.delete_key("Shop.Customer/1") is True
    assert store.delete_key("Shop.Customer/1") is False
    assert store.get_key("Shop.Customer/1") is None


def test_add_key_stores_a_first_key_only(store: EventStore) -> None:
    first, second = b"1" * 32, b"2" * 32
    with store.transaction() as uow:
        assert uow.add_key("Shop.Customer/1", first) is True
        assert uow.add_key("Shop.Customer/1", second) is False  # in the same transaction
    with store.transaction() as uow:
        assert uow.add_key("Shop.Customer/1", second) is False
    assert store.get_key("Shop.Customer/1") == first
    with pytest.raises(RuntimeError), store.transaction() as uow:
        assert uow.add_key("Shop.Customer/2", second) is True
        raise RuntimeError("rolled back with the transaction")
    assert store.get_key("Shop.Customer/2") is None


def test_key_and_events_commit_together(store: EventStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as uow:
        uow.put_key("Shop.Customer/1", b"k" * 32)
        uow.append("Shop.Customer/1", [NewEvent(type="T", data={"name": "enc"})], 0)
        raise RuntimeError("fail")
    assert store.get_key("Shop.Customer/1") is None
    assert store.last_position() == 0


def test_parked_failures(store: EventStore) -> None:
    when = datetime(2026, 11, 27, 13, 5, tzinfo=UTC)
    with store.transaction() as uow:
        uow.park_failure(ParkedFailure("Kitchen.Brew", 7, "e7", "boom", 3, when))
        uow.park_failure(ParkedFailure("Mailer", 4, "e4", "smtp down", 5, when))
        uow.park_failure(ParkedFailure("Kitchen.Brew", 7, "e7", "boom again", 4, when))
    failures = store.list_failures()
    assert [(f.consumer, f.position, f.attempts) for f in failures] == [
        ("Mailer", 4, 5),
        ("Kitchen.Brew", 7, 4),
    ]
    assert failures[1].error == "boom again"
    assert failures[1].parked_at == when
    assert [f.position for f in store.list_failures("Mailer")] == [4]
    with store.transaction() as uow:
        assert uow.delete_failure("Mailer", 4) is True
        assert uow.delete_failure("Mailer", 4) is False
    assert [f.consumer for f in store.list_failures()] == ["Kitchen.Brew"]


def test_reads_do_not_wait_for_an_open_write_transaction(store: EventStore) -> None:
    if isinstance(store, MemoryStore):
        pytest.skip("one lock guards the memory store: its readers wait by design")
    store.set_checkpoint("c", 3)
    store.ensure_view_table(VIEW, COLUMNS)
    opened = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with store.transaction() as uow:
            uow.set_checkpoint("c", 9)
            opened.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert opened.wait(10)
        started = time.monotonic()
        assert store.get_checkpoint("c") == 3  # the last committed value
        assert store.query_rows(VIEW) == []
        assert store.get_key("nobody") is None
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        thread.join(10)
    assert store.get_checkpoint("c") == 9


def test_view_keys_sort_and_page_in_byte_order_everywhere(store: EventStore) -> None:
    store.ensure_view_table("Shop.Names", {"n": "integer"})
    with store.transaction() as uow:
        for i, key in enumerate(["a", "B", "é", "z", "Z", "10", "9"]):
            uow.upsert_row("Shop.Names", key, {"n": i})
    assert [r.key for r in store.query_rows("Shop.Names")] == ["10", "9", "B", "Z", "a", "z", "é"]
    assert [r.key for r in store.query_rows("Shop.Names", after_key="Z", limit=2)] == ["a", "z"]
