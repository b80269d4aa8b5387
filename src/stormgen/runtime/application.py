"""The application: commands in, events appended, state loaded, views and policies fed.

`Application` ties definitions (aggregates, views, policies, ports, message classes)
to an `EventStore`. It is thread-safe; one instance serves a whole process.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any, TypeVar, cast

from stormgen.runtime import codec
from stormgen.runtime.aggregate import Aggregate, Loaded, decide, id_text
from stormgen.runtime.consumers import Consumers, Progress, RetrySettings
from stormgen.runtime.crypto import KeyRing, is_sealed
from stormgen.runtime.envelope import NewEvent, RecordedEvent, new_event_id
from stormgen.runtime.errors import VersionConflict
from stormgen.runtime.idempotency import FINGERPRINT, ClientKey, fingerprint_of, stored_key
from stormgen.runtime.messages import REDACTED, Command, Envelope, Event, Message, info
from stormgen.runtime.policies import FakePort, Policy, Port
from stormgen.runtime.rejections import (
    AlreadyExists,
    DecodeError,
    KeyReused,
    NotFound,
    Rejected,
    UnknownCommand,
)
from stormgen.runtime.store import EventStore, Snapshot, open_store
from stormgen.runtime.store.base import IDEMPOTENCY_KEY, ParkedFailure, UnitOfWork
from stormgen.runtime.store.url import fork as fork_store
from stormgen.runtime.upcasting import Registry
from stormgen.runtime.views import View

log = logging.getLogger("stormgen.runtime")
_NONE: frozenset[str] = frozenset()
#: decoded envelopes kept for the consumers (a few seconds of events under load)
_SHARED_ENVELOPES = 4096

S = TypeVar("S")
T = TypeVar("T")
AggregateRef = Aggregate[Any] | type[Aggregate[Any]] | str
ViewRef = View[Any] | type[View[Any]] | str

#: The stream of failure events (service.md §7).
FAILURES_STREAM = "$failures"
#: The stream of `$Forgotten` markers written by `forget`.
SYSTEM_STREAM = "$system"
FORGOTTEN = "$Forgotten"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a handled command did: the instance, its new version, the recorded events.

    `duplicate` is True when the idempotency key had been used: nothing was written and
    the result is the first one's.
    """

    stream: str
    id: Any
    stream_id: str
    stream_version: int
    events: list[Envelope]
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        """`{"id", "stream_version", "events"}` as the HTTP API answers."""
        return {
            "id": self.stream_id,
            "stream_version": self.stream_version,
            "events": [e.to_json() for e in self.events],
        }


class _Unsealed:
    """The key marker of a cached state built from no encrypted field."""


UNSEALED = _Unsealed()

_data_of = attrgetter("data")
_type_of = attrgetter("type")
_version_of = attrgetter("version")
_Key = bytes | _Unsealed | None


@dataclass(frozen=True, slots=True)
class _Cached:
    """A cached instance state: the log's stream folded up to `version`.

    `key` is the stream key its sealed (pii) fields were read with, taken before they
    were read, or `UNSEALED`: a state whose key has changed since (forgotten) is not
    used again.
    """

    version: int
    position: int
    state: Any
    key: _Key


class StateCache:
    """A bounded LRU of instance states by stream: a cache of the log, never the truth.

    A hit is brought up to date by reading only the events after its version, and a
    command's append still checks the version it decided on, so a stale entry (another
    process wrote) costs a retry, never a wrong decision. Entries are immutable
    states shared between threads: aggregates must not change a state in place.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()
        #: bumped by `forget`: a load that began before may not store what it read
        self.generation = 0
        #: per thread, the entries `held` keeps back until its transaction commits
        self._local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep this thread's entries to itself until the block ends without error.

        For a transaction that stays open across several commands: its states are
        not committed yet, so other threads must not decide on them (or show them),
        while this thread's later commands may. When the block ends the entries are
        put as usual; when it raises (e.g. the commit failed) they are dropped.
        """
        pending: dict[str, tuple[_Cached, int]] = {}
        self._local.pending = pending
        try:
            yield
        finally:
            self._local.pending = None
        for stream, (item, generation) in pending.items():
            self.put(stream, item, generation)

    @contextmanager
    def undone_on_error(self) -> Iterator[None]:
        """Inside `held`: if the block raises, forget what it put (a rolled-back savepoint).

        The states the block's commands cached were never committed; the ones held
        before it stay.
        """
        pending: dict[str, tuple[_Cached, int]] | None = self._local.__dict__.get("pending")
        before = dict(pending or {})
        try:
            yield
        except BaseException:
            if pending is not None:
                pending.clear()
                pending.update(before)
            raise

    def get(self, stream: str) -> _Cached | None:
        """The cached state of a stream, marked as recently used."""
        pending: dict[str, tuple[_Cached, int]] | None = self._local.__dict__.get("pending")
        held = pending.get(stream) if pending is not None else None
        if held is not None and held[1] == self.generation:
            return held[0]
        with self._lock:
            item = self._items.get(stream)
            if item is not None:
                self._items.move_to_end(stream)
            return item

    def put(self, stream: str, item: _Cached, generation: int) -> None:
        """Remember a state, unless a newer one is known or a forget came in between."""
        pending = self._local.__dict__.get("pending")
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


def _add_once(table: dict[str, Any], name: str, item: Any, kind: str) -> None:
    # names are checkpoint and table names too: a silent overwrite would mix two up
    if name in table:
        raise ValueError(f"two {kind} definitions are named {name}")
    table[name] = item


def _ref_name(ref: Any) -> str:
    if isinstance(ref, str):
        return ref
    return cast(str, ref.name)


#: What a command answers without having written anything (see `handle_together`).
_DOMAIN_ANSWERS = (Rejected, NotFound, AlreadyExists, VersionConflict, DecodeError, KeyReused)


def _outcome(unit: Callable[[], T]) -> T | Exception:
    try:
        return unit()
    except Exception as exc:
        return exc


class Application:
    """A running service: definitions bound to a store.

    `ports` maps external system names (`Context.System`) to adapters; a system whose
    commands some policy issues and that has no adapter gets a `FakePort` answering
    with `system_events[name][0]`.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        aggregates: Iterable[Aggregate[Any]] = (),
        views: Iterable[View[Any]] = (),
        policies: Iterable[Policy] = (),
        ports: Mapping[str, Port] | None = None,
        system_events: Mapping[str, Sequence[type[Event]]] | None = None,
        messages: Iterable[type[Message]] = (),
        retry: RetrySettings | None = None,
        command_retries: int = 10,
        state_cache: int = 10_000,
        owns_store: bool = False,
    ) -> None:
        self.store = store
        #: instance states kept between commands (at most `state_cache`; 0: none)
        self.state_cache = StateCache(state_cache)
        self.owns_store = owns_store
        self.command_retries = command_retries
        self.aggregates: dict[str, Aggregate[Any]] = {}
        self.views: dict[str, View[Any]] = {}
        self.policies: dict[str, Policy] = {}
        self.system_events: dict[str, tuple[type[Event], ...]] = {
            name: tuple(classes) for name, classes in (system_events or {}).items()
        }
        self.registry = Registry()
        self._command_owner: dict[type[Command], Aggregate[Any]] = {}
        for agg in aggregates:
            _add_once(self.aggregates, agg.name, agg, "aggregate")
            for cmd in agg.commands:
                self.registry.add(cmd)
                if cmd in self._command_owner:
                    raise ValueError(f"two aggregates handle the command {info(cmd).name}")
                self._command_owner[cmd] = agg
            for evt in agg.events:
                self.registry.add(evt)
        for classes in self.system_events.values():
            for evt in classes:
                self.registry.add(evt)
        for view in views:
            _add_once(self.views, view.name, view, "view")
            for evt in view.events:
                self.registry.add(evt)
        for policy in policies:
            _add_once(self.policies, policy.name, policy, "policy")
            if policy.name in self.views:
                raise ValueError(f"a view and a policy are both named {policy.name}")
            for evt in policy.events:
                self.registry.add(evt)
        for msg in messages:
            self.registry.add(msg)
        self.ports: dict[str, Port] = dict(ports or {})
        for system, classes in self.system_events.items():
            if system not in self.ports and classes:
                self.ports[system] = FakePort(classes)
        self.keys = KeyRing(store)
        #: decoded envelopes by position, shared by the consumers (see `shared_envelope`)
        self._envelopes: dict[int, tuple[_Key, Envelope]] = {}
        self._envelopes_lock = threading.Lock()
        #: per thread: whether a `batch` is open (they do not nest)
        self._batch = threading.local()
        self.consumers = Consumers(self, retry or RetrySettings())

    def was_handled(self, idempotency_key: str | ClientKey) -> bool:
        """Whether a command with this idempotency key was already recorded (a string
        is the service's own key, as `handle` takes it)."""
        return self.store.remembered(stored_key(idempotency_key)) is not None

    @classmethod
    def open(cls, url: str | None = None, **definitions: Any) -> Application:
        """Open the store a URL names (see `open_store`) and bind the definitions to it.

        The application closes the store when it is closed.
        """
        store = open_store(url)
        try:
            return cls(store, owns_store=True, **definitions)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        """Stop background consumers; close the store if the application opened it."""
        self.consumers.stop()
        if self.owns_store:
            self.store.close()

    def __enter__(self) -> Application:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- definitions -------------------------------------------------------------------
    def aggregate(self, ref: AggregateRef) -> Aggregate[Any]:
        """The registered aggregate named (or given) by `ref`."""
        name = _ref_name(ref)
        try:
            return self.aggregates[name]
        except KeyError:
            raise UnknownCommand(f"no aggregate {name!r} in this service") from None

    def view(self, ref: ViewRef) -> View[Any]:
        """The registered view named (or given) by `ref`."""
        name = _ref_name(ref)
        try:
            return self.views[name]
        except KeyError:
            raise KeyError(f"no view {name!r} in this service") from None

    def aggregate_for(self, command: type[Command] | Command) -> Aggregate[Any]:
        """The aggregate that handles a command class."""
        cls = command if isinstance(command, type) else type(command)
        agg = self._command_owner.get(cls)
        if agg is None:
            meta = info(cls)
            if meta.aggregate is not None and meta.aggregate in self.aggregates:
                return self.aggregates[meta.aggregate]
            raise UnknownCommand(f"no aggregate of this service handles {meta.name}")
        return agg

    # -- reading events ------------------------------------------------------------------
    def envelope(self, recorded: RecordedEvent) -> Envelope:
        """Decrypt, upcast and decode a recorded event (unknown types stay untyped)."""
        data, gone = self.keys.decrypt(recorded.stream, recorded.data)
        cls = self.registry.get(recorded.type)
        if cls is None or not issubclass(cls, Event):
            if gone:
                data = dict(data)
                for name in gone:
                    data[name] = REDACTED
            return Envelope(recorded, None, data, recorded.version, frozenset(gone))
        event = self.registry.decode(recorded.type, recorded.version, data, gone)
        return Envelope(
            recorded, event, data, cls.__message__.version, frozenset(gone) if gone else _NONE
        )

    def shared_envelope(self, recorded: RecordedEvent) -> Envelope:
        """`envelope(recorded)`, decoded once for all the consumers reading it.

        Every view and policy reading an event would otherwise decrypt and decode it
        again. An entry is used only for the same event id (a rolled-back append may
        leave its position to another event) and, when the event holds sealed fields,
        only while the stream's key is the one taken before decrypting them: a
        `forget` is never undone by the cache (the state cache's rule).
        """
        hit = self._envelopes.get(recorded.position)
        if hit is not None:
            key, envelope = hit
            if envelope.recorded.id == recorded.id and (
                key is UNSEALED or self.keys.key_for_reading(recorded.stream) == key
            ):
                return envelope
        data = recorded.data
        key = UNSEALED
        if dict in map(type, data.values()) and is_sealed(data):
            key = self.keys.key_for_reading(recorded.stream)
        envelope = self.envelope(recorded)
        self._share(recorded.position, key, envelope)
        return envelope

    def _share(self, position: int, key: _Key, envelope: Envelope) -> None:
        with self._envelopes_lock:
            envelopes = self._envelopes
            envelopes[position] = (key, envelope)
            if len(envelopes) > _SHARED_ENVELOPES:
                # the oldest first: consumers read the log forwards
                del envelopes[next(iter(envelopes))]

    def decode(self, recorded: RecordedEvent) -> Event:
        """The typed event of a record (decrypted, upcast); `UnknownEventType` if unknown."""
        data = recorded.data
        if is_sealed(data):
            data, gone = self.keys.decrypt(recorded.stream, data)
            return self.registry.decode(recorded.type, recorded.version, data, gone)
        return self.registry.decode(recorded.type, recorded.version, data)

    def decode_all(self, records: Sequence[RecordedEvent]) -> list[Event]:
        """The typed events of many records, as `decode` gives each (faster in bulk)."""
        return self._decode_all(records, None)[0]

    def _decode_all(self, records: Sequence[RecordedEvent], key: _Key) -> tuple[list[Event], _Key]:
        """Decode records with one msgspec call per type and version.

        `key` is the stream key marker of a load: when it is `UNSEALED` and some record
        has sealed fields, the stream's key is taken before they are decrypted (a later
        forget then shows as a changed key).

        The common case (no encrypted field, one type) runs without a Python step per
        record: a page the store read as one text says when it holds no token
        (`EventPage.unsealed`); otherwise the sealed test first looks for any dict-valued
        field in the whole page at C level (a token is a dict; most pages have none).
        """
        datas = list(map(_data_of, records))
        if getattr(records, "unsealed", False) or dict not in map(
            type, chain.from_iterable(map(dict.values, datas))
        ):
            sealed = []
        else:
            sealed = [i for i, data in enumerate(datas) if is_sealed(data)]
        decode_many = self.registry.decode_many
        types = set(map(_type_of, records))
        if not sealed and len(types) == 1:
            versions = set(map(_version_of, records))
            if len(versions) == 1:
                return decode_many(types.pop(), versions.pop(), datas), key
        groups: dict[tuple[str, int], list[int]] = {}
        skip = set(sealed)
        kinds = zip(map(_type_of, records), map(_version_of, records), strict=True)
        for i, kind in enumerate(kinds):
            if i not in skip:
                groups.setdefault(kind, []).append(i)
        out: list[Any] = [None] * len(records)
        for (type_name, version), places in groups.items():
            batch = [datas[i] for i in places]
            for i, event in zip(places, decode_many(type_name, version, batch), strict=True):
                out[i] = event
        if sealed:
            if key is UNSEALED:
                key = self.keys.key_for_reading(records[sealed[0]].stream)
            for i in sealed:
                out[i] = self.decode(records[i])
        return out, key

    def events(
        self,
        after: int = 0,
        limit: int | None = None,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        up_to: int | None = None,
    ) -> list[Envelope]:
        """Read the global log (or one stream) after a position, decoded."""
        if stream is not None:
            records = [
                r
                for r in self.store.read_stream(stream, up_to_position=up_to)
                if r.position > after and (types is None or r.type in types)
            ]
            records = records[:limit] if limit is not None else records
        else:
            records = self.store.read_all(after, limit, types, up_to)
        return [self.envelope(r) for r in records]

    def history(self, aggregate: AggregateRef, ident: Any) -> list[Envelope]:
        """An instance's events in order; `NotFound` when it has none."""
        agg = self.aggregate(aggregate)
        records = self.store.read_stream(agg.stream(ident))
        if not records:
            raise NotFound(f"{agg.name} {id_text(ident)} does not exist")
        return [self.envelope(r) for r in records]

    # -- loading state ---------------------------------------------------------------------
    def _state_hash(self, agg: Aggregate[Any]) -> str:
        salt = getattr(agg, "snapshot_schema", "")
        return f"{codec.schema_hash(agg.state_type)}{salt}"

    def load(self, aggregate: AggregateRef, ident: Any, at: int | None = None) -> Loaded[Any]:
        """An instance's state from its latest usable snapshot and later events.

        With `at`, only events at or below that global position count. An instance
        without events loads as the initial state at version 0.
        """
        agg = self.aggregate(aggregate)
        return self._load(agg, agg.stream(ident), at)

    def _load(self, agg: Aggregate[S], stream: str, at: int | None = None) -> Loaded[S]:
        if at is None and self.state_cache.size:
            return self._load_latest(agg, stream)[0]
        return self._load_from_store(agg, stream, at)[0]

    def _load_from_store(
        self, agg: Aggregate[S], stream: str, at: int | None = None
    ) -> tuple[Loaded[S], _Key]:
        """Load from the latest usable snapshot and later events; also the key marker."""
        state: Any = None
        version = position = 0
        key: _Key = UNSEALED
        if agg.snapshot_every:
            # a snapshot may hold decrypted pii: note the key before reading it
            key = self.keys.key_for_reading(stream)
            snap = self.store.get_snapshot(stream, at)
            if snap is not None and snap.schema_hash == self._state_hash(agg):
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
            state, key = self._fold(agg, state, records, key)
            version, position = records[-1].stream_version, records[-1].position
        return Loaded(stream, state, version, position), key

    def _fold(
        self,
        agg: Aggregate[S],
        state: S,
        records: Sequence[RecordedEvent],
        key: _Key,
    ) -> tuple[S, _Key]:
        """Evolve a state through recorded events; track the key sealed fields use."""
        events, key = self._decode_all(records, key)
        evolve = agg.evolve
        for event, recorded in zip(events, records, strict=True):
            state = evolve(state, event, recorded)
        return state, key

    def _load_latest(self, agg: Aggregate[S], stream: str) -> tuple[Loaded[S], _Key]:
        """The current state through the state cache: only later events are read."""
        cache = self.state_cache
        generation = cache.generation
        hit = cache.get(stream)
        if hit is not None and not (
            hit.key is UNSEALED or self.keys.key_for_reading(stream) == hit.key
        ):
            # the stream was forgotten (or re-keyed) since: its pii must not show
            cache.drop(stream)
            hit = None
        if hit is None:
            loaded, key = self._load_from_store(agg, stream)
        else:
            records = self.store.read_stream(stream, hit.version)
            if not records:
                return Loaded(stream, hit.state, hit.version, hit.position), hit.key
            state, key = self._fold(agg, hit.state, records, hit.key)
            last = records[-1]
            loaded = Loaded(stream, state, last.stream_version, last.position)
        if loaded.version:
            entry = _Cached(loaded.version, loaded.position, loaded.state, key)
            cache.put(stream, entry, generation)
        return loaded, key

    def state(
        self, aggregate: AggregateRef, ident: Any, *, at: int | datetime | None = None
    ) -> Loaded[Any]:
        """An instance's state now, or as it was at a position or a time (time travel).

        Raises `NotFound` when the instance did not exist (then).
        """
        agg = self.aggregate(aggregate)
        position = self.store.position_at(at) if isinstance(at, datetime) else at
        loaded = self._load(agg, agg.stream(ident), position)
        if not loaded.exists:
            when = "" if at is None else f" at {at}"
            raise NotFound(f"{agg.name} {id_text(ident)} does not exist{when}")
        return loaded

    # -- commands --------------------------------------------------------------------------
    def handle(
        self,
        command: Command,
        *,
        expected_version: int | None = None,
        idempotency_key: str | ClientKey | None = None,
        actor: str | None = None,
        command_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        """Handle a command: load, decide, append atomically, snapshot.

        Raises `Rejected` (a guard), `NotFound` (no such instance), `AlreadyExists` (a
        `creates` command on an existing instance) or `VersionConflict` (the instance
        is not at `expected_version`). Without an `expected_version`, a concurrent
        writer's conflict is retried a few times. A used `idempotency_key` returns the
        first result and writes nothing: a string is the service's own key (a policy's,
        a program's), a `ClientKey` an API client's; a client's key used before for a
        different request raises `KeyReused`.
        """
        agg = self.aggregate_for(command)
        meta = info(command)
        ident = getattr(command, agg.id_field, None)
        if ident is None:
            if not (meta.creates and agg.id_type is uuid.UUID):
                wire = codec.wire_name(type(command), agg.id_field)
                raise DecodeError(f"the command has no {wire}", f"$.{wire}")
            ident = uuid.uuid4()
            command = dataclasses.replace(command, **{agg.id_field: ident})  # type: ignore[type-var]
        stream = agg.stream(ident)
        ident_text = id_text(ident)
        stored = mark = None
        if idempotency_key is not None:
            stored, mark = stored_key(idempotency_key), fingerprint_of(idempotency_key)
            prior = self._idempotent_result(stored, mark, ident)
            if prior is not None:
                return self._with_first_id(agg, prior)
        cid = command_id or new_event_id()
        event_metadata: dict[str, Any] = dict(metadata or {})
        event_metadata.update(
            command_id=cid,
            correlation_id=correlation_id or cid,
            causation_id=causation_id or cid,
        )
        if actor is not None:
            event_metadata["actor"] = actor
        if stored is not None:
            # kept in the log, so a copy of it (a fork) remembers the key too
            event_metadata[IDEMPOTENCY_KEY] = stored
            if mark is not None:
                event_metadata[FINGERPRINT] = mark
        attempt = 0
        cache = self.state_cache
        # The first try may decide on the cached state without reading the log: the
        # append checks the version it decided on, so a stale entry only costs a
        # conflict. Any other outcome (a rejection, an error, no events) is confirmed
        # on the log's current state before it is answered.
        trusting = bool(cache.size)
        while True:
            generation = cache.generation
            loaded = (
                self._trusted(agg, stream, meta.creates, expected_version) if trusting else None
            )
            confirmed = loaded is None
            if loaded is None:
                full, key = (
                    self._load_latest(agg, stream)
                    if cache.size
                    else self._load_from_store(agg, stream)
                )
                loaded = full.state, full.version, key
            state, version, key = loaded
            try:
                if meta.creates and version:
                    raise AlreadyExists(f"{agg.name} {ident_text} already exists")
                if not meta.creates and not version:
                    raise NotFound(f"{agg.name} {ident_text} does not exist")
                if expected_version is not None and version != expected_version:
                    raise VersionConflict(stream, expected_version, version)
                events = decide(agg, state, command)
            except Exception:
                if confirmed:
                    raise
                trusting = False
                continue
            if not events:
                if not confirmed:
                    trusting = False
                    continue
                return CommandResult(stream, ident, ident_text, version, [])
            try:
                result = self._append(
                    stream, ident_text, events, version, stored, event_metadata, ident
                )
            except VersionConflict:
                cache.drop(stream)
                if not confirmed:
                    # the cache was behind the log: read it and decide again, no pause
                    # (the log then says which error, if any: AlreadyExists for a
                    # create, VersionConflict for another expected version)
                    trusting = False
                    continue
                attempt += 1
                if expected_version is not None or attempt > self.command_retries:
                    raise
                # a random pause, growing with each loss, keeps racing writers from
                # colliding again in lockstep
                time.sleep(random.uniform(0, 0.001 * 2**attempt))
                continue
            if result.duplicate:
                return self._with_first_id(agg, result)
            self._after_append(agg, state, version, key, events, result, generation)
            return result

    def handle_together(self, units: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run units of command work (say ``lambda: app.handle(cmd)``) with one commit.

        Group commit: the units run one after the other in one store transaction, each
        append in a savepoint of its own (its nested transaction), and become durable
        together at the one COMMIT; nothing is returned before it. Each unit's outcome
        is its result or the exception it raised: a domain answer (`Rejected`,
        `NotFound`, `AlreadyExists`, `VersionConflict`, `DecodeError`) wrote nothing
        and fails that unit only. Any other error (the store failing, the commit
        failing, a bug in a unit) rolls the whole transaction back; then each unit runs
        again alone, in a transaction of its own, so one unit's failure is no other's.
        States cached meanwhile stay this thread's own until the commit
        (`StateCache.held`). The store must make nested transactions savepoints (the
        SQL stores do; the memory store does not).
        """
        if len(units) == 1:
            return [_outcome(units[0])]
        outcomes: list[T | Exception] = []
        try:
            with self.batch():
                for unit in units:
                    try:
                        outcomes.append(unit())
                    except _DOMAIN_ANSWERS as exc:
                        outcomes.append(exc)
        except Exception:
            log.warning("a group of %d commands failed; running each alone", len(units))
            return [_outcome(unit) for unit in units]
        return outcomes

    @contextmanager
    def batch(self) -> Iterator[UnitOfWork]:
        """One store transaction for several commands of this thread (a group, a
        policy's batch), committed when the block ends; rolled back if it raises.

        States cached meanwhile stay this thread's own until the commit
        (`StateCache.held`).
        """
        local = self._batch
        if getattr(local, "open", False):
            raise RuntimeError("Application.batch does not nest")
        local.open = True
        try:
            with self.state_cache.held(), self.store.transaction() as uow:
                yield uow
        finally:
            local.open = False

    def _trusted(
        self, agg: Aggregate[Any], stream: str, creates: bool, expected: int | None
    ) -> tuple[Any, int, _Key] | None:
        """A state to decide on without reading the log, if the cache has one.

        A cached entry whose key still holds; for a `creates` command with no entry, the
        initial state (an existing instance shows as a conflict). None when there is none
        or the caller's expected version differs (then the log must say).
        """
        hit = self.state_cache.get(stream)
        if hit is None:
            if creates and not expected:
                return agg.initial_state(), 0, UNSEALED
            return None
        if expected is not None and hit.version != expected:
            return None
        if hit.key is not UNSEALED and self.keys.key_for_reading(stream) != hit.key:
            self.state_cache.drop(stream)
            return None
        return hit.state, hit.version, hit.key

    @staticmethod
    def _with_first_id(agg: Aggregate[Any], result: CommandResult) -> CommandResult:
        # a retried `creates` may carry a new generated id: answer with the first one's
        try:
            return dataclasses.replace(result, id=agg.parse_id(result.stream_id))
        except DecodeError:
            return result

    def _append(
        self,
        stream: str,
        stream_id: str | None,
        events: Sequence[Event],
        expected: int | None,
        idempotency_key: str | None,
        metadata: Mapping[str, Any],
        ident: Any = None,
    ) -> CommandResult:
        """Encode (sealing pii) and append events in one transaction; `ident` is the
        result's `id` (default: `stream_id`). `idempotency_key` is the stored key, and
        `metadata` holds its request's fingerprint, if any."""
        metas = [info(event) for event in events]
        if not any(meta.pii for meta in metas):
            # nothing else to write with the events: the store's own atomic append (one
            # round trip to PostgreSQL, no transaction around it), which also checks
            # and records the idempotency key
            new = [
                NewEvent(
                    type=meta.name,
                    data=codec.to_data(event),
                    version=meta.version,
                    stream_id=stream_id,
                    metadata=dict(metadata),
                )
                for event, meta in zip(events, metas, strict=True)
            ]
            appended = self.store.append(stream, new, expected, idempotency_key=idempotency_key)
            plain = [n.data for n in new]
        else:
            with self.store.transaction() as uow:
                new = []
                plain = []
                for event, meta in zip(events, metas, strict=True):
                    data = codec.to_data(event)
                    plain.append(data)
                    if meta.pii:
                        # an append expecting no stream writes the stream's first pii
                        data = self.keys.encrypt(uow, stream, data, meta.pii, new=expected == 0)
                    new.append(
                        NewEvent(
                            type=meta.name,
                            data=data,
                            version=meta.version,
                            stream_id=stream_id,
                            metadata=dict(metadata),
                        )
                    )
                appended = uow.append(stream, new, expected, idempotency_key=idempotency_key)
        if appended.duplicate:
            saved = appended.to_json()
            return self._result_from(saved, stream_id, metadata.get(FINGERPRINT), duplicate=True)
        return CommandResult(
            stream,
            stream_id if ident is None else ident,
            stream_id or stream,
            appended.stream_version,
            [self._fresh_envelope(r, data) for r, data in zip(appended.events, plain, strict=True)],
        )

    def _fresh_envelope(self, recorded: RecordedEvent, plain: dict[str, Any]) -> Envelope:
        """The envelope of an event just appended, from its data before sealing.

        The same as `envelope(recorded)` (the stored pii decrypts to exactly this data,
        and the key cannot have been forgotten within the append) without decrypting.
        """
        cls = self.registry.get(recorded.type)
        if cls is None or not issubclass(cls, Event):
            return self.envelope(recorded)
        event = self.registry.decode(recorded.type, recorded.version, plain)
        envelope = Envelope(recorded, event, plain, cls.__message__.version, _NONE)
        # `plain` is `to_data` of the event just decided, which is what `data` would
        # compute again from its decoded copy: fill the cached property now
        envelope.__dict__["data"] = plain
        if plain is recorded.data or not is_sealed(recorded.data):
            # nothing sealed: the consumers about to read this event can take it as is
            self._share(recorded.position, UNSEALED, envelope)
        return envelope

    def _result_from(
        self, saved: Mapping[str, Any], ident: Any, mark: str | None, *, duplicate: bool
    ) -> CommandResult:
        """The result of the append a key remembers, if the key's request was the one
        with the fingerprint ``mark`` (its events' metadata says); else `KeyReused`."""
        stream = str(saved["stream"])
        first, last = int(saved["first_position"]), int(saved["last_position"])
        records = [
            r for r in self.store.read_all(first - 1, None, None, last) if r.stream == stream
        ]
        if records and records[0].metadata.get(FINGERPRINT) != mark:
            raise KeyReused(
                "this idempotency key was used for a different request;"
                " a new request needs a new key"
            )
        stream_id = records[0].stream_id if records and records[0].stream_id else id_text(ident)
        return CommandResult(
            stream,
            ident,
            stream_id,
            int(saved["stream_version"]),
            [self.envelope(r) for r in records],
            duplicate=duplicate,
        )

    def _idempotent_result(self, key: str, mark: str | None, ident: Any) -> CommandResult | None:
        saved = self.store.remembered(key)
        if saved is None:
            return None
        return self._result_from(saved, ident, mark, duplicate=True)

    def _after_append(
        self,
        agg: Aggregate[Any],
        state: Any,
        version: int,
        key: _Key,
        events: Sequence[Event],
        result: CommandResult,
        generation: int,
    ) -> None:
        """Fold the recorded events into the state: cache it, and snapshot when due."""
        cache = self.state_cache
        every = agg.snapshot_every
        snapshot = bool(every) and result.stream_version // every != version // every  # type: ignore[operator]
        if not (cache.size or snapshot):
            return
        stream = result.stream
        try:
            for event, envelope in zip(events, result.events, strict=True):
                # the event as read back from the log, as a later load will see it
                typed = envelope.event if envelope.event is not None else event
                state = agg.evolve(state, typed, envelope.recorded)
        except Exception:
            cache.drop(stream)
            log.exception("could not evolve %s after appending", stream)
            return
        if cache.size:
            if key is UNSEALED and any(is_sealed(e.recorded.data) for e in result.events):
                key = self.keys.key_for_reading(stream)
            last = result.events[-1].position
            cache.put(stream, _Cached(result.stream_version, last, state, key), generation)
        if not snapshot:
            return
        try:
            self.store.save_snapshot(
                Snapshot(
                    stream=stream,
                    version=result.stream_version,
                    position=result.events[-1].position,
                    state=agg.state_data(state),
                    schema_hash=self._state_hash(agg),
                )
            )
        except Exception:
            # a snapshot is only a cache: failing to write one must not fail the command
            log.exception("could not snapshot %s", stream)

    # -- external systems ------------------------------------------------------------------
    def record_external(
        self,
        events: Sequence[Event],
        *,
        idempotency_key: str | ClientKey | None = None,
        actor: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> list[Envelope]:
        """Append events that came from an external system to its stream `Context.System`.

        A used `idempotency_key` (as `handle` takes it) returns the first append's events.
        """
        if not events:
            return []
        system = info(events[0]).system
        if system is None or any(info(e).system != system for e in events):
            raise TypeError(
                "record_external takes events of one external system, declared with system="
            )
        cid = str(uuid.uuid4())
        metadata: dict[str, Any] = {
            "correlation_id": correlation_id or cid,
            "causation_id": causation_id or cid,
        }
        if actor is not None:
            metadata["actor"] = actor
        key = None
        if isinstance(idempotency_key, ClientKey):
            metadata["command_id"] = idempotency_key.key
            metadata[IDEMPOTENCY_KEY] = key = idempotency_key.stored
            metadata[FINGERPRINT] = idempotency_key.fingerprint
        elif idempotency_key is not None:
            metadata["command_id"] = idempotency_key
            metadata[IDEMPOTENCY_KEY] = key = stored_key(idempotency_key)
        result = self._append(system, None, events, None, key, metadata)
        return result.events

    # -- crypto-shredding ------------------------------------------------------------------
    def forget(self, aggregate: AggregateRef, ident: Any, *, actor: str | None = None) -> int:
        """Crypto-shred an instance's `pii` fields; return the marker event's position.

        Deletes the stream's key and snapshot and appends a `$Forgotten` event to the
        `$system` stream. Events, positions and versions stay; reads show the fields
        redacted, and so do views (their pii columns are sealed with the same key).
        """
        agg = self.aggregate(aggregate)
        stream = agg.stream(ident)
        if self.store.stream_version(stream) == 0:
            raise NotFound(f"{agg.name} {id_text(ident)} does not exist")
        return self.forget_stream(stream, actor=actor)

    def forget_stream(self, stream: str, *, actor: str | None = None) -> int:
        """Crypto-shred one stream (an aggregate instance or an external system)."""
        metadata: dict[str, Any] = {"actor": actor} if actor is not None else {}
        with self.store.transaction() as uow:
            uow.delete_key(stream)
            uow.delete_snapshot(stream)
            marker = NewEvent(type=FORGOTTEN, data={"stream": stream}, metadata=metadata)
            appended = uow.append(SYSTEM_STREAM, [marker], None)
        self.keys.evict(stream)
        self.state_cache.forget(stream)
        return appended.last_position

    # -- views -------------------------------------------------------------------------------
    def view_row(self, view: ViewRef, key: Any) -> dict[str, Any] | None:
        """One view row as JSON (pii columns decrypted or redacted), or None."""
        v = self.view(view)
        doc = self.store.get_row(v.name, self.consumers.view_key_text(v, key))
        return None if doc is None else self.consumers.open_doc(v, doc)

    def view_rows(
        self,
        view: ViewRef,
        where: Mapping[str, Any] | None = None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """View rows ordered by key, filtered by column equality, paged by key.

        Filter values may be typed or text (`"7"`, `"true"`); a filter on an unknown or
        pii column raises `DecodeError`.
        """
        v = self.view(view)
        columns = v.sql_columns()
        hints = codec._hints(v.row_type)
        encoded: dict[str, Any] = {}
        for name, value in (where or {}).items():
            if name not in columns:
                raise DecodeError(f"view {v.name} has no column {name!r} to filter on", name)
            hint = hints[v.attribute(name)]
            encoded[name] = codec.to_data(codec.from_data(hint, value))
        rows = self.store.query_rows(v.name, encoded, after_key=after, limit=limit)
        return [self.consumers.open_doc(v, row.doc) for row in rows]

    def replay(self, view: ViewRef | None = None, *, progress: Progress | None = None) -> int:
        """Rebuild one view (or all) from the log; return the events applied.

        `progress(position, end)` is called after each batch (for a progress bar).
        """
        names = [self.view(view).name] if view is not None else list(self.views)
        return sum(self.consumers.replay_view(self.views[name], progress) for name in names)

    # -- consumers -----------------------------------------------------------------------------
    def run_consumers(self, timeout: float = 30.0) -> int:
        """Run every view and policy until all have caught up; return events processed."""
        return self.consumers.run_until_idle(timeout)

    def start(self) -> None:
        """Run views and policies in the background (one thread, in passes)."""
        self.consumers.start()

    def stop(self) -> None:
        """Stop the background consumers."""
        self.consumers.stop()

    def progress(self) -> dict[str, dict[str, int]]:
        """Each consumer's checkpoint and how many positions it is behind the log."""
        return self.consumers.progress()

    # -- failures --------------------------------------------------------------------------------
    def failures(self, after: int = 0, limit: int | None = None) -> list[Envelope]:
        """Failure events (the `$failures` stream), oldest first."""
        return self.events(after, limit, stream=FAILURES_STREAM)

    def parked(self, consumer: str | None = None) -> list[ParkedFailure]:
        """Events that consumers gave up on, waiting for a retry."""
        return self.store.list_failures(consumer)

    def retry_parked(self, consumer: str, position: int) -> bool:
        """Retry a parked event once; True if it succeeded (and was unparked)."""
        return self.consumers.retry_parked(consumer, position)

    # -- operations --------------------------------------------------------------------------------
    def fork(
        self,
        to_url: str,
        up_to_position: int | None = None,
        *,
        progress: Progress | None = None,
    ) -> EventStore:
        """Copy the log up to a position into another (empty) store; return it open.

        Keys travel with the events (a forgotten stream stays forgotten); views,
        checkpoints and snapshots are rebuilt by an application opened on the fork.
        """
        return fork_store(self.store, to_url, up_to_position, progress=progress)
