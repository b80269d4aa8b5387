"""Contract of the parked failures (`Failures`) on every backend: one per consumer and
position, listed in position order."""

from __future__ import annotations

from datetime import UTC, datetime

from stormgen.runtime.store import EventStore, ParkedFailure


def test_parked_failures(store: EventStore) -> None:
    when = datetime(2026, 11, 27, 13, 5, tzinfo=UTC)
    with store.transaction() as uow:
        uow.park_failure(ParkedFailure("Kitchen.Brew", 7, "e7", "boom", 3, when))
        uow.park_failure(ParkedFailure("Mailer", 4, "e4", "smtp down", 5, when))
        uow.park_failure(ParkedFailure("Kitchen.Brew", 7, "e7", "boom again", 4, when))
    failures = store.list_failures()
    assert [(f.consumer, f.position, f.attempts) for f in failures] == [
        ("Mailer", 4, 5),
        ("Kitchen.Brew", 7, 4),
    ]
    assert failures[1].error == "boom again"
    assert failures[1].parked_at == when
    assert [f.position for f in store.list_failures("Mailer")] == [4]
    with store.transaction() as uow:
        assert uow.delete_failure("Mailer", 4) is True
        assert uow.delete_failure("Mailer", 4) is False
    assert [f.consumer for f in store.list_failures()] == ["Kitchen.Brew"]
