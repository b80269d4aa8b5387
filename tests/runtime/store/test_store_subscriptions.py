"""Contract: subscriptions (catch-up then live), commit order, checkpoints."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_backends import Backend

from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.store import EventStore
from stormgen.runtime.subscription import Subscription

WRITER = Path(__file__).with_name("store_writer.py")


def ev(n: int, type_: str = "Shop.Thing") -> NewEvent:
    return NewEvent(type=type_, data={"n": n})


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.005)
    raise AssertionError("condition not reached in time")


def test_catch_up_then_live(store: EventStore) -> None:
    for i in range(5):
        store.append(f"S/{i}", [ev(i)], 0)
    seen: list[RecordedEvent] = []
    sub = Subscription(store, batch_size=2).start(seen.append)
    try:
        wait_until(lambda: len(seen) == 5)
        appended_at = time.monotonic()
        store.append("S/0", [ev(5), ev(6)], 1)
        wait_until(lambda: len(seen) == 7)
        # In-process appends wake the subscriber at once, not at the next poll.
        assert time.monotonic() - appended_at < 0.5
        threading.Thread(target=store.append, args=("S/9", [ev(7)], 0)).start()
        wait_until(lambda: len(seen) == 8)
    finally:
        sub.stop()
        sub.join(5)
    assert sub.error is None
    assert [e.position for e in seen] == list(range(1, 9))
    assert [e.data["n"] for e in seen] == list(range(8))


def test_iterator_stops_and_filters_types(store: EventStore) -> None:
    store.append("S/1", [ev(1, "A"), ev(2, "B"), ev(3, "A")], 0)
    sub = Subscription(store, types=["A"])
    got: list[int] = []

    def consume() -> None:
        for event in sub:
            got.append(event.data["n"])

    thread = threading.Thread(target=consume)
    thread.start()
    wait_until(lambda: len(got) == 2)
    store.append("S/1", [ev(4, "B"), ev(5, "A")], 3)
    wait_until(lambda: len(got) == 3)
    sub.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert got == [1, 3, 5]
    assert sub.position == 5


def test_subscription_resumes_from_its_checkpoint(store: EventStore) -> None:
    store.append("S/1", [ev(i) for i in range(6)], 0)
    seen: list[int] = []
    with Subscription(store, consumer="Shop.Mailer", checkpoint=True) as sub:
        sub.start(lambda e: seen.append(e.position))
        wait_until(lambda: store.get_checkpoint("Shop.Mailer") == 6)
    assert seen == list(range(1, 7))
    store.append("S/1", [ev(6), ev(7)], 6)
    later: list[int] = []
    with Subscription(store, consumer="Shop.Mailer", checkpoint=True) as sub:
        sub.start(lambda e: later.append(e.position))
        wait_until(lambda: len(later) == 2)
    assert later == [7, 8]


def test_handler_error_stops_the_subscription(store: EventStore) -> None:
    store.append("S/1", [ev(1)], 0)

    def fail(event: RecordedEvent) -> None:
        raise ValueError("boom")

    sub = Subscription(store).start(fail)
    sub.join(5)
    assert isinstance(sub.error, ValueError)
    assert sub.stopped


def test_slow_transaction_that_began_first_is_not_skipped(store: EventStore) -> None:
    """A reader that saw a later commit never misses an earlier-begun slow one."""
    seen: list[int] = []
    sub = Subscription(store).start(lambda e: seen.append(e.position))
    slow_appended = threading.Event()
    release = threading.Event()

    def slow() -> None:
        with store.transaction() as uow:
            uow.append("Slow/1", [ev(1), ev(2)], 0)
            slow_appended.set()
            release.wait(10)

    def fast() -> None:
        store.append("Fast/1", [ev(3)], 0)

    slow_thread = threading.Thread(target=slow)
    slow_thread.start()
    assert slow_appended.wait(10)
    fast_thread = threading.Thread(target=fast)
    fast_thread.start()
    time.sleep(0.3)
    # Nothing is visible while the slow transaction is open.
    assert seen == []
    release.set()
    slow_thread.join(10)
    fast_thread.join(10)
    wait_until(lambda: len(seen) == 3)
    sub.stop()
    sub.join(5)
    assert seen == [1, 2, 3]
    assert [e.stream for e in store.read_all()] == ["Slow/1", "Slow/1", "Fast/1"]


def test_transaction_begun_first_appending_last_is_seen_after_the_fast_one(
    store: EventStore,
) -> None:
    seen: list[str] = []
    sub = Subscription(store).start(lambda e: seen.append(e.stream))
    began = threading.Event()
    go_on = threading.Event()

    def slow() -> None:
        with store.transaction() as uow:
            uow.set_checkpoint("slow", 1)  # the transaction is open and has written
            began.set()
            go_on.wait(10)
            uow.append("Slow/1", [ev(1)], 0)

    slow_thread = threading.Thread(target=slow)
    slow_thread.start()
    assert began.wait(10)
    fast_thread = threading.Thread(target=store.append, args=("Fast/1", [ev(2)], 0))
    fast_thread.start()
    time.sleep(0.2)
    go_on.set()
    slow_thread.join(10)
    fast_thread.join(10)
    wait_until(lambda: len(seen) == 2)
    sub.stop()
    sub.join(5)
    # Whatever order the writers were serialized in, the reader saw both, in log order.
    assert sorted(seen) == ["Fast/1", "Slow/1"]
    assert seen == [e.stream for e in store.read_all()]


def test_rolled_back_append_leaves_no_hole_to_wait_on(store: EventStore) -> None:
    seen: list[int] = []
    sub = Subscription(store).start(lambda e: seen.append(e.position))
    store.append("S/1", [ev(1)], 0)
    with pytest.raises(RuntimeError), store.transaction() as uow:
        uow.append("S/2", [ev(2), ev(3)], 0)
        raise RuntimeError("rolled back")
    result = store.append("S/3", [ev(4)], 0)
    wait_until(lambda: len(seen) == 2, timeout=5)
    sub.stop()
    sub.join(5)
    assert seen == [1, result.last_position]
    assert [e.data["n"] for e in store.read_all()] == [1, 4]


def test_other_process_appends_reach_a_waiting_subscriber(db_backend: Backend) -> None:
    url = db_backend.new_url()
    store = db_backend.open(url)
    seen: list[int] = []
    sub = Subscription(store).start(lambda e: seen.append(e.position))
    child = subprocess.run(
        [sys.executable, str(WRITER), url, "Other/1", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    wait_until(lambda: len(seen) == 3, timeout=10)
    sub.stop()
    sub.join(5)
    assert seen == [1, 2, 3]
