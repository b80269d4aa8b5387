"""The PostgreSQL store's schema: upgrading a version 1 schema to the envelope column."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from runtime_support import pg_base_url, with_schema

from stormgen.runtime.envelope import NewEvent, format_time
from stormgen.runtime.errors import StoreCorrupt
from stormgen.runtime.store import SCHEMA_VERSION, open_store


def test_a_version_1_schema_is_upgraded_in_place(schema: str) -> None:
    base = pg_base_url()
    url = with_schema(base, schema)
    with open_store(url) as store:
        store.append("S/1", [NewEvent(type="T", data={"n": 1}, stream_id="1")], 0)
        store.append("S/2", [NewEvent(type="T", data={}, metadata={"actor": "ada"})], 0)
        before = store.read_all()
    # turn it back into what stormgen wrote as schema version 1
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute("ALTER TABLE events DROP COLUMN envelope")
        conn.execute("DROP FUNCTION stormgen_append")
        conn.execute(
            "CREATE FUNCTION stormgen_append(text, integer, text[], text[], integer[], text[],"
            " jsonb[], jsonb[], text, text) RETURNS void LANGUAGE sql AS ''"
        )
        conn.execute("UPDATE stormgen_meta SET value = '1' WHERE key = 'schema_version'")
    with open_store(url) as store:
        assert store.read_all() == before
        # both append paths: the function (a command's few events) and COPY (a batch)
        store.append("S/1", [NewEvent(type="T", data={"n": 2})], 1)
        store.append("S/3", [NewEvent(type="T", data={"n": i}) for i in range(60)], 0)
        assert [e.position for e in store.read_all()] == list(range(1, 64))
        assert [e.data["n"] for e in store.read_stream("S/1")] == [1, 2]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        version = conn.execute("SELECT value FROM stormgen_meta").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        functions = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'stormgen_append'"
            " AND pronamespace = %s::regnamespace",
            (schema,),
        ).fetchone()
        assert functions == (1,)
        # the data stays queryable as jsonb
        row = conn.execute("SELECT data ->> 'n' FROM events WHERE position = 1").fetchone()
        assert row == ("1",)


def test_a_damaged_envelope_is_reported_as_a_corrupt_store(schema: str) -> None:
    base = pg_base_url()
    with open_store(with_schema(base, schema)) as store:
        store.append("S/1", [NewEvent(type="T", data={"n": n}) for n in range(3)], 0)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"UPDATE {schema}.events SET envelope = '[1' WHERE position = 2")
        with pytest.raises(StoreCorrupt, match=f"{schema}.*damaged"):
            store.read_stream("S/1")


def test_a_version_2_schemas_keys_move_to_the_internal_namespace(schema: str) -> None:
    base = pg_base_url()
    url = with_schema(base, schema)
    with open_store(url) as store:
        store.append("S/1", [NewEvent(type="T", data={})], 0, idempotency_key="internal/a")
    # turn it back into what stormgen wrote as schema version 2 (one namespace), with
    # keys an old client may have sent: already in a namespace's form, or colliding
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute("UPDATE idempotency_keys SET key = 'a'")
        for key in ("client/x", "internal/b", "b"):
            conn.execute(
                "INSERT INTO idempotency_keys SELECT %s, result FROM idempotency_keys LIMIT 1",
                (key,),
            )
        conn.execute("UPDATE stormgen_meta SET value = '2' WHERE key = 'schema_version'")
    with open_store(url) as store:
        keys = ("a", "internal/a", "client/x", "internal/b", "b")
        kept = {k for k in keys if store.remembered(k) is not None}
        assert kept == {"internal/a", "client/x", "internal/b", "b"}
        again = store.append("S/1", [NewEvent(type="T", data={})], 0, idempotency_key="internal/a")
        assert again.duplicate and again.last_position == 1
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        version = conn.execute("SELECT value FROM stormgen_meta").fetchone()
        assert version == (str(SCHEMA_VERSION),)


def test_a_version_3_schema_gains_the_timers_table(schema: str) -> None:
    base = pg_base_url()
    url = with_schema(base, schema)
    with open_store(url) as store:
        store.append("S/1", [NewEvent(type="T", data={})], 0)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute("DROP TABLE process_timers")
        conn.execute("UPDATE stormgen_meta SET value = '3' WHERE key = 'schema_version'")
    with open_store(url) as store:
        when = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
        with store.transaction() as uow:
            uow.set_timer("P", "k", "T", when)
        with store.reading() as uow:
            assert uow.next_timer_at() == when
        assert store.last_position() == 1
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        version = conn.execute("SELECT value FROM stormgen_meta").fetchone()
        assert version == (str(SCHEMA_VERSION),)


def test_every_append_path_writes_the_envelope_time_as_format_time_does(schema: str) -> None:
    """`stormgen_append` and COPY write the same text (a "Z" time, six digits)."""
    base = pg_base_url()
    with open_store(with_schema(base, schema)) as store:
        store.append("S/1", [NewEvent(type="T", data={})], 0)
        store.append("S/2", [NewEvent(type="T", data={}) for _ in range(60)], 0)
        events = store.read_all()
    with psycopg.connect(base, autocommit=True) as conn:
        texts = [
            row[0]
            for row in conn.execute(f"SELECT envelope FROM {schema}.events ORDER BY position")
        ]
    assert len(texts) == len(events) == 61
    for text, event in zip(texts, events, strict=True):
        assert f',"{format_time(event.recorded_at)}",' in text
