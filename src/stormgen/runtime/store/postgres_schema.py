"""The PostgreSQL store's schema: its tables, the append function, and how a schema is
recognised, created or upgraded (`prepare_schema`, when a store opens)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from stormgen.runtime.errors import StoreCorrupt
from stormgen.runtime.store._sql import drop_old_idempotency_index, recorded_schema_version
from stormgen.runtime.store.base import CLIENT_KEYS, INTERNAL_KEYS, SCHEMA_VERSION

# the processes' durable timers (schema 4); `run_at` is `due` until an attempt fails
_TIMERS = (
    """CREATE TABLE IF NOT EXISTS process_timers (
    process text NOT NULL, key text NOT NULL, name text NOT NULL, due timestamptz NOT NULL,
    run_at timestamptz NOT NULL, attempts integer NOT NULL, parked boolean NOT NULL,
    PRIMARY KEY (process, key, name))""",
    "CREATE INDEX IF NOT EXISTS process_timers_run_at ON process_timers (run_at)",
)

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS stormgen_meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS events (
        position bigint PRIMARY KEY,
        id text NOT NULL,
        type text NOT NULL,
        version integer NOT NULL,
        stream text NOT NULL,
        stream_id text,
        stream_version integer NOT NULL,
        recorded_at timestamptz NOT NULL,
        data jsonb NOT NULL,
        metadata jsonb NOT NULL,
        envelope text NOT NULL,
        UNIQUE (stream, stream_version)
    )""",
    "CREATE TABLE IF NOT EXISTS checkpoints (consumer text PRIMARY KEY, position bigint NOT NULL)",
    """CREATE TABLE IF NOT EXISTS snapshots (
        stream text PRIMARY KEY, version integer NOT NULL, position bigint NOT NULL,
        state jsonb NOT NULL, schema_hash text NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS stream_keys (stream text PRIMARY KEY, key bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS idempotency_keys (key text PRIMARY KEY, result jsonb NOT NULL)",
    """CREATE TABLE IF NOT EXISTS parked_failures (
        consumer text NOT NULL, position bigint NOT NULL, event_id text NOT NULL,
        error text NOT NULL, attempts integer NOT NULL, parked_at timestamptz NOT NULL,
        PRIMARY KEY (consumer, position))""",
    *_TIMERS,
    """CREATE TABLE IF NOT EXISTS stormgen_views (
        view text PRIMARY KEY, table_name text NOT NULL, columns jsonb NOT NULL)""",
]

# A command's append in one statement (one round trip; as a statement of its own, one
# transaction): lock, idempotency look-up, version check, insert, NOTIFY. PL/pgSQL
# takes a fresh snapshot per statement, so the reads after the LOCK see every commit
# made before it. A conflict or a used key is a status, not an error, so a caller's
# transaction stays usable.
_APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION stormgen_append(
    p_stream text, p_expected integer, p_events json, p_key text, p_channel text,
    OUT status text, OUT first_position bigint, OUT last_position bigint,
    OUT stream_version integer, OUT recorded_at timestamptz, OUT prior jsonb)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_variable
DECLARE
    n integer := json_array_length(p_events);
    before bigint;
    at_json text;
    stream_json text := to_json(p_stream)::text;
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;
    IF p_key IS NOT NULL THEN
        SELECT k.result INTO prior FROM idempotency_keys k WHERE k.key = p_key;
        IF FOUND THEN
            status := 'duplicate';
            RETURN;
        END IF;
    END IF;
    SELECT coalesce(max(e.stream_version), 0) INTO stream_version
        FROM events e WHERE e.stream = p_stream;
    IF p_expected IS NOT NULL AND p_expected <> stream_version THEN
        status := 'conflict';
        RETURN;
    END IF;
    SELECT coalesce(max(e.position), 0) INTO before FROM events e;
    recorded_at := clock_timestamp();
    -- as `format_time` writes it (a "Z", not "+00:00": decoding that is twice as slow)
    at_json := '"' || to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '"';
    -- each event is [id, type, version, stream_id, data, metadata]; a json value keeps
    -- its text as sent, so the envelope holds the client's JSON of the data as it is
    INSERT INTO events (position, id, type, version, stream, stream_id, stream_version,
                        recorded_at, data, metadata, envelope)
        SELECT before + i, x.e ->> 0, x.e ->> 1, (x.e ->> 2)::integer, p_stream,
               x.e ->> 3, stream_version + i, recorded_at, (x.e -> 4)::jsonb,
               (x.e -> 5)::jsonb,
               concat('[', x.e -> 0, ',', x.e -> 1, ',', x.e -> 2, ',', stream_json, ',',
                      x.e -> 3, ',', stream_version + i, ',', before + i, ',', at_json,
                      ',', x.e -> 4, ',', x.e -> 5, ']')
        FROM json_array_elements(p_events) WITH ORDINALITY AS x(e, i);
    first_position := CASE WHEN n > 0 THEN before + 1 ELSE before END;
    last_position := before + n;
    stream_version := stream_version + n;
    IF n > 0 THEN
        PERFORM pg_notify(p_channel, last_position::text);
    END IF;
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (key, result) VALUES (p_key, jsonb_build_object(
            'stream', p_stream, 'stream_version', stream_version,
            'first_position', first_position, 'last_position', last_position));
    END IF;
    status := 'ok';
END
$fn$
"""

# A stream's envelopes in stream order, one row each, always read through the
# (stream, stream_version) index. Left to itself the planner read a long stream by a
# bitmap scan while the table had no statistics (as after a burst of appends, with
# autovacuum behind or off), and by a scan of the whole table once it had them (a
# stream holding a few percent of the log): ~1.7x the index's time either way. The SET
# clauses hold for this function's statements only; its plans are cached per
# connection, as a prepared statement's are. Rows, not one text: the server joining
# the envelopes (`string_agg`) cost more than the client joining the rows.
_STREAM_ENVELOPES_FUNCTION = """
CREATE OR REPLACE FUNCTION stormgen_stream_envelopes(
    p_stream text, p_after integer, p_up_to bigint)
RETURNS SETOF text LANGUAGE plpgsql STABLE
SET enable_seqscan = off SET enable_bitmapscan = off AS $fn$
BEGIN
    IF p_up_to IS NULL THEN
        RETURN QUERY SELECT envelope FROM events
            WHERE stream = p_stream AND stream_version > p_after ORDER BY stream_version;
        RETURN;
    END IF;
    -- `position + 0`: not the log's index (read from the top, then sorted)
    RETURN QUERY SELECT envelope FROM events
        WHERE stream = p_stream AND stream_version > p_after AND position + 0 <= p_up_to
        ORDER BY stream_version;
END
$fn$
"""


#: The append function's earlier signatures (each new one is an overload): dropped
#: whenever a store opens, so only `_APPEND_FUNCTION` is left.
_OLD_APPEND_FUNCTIONS = (
    # schema 1
    "DROP FUNCTION IF EXISTS stormgen_append(text, integer, text[], text[], integer[],"
    " text[], jsonb[], jsonb[], text, text)",
    # schemas 2 to 4, before the events came as one JSON array
    "DROP FUNCTION IF EXISTS stormgen_append(text, integer, text[], text[], integer[],"
    " text[], text[], text[], text[], text, text)",
)

#: Schema 1 to 2: the envelope column, filled from the other columns (the append
#: function's old signature goes with `_OLD_APPEND_FUNCTIONS`).
_MIGRATE_1_TO_2 = (
    "ALTER TABLE events ADD COLUMN envelope text",
    "UPDATE events SET envelope = json_build_array(id, type, version, stream, stream_id,"
    " stream_version, position, recorded_at, data, metadata)::text",
    "ALTER TABLE events ALTER COLUMN envelope SET NOT NULL",
)

#: Schema 2 to 3: the keys of one global namespace become internal ones (a client's
#: key cannot be told from a policy's there, nor its caller known); a key that would
#: collide with one already in a namespace stays as it was, unreachable.
_MIGRATE_2_TO_3 = (
    f"UPDATE idempotency_keys k SET key = '{INTERNAL_KEYS}' || k.key"
    f" WHERE left(k.key, {len(INTERNAL_KEYS)}) <> '{INTERNAL_KEYS}'"
    f" AND left(k.key, {len(CLIENT_KEYS)}) <> '{CLIENT_KEYS}' AND NOT EXISTS"
    f" (SELECT 1 FROM idempotency_keys o WHERE o.key = '{INTERNAL_KEYS}' || k.key)"
)


def prepare_schema(conn: psycopg.Connection[Any], schema: str, channel: str, server: str) -> None:
    """Check the schema is a stormgen store's (or new) and not too new, then create what
    is missing or upgrade it (in the caller's transaction; one process at a time)."""
    # One creator at a time across processes; released at commit.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (channel,))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    tables = {
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        )
    }
    where = f"{server} schema {schema}"
    if "stormgen_meta" in tables:
        version = recorded_schema_version(conn, where)
        if version < 2:
            for statement in _MIGRATE_1_TO_2:
                conn.execute(statement)
        if version < 3:
            conn.execute(_MIGRATE_2_TO_3)
        if version < 4:
            for statement in _TIMERS:
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(
                "UPDATE stormgen_meta SET value = %s WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION),),
            )
        drop_old_idempotency_index(conn, "%s")
        for statement in _OLD_APPEND_FUNCTIONS:
            conn.execute(statement)
        _create_functions(conn)
        return
    if "events" in tables:
        raise StoreCorrupt(
            f"{where} has an events table that stormgen did not create; "
            "choose another schema (?schema=NAME)"
        )
    for statement in _SCHEMA:
        conn.execute(statement)
    _create_functions(conn)
    conn.execute(
        "INSERT INTO stormgen_meta (key, value) VALUES ('schema_version', %s)",
        (str(SCHEMA_VERSION),),
    )


def _create_functions(conn: psycopg.Connection[Any]) -> None:
    """Create (or replace with this version's) the append and read functions."""
    conn.execute(_APPEND_FUNCTION)
    conn.execute(_STREAM_ENVELOPES_FUNCTION)
