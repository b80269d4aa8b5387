"""Contract of the view rows (`ViewRows`, and the tables `EventStore.ensure_view_table`
makes) on every backend: upsert, query, page, delete; plain SQL tables; byte order."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from runtime_support import pg_base_url
from store_backends import COLUMNS, VIEW, Backend, order

from stormgen.runtime.store import EventStore, ViewRow, view_table_name
from stormgen.runtime.store.postgres import PostgresStore
from stormgen.runtime.store.sqlite import SQLiteStore


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


def test_view_keys_sort_and_page_in_byte_order_everywhere(store: EventStore) -> None:
    store.ensure_view_table("Shop.Names", {"n": "integer"})
    with store.transaction() as uow:
        for i, key in enumerate(["a", "B", "é", "z", "Z", "10", "9"]):
            uow.upsert_row("Shop.Names", key, {"n": i})
    assert [r.key for r in store.query_rows("Shop.Names")] == ["10", "9", "B", "Z", "a", "z", "é"]
    assert [r.key for r in store.query_rows("Shop.Names", after_key="Z", limit=2)] == ["a", "z"]
