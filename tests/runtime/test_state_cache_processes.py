"""The memory image across processes and restarts: the log decides, never a cached state.

Each process keeps the states it decided on (the state cache); another process writing
the same stream makes them stale. A stale state is never acted on: the append checks
the version it was decided at, so the command is decided again on the log. A restarted
process starts with nothing cached and rebuilds each state from the log when first used.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_support import Stores, make_stores
from test_state_cache import Open, Shelf, Take

from stormgen.runtime import Application, Rejected
from stormgen.runtime.application import STATE_CACHE
from stormgen.runtime.errors import StormgenRuntimeError

HERE = Path(__file__).resolve().parent

#: the other process: takes from the shelf until it is empty, prints how many it took
TAKER = """
import sys
sys.path.insert(0, {here!r})
from test_state_cache import Shelf, Take
from stormgen.runtime import Application, Rejected

app = Application.open({url!r}, aggregates=[Shelf()])
app.state(Shelf, "s1")  # cached before the race begins
taken = 0
print("ready", flush=True)
sys.stdin.readline()
try:
    while True:
        app.handle(Take(shelf_id="s1"))
        taken += 1
except Rejected:
    pass
finally:
    app.close()
print(taken, flush=True)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Stores two processes can open: a SQLite file, a PostgreSQL schema."""
    yield from make_stores(request.param, tmp_path)


def other_process(url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", TAKER.format(here=str(HERE), url=url)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_a_stale_state_never_accepts_what_the_log_rejects(shared: Stores) -> None:
    url = shared.url()
    mine = shared.app(url, aggregates=[Shelf()])
    mine.handle(Open(shelf_id="s1", count=1))
    assert mine.state_cache.get(Shelf.stream("s1")) is not None  # one item, cached
    theirs = other_process(url)
    taken, _ = theirs.communicate("go\n", timeout=60)
    assert taken.strip() == "1"
    # the cached state still says one item: deciding on it would take a second one
    with pytest.raises(Rejected, match="empty"):
        mine.handle(Take(shelf_id="s1"))
    assert [e.type for e in mine.history(Shelf, "s1")] == ["Depot.Stocked", "Depot.Taken"]


def test_two_processes_racing_on_one_stream_take_each_item_once(shared: Stores) -> None:
    url = shared.url()
    mine = shared.app(url, aggregates=[Shelf()])
    mine.handle(Open(shelf_id="s1", count=40))
    theirs = other_process(url)
    assert theirs.stdin is not None
    theirs.stdin.write("go\n")
    theirs.stdin.flush()
    taken = 0
    try:
        while True:
            mine.handle(Take(shelf_id="s1"))
            taken += 1
    except Rejected:
        pass
    out, _ = theirs.communicate(timeout=120)
    assert taken + int(out.strip()) == 40
    assert mine.state(Shelf, "s1").state.items == 0
    assert len(mine.history(Shelf, "s1")) == 41


def test_a_restarted_process_rebuilds_states_from_the_log_when_used(shared: Stores) -> None:
    url = shared.url()
    first = Application.open(url, aggregates=[Shelf()])
    first.handle(Open(shelf_id="s1", count=3))
    first.handle(Take(shelf_id="s1"))
    first.close()
    again = shared.app(url, aggregates=[Shelf()])
    assert len(again.state_cache) == 0  # nothing loaded before it is needed
    again.handle(Take(shelf_id="s1"))
    cached = again.state_cache.get(Shelf.stream("s1"))
    assert cached is not None and cached.state.items == 1 and cached.version == 3


def test_the_state_cache_size_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Application.open("memory://", aggregates=[Shelf()]) as app:
        assert app.state_cache.size == STATE_CACHE
    monkeypatch.setenv("STORMGEN_STATE_CACHE", "2")
    with Application.open("memory://", aggregates=[Shelf()]) as app:
        for shelf in ("a", "b", "c"):
            app.handle(Open(shelf_id=shelf, count=1))
        # the least recently used state is evicted; it is read from the log again
        assert len(app.state_cache) == 2 and app.state_cache.get(Shelf.stream("a")) is None
        assert app.state(Shelf, "a").state.items == 1
    monkeypatch.setenv("STORMGEN_STATE_CACHE", "many")
    with pytest.raises(StormgenRuntimeError, match="STORMGEN_STATE_CACHE='many'"):
        Application.open("memory://", aggregates=[Shelf()])
