"""The application: commands in, events appended, state loaded, views and policies fed.

`Application` ties definitions (aggregates, views, policies, ports, message classes)
to an `EventStore`. It is thread-safe; one instance serves a whole process. It is the
front of parts that each do one job, and it composes them:

- `definitions.Definitions`: the definitions by name, the message registry;
- `reading.EventReader`: recorded events decrypted, upcast and decoded;
- `state.StateLoader` (with `state.StateCache`): instance states from snapshots, events
  and the cache;
- `commands.CommandHandler` (with `commands.Appender`): commands decided and appended,
  idempotency, retries, group commit, external systems' events;
- `view_rows.ViewRows`: view rows read and written (pii sealed);
- `consumers.Consumers`: views and policies consuming the log.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from stormgen.runtime.aggregate import Aggregate, Loaded, id_text
from stormgen.runtime.clock import Clock, default_clock
from stormgen.runtime.codec import to_data
from stormgen.runtime.commands import CommandHandler, CommandResult, command_metadata, trace
from stormgen.runtime.consumers import Consumers, Progress, RetrySettings
from stormgen.runtime.crypto import KeyRing
from stormgen.runtime.definitions import AggregateRef, Definitions, ViewRef
from stormgen.runtime.envelope import JSONDict, NewEvent, RecordedEvent
from stormgen.runtime.errors import StormgenRuntimeError
from stormgen.runtime.failures import FAILURES_STREAM
from stormgen.runtime.idempotency import ClientKey
from stormgen.runtime.lookups import Lookups
from stormgen.runtime.merge import MergeReport, Side
from stormgen.runtime.merge import merge as merge_stores
from stormgen.runtime.messages import Command, Envelope, Event, Message
from stormgen.runtime.policies import Policy, Port
from stormgen.runtime.processes import Instance, Process
from stormgen.runtime.reading import EventReader
from stormgen.runtime.rejections import NotFound
from stormgen.runtime.state import StateCache, StateLoader
from stormgen.runtime.store import EventStore, open_store
from stormgen.runtime.store.base import ParkedFailure, Timer, UnitOfWork
from stormgen.runtime.store.url import fork as fork_store
from stormgen.runtime.view_rows import ViewRows
from stormgen.runtime.views import View

__all__ = [
    "FAILURES_STREAM",
    "FORGOTTEN",
    "SYSTEM_STREAM",
    "Application",
    "CommandResult",
]

T = TypeVar("T")


class BusLink(Protocol):
    """What the application knows of its link to the bus (`stormgen.runtime.bus.Bus`)."""

    def status(self) -> dict[str, Any]:
        """The relay's lag and the inboxes' pending messages, for `/health`."""


#: The stream of `$Forgotten` markers written by `forget`.
SYSTEM_STREAM = "$system"
FORGOTTEN = "$Forgotten"
#: instance states the state cache keeps by default (``STORMGEN_STATE_CACHE``)
STATE_CACHE = 10_000


class Application:
    """A running service: definitions bound to a store.

    Most methods are one-line delegations to the parts (`definitions`, `reader`,
    `states`, `commands`, `rows`, `consumers`), kept because the HTTP layer, the CLI and
    generated code call them here; their signatures and docstrings are why the class is
    longer than 300 lines, not logic of its own.

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
        processes: Iterable[Process[Any]] = (),
        clock: Clock | None = None,
        ports: Mapping[str, Port] | None = None,
        system_events: Mapping[str, Sequence[type[Event]]] | None = None,
        messages: Iterable[type[Message]] = (),
        retry: RetrySettings | None = None,
        command_retries: int = 10,
        state_cache: int = STATE_CACHE,
        owns_store: bool = False,
    ) -> None:
        self.store = store
        #: instance states kept between commands (at most `state_cache`; 0: none)
        self.state_cache = StateCache(state_cache)
        self.owns_store = owns_store
        self.definitions = Definitions(
            aggregates, views, policies, ports, system_events or {}, messages, processes
        )
        #: where the runtime reads the time (timers are due by it); tests replace it
        #: (a `TestClock` when `STORMGEN_TEST_CLOCK=1` and none is given)
        self.clock: Clock = clock or default_clock()
        #: by name, for the HTTP layer: the definitions' own tables
        self.aggregates = self.definitions.aggregates
        self.views = self.definitions.views
        self.policies = self.definitions.policies
        self.processes = self.definitions.processes
        self.system_events = self.definitions.system_events
        self.ports = self.definitions.ports
        self.registry = self.definitions.registry
        #: the parts: events read, states loaded, commands handled, view rows, consumers
        self.reader = EventReader(self.registry, KeyRing(store))
        self.states = StateLoader(store, self.reader, self.state_cache)
        self.commands = CommandHandler(
            store, self.reader, self.states, self.definitions.aggregate_for, command_retries
        )
        self.rows = ViewRows(store, self.reader)
        #: the views' rows by key, for the definitions that read them (`View[key]`)
        self.lookups = Lookups(self.rows, self.views)
        readers: list[Aggregate[Any] | Policy | Process[Any]] = [
            *self.aggregates.values(),
            *self.policies.values(),
            *self.processes.values(),
        ]
        self.lookups.bind(readers)
        # the model's `now()` reads the application's clock (a test clock moves it too)
        definitions: list[Aggregate[Any] | Policy | View[Any] | Process[Any]] = [
            *self.aggregates.values(),
            *self.policies.values(),
            *self.views.values(),
            *self.processes.values(),
        ]
        for definition in definitions:
            definition.clock = self.clock
        self.consumers = Consumers(self, retry or RetrySettings())
        #: the service's link to the bus while it runs autonomously (`bus.Bus`), else None
        self.bus: BusLink | None = None

    @property
    def keys(self) -> KeyRing:
        """The stream keys pii is sealed with (the reader's, which every part uses)."""
        return self.reader.keys

    @keys.setter
    def keys(self, keys: KeyRing) -> None:
        self.reader.keys = keys

    def was_handled(self, idempotency_key: str | ClientKey) -> bool:
        """Whether a command with this idempotency key was already recorded (a string
        is the service's own key, as `handle` takes it)."""
        return self.commands.was_handled(idempotency_key)

    @classmethod
    def open(cls, url: str | None = None, **definitions: Any) -> Application:
        """Open the store a URL names (see `open_store`) and bind the definitions to it.

        The application closes the store when it is closed. Unless `state_cache` is
        given, ``STORMGEN_STATE_CACHE`` (a number of instance states) sets it.
        """
        if "state_cache" not in definitions:
            definitions["state_cache"] = state_cache_from_env()
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
        return self.definitions.aggregate(ref)

    def view(self, ref: ViewRef) -> View[Any]:
        """The registered view named (or given) by `ref`."""
        return self.definitions.view(ref)

    def aggregate_for(self, command: type[Command] | Command) -> Aggregate[Any]:
        """The aggregate that handles a command class."""
        return self.definitions.aggregate_for(command)

    # -- reading events ------------------------------------------------------------------
    def envelope(self, recorded: RecordedEvent) -> Envelope:
        """Decrypt, upcast and decode a recorded event (unknown types stay untyped)."""
        return self.reader.envelope(recorded)

    def shared_envelope(self, recorded: RecordedEvent) -> Envelope:
        """`envelope(recorded)`, decoded once for all the consumers reading it."""
        return self.reader.shared_envelope(recorded)

    def decode(self, recorded: RecordedEvent) -> Event:
        """The typed event of a record (decrypted, upcast); `UnknownEventType` if unknown."""
        return self.reader.decode(recorded)

    def decode_all(self, records: Sequence[RecordedEvent]) -> list[Event]:
        """The typed events of many records, as `decode` gives each (faster in bulk)."""
        return self.reader.decode_all(records)[0]

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
    def load(self, aggregate: AggregateRef, ident: Any, at: int | None = None) -> Loaded[Any]:
        """An instance's state from its latest usable snapshot and later events.

        With `at`, only events at or below that global position count. An instance
        without events loads as the initial state at version 0.
        """
        agg = self.aggregate(aggregate)
        return self.states.load(agg, agg.stream(ident), at)

    def state(
        self, aggregate: AggregateRef, ident: Any, *, at: int | datetime | None = None
    ) -> Loaded[Any]:
        """An instance's state now, or as it was at a position or a time (time travel).

        Raises `NotFound` when the instance did not exist (then).
        """
        agg = self.aggregate(aggregate)
        position = self.store.position_at(at) if isinstance(at, datetime) else at
        loaded = self.states.load(agg, agg.stream(ident), position)
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
        """Handle a command: load, decide, append atomically, snapshot (see
        `CommandHandler.handle`).

        Raises `Rejected` (a guard), `NotFound` (no such instance), `AlreadyExists` (a
        `creates` command on an existing instance), `VersionConflict` (the instance is
        not at `expected_version`) or `KeyReused` (a client's key used before for a
        different request). A used `idempotency_key` returns the first result and
        writes nothing: a string is the service's own key (a policy's, a program's), a
        `ClientKey` an API client's.
        """
        metadata = command_metadata(command_id, correlation_id, causation_id, actor, metadata)
        return self.commands.handle(
            command, metadata, expected_version=expected_version, idempotency_key=idempotency_key
        )

    def handle_together(self, units: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run units of command work (say ``lambda: app.handle(cmd)``) with one commit:
        group commit (see `CommandHandler.handle_together`)."""
        return self.commands.handle_together(units)

    def batch(self) -> AbstractContextManager[UnitOfWork]:
        """One store transaction for several commands of this thread (a group, a
        policy's batch), committed when the block ends; rolled back if it raises."""
        return self.commands.batch()

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
        metadata = trace(str(uuid.uuid4()), correlation_id, causation_id, actor)
        return self.commands.record_external(events, idempotency_key, metadata)

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
        return self.rows.row(self.view(view), key)

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
        return self.rows.rows(self.view(view), where or {}, after, limit)

    def replay(self, view: ViewRef | None = None, *, progress: Progress | None = None) -> int:
        """Rebuild one view (or all) from the log; return the events applied.

        `progress(position, end)` is called after each batch (for a progress bar).
        """
        names = [self.view(view).name] if view is not None else list(self.views)
        return sum(self.consumers.replay_view(self.views[name], progress) for name in names)

    # -- consumers -----------------------------------------------------------------------------
    def process(self, ref: Process[Any] | type[Process[Any]] | str) -> Process[Any]:
        """The registered process named (or given) by `ref` (else `KeyError`)."""
        return self.definitions.process(ref)

    def process_instance(
        self,
        process: Process[Any] | type[Process[Any]] | str,
        key: Any,
        at: int | datetime | None = None,
    ) -> Instance | None:
        """A process instance (state, ended, pending timers) as its stream says, now or
        as it was at a log position or a time (time travel); None if not started then."""
        position = self.store.position_at(at) if isinstance(at, datetime) else at
        return self.consumers.processes.instance(self.process(process), key, position)

    def process_instances(
        self,
        process: Process[Any] | type[Process[Any]] | str,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """A process's instances (as `Instance.to_json`), by key, paged after a key."""
        return self.consumers.processes.instances(self.process(process), after, limit)

    def fire_timers(self) -> int:
        """Fire every timer due by the application's clock (synchronously); return how
        many were tried."""
        return self.consumers.processes.fire_all_due()

    def run_consumers(self, timeout: float = 30.0) -> int:
        """Run every view, policy and process until all have caught up, firing the timers
        due meanwhile; return the events processed and timers tried."""
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

    def parked_timers(self, process: str | None = None) -> list[Timer]:
        """Process timers whose handler failed on every attempt, waiting for a retry."""
        with self.store.reading() as uow:
            return [timer for timer in uow.list_timers(process) if timer.parked]

    def retry_parked_timer(self, process: str, key: str, timer: str) -> bool:
        """Fire a parked timer once more; True if its run committed (the timer is gone),
        False if it failed again (still parked); `KeyError` if no such timer is parked."""
        return self.consumers.processes.retry_parked(process, key, timer)

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

    def merge(
        self,
        other: EventStore | str,
        to: EventStore | str,
        prefer: Side | None = None,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> MergeReport:
        """Join this store's past and another's (a fork of the same log) into a new store
        ``to``; return the report (see `stormgen.runtime.merge.merge`).

        The report shows each conflicting stream's state on both sides. Policies resume
        in the merged store after what their own side handled; views start over there
        (they rebuild when an application on it runs its consumers, or replays).
        """
        return merge_stores(
            self.store,
            other,
            to,
            prefer,
            dry_run=dry_run,
            states=self._state_in,
            known_type=self.registry.__contains__,
            policies=list(self.policies),
            progress=progress,
        )

    def _state_in(self, store: EventStore, stream: str) -> JSONDict | None:
        """A stream's state in a store of this model (None: no aggregate of this model)."""
        agg = self.aggregates.get(stream.rpartition("/")[0])
        if agg is None:
            return None
        reader = self.reader if store is self.store else EventReader(self.registry, KeyRing(store))
        loaded = StateLoader(store, reader, StateCache(0)).load(agg, stream)
        state: JSONDict | None = to_data(loaded.state)
        return state


def state_cache_from_env() -> int:
    """The state cache's size from ``STORMGEN_STATE_CACHE`` (default `STATE_CACHE`)."""
    value = os.environ.get("STORMGEN_STATE_CACHE", "").strip()
    if not value:
        return STATE_CACHE
    try:
        size = int(value.replace("_", ""))
    except ValueError:
        size = -1
    if size < 0:
        raise StormgenRuntimeError(
            f"STORMGEN_STATE_CACHE={value!r}: expected how many instance states to keep "
            "in memory, a whole number (0 turns the cache off)"
        )
    return size
