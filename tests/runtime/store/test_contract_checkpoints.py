"""Contract of the checkpoints (`Checkpoints`) on every backend: they only move forward
unless reset on purpose, and a consumer locks its own as it reads it."""

from __future__ import annotations

from stormgen.runtime.store import EventStore


def test_checkpoints_only_move_forward(store: EventStore) -> None:
    assert store.get_checkpoint("c") == 0
    assert store.set_checkpoint("c", 5) == 5
    assert store.set_checkpoint("c", 3) == 5
    assert store.get_checkpoint("c") == 5
    with store.transaction() as uow:
        assert uow.set_checkpoint("c", 7) == 7
        assert uow.set_checkpoint("c", 6) == 7
    assert store.get_checkpoint("c") == 7
    with store.transaction() as uow:
        uow.reset_checkpoint("c")  # a replay rewinds on purpose
    assert store.get_checkpoint("c") == 0


def test_a_locked_checkpoint_reads_as_it_was_and_resets_to_any_position(
    store: EventStore,
) -> None:
    with store.transaction() as uow:
        assert uow.lock_checkpoint("new") == 0  # a consumer without one yet
        uow.set_checkpoint("c", 5)
    with store.transaction() as uow:
        assert uow.lock_checkpoint("c") == 5  # locking writes it unchanged
        assert uow.get_checkpoint("c") == 5
        assert uow.set_checkpoint("c", 6) == 6
    assert store.get_checkpoint("c") == 6
    assert store.get_checkpoint("new") == 0
    with store.transaction() as uow:
        uow.reset_checkpoint("c", 2)  # back, to a position of its own
    assert store.get_checkpoint("c") == 2
