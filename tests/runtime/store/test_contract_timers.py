"""Contract of the processes' timers (`Timers`) on every backend: one per process,
instance and name; claimed soonest first; a claimed timer is skipped by any other
transaction claiming meanwhile; a failed attempt moves it later, the last one parks it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from store_backends import Backend

from stormgen.runtime.store import EventStore

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_timers_are_set_rescheduled_and_dropped(store: EventStore) -> None:
    with store.transaction() as uow:
        uow.set_timer("Shop.Checkout", "o1", "PaymentDue", T0 + timedelta(minutes=15))
        uow.set_timer("Shop.Checkout", "o2", "PaymentDue", T0 + timedelta(minutes=5))
        uow.set_timer("Shop.Checkout", "o2", "Reminder", T0 + timedelta(minutes=1))
        uow.set_timer("Shop.Other", "o1", "PaymentDue", T0)
        # rescheduling replaces the first
        uow.set_timer("Shop.Checkout", "o1", "PaymentDue", T0 + timedelta(minutes=20))
    with store.reading() as uow:
        timers = uow.list_timers("Shop.Checkout")
        assert [(t.key, t.name, t.due) for t in timers] == [
            ("o2", "Reminder", T0 + timedelta(minutes=1)),
            ("o2", "PaymentDue", T0 + timedelta(minutes=5)),
            ("o1", "PaymentDue", T0 + timedelta(minutes=20)),
        ]
        assert timers[0].run_at == timers[0].due and timers[0].attempts == 0
        assert len(uow.list_timers()) == 4
        assert uow.next_timer_at() == T0
    with store.transaction() as uow:
        assert uow.delete_timers("Shop.Checkout", "o2") == 2
        assert uow.delete_timer("Shop.Other", "o1", "PaymentDue") is True
        assert uow.delete_timer("Shop.Other", "o1", "PaymentDue") is False
    with store.reading() as uow:
        assert [t.key for t in uow.list_timers()] == ["o1"]


def test_due_timers_are_claimed_soonest_first(store: EventStore) -> None:
    with store.transaction() as uow:
        for minutes, key in ((3, "c"), (1, "a"), (2, "b"), (60, "late")):
            uow.set_timer("P", key, "T", T0 + timedelta(minutes=minutes))
    fired = []
    now = T0 + timedelta(minutes=10)
    while True:
        with store.transaction() as uow:
            timer = uow.claim_due_timer(now)
            if timer is None:
                break
            fired.append(timer.key)
            uow.delete_timer(timer.process, timer.key, timer.name)
    assert fired == ["a", "b", "c"]
    with store.reading() as uow:
        assert uow.next_timer_at() == T0 + timedelta(minutes=60)


def test_a_failed_attempt_moves_the_timer_later_and_the_last_parks_it(store: EventStore) -> None:
    with store.transaction() as uow:
        uow.set_timer("P", "k", "T", T0)
    with store.transaction() as uow:
        timer = uow.claim_due_timer(T0)
        assert timer is not None
        uow.retry_timer(timer, T0 + timedelta(seconds=30), 1, False)
    with store.transaction() as uow:
        assert uow.claim_due_timer(T0 + timedelta(seconds=29)) is None
        again = uow.claim_due_timer(T0 + timedelta(seconds=30))
        assert again is not None and again.attempts == 1 and again.due == T0
        uow.retry_timer(again, T0 + timedelta(seconds=60), 2, True)
    with store.reading() as uow:
        assert uow.claim_due_timer(T0 + timedelta(days=1)) is None
        assert uow.next_timer_at() is None
        (parked,) = uow.list_timers()
        assert parked.parked and parked.attempts == 2
    with store.transaction() as uow:
        # setting it again (a new due time) unparks it
        uow.set_timer("P", "k", "T", T0 + timedelta(hours=1))
    with store.reading() as uow:
        assert uow.next_timer_at() == T0 + timedelta(hours=1)


def test_a_claimed_timer_is_skipped_by_a_concurrent_claim(db_backend: Backend) -> None:
    url = db_backend.new_url()
    first, second = db_backend.open(url), db_backend.open(url)
    with first.transaction() as uow:
        uow.set_timer("P", "a", "T", T0)
        uow.set_timer("P", "b", "T", T0 + timedelta(seconds=1))
    claimed = threading.Event()
    release = threading.Event()
    seen: list[str | None] = []

    def hold() -> None:
        with first.transaction() as uow:
            timer = uow.claim_due_timer(T0 + timedelta(minutes=1))
            seen.append(timer.key if timer else None)
            claimed.set()
            release.wait(10)
            if timer is not None:
                uow.delete_timer(timer.process, timer.key, timer.name)

    holder = threading.Thread(target=hold)
    holder.start()
    assert claimed.wait(10)

    def other() -> None:
        # SQLite: waits for the holder's write lock, then sees its timer gone;
        # PostgreSQL: skips the locked row and takes the next one at once
        with second.transaction() as uow:
            timer = uow.claim_due_timer(T0 + timedelta(minutes=1))
            seen.append(timer.key if timer else None)
            if timer is not None:
                uow.delete_timer(timer.process, timer.key, timer.name)

    claimer = threading.Thread(target=other)
    claimer.start()
    claimer.join(0.5)
    release.set()
    holder.join(10)
    claimer.join(10)
    assert sorted(k for k in seen if k) == ["a", "b"]


def test_due_timers_are_claimed_in_batches(store: EventStore) -> None:
    with store.transaction() as uow:
        for n in range(7):
            uow.set_timer("P", f"k{n}", "T", T0 + timedelta(seconds=n))
    with store.transaction() as uow:
        first = uow.claim_due_timers(T0 + timedelta(minutes=1), 5)
        assert [t.key for t in first] == [f"k{n}" for n in range(5)]
        for t in first:
            uow.delete_timer(t.process, t.key, t.name)
    with store.transaction() as uow:
        assert [t.key for t in uow.claim_due_timers(T0 + timedelta(minutes=1), 5)] == ["k5", "k6"]
