"""Contract of the log (`LogWriter`, `StreamReader`, `LogReader`) on every backend: append,
order, concurrency, reading (bulk reads and pages keep every envelope field), time."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from runtime_support import ENVELOPE_FIELDS
from store_backends import Backend, ev

from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.errors import VersionConflict
from stormgen.runtime.store import ANY, NO_STREAM, EventStore

WRITER = Path(__file__).with_name("store_writer.py")


def test_append_returns_recorded_events_with_envelope(store: EventStore) -> None:
    before = datetime.now(UTC)
    result = store.append(
        "Shop.Order/1",
        [
            NewEvent(
                type="Shop.OrderPlaced",
                data={"customer": "Ada", "drinks": ["tea"], "total": "7.50"},
                stream_id="1",
                metadata={"correlation_id": "c1", "actor": "Customer"},
            )
        ],
        NO_STREAM,
    )
    assert (result.stream_version, result.first_position, result.last_position) == (1, 1, 1)
    assert not result.duplicate
    [stored] = store.read_stream("Shop.Order/1")
    assert stored == result.events[0]
    envelope = stored.to_json()
    assert list(envelope) == ENVELOPE_FIELDS
    assert envelope["data"] == {"customer": "Ada", "drinks": ["tea"], "total": "7.50"}
    assert envelope["metadata"] == {"correlation_id": "c1", "actor": "Customer"}
    assert envelope["recorded_at"].endswith("Z")
    assert before - timedelta(seconds=1) <= stored.recorded_at <= datetime.now(UTC)
    assert stored.recorded_at.utcoffset() == timedelta(0)
    assert RecordedEvent.from_json(envelope) == stored


def test_external_system_events_have_no_stream_id(store: EventStore) -> None:
    store.append("Shop.PaymentGateway", [ev(1)], ANY)
    assert "stream_id" not in store.read_all()[0].to_json()


def test_batch_append_is_all_or_nothing(store: EventStore) -> None:
    store.append("S/1", [ev(1)], 0)
    unencodable = NewEvent(type="T", data={"when": object()})
    with pytest.raises(TypeError):
        store.append("S/2", [ev(1), ev(2), unencodable], 0)
    assert store.stream_version("S/2") == 0
    # Two appends in one unit of work: the second conflicts, so the first is undone too.
    with pytest.raises(VersionConflict), store.transaction() as uow:
        uow.append("S/2", [ev(1), ev(2)], 0)
        uow.append("S/1", [ev(3)], 0)
    assert store.stream_version("S/2") == 0
    assert [e.position for e in store.read_all()] == [1]
    # The log goes on normally afterwards.
    assert store.append("S/2", [ev(1), ev(2)], 0).stream_version == 2


def test_text_needing_escapes_reads_back_as_written(store: EventStore) -> None:
    """Quotes, backslashes, control characters and non-ASCII text survive every append
    path (PostgreSQL builds a command's envelope in SQL from the JSON the client sent)."""
    odd = 'a "quoted" \\ back\\slash, tab\t, new\nline, \x01, café, 東京, 🙂'
    stream = f"Odd.Stream/{odd}"
    data = {odd: odd, "nested": {"list": [odd, 1, None, 2.5, True]}}
    small = NewEvent(type=f"Odd.{odd}", data=data, stream_id=odd, metadata={odd: odd})
    written = store.append(stream, [small], 0).events
    written += store.append(stream, [ev(i) for i in range(60)], 1).events
    stored = store.read_stream(stream)
    assert stored == written
    assert (stored[0].stream, stored[0].type, stored[0].stream_id) == (stream, small.type, odd)
    assert (stored[0].data, stored[0].metadata) == (data, {odd: odd})
    assert list(stored[0].data) == [odd, "nested"]
    assert store.read_all(0, 1) == stored[:1]


def test_large_batches_append_like_small_ones(store: EventStore) -> None:
    """Big batches take another path on PostgreSQL (COPY): same results."""
    store.append("Other/1", [ev(0)], 0)
    first = store.append("Big/1", [ev(i) for i in range(120)], 0, idempotency_key="big")
    assert (first.first_position, first.last_position, first.stream_version) == (2, 121, 120)
    assert [e.position for e in first.events] == list(range(2, 122))
    again = store.append("Big/1", [ev(i) for i in range(120)], 0, idempotency_key="big")
    assert again.duplicate and again.last_position == 121
    with pytest.raises(VersionConflict):
        store.append("Big/1", [ev(i) for i in range(60)], 119)
    stored = store.read_stream("Big/1")
    assert [e.stream_version for e in stored] == list(range(1, 121))
    assert [e.data["n"] for e in stored] == list(range(120))
    assert stored == first.events
    with store.transaction() as uow:
        result = uow.append("Big/1", [ev(i) for i in range(60)], 120)
        assert uow.stream_version("Big/1") == 180
    assert result.last_position == store.last_position() == 181


def test_wrong_expected_version_conflicts_and_writes_nothing(store: EventStore) -> None:
    store.append("S/1", [ev(1), ev(2)], 0)
    with pytest.raises(VersionConflict) as info:
        store.append("S/1", [ev(3)], 1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    with pytest.raises(VersionConflict):
        store.append("S/1", [ev(3)], NO_STREAM)
    assert store.stream_version("S/1") == 2
    assert store.last_position() == 2
    assert store.append("S/1", [ev(3)], ANY).stream_version == 3


def test_streams_are_versioned_and_positions_global(store: EventStore) -> None:
    store.append("A/1", [ev(1), ev(2)], 0)
    store.append("B/1", [ev(3)], 0)
    store.append("A/1", [ev(4)], 2)
    assert [(e.stream, e.stream_version, e.position) for e in store.read_all()] == [
        ("A/1", 1, 1),
        ("A/1", 2, 2),
        ("B/1", 1, 3),
        ("A/1", 3, 4),
    ]
    assert [e.data["n"] for e in store.read_stream("A/1", after_version=1)] == [2, 4]
    assert [e.data["n"] for e in store.read_stream("A/1", up_to_position=3)] == [1, 2]
    assert store.stream_version("missing") == 0
    assert store.read_stream("missing") == []


def test_read_all_filters_and_pages(store: EventStore) -> None:
    store.append("A/1", [ev(i, "X" if i % 2 else "Y") for i in range(1, 11)], 0)
    assert [e.position for e in store.read_all(3, limit=4)] == [4, 5, 6, 7]
    assert [e.position for e in store.read_all(types=["Y"])] == [2, 4, 6, 8, 10]
    assert [e.position for e in store.read_all(2, types=["X"], up_to_position=7)] == [3, 5, 7]
    # a page of a filtered read ends at its limit-th match, wherever that is
    assert [e.position for e in store.read_all(1, limit=3, types=["X"])] == [3, 5, 7]
    assert [e.position for e in store.read_all(7, limit=3, types=["X"])] == [9]
    assert [e.position for e in store.read_all(2, limit=2, up_to_position=3)] == [3]
    assert store.read_all(limit=0) == []
    assert [e.position for e in store.iter_all(batch_size=3)] == list(range(1, 11))
    event = store.read_event(6)
    assert event is not None and event.data["n"] == 6
    assert store.read_event(11) is None


def test_event_types_names_the_types_in_a_range(store: EventStore) -> None:
    store.append("A/1", [ev(i, "X" if i % 2 else "Y") for i in range(1, 11)], 0)
    store.append("B/1", [ev(11, "Z")], 0)
    assert store.event_types(0, 11) == {"X", "Y", "Z"}
    assert store.event_types(2, 3) == {"X"}  # (after, up to]: position 3 only
    assert store.event_types(9, 11) == {"Y", "Z"}
    assert store.event_types(10, 10) == set()
    assert store.event_types(11, 20) == set()  # nothing past the end of the log


def test_position_at_finds_the_log_as_it_was(store: EventStore) -> None:
    assert store.position_at(datetime.now(UTC)) == 0
    store.append("S/1", [ev(1), ev(2)], 0)
    middle = datetime.now(UTC)
    store.append("S/1", [ev(3)], 2)
    assert store.position_at(middle) == 2
    assert store.position_at(datetime.now(UTC) + timedelta(seconds=1)) == 3
    assert store.position_at(middle - timedelta(days=1)) == 0
    naive = middle.replace(tzinfo=None)
    assert store.position_at(naive) == 2


def test_sixteen_threads_race_for_each_version(store: EventStore) -> None:
    threads_n, rounds = 16, 8
    barrier = threading.Barrier(threads_n)
    wins: list[list[int]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    def worker(me: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()
                try:
                    store.append("Race/1", [ev(me)], r)
                except VersionConflict:
                    pass
                else:
                    wins[r].append(me)
                barrier.wait()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert [len(w) for w in wins] == [1] * rounds
    events = store.read_stream("Race/1")
    assert [e.stream_version for e in events] == list(range(1, rounds + 1))
    assert [e.data["n"] for e in events] == [w[0] for w in wins]


def test_concurrent_batch_writers_never_interleave(store: EventStore) -> None:
    results = []
    lock = threading.Lock()

    def writer(name: str) -> None:
        version = 0
        for _ in range(15):
            result = store.append(name, [ev(i) for i in range(20)], version)
            version = result.stream_version
            with lock:
                results.append(result)

    threads = [threading.Thread(target=writer, args=(f"W/{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    log = store.read_all()
    assert [e.position for e in log] == list(range(1, 601))
    by_position = {e.position: e for e in log}
    for result in results:
        span = range(result.first_position, result.last_position + 1)
        assert len(span) == 20
        assert {by_position[p].stream for p in span} == {result.stream}


def test_processes_race_on_one_stream(db_backend: Backend) -> None:
    url = db_backend.new_url()
    db_backend.open(url)  # create the schema once, before the race
    per_process = 15
    children = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, "Race/1", str(per_process), "--contend"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    acknowledged: dict[int, str] = {}
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        for line in out.splitlines()[1:]:
            position, event_id = line.split()
            assert int(position) not in acknowledged
            acknowledged[int(position)] = event_id
    store = db_backend.open(url)
    events = store.read_stream("Race/1")
    assert [e.stream_version for e in events] == list(range(1, 4 * per_process + 1))
    assert {e.position: e.id for e in events} == acknowledged


def test_concurrent_streams_from_threads_lose_nothing(store: EventStore) -> None:
    def writer(i: int) -> None:
        for v in range(10):
            store.append(f"T/{i}", [ev(v)], v)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [e.position for e in store.read_all()] == list(range(1, 161))
    for i in range(16):
        assert [e.data["n"] for e in store.read_stream(f"T/{i}")] == list(range(10))


def test_a_batch_larger_than_one_insert_statement_keeps_its_order(store: EventStore) -> None:
    # SQLite writes a batch 100 rows per INSERT: positions and versions stay consecutive
    store.append("A/1", [ev(0)], 0)
    result = store.append("B/1", [ev(i) for i in range(1, 251)], 0)
    assert (result.first_position, result.last_position, result.stream_version) == (2, 251, 250)
    events = store.read_stream("B/1")
    assert [e.data["n"] for e in events] == list(range(1, 251))
    assert [e.position for e in events] == list(range(2, 252))
    assert [(e.id, e.position) for e in events] == [(e.id, e.position) for e in result.events]


def test_interleaved_streams_read_back_in_order_with_their_metadata(store: EventStore) -> None:
    # Streams written in turns, with and without metadata: a stream read and paged log
    # reads must give each event's own data and metadata, in position order.
    for n in range(30):
        meta = {"actor": f"a{n}", "nested": {"k": [n]}} if n % 3 == 0 else {}
        store.append(f"S/{n % 2}", [NewEvent(type="T", data={"n": n}, metadata=meta)], ANY)
    everything = store.read_all()
    assert [e.position for e in everything] == sorted(e.position for e in everything)
    assert [e.data["n"] for e in everything] == list(range(30))
    for e in everything:
        n = e.data["n"]
        assert e.metadata == ({"actor": f"a{n}", "nested": {"k": [n]}} if n % 3 == 0 else {})
    paged = []
    after = 0
    while page := store.read_all(after_position=after, limit=7):
        paged.extend(page)
        after = page[-1].position
    assert paged == everything
    odd = store.read_stream("S/1")
    assert [e.data["n"] for e in odd] == list(range(1, 30, 2))
    assert [e.stream_version for e in odd] == list(range(1, 16))
    assert store.read_stream("S/1", after_version=14) == odd[14:]
    assert store.read_stream("S/none") == []
