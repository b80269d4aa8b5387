"""Stores written before the single idempotency record (commit d5d8dff) still held its old
index, the view table `_stormgen.Idempotency` and its checkpoint: opening drops them."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
from runtime_support import pg_base_url, with_schema

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store import EventStore, open_store

OLD_INDEX = "_stormgen.Idempotency"
OLD_TABLE = "view_stormgen_idempotency"


def write_the_old_index(url: str) -> None:
    """What an application opened by the older runtime wrote beside the log."""
    with open_store(url) as store:
        store.append("S/1", [NewEvent(type="T", data={"n": 1}, stream_id="1")], 0)
        store.ensure_view_table(OLD_INDEX)
        store.ensure_view_table("Shop.Orders")
        with store.transaction() as uow:
            uow.upsert_row(OLD_INDEX, "key-1", {"stream": "S/1", "stream_version": 1})
            uow.set_checkpoint(OLD_INDEX, 1)
            uow.upsert_row("Shop.Orders", "o1", {"n": 1})
            uow.set_checkpoint("Shop.Orders", 1)


def still_works(store: EventStore) -> None:
    assert store.get_checkpoint(OLD_INDEX) == 0
    assert store.get_checkpoint("Shop.Orders") == 1
    assert store.get_row("Shop.Orders", "o1") == {"n": 1}
    assert store.last_position() == 1


def test_sqlite_drops_the_old_index_at_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_the_old_index(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute(f"SELECT count(*) FROM {OLD_TABLE}").fetchone() == (1,)
    with open_store(f"sqlite:///{path}") as store:
        still_works(store)
    with closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        views = {r[0] for r in conn.execute("SELECT view FROM stormgen_views")}
        consumers = {r[0] for r in conn.execute("SELECT consumer FROM checkpoints")}
    assert OLD_TABLE not in tables
    assert "view_shop_orders" in tables
    assert views == {"Shop.Orders"}
    assert consumers == {"Shop.Orders"}


def test_postgres_drops_the_old_index_at_open(schema: str) -> None:
    base = pg_base_url()
    url = with_schema(base, schema)
    write_the_old_index(url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        assert conn.execute(f"SELECT count(*) FROM {OLD_TABLE}").fetchone() == (1,)
    with open_store(url) as store:
        still_works(store)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        }
        views = {r[0] for r in conn.execute("SELECT view FROM stormgen_views")}
        consumers = {r[0] for r in conn.execute("SELECT consumer FROM checkpoints")}
    assert OLD_TABLE not in tables
    assert "view_shop_orders" in tables
    assert views == {"Shop.Orders"}
    assert consumers == {"Shop.Orders"}
