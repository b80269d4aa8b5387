"""The SQLite store's schema: upgrading version 1 files, and damaged envelopes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.errors import StoreCorrupt
from stormgen.runtime.store import SCHEMA_VERSION
from stormgen.runtime.store.sqlite import SQLiteStore
from stormgen.runtime.store.sqlite_schema import APPLICATION_ID

# The schema stormgen wrote up to schema version 2 (the envelope column).
SCHEMA_1 = """
CREATE TABLE stormgen_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    stream TEXT NOT NULL,
    stream_id TEXT,
    stream_version INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (stream, stream_version)
);
CREATE TABLE checkpoints (consumer TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE snapshots (
    stream TEXT PRIMARY KEY, version INTEGER NOT NULL, position INTEGER NOT NULL,
    state TEXT NOT NULL, schema_hash TEXT NOT NULL
);
CREATE TABLE stream_keys (stream TEXT PRIMARY KEY, key BLOB NOT NULL);
CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, result TEXT NOT NULL);
CREATE TABLE parked_failures (
    consumer TEXT NOT NULL, position INTEGER NOT NULL, event_id TEXT NOT NULL,
    error TEXT NOT NULL, attempts INTEGER NOT NULL, parked_at TEXT NOT NULL,
    PRIMARY KEY (consumer, position)
);
CREATE TABLE stormgen_views (view TEXT PRIMARY KEY, table_name TEXT NOT NULL,
    columns TEXT NOT NULL);
"""

AT = "2026-11-27T13:05:00.123456Z"
WHEN = datetime(2026, 11, 27, 13, 5, 0, 123456, tzinfo=UTC)


def run_sql(path: Path, statement: str) -> None:
    """Change a store's file behind its back, as another program would."""
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()


def version_1_store(path: Path) -> None:
    """Write a store as stormgen wrote schema version 1, with three events."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_1)
    conn.execute("INSERT INTO stormgen_meta VALUES ('schema_version', '1')")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.executemany(
        "INSERT INTO events (id, type, version, stream, stream_id, stream_version,"
        " recorded_at, data, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("e1", "Shop.Placed", 1, "Shop.Order/o1", "o1", 1, AT, '{"total":"7.50"}', "{}"),
            ("e2", "Ext.Pinged", 2, "Ext.System", None, 1, AT, '{"n":[1,{"a":null}]}', "{}"),
            ("e3", "Shop.Paid", 1, "Shop.Order/o1", "o1", 2, AT, "{}", '{"actor":"ada"}'),
        ],
    )
    conn.commit()
    conn.close()


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    version_1_store(path)
    with SQLiteStore(path) as store:
        assert store.read_all() == [
            RecordedEvent(
                "e1", "Shop.Placed", 1, "Shop.Order/o1", "o1", 1, 1, WHEN, {"total": "7.50"}, {}
            ),
            RecordedEvent(
                "e2", "Ext.Pinged", 2, "Ext.System", None, 1, 2, WHEN, {"n": [1, {"a": None}]}, {}
            ),
            RecordedEvent(
                "e3", "Shop.Paid", 1, "Shop.Order/o1", "o1", 2, 3, WHEN, {}, {"actor": "ada"}
            ),
        ]
        result = store.append("Shop.Order/o1", [NewEvent(type="Shop.Shipped", data={})], 2)
        assert (result.first_position, result.stream_version) == (4, 3)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM stormgen_meta").fetchone() == (str(SCHEMA_VERSION),)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    # every field stays readable with SQL, through the view
    assert conn.execute(
        "SELECT id, version, stream_id, json_extract(data, '$.total'), metadata"
        " FROM events_view WHERE position = 1"
    ).fetchone() == ("e1", 1, "o1", "7.50", "{}")
    assert conn.execute("SELECT data FROM events_view WHERE position = 2").fetchone() == (
        '{"n":[1,{"a":null}]}',
    )
    # the old table is gone
    tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert ("events_v1",) not in tables
    conn.close()
    with SQLiteStore(path) as again:  # opened again: nothing left to upgrade
        assert [e.position for e in again.read_all()] == [1, 2, 3, 4]


def test_positions_continue_the_counter_across_the_upgrade(tmp_path: Path) -> None:
    # AUTOINCREMENT never reuses a position, even one whose row is gone
    path = tmp_path / "old.db"
    version_1_store(path)
    run_sql(path, "UPDATE sqlite_sequence SET seq = 9 WHERE name = 'events'")
    with SQLiteStore(path) as store:
        result = store.append("S/1", [NewEvent(type="T", data={})], 0)
        assert result.first_position == 10


def test_a_version_1_store_with_damaged_data_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    version_1_store(path)
    run_sql(path, "UPDATE events SET data = '{\"total\":' WHERE position = 2")
    with pytest.raises(StoreCorrupt, match=r"cannot upgrade .*old\.db.*JSON"):
        SQLiteStore(path)
    # the upgrade was rolled back: still the version 1 store, every row in place
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM stormgen_meta").fetchone() == ("1",)
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (3,)
    assert conn.execute("SELECT data FROM events WHERE position = 2").fetchone() == ('{"total":',)
    conn.close()


def test_an_empty_version_1_store_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_1)
    conn.execute("INSERT INTO stormgen_meta VALUES ('schema_version', '1')")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store:
        assert store.read_all() == []
        assert store.append("S/1", [NewEvent(type="T", data={})], 0).first_position == 1


def test_a_new_store_has_the_view_of_every_field(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with SQLiteStore(path) as store:
        event = NewEvent(type="T", data={"n": 1}, stream_id="7", metadata={"actor": "ada"})
        store.append("S/7", [event], 0)
    conn = sqlite3.connect(path)
    row = conn.execute("SELECT * FROM events_view").fetchone()
    assert row[:7] == (1, event.id, "T", 1, "S/7", "7", 1)
    assert row[8:] == ('{"n":1}', '{"actor":"ada"}')
    conn.close()


def test_a_damaged_envelope_is_reported_as_a_corrupt_store(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with SQLiteStore(path) as store:
        store.append("S/1", [NewEvent(type="T", data={"n": n}) for n in range(3)], 0)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE events SET envelope = '[\"x\", 1]' WHERE position = 2")
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store, pytest.raises(StoreCorrupt, match=r"events\.db.*damaged"):
        store.read_stream("S/1")


def test_a_version_2_stores_keys_move_to_the_internal_namespace(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SQLiteStore(path) as store:
        store.append("S/1", [NewEvent(type="T", data={})], 0, idempotency_key="internal/a")
    # turn it back into what stormgen wrote as schema version 2 (one namespace), with
    # keys an old client may have sent: already in a namespace's form, or colliding
    conn = sqlite3.connect(path)
    conn.execute("UPDATE idempotency_keys SET key = 'a'")
    for key in ("client/x", "internal/b", "b"):
        conn.execute(
            "INSERT INTO idempotency_keys SELECT ?, result FROM idempotency_keys LIMIT 1", (key,)
        )
    conn.execute("UPDATE stormgen_meta SET value = '2' WHERE key = 'schema_version'")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store:
        keys = ("a", "internal/a", "client/x", "internal/b", "b")
        kept = {k for k in keys if store.remembered(k) is not None}
        assert kept == {"internal/a", "client/x", "internal/b", "b"}
        again = store.append("S/1", [NewEvent(type="T", data={})], 0, idempotency_key="internal/a")
        assert again.duplicate and again.last_position == 1
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM stormgen_meta").fetchone() == (str(SCHEMA_VERSION),)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def test_a_version_3_store_gains_the_timers_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SQLiteStore(path) as store:
        store.append("S/1", [NewEvent(type="T", data={})], 0)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE process_timers")
    conn.execute("UPDATE stormgen_meta SET value = '3' WHERE key = 'schema_version'")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store:
        when = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
        with store.transaction() as uow:
            uow.set_timer("P", "k", "T", when)
        with store.reading() as uow:
            assert uow.next_timer_at() == when
        assert store.last_position() == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def events_table(path: Path) -> str:
    conn = sqlite3.connect(path)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
    conn.close()
    return str(sql)


def test_a_new_store_numbers_its_events_without_a_counter(tmp_path: Path) -> None:
    # schema 5: positions are the rowid, max(position) + 1 under the write lock; no
    # AUTOINCREMENT counter row is written by every commit
    path = tmp_path / "events.db"
    with SQLiteStore(path) as store:
        store.append("S/1", [NewEvent(type="T", data={}) for _ in range(2)], 0)
        assert store.append("S/2", [NewEvent(type="T", data={})], 0).first_position == 3
    assert "AUTOINCREMENT" not in events_table(path).upper()
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "sqlite_sequence" not in tables
    with SQLiteStore(path) as store:  # opened again: the numbering goes on
        assert store.append("S/1", [NewEvent(type="T", data={})], 2).first_position == 4
        assert [e.position for e in store.read_all()] == [1, 2, 3, 4]


def test_a_version_4_store_keeps_its_counter(tmp_path: Path) -> None:
    # a store made before schema 5 keeps its AUTOINCREMENT table: a position whose row
    # was deleted behind the store's back is still never given again
    path = tmp_path / "old.db"
    with SQLiteStore(path) as store:
        store.append("S/1", [NewEvent(type="T", data={}) for _ in range(3)], 0)
    conn = sqlite3.connect(path)
    columns = "position, type, stream, stream_version, recorded_at, envelope"
    conn.executescript(
        f"""
        ALTER TABLE events RENAME TO events_v5;
        CREATE TABLE events (
            position INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,
            stream TEXT NOT NULL, stream_version INTEGER NOT NULL,
            recorded_at TEXT NOT NULL, envelope TEXT NOT NULL,
            UNIQUE (stream, stream_version));
        INSERT INTO events ({columns}) SELECT {columns} FROM events_v5;
        DROP TABLE events_v5;
        UPDATE stormgen_meta SET value = '4' WHERE key = 'schema_version';
        PRAGMA user_version = 4;
        """
    )
    conn.execute("DELETE FROM events WHERE position = 3")
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store:
        assert store.append("S/1", [NewEvent(type="T", data={})], 2).first_position == 4
    assert "AUTOINCREMENT" in events_table(path).upper()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone() == (4,)
    conn.close()
