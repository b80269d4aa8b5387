"""Join two distinct pasts (docs/runtime.md, "Merging two stores"): two logs that share a
prefix and then diverged become one new log.

The common prefix is found by comparing the two logs' event ids position by position
(a fork's recorded origin is shown, never trusted). After it, both sides' events are
interleaved by their recorded time (A first on a tie) and numbered on from the prefix
without gaps; each keeps its id and carries ``metadata["merge"] = {"side", "position"}``.

An instance's stream (``Context.Aggregate/ID``) written after the fork on one side only
is taken whole. One written on both sides is a *conflict*: the merge stops and reports
it, or with ``prefer`` keeps the preferred side's events and records the other side's
as `$Disregarded` facts in the `$merge` stream. Streams without an instance
(``$system``, ``$failures``, ``$merge``, an external system's ``Context.System``) are
shared logs: both sides' events are kept, their stream versions numbered on.

The merged store (C) is written under the `MERGE_IN_PROGRESS` record, removed by the
last transaction: a store that still carries it is refused by `open_store`, and a
merge into it starts over.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from stormgen.runtime.codec import dumps
from stormgen.runtime.envelope import JSONDict, RecordedEvent, format_time
from stormgen.runtime.errors import StoreError
from stormgen.runtime.idempotency import FINGERPRINT
from stormgen.runtime.store.base import (
    IDEMPOTENCY_KEY,
    MERGE_IN_PROGRESS,
    ORIGIN,
    EventStore,
    ParkedFailure,
)
from stormgen.runtime.store.url import ForkProgress, encode_origin, open_store, origin_of

#: The stream of a merge's own facts: what it disregarded, and the merge itself.
MERGE_STREAM = "$merge"
#: An event of the side not preferred in a conflict, kept as a fact that was disregarded.
DISREGARDED = "$Disregarded"
#: The last event of a merged store: which stores were merged, how.
MERGED = "$Merged"
#: The metadata field in which a merged event records where it came from.
MERGE_METADATA = "merge"

Side = Literal["a", "b"]
#: A stream's state on one side, as JSON (None: it cannot be told), for the report.
StateOf = Callable[[EventStore, str], JSONDict | None]


class MergeError(StoreError):
    """Two stores that cannot be merged, or a target that cannot take the merge."""


@dataclass(slots=True)
class StreamSide:
    """What one side wrote to a conflicting stream after the fork, and where it got."""

    events: list[JSONDict]
    state: JSONDict | None = None

    def to_json(self) -> JSONDict:
        return {"events": self.events, "state": self.state}


@dataclass(slots=True)
class Conflict:
    """A stream written on both sides after the fork; ``kept``: the side whose events C
    has (None: the merge stopped)."""

    stream: str
    a: StreamSide
    b: StreamSide
    kept: Side | None = None

    def to_json(self) -> JSONDict:
        return {
            "stream": self.stream,
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "kept": self.kept,
        }


@dataclass(slots=True)
class MergeReport:
    """What a merge found and did (or, dry or stopped, would do)."""

    a: str
    b: str
    to: str
    common_prefix: int
    after_fork: dict[str, int]
    conflicts: list[Conflict] = field(default_factory=list)
    prefer: Side | None = None
    #: events of the merged log (0 when nothing was written)
    events: int = 0
    #: the not-preferred side's events recorded in `$merge` as disregarded
    disregarded: int = 0
    #: events both sides wrote after the fork (one id: a policy's command), kept once
    same: int = 0
    #: streams of the prefix forgotten on one side only (so forgotten in C); found
    #: while the keys are merged: empty in a dry run
    forgotten: list[str] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False

    @property
    def stopped(self) -> bool:
        """The merge stopped on conflicts (nothing was written)."""
        return bool(self.conflicts) and self.prefer is None

    def to_json(self) -> JSONDict:
        return {
            "a": self.a,
            "b": self.b,
            "to": self.to,
            "common_prefix": self.common_prefix,
            "after_fork": self.after_fork,
            "conflicts": [c.to_json() for c in self.conflicts],
            "prefer": self.prefer,
            "events": self.events,
            "disregarded": self.disregarded,
            "same": self.same,
            "forgotten": self.forgotten,
            "dry_run": self.dry_run,
            "written": self.written,
        }

    def lines(self) -> list[str]:
        """The report as text, for a person."""
        out = [
            f"merging {self.a} (a) and {self.b} (b) into {self.to}",
            f"common prefix: positions 1 to {self.common_prefix}",
            f"after the fork: {self.after_fork['a']} event(s) on a, {self.after_fork['b']} on b",
        ]
        if self.same:
            out.append(
                f"{self.same} event(s) after the fork on both sides (the same id: a "
                "policy's command sent on each), kept once"
            )
        if self.conflicts:
            out.append(f"{len(self.conflicts)} stream(s) written on both sides:")
        for c in self.conflicts:
            out.append(f"  {c.stream}")
            for side, part in (("a", c.a), ("b", c.b)):
                mark = ""
                if c.kept is not None:
                    mark = "  (kept)" if c.kept == side else "  (disregarded, in $merge)"
                out.append(f"    {side}: {len(part.events)} event(s){mark}")
                for e in part.events:
                    out.append(f"      {e['position']}  v{e['stream_version']}  {e['type']}")
                if part.state is not None:
                    out.append(f"      state: {dumps(part.state).decode()}")
        out.extend(f"forgotten on one side, so in the merge: {s}" for s in self.forgotten)
        if self.stopped:
            out.append(
                "nothing written: resolve the conflicts, or merge again with "
                "--prefer a or --prefer b (the other side's events are kept in $merge)"
            )
        elif self.dry_run:
            out.append(f"dry run: nothing written; the merge would hold {self.events} events")
        elif self.written:
            what = f"{self.events} events"
            if self.disregarded:
                other = "b" if self.prefer == "a" else "a"
                what += f", {self.disregarded} event(s) of {other} recorded in $merge"
                what += " as disregarded"
            out.append(f"merged into {self.to}: {what}")
        return out


def is_instance_stream(stream: str) -> bool:
    """Whether a stream is an aggregate instance's (``Context.Aggregate/ID``): such a
    stream written on both sides is a conflict; any other is a shared log."""
    return "/" in stream


def merge(
    a: EventStore | str,
    b: EventStore | str,
    to: EventStore | str,
    prefer: Side | None = None,
    *,
    dry_run: bool = False,
    states: StateOf | None = None,
    known_type: Callable[[str], bool] | None = None,
    policies: Collection[str] = (),
    progress: ForkProgress | None = None,
    batch_size: int = 1000,
) -> MergeReport:
    """Merge stores ``a`` and ``b`` into the new store ``to``; return the report.

    Conflicts stop the merge (the report lists them, nothing is written) unless
    ``prefer`` names the side to keep. ``dry_run`` writes nothing. ``states`` gives a
    stream's state for the report; ``known_type`` tells a model's event types (a store
    with others is of another model: `MergeError`). ``policies`` names the consumers
    whose checkpoints carry over: each resumes in C after the events its own side
    handled (their commands' idempotency keys are in C, so a reaction is never run
    twice); other consumers (views) start over. ``progress(done, total)`` after each
    batch. Stores given as URLs are opened and closed here.
    """
    if prefer not in (None, "a", "b"):
        raise ValueError(f"prefer must be 'a', 'b' or None, not {prefer!r}")
    opened: list[EventStore] = []
    try:
        sa = _opened(a, opened)
        sb = _opened(b, opened)
        plan = _Plan(sa, sb, prefer, batch_size)
        plan.check_models(known_type)
        plan.find_prefix()
        plan.scan_tails()
        report = plan.report(_url(to), states, dry_run)
        if report.stopped or dry_run:
            return report
        target = _target(to, opened)
        plan.write(target, report, set(policies), progress)
        return report
    finally:
        for store in opened:
            store.close()


def check_model(store: EventStore, known_type: Callable[[str], bool]) -> None:
    """Raise `MergeError` when the store holds event types (``$`` types aside) that
    ``known_type`` does not know: it is a store of another model."""
    foreign = sorted(
        t
        for t in store.event_types(0, store.last_position())
        if not t.startswith("$") and not known_type(t)
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise MergeError(
            f"{store.url} holds events the model does not define ({shown}): "
            "it is a store of another model"
        )


def _url(store: EventStore | str) -> str:
    return store if isinstance(store, str) else store.url


def _opened(store: EventStore | str, opened: list[EventStore]) -> EventStore:
    if isinstance(store, EventStore):
        return store
    found = open_store(store)
    opened.append(found)
    return found


def _target(to: EventStore | str, opened: list[EventStore]) -> EventStore:
    """The empty store to merge into; one an interrupted merge left is emptied first."""
    target = to if isinstance(to, EventStore) else open_store(to, interrupted_merge=True)
    if target is not to:
        opened.append(target)
    if target.get_meta(MERGE_IN_PROGRESS) is not None:
        target.discard_everything()
    elif target.last_position() != 0:
        raise MergeError(f"{target.url} is not empty: a merge makes a new store")
    return target


def _summary(event: RecordedEvent) -> JSONDict:
    return {
        "position": event.position,
        "stream_version": event.stream_version,
        "type": event.type,
        "id": event.id,
        "recorded_at": format_time(event.recorded_at),
    }


class _Plan:
    """The merge of two stores, step by step: prefix, tails, report, write."""

    def __init__(self, a: EventStore, b: EventStore, prefer: Side | None, batch: int) -> None:
        self.sides: dict[Side, EventStore] = {"a": a, "b": b}
        self.prefer = prefer
        self.batch = batch
        self.prefix = 0
        self.last: dict[Side, int] = {"a": a.last_position(), "b": b.last_position()}
        #: instance streams each side wrote after the fork
        self.written: dict[Side, set[str]] = {"a": set(), "b": set()}
        #: ids of events both sides wrote after the fork to a shared stream
        self.same: set[str] = set()
        self.conflicts: set[str] = set()

    def check_models(self, known_type: Callable[[str], bool] | None) -> None:
        if known_type is not None:
            for store in self.sides.values():
                check_model(store, known_type)

    def find_prefix(self) -> None:
        """The longest run of positions from 1 holding the same event ids on both sides."""
        a, b = self.sides["a"], self.sides["b"]
        end = min(self.last["a"], self.last["b"])
        position = 0
        page = max(self.batch, 10_000)
        while position < end:
            ids_a = a.event_ids(position, end, page)
            ids_b = b.event_ids(position, end, page)
            same = 0
            for ia, ib in zip(ids_a, ids_b, strict=False):
                if ia != ib:  # the same id at the same position
                    break
                same += 1
            if same:
                position = ids_a[same - 1][0]
            if same < page or not same:
                break
        self.prefix = position
        if position == 0:
            raise MergeError(
                f"{a.url} and {b.url} have no common prefix: their first events differ, "
                "so they are not forks of one log"
            )

    def scan_tails(self) -> None:
        shared: dict[Side, set[str]] = {"a": set(), "b": set()}
        for side in self.sides:
            written = self.written[side]
            for event in self._tail(side):
                if is_instance_stream(event.stream):
                    written.add(event.stream)
                else:
                    shared[side].add(event.id)
        self.conflicts = self.written["a"] & self.written["b"]
        self.same = shared["a"] & shared["b"]

    def _tail(self, side: Side) -> Iterator[RecordedEvent]:
        """A side's events after the prefix, up to its last position when the merge
        began (what is appended meanwhile waits for another merge)."""
        store = self.sides[side]
        return store.iter_all(self.prefix, up_to_position=self.last[side], batch_size=self.batch)

    def report(self, to: str, states: StateOf | None, dry_run: bool) -> MergeReport:
        after: dict[str, int] = {s: self.last[s] - self.prefix for s in self.sides}
        report = MergeReport(
            self.sides["a"].url, self.sides["b"].url, to, self.prefix, after, prefer=self.prefer
        )
        report.dry_run = dry_run
        for stream in sorted(self.conflicts):
            parts: dict[Side, StreamSide] = {}
            for side, store in self.sides.items():
                tail = store.read_stream(stream, up_to_position=self.last[side])
                events = [e for e in tail if e.position > self.prefix]
                state = states(store, stream) if states is not None else None
                parts[side] = StreamSide([_summary(e) for e in events], state)
            report.conflicts.append(Conflict(stream, parts["a"], parts["b"], self.prefer))
            if self.prefer is not None:
                report.disregarded += len(parts["b" if self.prefer == "a" else "a"].events)
        report.same = len(self.same)
        report.events = self.prefix + after["a"] + after["b"] - report.same + 1
        return report

    # -- writing ---------------------------------------------------------------------
    def write(
        self,
        target: EventStore,
        report: MergeReport,
        policies: set[str],
        progress: ForkProgress | None,
    ) -> None:
        with target.transaction() as uow:
            uow.set_meta(MERGE_IN_PROGRESS, format_time(datetime.now(UTC)))
        total = report.events - 1
        writer = _Writer(target, self.batch, progress, total)
        prefix_streams: set[str] = set()
        a = self.sides["a"]
        for event in a.iter_all(0, up_to_position=self.prefix, batch_size=self.batch):
            prefix_streams.add(event.stream)
            writer.copy(event)
        checkpoints = _Checkpoints(self.sides, policies, self.prefix)
        once: set[str] = set()
        for side, event in self._interleaved():
            position = writer.position + 1
            if is_instance_stream(event.stream) and self._disregarded(side, event.stream):
                writer.disregard(side, event)
            elif event.id in self.same and event.id in once:
                position -= 1  # the same event as the other side's (a command's id)
            else:
                if event.id in self.same:
                    once.add(event.id)  # the first in time is kept
                writer.take(side, event, shared=not is_instance_stream(event.stream))
            checkpoints.saw(side, event.position, position)
        writer.add_merged(self, report)
        writer.flush()
        report.events = writer.position
        self._finish(target, writer, checkpoints, prefix_streams, report)
        report.written = True

    def _disregarded(self, side: Side, stream: str) -> bool:
        return stream in self.conflicts and side != self.prefer

    def _interleaved(self) -> Iterator[tuple[Side, RecordedEvent]]:
        """Both tails by recorded time (a first on a tie), each side in its own order."""

        def keyed(side: Side, rank: int) -> Iterator[tuple[datetime, int, int, RecordedEvent]]:
            for n, event in enumerate(self._tail(side)):
                yield event.recorded_at, rank, n, event

        merged = heapq.merge(keyed("a", 0), keyed("b", 1), key=lambda t: (t[0], t[1], t[2]))
        for _, rank, _, event in merged:
            yield ("a" if rank == 0 else "b"), event

    def _finish(
        self,
        target: EventStore,
        writer: _Writer,
        checkpoints: _Checkpoints,
        prefix_streams: set[str],
        report: MergeReport,
    ) -> None:
        """Keys, checkpoints, parked failures and the origin; the in-progress mark goes."""
        keys = self._keys(writer.streams, prefix_streams, report)
        failures = self._failures(writer, checkpoints.carried)
        origin = {
            "kind": "merge",
            "a": {"store_id": self.sides["a"].identity(), "url": self.sides["a"].url},
            "b": {"store_id": self.sides["b"].identity(), "url": self.sides["b"].url},
            "common_prefix": self.prefix,
            "prefer": self.prefer,
            "merged_at": format_time(datetime.now(UTC)),
        }
        with target.transaction() as uow:
            for stream, key in keys.items():
                uow.put_key(stream, key)
            for consumer, position in checkpoints.positions().items():
                uow.reset_checkpoint(consumer, position)
            for failure in failures:
                uow.park_failure(failure)
            uow.set_meta(ORIGIN, encode_origin([origin]))
            uow.set_meta(MERGE_IN_PROGRESS, None)

    def _keys(
        self, streams: dict[str, Side | None], prefix_streams: set[str], report: MergeReport
    ) -> dict[str, bytes]:
        """Each stream's key: a stream of the prefix keeps its key only if neither side
        forgot it; one begun after the fork takes its writer's (the kept side's)."""
        found: dict[Side, dict[str, bytes | None]] = {}
        names = sorted(streams)
        for side, store in self.sides.items():
            with store.reading() as uow:
                found[side] = {s: uow.get_key(s) for s in names}
        keys: dict[str, bytes] = {}
        for stream in names:
            ka, kb = found["a"][stream], found["b"][stream]
            if stream in prefix_streams:
                if ka is not None and kb is not None:
                    owner = streams[stream] or "a"
                    keys[stream] = ka if owner == "a" else kb
                elif ka is not None or kb is not None:
                    report.forgotten.append(stream)
            else:
                owner = streams[stream] or ("a" if ka is not None else "b")
                key = ka if owner == "a" else kb
                if key is not None:
                    keys[stream] = key
        return keys

    def _failures(self, writer: _Writer, carried: set[str]) -> list[ParkedFailure]:
        """The parked failures of the consumers whose checkpoints carry over, at the
        events' positions in C (a failure on a disregarded event goes with it)."""
        out: dict[tuple[str, int], ParkedFailure] = {}
        for side, store in self.sides.items():
            for f in store.list_failures():
                if f.consumer not in carried:
                    continue
                position = f.position if f.position <= self.prefix else None
                if position is None:
                    position = writer.moved[side].get(f.position)
                if position is not None:
                    out.setdefault(
                        (f.consumer, position),
                        ParkedFailure(
                            f.consumer, position, f.event_id, f.error, f.attempts, f.parked_at
                        ),
                    )
        return list(out.values())


class _Checkpoints:
    """Where each carried consumer resumes in C: after the longest run of events from
    position 1 that were all handled on their own side (a prefix event: on either)."""

    def __init__(self, sides: dict[Side, EventStore], policies: set[str], prefix: int) -> None:
        self.stored: dict[str, dict[Side, int]] = {}
        for name in policies:
            self.stored[name] = {side: s.get_checkpoint(name) for side, s in sides.items()}
        self.carried = set(self.stored)
        self.reached: dict[str, int] = {}
        self.open: set[str] = set()
        for name, at in self.stored.items():
            handled = max(at.values())
            self.reached[name] = min(handled, prefix)
            if handled >= prefix:
                self.open.add(name)

    def saw(self, side: Side, original: int, position: int) -> None:
        for name in list(self.open):
            if original <= self.stored[name][side]:
                self.reached[name] = position
            else:
                self.open.discard(name)

    def positions(self) -> dict[str, int]:
        return self.reached


class _Writer:
    """Writes the merged log in batches, numbering positions and shared streams on."""

    def __init__(
        self, target: EventStore, batch: int, progress: ForkProgress | None, total: int
    ) -> None:
        self.target = target
        self.batch_size = batch
        self.progress = progress
        self.total = total
        self.pending: list[RecordedEvent] = []
        self.position = 0
        #: versions of the shared streams (numbered on in C)
        self.versions: dict[str, int] = {}
        #: every stream of C, with the side that wrote it after the fork (None: the prefix)
        self.streams: dict[str, Side | None] = {}
        #: each side's positions after the fork, as positions in C
        self.moved: dict[Side, dict[int, int]] = {"a": {}, "b": {}}

    def _add(self, event: RecordedEvent) -> None:
        self.pending.append(event)
        self.position = event.position
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.target.import_events(self.pending)
            self.pending = []
            if self.progress is not None:
                self.progress(min(self.position, self.total), self.total)

    def copy(self, event: RecordedEvent) -> None:
        """An event of the common prefix, as it is."""
        self.streams.setdefault(event.stream, None)
        if not is_instance_stream(event.stream):
            self.versions[event.stream] = event.stream_version
        self._add(event)

    def take(self, side: Side, event: RecordedEvent, *, shared: bool) -> None:
        """An event after the fork, at the next position, marked with where it came from."""
        position = self.position + 1
        version = event.stream_version
        if shared:
            version = self.versions.get(event.stream, 0) + 1
            self.versions[event.stream] = version
            self.streams.setdefault(event.stream, None)
        else:
            self.streams[event.stream] = side
        self.moved[side][event.position] = position
        metadata = dict(event.metadata)
        metadata[MERGE_METADATA] = {"side": side, "position": event.position}
        self._add(
            RecordedEvent(
                event.id,
                event.type,
                event.version,
                event.stream,
                event.stream_id,
                version,
                position,
                event.recorded_at,
                event.data,
                metadata,
            )
        )

    def _fact(self, type_: str, data: JSONDict, metadata: JSONDict, at: datetime) -> None:
        version = self.versions.get(MERGE_STREAM, 0) + 1
        self.versions[MERGE_STREAM] = version
        self.streams.setdefault(MERGE_STREAM, None)
        position = self.position + 1
        self._add(
            RecordedEvent(
                str(uuid.uuid4()),
                type_,
                1,
                MERGE_STREAM,
                None,
                version,
                position,
                at,
                data,
                metadata,
            )
        )

    def disregard(self, side: Side, event: RecordedEvent) -> None:
        """An event of the side not preferred in a conflict: a `$Disregarded` fact in
        `$merge` (its idempotency key stays used: its command is not run again)."""
        metadata: JSONDict = {MERGE_METADATA: {"side": side, "position": event.position}}
        for name in (IDEMPOTENCY_KEY, FINGERPRINT):  # a client's retry is told apart
            if name in event.metadata:
                metadata[name] = event.metadata[name]
        data = {"side": side, "stream": event.stream, "event": event.to_json()}
        self._fact(DISREGARDED, data, metadata, event.recorded_at)

    def add_merged(self, plan: _Plan, report: MergeReport) -> None:
        data: JSONDict = {
            "a": report.a,
            "b": report.b,
            "common_prefix": report.common_prefix,
            "prefer": report.prefer,
            "conflicts": [c.stream for c in report.conflicts],
        }
        self._fact(MERGED, data, {}, datetime.now(UTC))


def lineage(store: EventStore) -> list[JSONDict]:
    """Where a store came from: its origin records, the nearest first (a fork's source,
    then where that came from; or the merge that made it). Empty for an original."""
    return origin_of(store)


__all__ = [
    "DISREGARDED",
    "MERGED",
    "MERGE_STREAM",
    "Conflict",
    "MergeError",
    "MergeReport",
    "StreamSide",
    "check_model",
    "is_instance_stream",
    "lineage",
    "merge",
]
