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


ORDERED = "Shop.Legs"
LEG_COLUMNS = {"cargo": "text", "done": "timestamp", "weight": "numeric", "n": "integer"}
LEGS = {  # key: (cargo, done, weight, n)
    "k1": ("tea", "2026-01-02T10:00:00Z", "10.5", 1),
    "k2": ("rice", None, "9", 2),
    "k3": ("tea", "2026-01-01T10:00:00Z", "10.5", 3),
    "k4": ("Tea", "2026-01-02T10:00:00Z", None, 4),
    "k5": ("rice", None, "100", 5),
    "k6": ("é", "2026-01-03T10:00:00Z", "10.50", 6),
}


def _legs(store: EventStore) -> None:
    store.ensure_view_table(ORDERED, LEG_COLUMNS)
    with store.transaction() as uow:
        for key, (cargo, done, weight, n) in LEGS.items():
            doc = {"cargo": cargo, "done": done, "weight": weight, "n": n}
            uow.upsert_row(ORDERED, key, doc)


def _pages(store: EventStore, order: tuple[tuple[str | None, bool], ...], size: int) -> list[str]:
    """Every key, read `size` rows a page, each page after the last key of the one before."""
    keys: list[str] = []
    after: str | None = None
    while True:
        page = store.query_rows(ORDERED, after_key=after, limit=size, order=order)
        keys += [r.key for r in page]
        if len(page) < size:
            return keys
        after = page[-1].key


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # none first ascending; the key breaks ties
        ((("done", False),), ["k2", "k5", "k3", "k1", "k4", "k6"]),
        # none last descending; ties still by key ascending
        ((("done", True),), ["k6", "k1", "k4", "k3", "k2", "k5"]),
        # numbers compare as numbers (9 < 10.5 = 10.50 < 100), none first
        ((("weight", False),), ["k4", "k2", "k1", "k3", "k6", "k5"]),
        # text in byte order; then a second term descending
        ((("cargo", False), ("n", True)), ["k4", "k5", "k2", "k3", "k1", "k6"]),
        # the key itself, descending, written last
        ((("weight", True), (None, True)), ["k5", "k6", "k3", "k1", "k2", "k4"]),
    ],
)
def test_ordered_view_rows_page_in_that_order_everywhere(
    store: EventStore, order: tuple[tuple[str | None, bool], ...], expected: list[str]
) -> None:
    _legs(store)
    assert [r.key for r in store.query_rows(ORDERED, order=order)] == expected
    for size in (1, 2, 4):
        assert _pages(store, order, size) == expected, size
    assert [r.key for r in store.query_rows(ORDERED, {"cargo": "rice"}, order=order)] == [
        k for k in expected if k in {"k2", "k5"}
    ]


def test_ordered_paging_after_a_missing_row_is_an_error(store: EventStore) -> None:
    _legs(store)
    with pytest.raises(ValueError, match="no row 'gone'"):
        store.query_rows(ORDERED, after_key="gone", order=(("done", False),))
    with pytest.raises(ValueError, match="no column 'colour'"):
        store.query_rows(ORDERED, order=(("colour", False),))


SHIFTS = "Desk.Shifts"
TOOK = {  # key: a duration as the codec writes it; text order is not duration order
    "s1": "PT9H",
    "s2": None,
    "s3": "P1D",
    "s4": "-PT5M",
    "s5": "PT10H",
    "s6": "PT45M",
    "s7": "PT0.5S",
}


def test_a_duration_column_orders_filters_and_pages_as_lengths_everywhere(
    store: EventStore,
) -> None:
    store.ensure_view_table(SHIFTS, {"took": "duration"})
    with store.transaction() as uow:
        for key, took in TOOK.items():
            uow.upsert_row(SHIFTS, key, {"took": took})
    ascending = ["s2", "s4", "s7", "s6", "s1", "s5", "s3"]
    assert [r.key for r in store.query_rows(SHIFTS, order=(("took", False),))] == ascending
    descending = ["s3", "s5", "s1", "s6", "s7", "s4", "s2"]
    assert [r.key for r in store.query_rows(SHIFTS, order=(("took", True),))] == descending
    keys: list[str] = []
    after: str | None = None
    while page := store.query_rows(SHIFTS, after_key=after, limit=2, order=(("took", True),)):
        keys += [r.key for r in page]
        after = page[-1].key
    assert keys == descending
    assert [r.key for r in store.query_rows(SHIFTS, {"took": "PT9H"})] == ["s1"]
    assert store.get_row(SHIFTS, "s3") == {"took": "P1D"}
