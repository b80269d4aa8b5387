"""Handling commands: deciding on a state, appending atomically, idempotency, retries.

`CommandHandler` runs a command against its aggregate: loads the instance (through the
`StateLoader`), decides, encodes and appends the events at the version it decided on
(sealing pii), retries a lost race, and answers a used idempotency key with the first
result. It also appends external systems' events and runs group commits.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from stormgen.runtime import codec
from stormgen.runtime.aggregate import Aggregate, decide, id_text
from stormgen.runtime.envelope import NewEvent, new_event_id
from stormgen.runtime.errors import VersionConflict
from stormgen.runtime.idempotency import FINGERPRINT, ClientKey, fingerprint_of, stored_key
from stormgen.runtime.messages import Command, Envelope, Event, info
from stormgen.runtime.reading import EventReader
from stormgen.runtime.rejections import AlreadyExists, DecodeError, KeyReused, NotFound, Rejected
from stormgen.runtime.state import StateLoader
from stormgen.runtime.store import EventStore
from stormgen.runtime.store.base import IDEMPOTENCY_KEY, AppendResult, UnitOfWork

log = logging.getLogger("stormgen.runtime")

T = TypeVar("T")


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


#: What a command answers without having written anything (see `handle_together`).
_DOMAIN_ANSWERS = (Rejected, NotFound, AlreadyExists, VersionConflict, DecodeError, KeyReused)


def _outcome(unit: Callable[[], T]) -> T | Exception:
    try:
        return unit()
    except Exception as exc:
        return exc


def trace(
    cid: str,
    correlation_id: str | None,
    causation_id: str | None,
    actor: str | None,
    into: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata tying events to their cause: the correlation and causation ids
    (given, else `cid`) and the actor, if any; written into `into` when given (a
    command's hot path), else into a new dict."""
    metadata: dict[str, Any] = {} if into is None else into
    metadata["correlation_id"] = correlation_id or cid
    metadata["causation_id"] = causation_id or cid
    if actor is not None:
        metadata["actor"] = actor
    return metadata


def command_metadata(
    command_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    actor: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A command's events' metadata: `extra`, then the command id (given, else a new
    one) and its `trace`."""
    cid = command_id or new_event_id()
    metadata: dict[str, Any] = dict(extra) if extra else {}
    metadata["command_id"] = cid
    return trace(cid, correlation_id, causation_id, actor, metadata)


#: A record to append, its data plain, and the names of its fields to seal.
_Record = tuple[NewEvent, frozenset[str]]


def _record(event: Event, stream_id: str | None, metadata: Mapping[str, Any]) -> _Record:
    """An event to append (its data not sealed yet) and its pii fields."""
    meta = info(event)
    new = NewEvent(
        type=meta.name,
        data=codec.to_data(event),
        version=meta.version,
        stream_id=stream_id,
        metadata=dict(metadata),
    )
    return new, meta.pii


#: The type of the record of a command sent to an external system.
COMMAND_SENT = "$CommandSent"


@dataclass(frozen=True, slots=True)
class Sent:
    """A command sent to an external system, to be recorded as a `$CommandSent`: its
    deterministic id (the record's id too) and its own `trace` (who sent it, why)."""

    command: Command
    command_id: str
    metadata: Mapping[str, Any]

    def record(self, answers: Mapping[str, Any]) -> _Record:
        """The record, with the key its answers' `metadata` hold; its pii is the
        command's."""
        meta = info(self.command)
        metadata = {**answers, **self.metadata}
        metadata["command"] = meta.name
        metadata["command_id"] = self.command_id
        data = codec.to_data(self.command)
        new = NewEvent(type=COMMAND_SENT, data=data, metadata=metadata, id=self.command_id)
        return new, meta.pii


class Appender:
    """Events appended atomically with the idempotency key of their request (pii sealed),
    and the result a used key remembers."""

    def __init__(self, store: EventStore, reader: EventReader) -> None:
        self.store = store
        self.reader = reader

    def append(
        self,
        stream: str,
        stream_id: str | None,
        events: Sequence[Event],
        expected: int | None,
        idempotency_key: str | None,
        metadata: Mapping[str, Any],
        ident: Any = None,
        sent: Sent | None = None,
    ) -> CommandResult:
        """Encode (sealing pii) and append events in one transaction; `ident` is the
        result's `id` (default: `stream_id`). `idempotency_key` is the stored key, and
        `metadata` holds its request's fingerprint, if any. `sent`: the command the
        events answer, recorded before them (`$CommandSent`)."""
        if sent is None and len(events) == 1:
            # a command's one event (the hot path): as below, without the lists
            new, pii = record = _record(events[0], stream_id, metadata)
            if not pii:
                appended = self.store.append(
                    stream, [new], expected, idempotency_key=idempotency_key
                )
                return self._result(appended, stream, stream_id, ident, metadata, [new.data])
            records = [record]
        else:
            records = [] if sent is None else [sent.record(metadata)]
            records += [_record(event, stream_id, metadata) for event in events]
        plain = [new.data for new, _ in records]
        if not any(pii for _, pii in records):
            # nothing else to write with the events: the store's own atomic append (one
            # round trip to PostgreSQL, no transaction around it), which also checks
            # and records the idempotency key
            new_events = [new for new, _ in records]
            appended = self.store.append(
                stream, new_events, expected, idempotency_key=idempotency_key
            )
        else:
            keys = self.reader.keys
            with self.store.transaction() as uow:
                # an append expecting no stream writes the stream's first pii
                new_events = [
                    msgspec.structs.replace(
                        new, data=keys.encrypt(uow, stream, new.data, pii, new=expected == 0)
                    )
                    if pii
                    else new
                    for new, pii in records
                ]
                appended = uow.append(stream, new_events, expected, idempotency_key=idempotency_key)
        return self._result(appended, stream, stream_id, ident, metadata, plain)

    def _result(
        self,
        appended: AppendResult,
        stream: str,
        stream_id: str | None,
        ident: Any,
        metadata: Mapping[str, Any],
        plain: Sequence[dict[str, Any]],
    ) -> CommandResult:
        """The result of an append (`plain`: its events' data before sealing)."""
        if appended.duplicate:
            saved = appended.to_json()
            return self._result_from(saved, stream_id, metadata.get(FINGERPRINT), duplicate=True)
        fresh = self.reader.fresh_envelope
        records = appended.events
        if len(records) == 1 == len(plain):
            envelopes = [fresh(records[0], plain[0])]  # a command's one event
        else:
            envelopes = [fresh(r, data) for r, data in zip(records, plain, strict=True)]
        return CommandResult(
            stream,
            stream_id if ident is None else ident,
            stream_id or stream,
            appended.stream_version,
            envelopes,
        )

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
            [self.reader.envelope(r) for r in records],
            duplicate=duplicate,
        )

    def remembered(self, key: str, mark: str | None, ident: Any) -> CommandResult | None:
        """The result a used key remembers (`KeyReused` if for another request), or None."""
        saved = self.store.remembered(key)
        if saved is None:
            return None
        return self._result_from(saved, ident, mark, duplicate=True)


_DEFAULT_STREAM = Aggregate.stream.__func__  # type: ignore[attr-defined]
#: A command class's aggregate, whether it creates, its id field, its stream prefix.
_Plan = tuple[Aggregate[Any], bool, str, str | None]


class CommandHandler:
    """Commands (and external systems' events) into the log, for one application.

    `aggregate_for` finds the aggregate handling a command; `retries` is how many
    times a lost race (a concurrent writer's conflict) is tried again.
    """

    def __init__(
        self,
        store: EventStore,
        reader: EventReader,
        states: StateLoader,
        aggregate_for: Callable[[type[Command]], Aggregate[Any]],
        retries: int,
    ) -> None:
        self.store = store
        self.reader = reader
        self.states = states
        self.appender = Appender(store, reader)
        self.aggregate_for = aggregate_for
        self.retries = retries
        #: what `handle` needs of each command class (`_plan`)
        self._plans: dict[type[Command], _Plan] = {}
        #: per thread: whether a `batch` is open (they do not nest)
        self._batch = threading.local()

    def was_handled(self, idempotency_key: str | ClientKey) -> bool:
        """Whether a command with this idempotency key was already recorded (a string
        is the service's own key, as `handle` takes it)."""
        return self.store.remembered(stored_key(idempotency_key)) is not None

    def handle(
        self,
        command: Command,
        metadata: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        idempotency_key: str | ClientKey | None = None,
    ) -> CommandResult:
        """Handle a command: load, decide, append atomically, snapshot. `metadata` is
        its events' (`command_metadata`), the key's added.

        Raises `Rejected` (a guard), `NotFound` (no such instance), `AlreadyExists` (a
        `creates` command on an existing instance) or `VersionConflict` (the instance
        is not at `expected_version`). Without an `expected_version`, a concurrent
        writer's conflict is retried a few times. A used `idempotency_key` returns the
        first result and writes nothing: a string is the service's own key (a policy's,
        a program's), a `ClientKey` an API client's; a client's key used before for a
        different request raises `KeyReused`.
        """
        plan = self._plans.get(type(command))
        if plan is None:
            plan = self._plan(type(command))
        agg, creates, id_field, prefix = plan
        ident = getattr(command, id_field, None)
        generated = ident is None
        if generated:
            if not (creates and agg.id_type is uuid.UUID):
                wire = codec.wire_name(type(command), id_field)
                raise DecodeError(f"the command has no {wire}", f"$.{wire}")
            ident = uuid.uuid4()
            command = dataclasses.replace(command, **{id_field: ident})  # type: ignore[type-var]
        ident_text = id_text(ident)
        stream = agg.stream(ident) if prefix is None else prefix + ident_text
        stored = mark = None
        # A used key answers with its first result. The append looks it up with the
        # stream's head (one statement), so it is looked up beforehand only for a new
        # generated id (a retry must not seal pii under a stream it never writes), and
        # before answering anything but an append: a retry may be refused by the state
        # its first delivery left (a rejection, a conflict, nothing left to do).
        unchecked = False
        # the appender gives each event a copy of the metadata: no copy here but the
        # one adding the key
        event_metadata: Mapping[str, Any] = metadata
        if idempotency_key is not None:
            stored, mark = stored_key(idempotency_key), fingerprint_of(idempotency_key)
            unchecked = not generated
            prior = None if unchecked else self.appender.remembered(stored, mark, ident)
            if prior is not None:
                return self._with_first_id(agg, prior)
            # kept in the log, so a copy of it (a fork) remembers the key too
            event_metadata = {**metadata, IDEMPOTENCY_KEY: stored}
            if mark is not None:
                event_metadata[FINGERPRINT] = mark
        attempt = 0
        states = self.states
        cache = states.cache
        # The first try may decide on the cached state without reading the log: the
        # append checks the version it decided on, so a stale entry only costs a
        # conflict. Any other outcome (a rejection, an error, no events) is confirmed
        # on the log's current state before it is answered.
        trusting = bool(cache.size)
        while True:
            generation = cache.generation
            loaded = states.trusted(agg, stream, creates, expected_version) if trusting else None
            confirmed = loaded is None
            if loaded is None:
                full, key = states.current(agg, stream)
                loaded = full.state, full.version, key
            state, version, key = loaded
            try:
                if creates and version:
                    raise AlreadyExists(f"{agg.name} {ident_text} already exists")
                if not creates and not version:
                    raise NotFound(f"{agg.name} {ident_text} does not exist")
                if expected_version is not None and version != expected_version:
                    raise VersionConflict(stream, expected_version, version)
                events = decide(agg, state, command)
            except Exception:
                if confirmed:
                    prior = self._first(agg, stored, mark, ident) if unchecked else None
                    if prior is not None:
                        return prior
                    raise
                trusting = False
                continue
            if not events:
                if not confirmed:
                    trusting = False
                    continue
                prior = self._first(agg, stored, mark, ident) if unchecked else None
                return prior or CommandResult(stream, ident, ident_text, version, [])
            try:
                result = self.appender.append(
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
                if expected_version is not None or attempt > self.retries:
                    raise
                # a random pause, growing with each loss, keeps racing writers from
                # colliding again in lockstep
                time.sleep(random.uniform(0, 0.001 * 2**attempt))
                continue
            if result.duplicate:
                return self._with_first_id(agg, result)
            states.after_append(agg, state, version, key, events, result, generation)
            return result

    def _plan(self, cls: type[Command]) -> _Plan:
        """What `handle` needs of a command class, found once: its aggregate, whether it
        creates an instance, its id field, its streams' name prefix (None when the
        aggregate names its streams in a way of its own)."""
        agg = self.aggregate_for(cls)
        own = getattr(type(agg).stream, "__func__", None) is not _DEFAULT_STREAM
        plan = (agg, info(cls).creates, agg.id_field, None if own else f"{type(agg).name}/")
        self._plans[cls] = plan
        return plan

    def _first(
        self, agg: Aggregate[Any], stored: str | None, mark: str | None, ident: Any
    ) -> CommandResult | None:
        """The result the key `stored` remembers, if any (looked up after the fact)."""
        if stored is None:
            return None
        prior = self.appender.remembered(stored, mark, ident)
        return None if prior is None else self._with_first_id(agg, prior)

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
            with self.states.cache.held(), self.store.transaction() as uow:
                yield uow
        finally:
            local.open = False

    @staticmethod
    def _with_first_id(agg: Aggregate[Any], result: CommandResult) -> CommandResult:
        # a retried `creates` may carry a new generated id: answer with the first one's
        try:
            return dataclasses.replace(result, id=agg.parse_id(result.stream_id))
        except DecodeError:
            return result

    def record_external(
        self,
        events: Sequence[Event],
        idempotency_key: str | ClientKey | None,
        metadata: Mapping[str, Any],
        sent: Sent | None = None,
    ) -> list[Envelope]:
        """Append events that came from an external system to its stream `Context.System`,
        with `metadata` (`trace`), the key's added.

        A used `idempotency_key` (as `handle` takes it) returns the first append's events.
        `sent` is the command they answer (maybe with no event at all), recorded first
        in the same append as a `$CommandSent` (`Sent`); only the answers are returned.
        """
        messages: list[Event | Command] = list(events)
        if sent is not None:
            messages.append(sent.command)
        if not messages:
            return []
        system = info(messages[0]).system
        if system is None or any(info(m).system != system for m in messages):
            raise TypeError(
                "record_external takes events of one external system, declared with system="
            )
        metadata = dict(metadata)
        key = None
        if isinstance(idempotency_key, ClientKey):
            metadata["command_id"] = idempotency_key.key
            metadata[IDEMPOTENCY_KEY] = key = idempotency_key.stored
            metadata[FINGERPRINT] = idempotency_key.fingerprint
        elif idempotency_key is not None:
            metadata["command_id"] = idempotency_key
            metadata[IDEMPOTENCY_KEY] = key = stored_key(idempotency_key)
        result = self.appender.append(system, None, events, None, key, metadata, sent=sent)
        return [e for e in result.events if e.type != COMMAND_SENT]
