"""Contract: bulk reads keep position order and every envelope field, pages included."""

from __future__ import annotations

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store import ANY, EventStore


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
