"""Contract of the snapshots (`Snapshots`) on every backend: one per stream, the latest."""

from __future__ import annotations

from stormgen.runtime.store import EventStore, Snapshot


def test_snapshots(store: EventStore) -> None:
    assert store.get_snapshot("Shop.Order/1") is None
    snap = Snapshot("Shop.Order/1", 3, 17, {"status": "paid", "total": "7.50"}, "h1")
    store.save_snapshot(snap)
    assert store.get_snapshot("Shop.Order/1") == snap
    assert store.get_snapshot("Shop.Order/1", max_position=16) is None
    assert store.get_snapshot("Shop.Order/1", max_position=17) == snap
    newer = Snapshot("Shop.Order/1", 5, 30, {"status": "done"}, "h2")
    store.save_snapshot(newer)
    assert store.get_snapshot("Shop.Order/1") == newer
    with store.transaction() as uow:
        uow.delete_snapshot("Shop.Order/1")
    assert store.get_snapshot("Shop.Order/1") is None
