"""Contract of the idempotency records (`IdempotencyRecords`) on every backend: a key
stands for its first append, whose result a retry gets; imports and forks remember
the keys their events carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_backends import Backend, ev, make_backend

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.errors import VersionConflict
from stormgen.runtime.store import EventStore, fork


def test_idempotent_retry_returns_first_result_and_writes_nothing(store: EventStore) -> None:
    first = store.append("S/1", [ev(1), ev(2)], 0, idempotency_key="cmd-1")
    store.append("S/2", [ev(3)], 0)
    # A retry (even with a now-stale expected version) writes nothing.
    again = store.append("S/1", [ev(1), ev(2)], 0, idempotency_key="cmd-1")
    assert again.duplicate
    assert (again.stream_version, again.first_position, again.last_position) == (2, 1, 2)
    assert [e.id for e in again.events] == [e.id for e in first.events]
    assert store.last_position() == 3
    # The key alone decides: a retry aimed at another stream is the same duplicate.
    elsewhere = store.append("S/3", [ev(4)], 0, idempotency_key="cmd-1")
    assert elsewhere.duplicate and elsewhere.stream == "S/1"
    assert store.stream_version("S/3") == 0 and store.last_position() == 3
    # A conflicting command does not burn the key: a later retry can still succeed.
    with pytest.raises(VersionConflict):
        store.append("S/1", [ev(9)], 0, idempotency_key="cmd-2")
    assert store.append("S/1", [ev(9)], 2, idempotency_key="cmd-2").stream_version == 3
    # What each key stands for, as a command's pre-check reads it.
    assert store.remembered("cmd-1") == first.to_json()
    assert store.remembered("cmd-2") == {
        "stream": "S/1",
        "stream_version": 3,
        "first_position": 4,
        "last_position": 4,
    }
    assert store.remembered("cmd-3") is None


@pytest.mark.parametrize("target_kind", ["memory", "sqlite", "postgres"])
def test_a_fork_remembers_the_idempotency_keys_it_copies(target_kind: str, tmp_path: Path) -> None:
    """Keys travel in the events' metadata; an append split by the import's batches
    is remembered whole, and the fork answers a retry as the source would."""
    source_backend = make_backend("sqlite", tmp_path / "src")
    target_backend = make_backend(target_kind, tmp_path / "dst")
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    try:
        source = source_backend.open()

        def keyed(key: str, count: int) -> list[NewEvent]:
            meta = {"idempotency_key": key}
            return [NewEvent(type="Shop.Step", data={}, metadata=meta) for _ in range(count)]

        a, b = "internal/a", "client/c0ffee/Shop.Place/b"
        source.append("Shop.Order/1", keyed(a, 2), 0, idempotency_key=a)  # 1-2
        source.append("Shop.Order/2", keyed(b, 4), 0, idempotency_key=b)  # 3-6
        source.append("Shop.Order/1", [NewEvent(type="Shop.Step", data={})], 2)  # 7
        target = fork(source, target_backend.new_url(), batch_size=4)  # 1-4, 5-7
        target_backend.stores.append(target)
        for key in (a, b):
            assert target.remembered(key) == source.remembered(key)
        again = target.append("Shop.Order/2", keyed(b, 4), 0, idempotency_key=b)
        assert again.duplicate and (again.first_position, again.last_position) == (3, 6)
        assert target.last_position() == 7
    finally:
        source_backend.cleanup()
        target_backend.cleanup()


def test_an_import_remembers_a_key_written_before_namespaces_as_internal(
    backend: Backend,
) -> None:
    """Events written before schema version 3 carry keys without a namespace; the
    upgrade moved those keys to the internal one, and an import (a fork) does too."""
    source = backend.open()
    old = NewEvent(type="Shop.Step", data={}, metadata={"idempotency_key": "cmd-1"})
    source.append("Shop.Order/1", [old], 0)
    target = backend.open()
    target.import_events(source.read_all())
    assert target.remembered("cmd-1") is None
    assert target.remembered("internal/cmd-1") == {
        "stream": "Shop.Order/1",
        "stream_version": 1,
        "first_position": 1,
        "last_position": 1,
    }
