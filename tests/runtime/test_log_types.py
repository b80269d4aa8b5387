"""`LogTypes`: which event types lie past a position, read a stretch at a time."""

from __future__ import annotations

from pathlib import Path

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.passes import LogTypes
from stormgen.runtime.store.sqlite import SQLiteStore


class Looking:
    """A real store that remembers the stretches of log whose types were asked for."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.asked: list[tuple[int, int]] = []

    def event_types(self, after_position: int, up_to_position: int) -> set[str]:
        self.asked.append((after_position, up_to_position))
        return self.store.event_types(after_position, up_to_position)


def append(store: SQLiteStore, *types: str) -> int:
    return store.append("S/1", [NewEvent(type=t, data={}) for t in types], None).last_position


def test_each_pass_reads_only_what_was_appended_since(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "log.db") as store:
        looking = Looking(store)
        types = LogTypes(looking)  # type: ignore[arg-type]
        head = append(store, "A", "B", "A")
        assert types.after(0, head) == {"A", "B"}
        head = append(store, "C")
        # a stretch counts as seen at its end: B (position 2) still shows after 2
        assert types.after(2, head) == {"A", "B", "C"}
        assert types.after(3, head) == {"C"}
        assert types.after(head, head) == set()
        assert looking.asked == [(0, 3), (3, 4)]
        head = append(store, "B")
        assert types.after(4, head) == {"B"}
        assert looking.asked[-1] == (4, 5)


def test_a_position_before_what_was_read_starts_over(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "log.db") as store:
        looking = Looking(store)
        types = LogTypes(looking)  # type: ignore[arg-type]
        append(store, "Early")
        head = append(store, "Late")
        assert types.after(1, head) == {"Late"}
        # a consumer back from running alone, behind everyone: its stretch is read whole
        assert types.after(0, head) == {"Early", "Late"}
        assert looking.asked == [(1, 2), (0, 2)]
