"""The SQL stores decode a long read with Python's cycle collector paused."""

from __future__ import annotations

import gc

from runtime_support import collections_counted
from store_backends import Backend

from stormgen.runtime.envelope import NewEvent


def test_a_long_read_is_decoded_with_the_cycle_collector_paused(db_backend: Backend) -> None:
    store = db_backend.open()
    events = [NewEvent(type="T", data={"n": n, "note": "x" * 40}) for n in range(300)]
    store.append("S/1", events, 0)
    store.append("S/2", events[:2], 0)
    with collections_counted() as started:
        page = store.read_all(0, 1000)
        during_page = len(started)
        stream = store.read_stream("S/1")
        during_stream = len(started) - during_page
        short = store.read_stream("S/2")
    assert [e.data["n"] for e in page] == [*range(300), 0, 1]
    assert [e.data["n"] for e in stream] == list(range(300))
    assert [e.data["n"] for e in short] == [0, 1]
    # two dicts an event: ~200 collections without the pause (counted in bulk); the
    # few left are the driver's own work around the decode
    assert during_page < 50 and during_stream < 50
    assert gc.isenabled()
