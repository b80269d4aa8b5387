"""Contract of a unit of work (`UnitOfWork`) on every backend: what its roles write
commits or rolls back together, savepoints nest, and reads do not wait for writers."""

from __future__ import annotations

import threading
import time

import pytest
from store_backends import COLUMNS, VIEW, ev, order

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.errors import VersionConflict
from stormgen.runtime.store import EventStore
from stormgen.runtime.store.memory import MemoryStore


def test_transaction_rolled_back_writes_nothing(store: EventStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as uow:
        uow.append("S/1", [ev(1), ev(2)], 0)
        uow.set_checkpoint("c", 2)
        raise RuntimeError("handler failed")
    assert store.read_all() == []
    assert store.get_checkpoint("c") == 0
    assert store.last_position() == 0


def test_nested_transactions_roll_back_to_their_savepoint(store: EventStore) -> None:
    with store.transaction() as uow:
        uow.set_checkpoint("outer", 1)
        with pytest.raises(KeyError), store.transaction() as inner:
            inner.set_checkpoint("inner", 1)
            raise KeyError("inner fails")
        uow.append("S/1", [ev(1)], 0)
    assert store.get_checkpoint("outer") == 1
    assert store.get_checkpoint("inner") == 0
    assert store.stream_version("S/1") == 1


def test_an_append_inside_a_transaction_commits_or_rolls_back_with_it(
    store: EventStore,
) -> None:
    # the store's own append, called inside a transaction (a command of a group, a
    # policy's reaction in a pass): part of it, and of the savepoint it is in
    with store.transaction():
        store.append("S/1", [ev(1)], 0, idempotency_key="k1")
        with pytest.raises(VersionConflict):
            store.append("S/1", [ev(2), ev(3)], 0)  # refused: wrote nothing
        store.append("S/1", [ev(2)], 1)
        with pytest.raises(KeyError), store.transaction():
            store.append("S/2", [ev(4)], 0, idempotency_key="k2")
            raise KeyError("the unit fails after its append")
        assert store.append("S/1", [ev(5)], 2, idempotency_key="k1").duplicate
    assert [e.data["n"] for e in store.read_all()] == [1, 2]
    assert store.stream_version("S/2") == 0
    assert store.remembered("k1") is not None
    assert store.remembered("k2") is None


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


def test_key_and_events_commit_together(store: EventStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as uow:
        uow.put_key("Shop.Customer/1", b"k" * 32)
        uow.append("Shop.Customer/1", [NewEvent(type="T", data={"name": "enc"})], 0)
        raise RuntimeError("fail")
    assert store.get_key("Shop.Customer/1") is None
    assert store.last_position() == 0


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
