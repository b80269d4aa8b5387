"""Contract of the store's own records (`StoreRecords`) and of `event_ids` on every
backend: records set, replaced, removed and rolled back; an identity given once; the
positions and ids a merge compares."""

from __future__ import annotations

import pytest
from store_backends import ev

from stormgen.runtime.store import EventStore


def test_records_are_set_replaced_removed_and_rolled_back(store: EventStore) -> None:
    assert store.get_meta("origin") is None
    with store.transaction() as uow:
        uow.set_meta("origin", "[1]")
        assert uow.get_meta("origin") == "[1]"
    with store.transaction() as uow:
        uow.set_meta("origin", "[2]")
    assert store.get_meta("origin") == "[2]"
    with pytest.raises(RuntimeError), store.transaction() as uow:
        uow.set_meta("origin", None)
        raise RuntimeError("rolled back with the transaction")
    assert store.get_meta("origin") == "[2]"
    with store.transaction() as uow:
        uow.set_meta("origin", None)
    assert store.get_meta("origin") is None


def test_a_store_gets_one_identity(store: EventStore) -> None:
    assert store.get_meta("store_id") is None
    first = store.identity()
    assert store.identity() == first == store.get_meta("store_id")
    assert len(first) == 36


def test_event_ids_are_the_positions_and_ids_of_a_range(store: EventStore) -> None:
    written = store.append("Shop.Thing/1", [ev(n) for n in range(5)], None).events
    assert store.event_ids(1, 4, 2) == [(e.position, e.id) for e in written[1:3]]
    assert store.event_ids(0, 5, 10) == [(e.position, e.id) for e in written]
    assert store.event_ids(5, 9, 10) == []


def test_discard_everything_leaves_an_empty_store(store: EventStore) -> None:
    store.append("Shop.Thing/1", [ev(1)], None)
    store.put_key("Shop.Thing/1", b"k" * 32)
    store.set_checkpoint("Shop.View", 1)
    store.ensure_view_table("Shop.View", {"n": "integer"})
    with store.transaction() as uow:
        uow.upsert_row("Shop.View", "1", {"n": 1})
        uow.set_meta("merge_in_progress", "now")
    store.discard_everything()
    assert store.last_position() == 0 and store.read_all() == []
    assert store.get_key("Shop.Thing/1") is None and store.get_checkpoint("Shop.View") == 0
    assert store.get_meta("merge_in_progress") is None
    # the log starts over at position 1
    assert store.append("Shop.Thing/2", [ev(2)], None).first_position == 1
