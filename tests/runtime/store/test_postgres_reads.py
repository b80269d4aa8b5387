"""How the PostgreSQL store reads a stream: by the stream's index, whatever the planner
would guess from the table's statistics (none after a burst of appends, or fresh ones)."""

from __future__ import annotations

import psycopg
import pytest
from runtime_support import pg_base_url, with_schema

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store import open_store

LONG = 3000


def _plans(conn: psycopg.Connection[object], query: str, params: tuple[object, ...]) -> list[str]:
    """The plans of the statements ``query`` runs inside functions (auto_explain)."""
    notes: list[str] = []
    conn.add_notice_handler(lambda d: notes.append(d.message_primary or ""))
    try:
        conn.execute("LOAD 'auto_explain'")
    except psycopg.Error as exc:
        pytest.skip(f"auto_explain is not installed on this server: {exc}")
    conn.execute("SET auto_explain.log_min_duration = 0")
    conn.execute("SET auto_explain.log_nested_statements = on")
    conn.execute("SET auto_explain.log_level = notice")
    conn.execute(query, params)
    return [n for n in notes if "FROM events" in n]


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
def test_a_long_stream_is_read_by_its_index(schema: str, analyzed: bool) -> None:
    base = pg_base_url()
    with open_store(with_schema(base, schema)) as store:
        # a burst: one long stream (COPY batches) beside a few hundred short ones
        for start in range(0, LONG, 100):
            batch = [NewEvent(type="T", data={"n": n}) for n in range(start, start + 100)]
            store.append("Long/1", batch, start)
        for i in range(300):
            store.append(f"Short/{i}", [NewEvent(type="T", data={"n": i})], 0)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"SET search_path = {schema}")
            if analyzed:
                conn.execute("ANALYZE events")
            for up_to in (None, 10**9, LONG // 2):
                plans = _plans(
                    conn, "SELECT * FROM stormgen_stream_envelopes('Long/1', 0, %s)", (up_to,)
                )
                assert len(plans) == 1
                assert "Index Scan using events_stream_stream_version_key" in plans[0]
                assert "Seq Scan" not in plans[0] and "Bitmap" not in plans[0]
        events = store.read_stream("Long/1")
        assert [e.data["n"] for e in events] == list(range(LONG))
        assert [e.stream_version for e in events] == list(range(1, LONG + 1))
        half = store.read_stream("Long/1", after_version=10, up_to_position=LONG // 2)
        assert [e.stream_version for e in half] == list(range(11, LONG // 2 + 1))
        assert store.read_stream("Long/1", after_version=LONG) == []
        assert [e.data["n"] for e in store.read_stream("Short/7")] == [7]


def test_opening_a_store_leaves_an_older_versions_read_function(schema: str) -> None:
    # stormgen before `stormgen_stream_envelopes` read streams with this function: a
    # process of that version may still run on the database, so opening keeps it
    old = (
        "CREATE FUNCTION stormgen_read_stream(p_stream text, p_after integer, p_up_to bigint)"
        " RETURNS text LANGUAGE sql STABLE AS $$ SELECT string_agg(envelope, ',') FROM"
        " (SELECT envelope FROM events WHERE stream = p_stream ORDER BY stream_version) e $$"
    )
    base = pg_base_url()
    with open_store(with_schema(base, schema)) as store:
        store.append("S/1", [NewEvent(type="T", data={"n": 1})], 0)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute(old)
    with open_store(with_schema(base, schema)) as store:
        assert [e.data["n"] for e in store.read_stream("S/1")] == [1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        row = conn.execute("SELECT stormgen_read_stream('S/1', 0, NULL)").fetchone()
        assert row is not None and '"n":1' in row[0]
