"""Process handlers run against the store, and the durable timers that fire them.

Each run is one transaction (docs/runtime.md, "Processes"): the instance's decisions
appended to its stream (at the version it was read at), the commands it issues
(their ids derived from the instance, the trigger and the command's place), its
timers written to the timers table, and, for an event, the consumer's checkpoint
moved: all of it commits, or none of it.

The instance a run starts from is its stream folded, or, for a process without pii
state, the instance its last run left in the application's state cache (a memory
image of the log, never the truth, sharing the cache's bound with the aggregates'
states; an ended instance leaves it): the run's append expects the version that
instance was at, so a stale one (another service process, a timer run elsewhere)
fails as a conflict, is dropped, and the run is tried again on the stream as read.

Timers fire from the timers table, soonest first: a transaction claims a batch of due
rows (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so two service processes never take the
same one; SQLite: the write lock), runs each handler and drops its row (`fire_due`).
A timer whose handler fails stays, tried again later (`RetrySettings.delay`) with a
`$Failure` event each time, and is parked after `max_attempts`; an operator retries
a parked one (`retry_parked`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from stormgen.runtime import codec
from stormgen.runtime.clock import Clock, TestClock
from stormgen.runtime.commands import CommandHandler, Sent, command_metadata, trace
from stormgen.runtime.consumer import Consumer, Overtaken, RetrySettings, claim, error_text
from stormgen.runtime.crypto import KeyRing
from stormgen.runtime.envelope import NewEvent, format_time
from stormgen.runtime.errors import StoreUnavailable, VersionConflict
from stormgen.runtime.failures import FAILURE, FAILURES_STREAM, RESOLVED
from stormgen.runtime.messages import Envelope, info, rename_fields
from stormgen.runtime.processes import (
    CHANGED,
    STARTED,
    TIMER_FIRED,
    Instance,
    Process,
    Step,
    command_id,
    decisions,
    fold,
    key_text,
    open_state,
    pii_wires,
    seal_state,
    stream_name,
)
from stormgen.runtime.reactions import Reactions
from stormgen.runtime.reading import UNSEALED
from stormgen.runtime.state import Cached, StateCache
from stormgen.runtime.store.base import EventStore, Timer, UnitOfWork

log = logging.getLogger("stormgen.runtime")

_CONFLICT_RETRIES = 5


class _Alone(Exception):
    """A timer's run must have a savepoint of its own (it asks an external system)."""


#: the due timers one transaction fires (other writers wait for it: keep it short)
TIMER_BATCH = 50


class _Thread(threading.local):
    """Whether this thread's `fire_due` runs a batch without savepoints: a class
    default, so reading it unset does not raise and catch an AttributeError."""

    batched = False


@dataclass(eq=False)
class ProcessRuns:
    """The processes of an application: their handlers run, their timers fired.

    `batch` opens a transaction of this thread's commands (`CommandHandler.batch`).
    """

    store: EventStore
    commands: CommandHandler
    reactions: Reactions
    processes: Mapping[str, Process[Any]]
    clock: Clock
    retry: RetrySettings
    batch: Callable[[], AbstractContextManager[UnitOfWork]]
    #: `.batched` while this thread's `fire_due` runs a batch without savepoints
    _local: _Thread = field(default_factory=_Thread, init=False)

    @property
    def keys(self) -> KeyRing:
        """The stream keys the instances' pii fields are sealed with."""
        return self.commands.reader.keys

    @property
    def cache(self) -> StateCache:
        """The application's state cache, which keeps the instances runs leave too."""
        return self.commands.states.cache

    # -- reading ---------------------------------------------------------------------------
    def instance(self, process: Process[Any], key: Any, at: int | None = None) -> Instance | None:
        """An instance as its stream says (up to log position `at`); None if never started."""
        text = key_text(key)
        records = self.store.read_stream(stream_name(process.name, text), 0, at)
        return fold(process, text, records, self.keys)

    def instances(
        self, process: Process[Any], after: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The process's instances as the HTTP API shows them, by key, paged after a key
        (pii state fields opened, or redacted when forgotten)."""
        rows = self.store.query_rows(process.name, after_key=after, limit=limit)
        if not process.pii and not process.was:
            return [row.doc for row in rows]
        docs = []
        for row in rows:
            # a row written before a state field was renamed (`was`) has its earlier name
            state = dict(row.doc["state"])
            rename_fields(state, process.was)
            if process.pii:
                state = codec.to_data(open_state(process, state, self.keys)[0])
            docs.append({**row.doc, "state": state})
        return docs

    # -- events ----------------------------------------------------------------------------
    def handle_event(self, consumer: Consumer, env: Envelope) -> None:
        """Run the process's handler for an event and move its checkpoint past it, in
        one transaction (`Overtaken` if another process moved the checkpoint first)."""
        process = consumer.process
        assert process is not None
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with self.batch() as uow:
                    claim(uow, consumer.name, consumer.base)
                    self.apply_event(uow, process, env)
                    uow.set_checkpoint(consumer.name, env.position)
                return
            except VersionConflict:
                # a timer of the same instance committed first: read it again
                if attempt == _CONFLICT_RETRIES - 1:
                    raise

    def handle_batch(self, consumer: Consumer, envs: list[Envelope], end: int) -> bool:
        """Run a batch of events and move the checkpoint to `end`, in one transaction;
        False (nothing kept) when any run fails: the caller goes event by event, with
        retries and failure events (`Overtaken` if another process moved it first)."""
        process = consumer.process
        assert process is not None
        try:
            with self.batch() as uow:
                claim(uow, consumer.name, consumer.base)
                for env in envs:
                    self.apply_event(uow, process, env)
                uow.set_checkpoint(consumer.name, end)
        except Overtaken:
            raise
        except Exception:
            return False
        return True

    def apply_event(self, uow: UnitOfWork, process: Process[Any], env: Envelope) -> None:
        """Run the handler of an event on the instance it concerns, in `uow`."""
        event = env.event
        assert event is not None
        key = process.key_of(event, env)
        if key is None:
            return
        text = key_text(key)
        stream = stream_name(process.name, text)
        cache = self.cache
        hit = cache.get(stream) if cache.size and not process.pii else None
        if hit is not None:
            instance: Instance | None = hit.state  # the last run's: its append checks it
        else:
            instance = fold(process, text, uow.read_stream(stream), self.keys)
        if instance is None:
            if not process.starts_with(event):
                return  # no instance, and this event does not start one
            state = process.initial(event, key)
        elif instance.ended:
            return
        else:
            state = instance.state
        step = Step(key, state, env.recorded_at)
        process.handle(step, event, env)
        if step.skipped:
            return  # its `if` is false: nothing to record (a starting event starts none)
        trigger = {"event_id": env.id, "event_type": env.type}
        correlation = env.metadata.get("correlation_id") or env.id
        traced = (correlation, env.id)
        self._record(uow, process, text, instance, step, trigger, env.id, traced, env.stream)

    # -- timers ----------------------------------------------------------------------------
    def fire_due(self, limit: int = TIMER_BATCH) -> int:
        """Fire the soonest due timers (at most `limit`) in one transaction; return how
        many were tried (0: none is due).

        The batch is tried first as one run after another in the transaction (the few
        statements each timer needs, nothing more). When any of them fails, conflicts,
        or would ask an external system (which a later failure must not make it ask
        twice), the whole batch rolls back and is fired again with each timer in a
        savepoint of its own (`_fire_each`): a timer whose run fails is rolled back
        alone and gets its `$Failure` and its next try after the commit; one whose
        instance changed meanwhile (an event committed first) stays, claimed again next
        time.
        """
        try:
            with self.batch() as uow:
                self._local.batched = True
                claimed = uow.claim_due_timers(self.clock.now(), limit)
                for timer in claimed:
                    self._fire(uow, timer)
            return len(claimed)
        except StoreUnavailable:
            raise
        except Exception:
            log.debug("a batch of timers failed; firing them one savepoint each")
        finally:
            self._local.batched = False
        return self._fire_each(limit)

    def _fire_each(self, limit: int) -> int:
        failed: list[tuple[Timer, Exception]] = []
        cache = self.commands.states.cache
        with self.batch() as uow:
            claimed = uow.claim_due_timers(self.clock.now(), limit)
            for timer in claimed:
                try:
                    with self.store.transaction() as savepoint, cache.undone_on_error():
                        self._fire(savepoint, timer)
                except VersionConflict:
                    continue  # claimed again at the next call
                except StoreUnavailable:
                    raise
                except Exception as exc:
                    failed.append((timer, exc))
        for timer, error in failed:
            self._failed(timer, error)
        return len(claimed)

    def fire_all_due(self) -> int:
        """Fire every due timer; return how many were tried."""
        fired = 0
        while True:
            tried = self.fire_due()
            if not tried:
                return fired
            fired += tried

    def next_due(self) -> datetime | None:
        """When the soonest pending timer is to be tried."""
        with self.store.reading() as uow:
            return uow.next_timer_at()

    def _fire(self, uow: UnitOfWork, timer: Timer) -> None:
        process = self.processes.get(timer.process)
        if process is None:
            # a timer of a process this service no longer has: keep it, out of the way
            uow.retry_timer(timer, timer.run_at, timer.attempts, True)
            log.warning("timer %s of unknown process %s parked", timer.name, timer.process)
            return
        stream = stream_name(process.name, timer.key)
        instance = fold(process, timer.key, uow.read_stream(stream), self.keys)
        uow.delete_timer(timer.process, timer.key, timer.name)
        if instance is None or instance.ended or instance.timers.get(timer.name) != timer.due:
            return  # ended, cancelled or moved meanwhile: nothing to fire
        step = Step(process.parse_key(timer.key), instance.state, timer.due)
        process.fire(step, timer.name)
        due = format_time(timer.due)
        fired = NewEvent(type=TIMER_FIRED, data={"timer": timer.name, "due": due})
        trigger = {"timer": timer.name, "due": due}
        instance.timers.pop(timer.name)
        cause = f"timer:{timer.name}@{due}"
        self._record(uow, process, timer.key, instance, step, trigger, cause, None, None, fired)

    def retry_parked(self, process: str, key: str, name: str) -> bool:
        """Fire a parked timer once more: True when its run committed (the timer is
        gone, a `$FailureResolved` appended), False when it failed again (a `$Failure`,
        still parked); `KeyError` when no such timer is parked (another retry took it).

        One transaction: the timer's row is taken first (deleting it locks it, so a
        concurrent retry finds nothing), the handler runs in a savepoint, and a failure
        puts the row back parked, with its `$Failure`, in the same transaction."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return self._retry_parked(process, key, name)
            except VersionConflict:
                # an event of the same instance committed first: read it again
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _retry_parked(self, process: str, key: str, name: str) -> bool:
        if process not in self.processes:
            raise KeyError(f"no process {process} in this service to fire its timer")
        cache = self.commands.states.cache
        with self.batch() as uow:
            found = [
                t for t in uow.list_timers(process) if t.key == key and t.name == name and t.parked
            ]
            if not found or not uow.delete_timer(process, key, name):
                raise KeyError(f"no parked timer {name} of {process} {key}")
            timer = found[0]
            try:
                with self.store.transaction() as savepoint, cache.undone_on_error():
                    self._fire(savepoint, timer)
            except (StoreUnavailable, VersionConflict):
                raise
            except Exception as exc:
                self._log_failure(timer, exc, parked=True)
                uow.set_timer(process, key, name, timer.due)
                self._record_failure(uow, timer, exc, self.clock.now(), parked=True)
                return False
            data = {"consumer": process, "kind": "timer", "timer": name, "key": key}
            data["due"] = format_time(timer.due)
            uow.append(FAILURES_STREAM, [NewEvent(type=RESOLVED, data=data)], None)
            return True

    def _failed(self, timer: Timer, exc: Exception) -> None:
        """A failed attempt: a `$Failure` event, and the timer tried again later (parked
        after the last attempt)."""
        parked = timer.attempts + 1 >= self.retry.max_attempts
        self._log_failure(timer, exc, parked)
        run_at = self.clock.now() + timedelta(seconds=self.retry.delay(timer.attempts + 1))
        with self.store.transaction() as uow:
            self._record_failure(uow, timer, exc, run_at, parked)

    @staticmethod
    def _log_failure(timer: Timer, exc: Exception, parked: bool) -> None:
        log.warning(
            "%s failed on timer %s of %s (attempt %d%s): %s",
            timer.process,
            timer.name,
            timer.key,
            timer.attempts + 1,
            ", parked" if parked else "",
            error_text(exc),
        )

    @staticmethod
    def _record_failure(
        uow: UnitOfWork, timer: Timer, exc: Exception, run_at: datetime, parked: bool
    ) -> None:
        """Append the attempt's `$Failure` and move the timer's next try (or park it)."""
        attempt = timer.attempts + 1
        data = {
            "consumer": timer.process,
            "kind": "timer",
            "timer": timer.name,
            "key": timer.key,
            "due": format_time(timer.due),
            "error": error_text(exc),
            "attempt": attempt,
            "parked": parked,
        }
        uow.append(FAILURES_STREAM, [NewEvent(type=FAILURE, data=data)], None)
        uow.retry_timer(timer, run_at, attempt, parked)

    # -- recording a run ---------------------------------------------------------------------
    def _record(
        self,
        uow: UnitOfWork,
        process: Process[Any],
        key: str,
        instance: Instance | None,
        step: Step[Any],
        trigger: dict[str, Any],
        cause: str,
        traced: tuple[str, str] | None,
        subject: str | None,
        first: NewEvent | None = None,
    ) -> None:
        """Append a run's decisions, write its timers, issue its commands (in `uow`).

        Changed pii state fields are sealed under the key of `subject`, the stream of the
        triggering event (for a timer, None: the stream each field was sealed under
        before, else the instance's own)."""
        pending = instance.timers if instance is not None else {}
        metadata = {"actor": process.name}
        if traced is not None:
            metadata.update(trace(cause, traced[0], traced[1], process.name))
        records = [first] if first is not None else []
        stream = stream_name(process.name, key)
        tokens = dict(instance.sealed) if instance is not None else {}
        for kind, data in decisions(step, instance is None, trigger, pending):
            if process.pii and kind in (STARTED, CHANGED):
                data = self._seal(uow, process, data, tokens, subject, stream)
            records.append(NewEvent(type=kind, data=data, metadata=metadata))
        if records:
            version = instance.version if instance is not None else 0
            generation = self.cache.generation
            try:
                result = uow.append(stream, records, version)
            except VersionConflict:
                self.cache.drop(stream)  # a cached instance was behind its stream
                raise
            after = Instance(key, step.state, step.ended, dict(pending), result.stream_version)
            after.started_at = instance.started_at if instance else result.events[0].recorded_at
            after.updated_at = result.events[-1].recorded_at
            for name, due in step.timers.items():
                if due is None:
                    after.timers.pop(name, None)
                else:
                    after.timers[name] = due
            if step.ended:
                after.timers.clear()
            # the instances' list (`instances`): a row per instance, kept with its stream
            doc = after.to_json()
            if tokens:
                doc["state"] = {**doc["state"], **tokens}
            uow.upsert_row(process.name, key, doc)
            if process.pii or step.ended:
                self.cache.drop(stream)  # an ended instance ignores events: no slot for it
            else:
                # the next run starts from it (not shared before this transaction commits)
                last = result.events[-1].position
                self.cache.put(stream, Cached(after.version, last, after, UNSEALED), generation)
        if step.ended:
            if pending or any(due is not None for due in step.timers.values()):
                uow.delete_timers(process.name, key)
        else:
            for name, due in step.timers.items():
                if due is None:
                    uow.delete_timer(process.name, key, name)
                else:
                    uow.set_timer(process.name, key, name, due)
        self._issue(process, key, step, cause, traced, stream)

    def _seal(
        self,
        uow: UnitOfWork,
        process: Process[Any],
        data: dict[str, Any],
        tokens: dict[str, dict[str, Any]],
        subject: str | None,
        stream: str,
    ) -> dict[str, Any]:
        """A decision's data with the pii fields of its state (`$ProcessStarted`) or of
        its changes (`$ProcessChanged`) sealed; `tokens` (the instance's sealed values)
        updated to match."""
        part = "state" if "state" in data else "changes"
        previous = {wire: str(token.get("stream", "")) for wire, token in tokens.items()}

        def subject_of(wire: str) -> str:
            return subject or previous.get(wire) or stream

        sealed = seal_state(self.keys, uow, process, data[part], subject_of)
        for wire in pii_wires(process):
            if wire in sealed:
                value = sealed[wire]
                if isinstance(value, dict):
                    tokens[wire] = value
                else:
                    tokens.pop(wire, None)
        return {**data, part: sealed}

    def _issue(
        self,
        process: Process[Any],
        key: str,
        step: Step[Any],
        cause: str,
        traced: tuple[str, str] | None,
        stream: str,
    ) -> None:
        """Issue a run's commands (in the run's transaction)."""
        correlation = traced[0] if traced is not None else stream
        causation = traced[1] if traced is not None else stream
        for index, command in enumerate(step.commands):
            cid = str(command_id(process.name, key, cause, index))
            system = info(command).system
            if system is None:
                meta = command_metadata(cid, correlation, causation, process.name)
                self.commands.handle(command, meta, idempotency_key=cid)
            elif self._local.batched:
                raise _Alone  # not in a batch another run's failure could roll back
            elif not self.commands.was_handled(cid):
                # an external system is asked inside the run's transaction (a process's
                # commands to systems wait for the answer while holding the write lock)
                answers = self.reactions.ask(system, command, uuid.UUID(cid))
                sent = Sent(command, cid, trace(cid, correlation, causation, process.name))
                self.commands.record_external(
                    list(answers), cid, trace(cid, correlation, cid, system), sent
                )


@dataclass(eq=False)
class TimerThread:
    """Fires due timers in the background, sleeping until the next is due (or at most
    `idle_timeout`); a `TestClock` moved forward wakes it at once."""

    runs: ProcessRuns
    idle_timeout: float
    _thread: threading.Thread | None = field(default=None, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.runs.clock, TestClock):
            self.runs.clock.listen(self._wake.set)

    def wake(self) -> None:
        """Look for due timers now."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="stormgen:timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                while not self._stopping.is_set() and self.runs.fire_due():
                    pass  # a batch fired: look for more at once
                self._wake.clear()
                wait = self.idle_timeout
                next_at = self.runs.next_due()
                if next_at is not None:
                    ahead = (next_at - self.runs.clock.now()).total_seconds()
                    wait = max(0.0, min(wait, ahead))
                self._wake.wait(wait)
            except Exception:
                log.exception("the timers stopped on an error; retrying")
                self._stopping.wait(self.idle_timeout)
