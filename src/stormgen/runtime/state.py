"""Instance states: loading them from snapshots and events, folding, the state cache.

`StateLoader` builds an aggregate instance's state from its latest usable snapshot and
the events after it, or from the `StateCache` (a bounded LRU of states, brought up to
date by reading only later events), and after a command folds the appended events
into the cached state and writes a snapshot when one is due.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from stormgen.runtime import codec
from stormgen.runtime.aggregate import Aggregate, Loaded
from stormgen.runtime.crypto import is_sealed
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.messages import Event
from stormgen.runtime.reading import UNSEALED, EventReader, KeyMark
from stormgen.runtime.rejections import DecodeError
from stormgen.runtime.store import EventStore, Snapshot

if TYPE_CHECKING:
    from stormgen.runtime.commands import CommandResult

log = logging.getLogger("stormgen.runtime")

S = TypeVar("S")


class Cached(NamedTuple):
    """A cached instance state: the log's stream folded up to `version`.

    `key` is the stream key its sealed (pii) fields were read with, taken before they
    were read, or `UNSEALED`: a state whose key has changed since (forgotten) is not
    used again. A named tuple: immutable, and made in half a frozen dataclass's time
    (one per command).
    """

    version: int
    position: int
    state: Any
    key: KeyMark


class StateCache:
    """A bounded LRU of instance states by stream: a cache of the log, never the truth.

    A hit is brought up to date by reading only the events after its version, and a
    command's append still checks the version it decided on, so a stale entry (another
    process wrote) costs a retry, never a wrong decision. Entries are immutable
    states shared between threads: aggregates must not change a state in place.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Cached] = OrderedDict()
        self._lock = threading.Lock()
        #: bumped by `forget`: a load that began before may not store what it read
        self.generation = 0
        #: per thread, the entries `held` keeps back until its transaction commits
        self._local = threading.local()
        #: how many threads are inside `held`: with none, no thread has entries held
        #: back and `get` and `put` skip looking (a thread counts itself in before it
        #: holds any)
        self._holding = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep this thread's entries to itself until the block ends without error.

        For a transaction that stays open across several commands: its states are
        not committed yet, so other threads must not decide on them (or show them),
        while this thread's later commands may. When the block ends the entries are
        put as usual; when it raises (e.g. the commit failed) they are dropped.
        """
        pending: dict[str, tuple[Cached, int]] = {}
        with self._lock:
            self._holding += 1
        self._local.pending = pending
        try:
            yield
        finally:
            self._local.pending = None
            with self._lock:
                self._holding -= 1
        for stream, (item, generation) in pending.items():
            self.put(stream, item, generation)

    @contextmanager
    def undone_on_error(self) -> Iterator[None]:
        """Inside `held`: if the block raises, forget what it put (a rolled-back savepoint).

        The states the block's commands cached were never committed; the ones held
        before it stay.
        """
        pending: dict[str, tuple[Cached, int]] | None = self._local.__dict__.get("pending")
        before = dict(pending or {})
        try:
            yield
        except BaseException:
            if pending is not None:
                pending.clear()
                pending.update(before)
            raise

    def get(self, stream: str) -> Cached | None:
        """The cached state of a stream, marked as recently used."""
        if self._holding:
            pending: dict[str, tuple[Cached, int]] | None = self._local.__dict__.get("pending")
            held = pending.get(stream) if pending is not None else None
            if held is not None and held[1] == self.generation:
                return held[0]
        with self._lock:
            item = self._items.get(stream)
            if item is not None:
                self._items.move_to_end(stream)
            return item

    def put(self, stream: str, item: Cached, generation: int) -> None:
        """Remember a state, unless a newer one is known or a forget came in between."""
        pending = self._local.__dict__.get("pending") if self._holding else None
        if pending is not None:
            held = pending.get(stream)
            if generation == self.generation and (held is None or held[0].version <= item.version):
                pending[stream] = (item, generation)
            return
        with self._lock:
            if generation != self.generation:
                return
            known = self._items.get(stream)
            if known is not None and known.version > item.version:
                return
            self._items[stream] = item
            self._items.move_to_end(stream)
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop(self, stream: str) -> None:
        """Forget a stream's entry (it lost a race, or its key changed)."""
        pending = self._local.__dict__.get("pending")
        if pending is not None:
            pending.pop(stream, None)
        with self._lock:
            self._items.pop(stream, None)

    def forget(self, stream: str) -> None:
        """Drop a stream's entry and refuse entries read before now (crypto-shredding)."""
        with self._lock:
            self.generation += 1
            self._items.pop(stream, None)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self.generation += 1
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class StateLoader:
    """Instance states from the log, through the state cache and snapshots.

    `reader.keys` is the key ring sealed fields are read with (a state holding pii is
    cached with the key it was read under).
    """

    def __init__(self, store: EventStore, reader: EventReader, cache: StateCache) -> None:
        self.store = store
        self.reader = reader
        self.cache = cache

    def state_hash(self, agg: Aggregate[Any]) -> str:
        """What a snapshot of the aggregate's state is checked against (its schema)."""
        salt = getattr(agg, "snapshot_schema", "")
        return f"{codec.schema_hash(agg.state_type)}{salt}"

    def load(self, agg: Aggregate[S], stream: str, at: int | None = None) -> Loaded[S]:
        """A stream's state (at a position): through the cache when it is the latest."""
        if at is None and self.cache.size:
            return self.load_latest(agg, stream)[0]
        return self.load_from_store(agg, stream, at)[0]

    def load_from_store(
        self, agg: Aggregate[S], stream: str, at: int | None = None
    ) -> tuple[Loaded[S], KeyMark]:
        """Load from the latest usable snapshot and later events; also the key marker."""
        state: Any = None
        version = position = 0
        key: KeyMark = UNSEALED
        if agg.snapshot_every:
            # a snapshot may hold decrypted pii: note the key before reading it
            key = self.reader.keys.key_for_reading(stream)
            snap = self.store.get_snapshot(stream, at)
            if snap is not None and snap.schema_hash == self.state_hash(agg):
                try:
                    state = codec.from_data(agg.state_type, snap.state)
                    version, position = snap.version, snap.position
                except DecodeError:
                    # snapshots are a cache: a stale one is rebuilt from events
                    state = None
            if state is None:
                key = UNSEALED
        if state is None:
            state = agg.initial_state()
        records = self.store.read_stream(stream, version, at)
        if records:
            state, key = self.fold(agg, state, records, key)
            version, position = records[-1].stream_version, records[-1].position
        return Loaded(stream, state, version, position), key

    def current(self, agg: Aggregate[S], stream: str) -> tuple[Loaded[S], KeyMark]:
        """The state now, read from the log (through the cache when there is one)."""
        if self.cache.size:
            return self.load_latest(agg, stream)
        return self.load_from_store(agg, stream)

    def fold(
        self,
        agg: Aggregate[S],
        state: S,
        records: Sequence[RecordedEvent],
        key: KeyMark,
    ) -> tuple[S, KeyMark]:
        """Evolve a state through recorded events; track the key sealed fields use."""
        events, key = self.reader.decode_all(records, key)
        evolve = agg.evolve
        for event, recorded in zip(events, records, strict=True):
            state = evolve(state, event, recorded)
        return state, key

    def load_latest(self, agg: Aggregate[S], stream: str) -> tuple[Loaded[S], KeyMark]:
        """The current state through the state cache: only later events are read."""
        cache = self.cache
        generation = cache.generation
        hit = cache.get(stream)
        if hit is not None and not (
            hit.key is UNSEALED or self.reader.keys.key_for_reading(stream) == hit.key
        ):
            # the stream was forgotten (or re-keyed) since: its pii must not show
            cache.drop(stream)
            hit = None
        if hit is None:
            loaded, key = self.load_from_store(agg, stream)
        else:
            records = self.store.read_stream(stream, hit.version)
            if not records:
                return Loaded(stream, hit.state, hit.version, hit.position), hit.key
            state, key = self.fold(agg, hit.state, records, hit.key)
            last = records[-1]
            loaded = Loaded(stream, state, last.stream_version, last.position)
        if loaded.version:
            entry = Cached(loaded.version, loaded.position, loaded.state, key)
            cache.put(stream, entry, generation)
        return loaded, key

    def trusted(
        self, agg: Aggregate[Any], stream: str, creates: bool, expected: int | None
    ) -> tuple[Any, int, KeyMark] | None:
        """A state to decide on without reading the log, if the cache has one.

        A cached entry whose key still holds; for a `creates` command with no entry, the
        initial state (an existing instance shows as a conflict). None when there is none
        or the caller's expected version differs (then the log must say).
        """
        hit = self.cache.get(stream)
        if hit is None:
            if creates and not expected:
                return agg.initial_state(), 0, UNSEALED
            return None
        if expected is not None and hit.version != expected:
            return None
        if hit.key is not UNSEALED and self.reader.keys.key_for_reading(stream) != hit.key:
            self.cache.drop(stream)
            return None
        return hit.state, hit.version, hit.key

    def after_append(
        self,
        agg: Aggregate[Any],
        state: Any,
        version: int,
        key: KeyMark,
        events: Sequence[Event],
        result: CommandResult,
        generation: int,
    ) -> None:
        """Fold the recorded events into the state: cache it, and snapshot when due."""
        cache = self.cache
        every = agg.snapshot_every
        snapshot = bool(every) and result.stream_version // every != version // every  # type: ignore[operator]
        if not (cache.size or snapshot):
            return
        stream = result.stream
        envelopes = result.events
        try:
            evolve = agg.evolve
            for event, envelope in zip(events, envelopes, strict=True):
                # the event as read back from the log, as a later load will see it
                typed = envelope.event
                state = evolve(state, event if typed is None else typed, envelope.recorded)
        except Exception:
            cache.drop(stream)
            log.exception("could not evolve %s after appending", stream)
            return
        if cache.size:
            if key is UNSEALED:
                for envelope in envelopes:
                    data = envelope.recorded.data
                    # a fresh envelope's data is what was written when nothing was sealed
                    if data is not envelope.raw and is_sealed(data):
                        key = self.reader.keys.key_for_reading(stream)
                        break
            last = envelopes[-1].position
            cache.put(stream, Cached(result.stream_version, last, state, key), generation)
        if not snapshot:
            return
        try:
            self.store.save_snapshot(
                Snapshot(
                    stream=stream,
                    version=result.stream_version,
                    position=result.events[-1].position,
                    state=agg.state_data(state),
                    schema_hash=self.state_hash(agg),
                )
            )
        except Exception:
            # a snapshot is only a cache: failing to write one must not fail the command
            log.exception("could not snapshot %s", stream)
