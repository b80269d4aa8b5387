"""The SQLite store's schema: its tables, and how a file is recognised, created or
upgraded (`prepare_schema`, when a store opens)."""

from __future__ import annotations

import sqlite3

from stormgen.runtime.errors import StoreCorrupt
from stormgen.runtime.store._sql import drop_old_idempotency_index, recorded_schema_version
from stormgen.runtime.store.base import CLIENT_KEYS, INTERNAL_KEYS, SCHEMA_VERSION

#: ``PRAGMA application_id`` of stormgen stores ("STRM"), to recognise foreign files.
APPLICATION_ID = 0x5354524D

#: The first bytes of every SQLite file.
SQLITE_HEADER = b"SQLite format 3\x00"

# Each event is stored as its envelope, the JSON array RecordedEvent decodes from (id,
# type, version, stream, stream_id, stream_version, position, recorded_at, data,
# metadata): a read joins the rows' texts and decodes a page in one msgspec call, where
# building the JSON per row in SQL was two thirds of a read. The columns queries filter
# on are stored beside it. The view ``events_view`` shows every field as a column
# (generated columns would cost each append a JSON parse per column).
#
# Positions are the rowid, taken as max(position) + 1 under the write lock: no
# AUTOINCREMENT since schema 5 (its counter row in ``sqlite_sequence`` was one more page
# written by every commit). No event row is ever deleted but all of them at once
# (`discard_everything`, which restarts positions at 1 either way), so the highest
# position is never given again. Stores made before keep their AUTOINCREMENT table and
# its counter (`counts_positions`).
_COLUMNS = """
    type TEXT NOT NULL,
    stream TEXT NOT NULL,
    stream_version INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    envelope TEXT NOT NULL,
    UNIQUE (stream, stream_version)"""
_EVENTS = "\n    position INTEGER PRIMARY KEY," + _COLUMNS
#: the events table of schemas 1 to 4 (what `_MIGRATE_1_TO_2` still builds)
_EVENTS_COUNTED = "\n    position INTEGER PRIMARY KEY AUTOINCREMENT," + _COLUMNS
_EVENTS_VIEW = """
CREATE VIEW IF NOT EXISTS events_view AS SELECT position,
    json_extract(envelope, '$[0]') AS id, type, json_extract(envelope, '$[2]') AS version,
    stream, json_extract(envelope, '$[4]') AS stream_id, stream_version, recorded_at,
    json_extract(envelope, '$[8]') AS data, json_extract(envelope, '$[9]') AS metadata
FROM events"""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS stormgen_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
{events}
);
CREATE TABLE IF NOT EXISTS checkpoints (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,
    schema_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_keys (
    stream TEXT PRIMARY KEY,
    key BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parked_failures (
    consumer TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    parked_at TEXT NOT NULL,
    PRIMARY KEY (consumer, position)
);
CREATE TABLE IF NOT EXISTS stormgen_views (
    view TEXT PRIMARY KEY,
    table_name TEXT NOT NULL,
    columns TEXT NOT NULL
);
""".replace("{events}", _EVENTS)
    + _EVENTS_VIEW
)

#: Schema 1 to 2: the events table rebuilt with envelopes, positions and their
#: AUTOINCREMENT counter kept (``_migrate`` moves the counter).
_MIGRATE_1_TO_2 = (
    "ALTER TABLE events RENAME TO events_v1",
    f"CREATE TABLE events ({_EVENTS_COUNTED})",
    "INSERT INTO events (position, type, stream, stream_version, recorded_at, envelope)"
    " SELECT position, type, stream, stream_version, recorded_at, json_array(id, type,"
    " version, stream, stream_id, stream_version, position, recorded_at, json(data),"
    " json(metadata)) FROM events_v1 ORDER BY position",
    _EVENTS_VIEW,
)

#: Schema 2 to 3: the keys of one global namespace become internal ones (a client's
#: key cannot be told from a policy's there, nor its caller known); a key that would
#: collide with one already in a namespace stays as it was, unreachable.
# the processes' durable timers (schema 4); `run_at` is `due` until an attempt fails
_TIMERS = (
    """CREATE TABLE IF NOT EXISTS process_timers (
    process TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, due TEXT NOT NULL,
    run_at TEXT NOT NULL, attempts INTEGER NOT NULL, parked INTEGER NOT NULL,
    PRIMARY KEY (process, key, name))""",
    "CREATE INDEX IF NOT EXISTS process_timers_run_at ON process_timers (run_at)",
)

_MIGRATE_2_TO_3 = (
    f"UPDATE OR IGNORE idempotency_keys SET key = '{INTERNAL_KEYS}' || key"
    f" WHERE substr(key, 1, {len(INTERNAL_KEYS)}) <> '{INTERNAL_KEYS}'"
    f" AND substr(key, 1, {len(CLIENT_KEYS)}) <> '{CLIENT_KEYS}'"
)


def prepare_schema(conn: sqlite3.Connection, where: str) -> None:
    """Check the database is a stormgen store (or empty) and not too new, then create or
    upgrade the schema under the write lock; sets WAL mode."""
    check_schema(conn, where)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-check under the write lock: another process may have created it.
        version = check_schema(conn, where)
        if not version:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for statement in _TIMERS:
                conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO stormgen_meta (key, value) VALUES (?, ?)",
                ("schema_version", str(SCHEMA_VERSION)),
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version < SCHEMA_VERSION:
            migrate(conn, version, where)
        if version:
            drop_old_idempotency_index(conn, "?")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection, version: int, where: str) -> None:
    """Upgrade a store of an older schema version (in the caller's transaction)."""
    if version < 2:
        counter = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        try:
            for statement in _MIGRATE_1_TO_2:
                conn.execute(statement)
        except sqlite3.OperationalError as exc:
            if "JSON" not in str(exc):
                raise
            # an event whose data or metadata is not JSON: nothing was changed
            raise StoreCorrupt(f"cannot upgrade {where}: an event's {exc}") from exc
        conn.execute("DROP TABLE events_v1")
        # positions are never reused: the new table continues the old counter
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
        if counter is not None:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", counter)
    if version < 3:
        conn.execute(_MIGRATE_2_TO_3)
    if version < 4:
        for statement in _TIMERS:
            conn.execute(statement)
    # schema 5 (new stores number events without AUTOINCREMENT): an older store keeps
    # its table and counter as they are (`counts_positions`)
    conn.execute(
        "UPDATE stormgen_meta SET value = ? WHERE key = 'schema_version'",
        (str(SCHEMA_VERSION),),
    )
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def counts_positions(conn: sqlite3.Connection) -> bool:
    """Whether the events table is an AUTOINCREMENT one (a store made before schema 5),
    whose positions follow its counter in ``sqlite_sequence``: such a store never
    gives a position again, even one whose row was deleted behind its back."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()
    return row is not None and "AUTOINCREMENT" in str(row[0]).upper()


def check_schema(conn: sqlite3.Connection, where: str) -> int:
    """Return the schema version (0: an empty database); raise if foreign or too new."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if not tables:
        return 0
    if app_id != APPLICATION_ID or "stormgen_meta" not in tables:
        sample = ", ".join(sorted(tables)[:5])
        raise StoreCorrupt(
            f"{where} is a SQLite database but not a stormgen store (tables: {sample})"
        )
    version = recorded_schema_version(conn, where)
    missing = {"events", "checkpoints", "snapshots", "stream_keys"} - tables
    if missing:
        raise StoreCorrupt(f"{where} lacks the stormgen table(s) {sorted(missing)}")
    if version < 1:
        raise StoreCorrupt(f"{where} has an invalid store schema version ({version})")
    return version
