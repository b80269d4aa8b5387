"""Contract: opening stores (URLs, refusals), forking, and durability under SIGKILL."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from runtime_support import pg_base_url, with_schema
from store_backends import Backend, make_backend

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.errors import (
    InvalidStoreURL,
    SchemaTooNew,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from stormgen.runtime.store import DEFAULT_STORE_URL, EventStore, fork, open_store
from stormgen.runtime.store.memory import MemoryStore
from stormgen.runtime.store.sqlite import SQLiteStore

WRITER = Path(__file__).with_name("store_writer.py")


def fill(store: EventStore, streams: int = 5, per_stream: int = 6) -> None:
    for v in range(per_stream):
        for s in range(streams):
            store.append(
                f"Shop.Order/{s}",
                [NewEvent(type="Shop.Step", data={"s": s, "v": v}, stream_id=str(s))],
                v,
            )
    store.append("Shop.PaymentGateway", [NewEvent(type="Shop.Paid", data={})], None)
    store.put_key("Shop.Order/1", b"1" * 32)
    store.put_key("Shop.Order/4", b"4" * 32)


# -- URLs ------------------------------------------------------------------------------
def test_memory_urls(tmp_path: Path) -> None:
    assert open_store("memory://") is not open_store("memory://")
    name = f"memory://shared-{uuid.uuid4().hex}"
    assert open_store(name) is open_store(name)


def test_default_url_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_STORE_URL == "sqlite:///./.stormgen/events.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STORMGEN_STORE", raising=False)
    with open_store() as store:
        assert isinstance(store, SQLiteStore)
    assert (tmp_path / ".stormgen" / "events.db").is_file()
    monkeypatch.setenv("STORMGEN_STORE", "memory://")
    with open_store() as store:
        assert isinstance(store, MemoryStore)
    absolute = tmp_path / "abs" / "e.db"
    with open_store(f"sqlite:///{absolute}?synchronous=normal") as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == absolute
        assert store.synchronous == "normal"


@pytest.mark.parametrize(
    "url",
    ["nothing", "mysql://x/y", "sqlite:///x.db?synchronous=maybe", "sqlite:///x.db?bogus=1"],
)
def test_bad_urls_are_refused(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidStoreURL):
        open_store(url)


# -- refusing to open ------------------------------------------------------------------
def test_garbage_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    with pytest.raises(StoreCorrupt, match=r"notes\.db"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == content


def test_damaged_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with open_store(f"sqlite:///{path}") as store:
        fill(store)
    raw = bytearray(path.read_bytes())
    raw[100:4096] = b"\xa5" * (4096 - 100)  # scribble over the schema page
    path.write_bytes(bytes(raw))
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with pytest.raises(StoreCorrupt, match=r"events\.db"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == bytes(raw)


def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    content = path.read_bytes()
    with pytest.raises(StoreCorrupt, match=r"app\.db.*not a stormgen store"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == content


def test_newer_sqlite_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with open_store(f"sqlite:///{path}") as store:
        fill(store)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE stormgen_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    content = path.read_bytes()
    with pytest.raises(SchemaTooNew, match="99"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == content


def test_newer_postgres_schema_is_refused() -> None:
    base = pg_base_url()
    schema = f"stormgen_test_new_{uuid.uuid4().hex[:10]}"
    try:
        with open_store(with_schema(base, schema)) as store:
            fill(store)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"UPDATE {schema}.stormgen_meta SET value = '99'")
        with pytest.raises(SchemaTooNew, match="99"):
            open_store(with_schema(base, schema))
        with psycopg.connect(base, autocommit=True) as conn:
            count = conn.execute(f"SELECT count(*) FROM {schema}.events").fetchone()
        assert count == (31,)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_foreign_postgres_schema_is_refused() -> None:
    base = pg_base_url()
    schema = f"stormgen_test_foreign_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"CREATE TABLE {schema}.events (id int)")
        with pytest.raises(StoreCorrupt, match=schema):
            open_store(with_schema(base, schema))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_unreachable_postgres_fails_fast_and_names_the_server() -> None:
    started = time.monotonic()
    # A closed port on this host, and a non-routable address that never answers.
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1\b"):
        open_store("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreUnavailable, match=r"10\.255\.255\.1:5432"):
        open_store("postgresql://postgres@10.255.255.1:5432/test?connect_timeout=1")
    assert time.monotonic() - started < 8


# -- fork ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source_kind", "target_kind"),
    [("sqlite", "memory"), ("memory", "sqlite"), ("sqlite", "postgres"), ("postgres", "sqlite")],
)
def test_fork_copies_the_log_up_to_a_position(
    source_kind: str, target_kind: str, tmp_path: Path
) -> None:
    source_backend = make_backend(source_kind, tmp_path / "src")
    target_backend = make_backend(target_kind, tmp_path / "dst")
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    try:
        source = source_backend.open()
        fill(source)
        source.delete_key("Shop.Order/4")  # forgotten stays forgotten
        progress: list[tuple[int, int]] = []
        target_url = target_backend.new_url()
        target = fork(
            source, target_url, 17, batch_size=5, progress=lambda d, t: progress.append((d, t))
        )
        target_backend.stores.append(target)
        assert [e.to_json() for e in target.read_all()] == [
            e.to_json() for e in source.read_all(up_to_position=17)
        ]
        assert progress[-1] == (17, 17)
        assert len(progress) == 4
        assert target.get_key("Shop.Order/1") == b"1" * 32
        assert target.get_key("Shop.Order/4") is None
        # The fork is a store of its own: its future diverges from the source's.
        version = target.stream_version("Shop.Order/1")
        result = target.append("Shop.Order/1", [NewEvent(type="Shop.Alt", data={})], version)
        assert result.last_position == 18
        assert source.read_event(18) != target.read_event(18)
        with pytest.raises(StoreError, match="not empty"):
            fork(source, target)
    finally:
        source_backend.cleanup()
        target_backend.cleanup()


def test_fork_whole_log_to_a_store_object(backend: Backend) -> None:
    source = backend.open()
    fill(source, streams=3, per_stream=4)
    target = backend.open()
    assert fork(source, target) is target
    assert [e.to_json() for e in target.read_all()] == [e.to_json() for e in source.read_all()]
    assert target.stream_version("Shop.Order/2") == 4


# -- durability --------------------------------------------------------------------------
def test_sigkilled_writer_loses_no_acknowledged_append(db_backend: Backend) -> None:
    kill_writer_and_check(db_backend, db_backend.new_url())


def test_sigkilled_writer_with_synchronous_normal(tmp_path: Path) -> None:
    backend = make_backend("sqlite", tmp_path)
    try:
        kill_writer_and_check(backend, backend.new_url() + "?synchronous=normal")
    finally:
        backend.cleanup()


def kill_writer_and_check(db_backend: Backend, url: str) -> None:
    """Kill a writer process at a random moment; every append it acknowledged is there."""
    db_backend.open(url).close()
    child = subprocess.Popen(
        [sys.executable, str(WRITER), url, "Crash/1", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(random.uniform(0.2, 0.8))
    child.send_signal(signal.SIGKILL)
    out, _err = child.communicate(timeout=30)
    acknowledged = [line.split() for line in out.splitlines() if line.strip()]
    # The last line may have been cut by the kill; every complete line counts.
    complete = [(int(p), i) for p, i in (a for a in acknowledged if len(a) == 2) if len(i) == 36]
    assert len(complete) > 5
    store = db_backend.open(url)
    stored = {e.position: e.id for e in store.read_stream("Crash/1")}
    for position, event_id in complete:
        assert stored.get(position) == event_id
    assert [e.stream_version for e in store.read_stream("Crash/1")] == list(
        range(1, len(stored) + 1)
    )


def test_an_append_after_sqlite_rolled_the_transaction_back_writes_nothing(
    tmp_path: Path,
) -> None:
    # inside a transaction an append has no savepoint of its own: when SQLite has
    # rolled the whole transaction back (a full disk, an I/O error), it must not run
    # on its own and commit
    with SQLiteStore(tmp_path / "events.db") as store:
        with pytest.raises(StoreError, match="rolled back"), store.transaction() as uow:
            uow.set_checkpoint("c", 1)
            uow._conn.execute("ROLLBACK")  # what SQLite does itself on those errors
            store.append("S/1", [NewEvent(type="T", data={})], 0)
        assert store.last_position() == 0
        assert store.get_checkpoint("c") == 0


@pytest.mark.parametrize("count", [1, 20])
def test_a_full_sqlite_file_fails_an_append_until_there_is_room(tmp_path: Path, count: int) -> None:
    # the append outside a transaction (a command's): the disk's failure is a
    # StoreFull, remembered, nothing half-written stays, and the next append works
    with SQLiteStore(tmp_path / "events.db") as store:
        store.append("S/1", [NewEvent(type="T", data={})], 0)
        conn = store._conn()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow
        big = [NewEvent(type="T", data={"text": "x" * (40_000 // count)}) for _ in range(count)]
        with pytest.raises(StoreFull):
            store.append("S/1", big, 1)
        assert isinstance(store.write_failure, StoreFull)
        assert [e.position for e in store.read_all()] == [1]
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert store.append("S/1", big, 1).last_position == 1 + count
        assert store.write_failure is None
