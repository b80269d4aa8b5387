"""Views and policies consuming the log, and failures as events (service.md §7).

Each view and each policy is a consumer with a durable checkpoint named after it. A
view applies a batch of events and moves its checkpoint in one transaction; a policy
issues its commands (idempotent by their deterministic ids) and then moves its
checkpoint, so delivery is at least once and effects happen once.

Consumers read only the event types they handle. Moving past events of other types
(and a policy's own progress) is kept in memory and written lazily: at most every
`checkpoint_interval` seconds or `checkpoint_lag` events, when idle, and on stop. A
crash then re-reads that stretch: nothing for a view (its rows moved with its
checkpoint), idempotent redelivery for a policy; nothing relevant is ever skipped.

When a consumer fails on an event it appends a `$Failure` event to the `$failures`
stream, waits (exponential backoff) and tries again; after `max_attempts` it parks the
event for that consumer (a `$Failure` with `parked: true`) and goes on.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag

from stormgen.runtime import codec
from stormgen.runtime.aggregate import id_text
from stormgen.runtime.crypto import decrypt_value, encrypt_value
from stormgen.runtime.envelope import SEALED_KEY, NewEvent, RecordedEvent
from stormgen.runtime.messages import Command, Envelope, Event, info
from stormgen.runtime.policies import Policy, command_id
from stormgen.runtime.store.base import ParkedFailure, UnitOfWork
from stormgen.runtime.views import DELETE, View

if TYPE_CHECKING:
    from stormgen.runtime.application import Application

log = logging.getLogger("stormgen.runtime")

Progress = Callable[[int, int], None]
"""Called with (position reached, end position) during long work."""

FAILURE = "$Failure"
RESOLVED = "$FailureResolved"
FAILURES_STREAM = "$failures"


@dataclass(frozen=True)
class RetrySettings:
    """How consumers retry a failing event before parking it."""

    max_attempts: int = 3
    base_delay: float = 0.1
    factor: float = 2.0
    max_delay: float = 5.0
    batch_size: int = 500
    idle_timeout: float = 1.0
    # how far a consumer's durable checkpoint may trail what it has done: a crash makes
    # it re-read at most this much (harmless: see the module docstring)
    checkpoint_interval: float = 1.0
    checkpoint_lag: int = 1000
    # after a wake-up, wait this long for more events before reading (background threads
    # only): a burst becomes one batch, one transaction; it delays views and policy chains
    # by as much per hop
    coalesce: float = 0.02

    def delay(self, attempt: int) -> float:
        """The wait after the `attempt`-th failure (1-based)."""
        return float(min(self.max_delay, self.base_delay * self.factor ** (attempt - 1)))


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_GONE = object()  # a sealed value whose key was forgotten
_POLICY_BATCH = 50


class _Overtaken(Exception):
    """Another process moved this consumer's checkpoint first."""


class _Consumer:
    """One consumer: a name, the event types it reads and how to process an event."""

    def __init__(
        self,
        name: str,
        kind: str,
        types: list[str],
        view: View[Any] | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.types = types
        self.view = view
        self.policy = policy
        # serialises the background thread with replays and synchronous runs
        self.lock = threading.RLock()
        # progress not yet written: `reached` is how far the consumer is done, valid only
        # while the stored checkpoint is still `base` (anyone else moving it, forward or
        # back as a replay does, makes the stored value authoritative again)
        self.base = -1
        self.reached = 0
        self.dirty_since: float | None = None
        # set by the dispatcher when an event of this consumer's types is appended
        self.wakeup = threading.Event()

    def position(self, stored: int) -> int:
        """Where to go on from, given the stored checkpoint."""
        if stored == self.base and self.reached > stored:
            return self.reached
        return stored

    def stored(self, position: int) -> None:
        """Record that the stored checkpoint is now `position` (nothing pending)."""
        self.base = self.reached = position
        self.dirty_since = None

    def advance(self, stored: int, position: int) -> None:
        """Record progress to `position` in memory only (the stored checkpoint is `stored`)."""
        if stored != self.base:
            self.base, self.reached, self.dirty_since = stored, stored, None
        if position > self.reached:
            self.reached = position
            if self.dirty_since is None:
                self.dirty_since = time.monotonic()


class Consumers:
    """The views and policies of an application, run synchronously or in threads."""

    def __init__(self, app: Application, retry: RetrySettings) -> None:
        self.app = app
        self.store = app.store
        self.retry = retry
        self._consumers: dict[str, _Consumer] = {}
        for view in app.views.values():
            types = sorted({info(e).name for e in view.events})
            self._consumers[view.name] = _Consumer(view.name, "view", types, view=view)
            if self.store.ensure_view_table(view.name, view.sql_columns()):
                # a new (or reshaped) table starts empty: rebuild it from the log
                with self.store.transaction() as uow:
                    uow.reset_checkpoint(view.name, 0)
        for policy in app.policies.values():
            types = sorted({info(e).name for e in policy.events})
            self._consumers[policy.name] = _Consumer(policy.name, "policy", types, policy=policy)
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- view rows -------------------------------------------------------------------
    @staticmethod
    def view_key_text(view: View[Any], key: Any) -> str:
        """A row key as the text the table stores (keys given as text are parsed first)."""
        if isinstance(key, str):
            key = codec.from_data(view.key_type(), key)
        return id_text(key)

    def open_doc(self, view: View[Any], doc: dict[str, Any]) -> dict[str, Any]:
        """A stored row document as JSON, pii columns decrypted (or redacted)."""
        return self._open_doc(view, doc)[0]

    def _open_doc(self, view: View[Any], doc: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        hints = codec._hints(view.row_type)
        # the row class's field order, whatever order the database kept
        wires = codec.wire_names(view.row_type)
        columns = [wires.get(name, name) for name in hints]
        out = {column: doc[column] for column in columns if column in doc}
        gone: set[str] = set()
        for name in view.pii:
            column = wires.get(name, name)
            token = doc.get(column)
            if isinstance(token, dict) and SEALED_KEY in token:
                value = self._open_token(view, column, token)
                if value is _GONE:
                    gone.add(column)
                    value = codec.redacted_value(hints[name])
                out[column] = value
        return out, gone

    def _open_token(self, view: View[Any], column: str, token: dict[str, Any]) -> Any:
        stream = str(token.get("stream", ""))
        key = self.app.keys.key_for_reading(stream)
        if key is not None:
            try:
                return decrypt_value(key, stream, f"{view.name}.{column}", token)
            except (InvalidTag, ValueError):
                log.debug("view %s column %s sealed under a forgotten key", view.name, column)
        return _GONE

    def _seal_row(
        self,
        uow: UnitOfWork,
        view: View[Any],
        row: Any,
        old_doc: dict[str, Any] | None,
        old_plain: dict[str, Any] | None,
        stream: str,
    ) -> dict[str, Any]:
        doc: dict[str, Any] = codec.to_data(row)
        for attribute in view.pii:
            name = view.wire(attribute)
            value = doc.get(name)
            if value is None:
                continue
            if old_doc is not None and old_plain is not None and old_plain.get(name) == value:
                # unchanged: keep the token sealed under the stream it was copied from
                doc[name] = old_doc[name]
                continue
            key = self.app.keys.key_for_writing(uow, stream)
            token = encrypt_value(key, stream, f"{view.name}.{name}", value)
            doc[name] = {**token, "stream": stream}
        return doc

    def _apply_view(self, uow: UnitOfWork, view: View[Any], env: Envelope) -> None:
        assert env.event is not None
        key = view.key_of(env.event, env)
        if key is None:
            return
        key_text = id_text(key)
        old_doc = uow.get_row(view.name, key_text)
        if old_doc is None:
            old_plain = None
            row = view.new_row(key)
        else:
            old_plain, gone = self._open_doc(view, old_doc)
            row = codec.from_data_redacted(view.row_type, old_plain, gone)
        new = view.update(row, env.event, env)
        if new is DELETE:
            uow.delete_row(view.name, key_text)
            return
        uow.upsert_row(
            view.name, key_text, self._seal_row(uow, view, new, old_doc, old_plain, env.stream)
        )

    # -- processing ----------------------------------------------------------------------
    @staticmethod
    def _claim(uow: UnitOfWork, name: str, expected: int) -> None:
        """Lock the consumer's checkpoint row for this transaction and check it is unmoved.

        The upsert locks the row until commit, so another process running the same
        view waits, then sees the moved checkpoint and backs off instead of applying
        the same events twice.
        """
        if uow.set_checkpoint(name, expected) != expected:
            raise _Overtaken(name)

    def _process(self, consumer: _Consumer, env: Envelope, expected: int) -> None:
        """Process one event with no retry; raises what the handler raised."""
        if consumer.view is not None:
            with self.store.transaction() as uow:
                self._claim(uow, consumer.name, expected)
                self._apply_view(uow, consumer.view, env)
                uow.set_checkpoint(consumer.name, env.position)
            return
        assert consumer.policy is not None and env.event is not None
        # the checkpoint moves in memory (run_once): redelivery after a crash is harmless
        self._react(consumer.policy, env)

    def _react(
        self,
        policy: Policy,
        env: Envelope,
        commands: list[Command] | None = None,
        answered: dict[uuid.UUID, Sequence[Event]] | None = None,
    ) -> None:
        """Issue a reaction's commands; `answered` holds external systems' answers got
        beforehand (a batch), else each system is asked here."""
        assert env.event is not None
        correlation = env.metadata.get("correlation_id") or env.id
        if commands is None:
            commands = list(policy.react(env.event, env))
        for index, command in enumerate(commands):
            cid = command_id(policy.name, env.id, index)
            system = info(command).system
            if system is None:
                self.app.handle(
                    command,
                    idempotency_key=str(cid),
                    command_id=str(cid),
                    correlation_id=correlation,
                    causation_id=env.id,
                    actor=policy.name,
                )
                continue
            if answered is not None:
                if cid not in answered:
                    continue  # answered before the batch: the answer is in the log
                answers = answered[cid]
            elif self.app.was_handled(str(cid)):
                # the system was asked before and its answer is in the log: don't ask twice
                continue
            else:
                answers = self._ask(system, command, cid)
            self.app.record_external(
                list(answers),
                idempotency_key=str(cid),
                actor=system,
                correlation_id=correlation,
                causation_id=str(cid),
            )

    def _ask(self, system: str, command: Command, cid: uuid.UUID) -> Sequence[Event]:
        port = self.app.ports.get(system)
        if port is None:
            raise LookupError(f"no adapter for the external system {system}")
        return list(port.send(command, cid))

    def _policy_batch(
        self, consumer: _Consumer, batch: list[RecordedEvent], after: int, end: int
    ) -> bool:
        """Issue a batch's commands and move the checkpoint in one transaction.

        One commit for many reactions (under load a policy finds many events at once).
        External systems are asked first, outside the transaction: no network call
        holds the store's write lock. False (nothing kept) sends the caller event by
        event, with retries: a reaction that asks a system after issuing a command
        (which could fail first), or any error.
        """
        policy = consumer.policy
        assert policy is not None
        try:
            plans: list[tuple[Envelope, list[Command]]] = []
            for rec in batch:
                env = self.app.shared_envelope(rec)
                assert env.event is not None
                commands = list(policy.react(env.event, env))
                kinds = [info(c).system is not None for c in commands]
                if kinds != sorted(kinds, reverse=True):
                    return False  # a system asked after a command: keep the order of effects
                plans.append((env, commands))
            answered: dict[uuid.UUID, Sequence[Event]] = {}
            for env, commands in plans:
                for index, command in enumerate(commands):
                    system = info(command).system
                    cid = command_id(policy.name, env.id, index)
                    if system is not None and not self.app.was_handled(str(cid)):
                        answered[cid] = self._ask(system, command, cid)
            # the states the commands cache stay this thread's until the commit: other
            # threads must not decide on (or show) what may be rolled back
            with self.app.batch() as uow:
                self._claim(uow, consumer.name, after)
                for env, commands in plans:
                    self._react(policy, env, commands, answered)
                uow.set_checkpoint(consumer.name, end)
            return True
        except _Overtaken:
            raise
        except Exception:
            # rolled back (with the states cached meanwhile): go event by event
            return False

    def _record_failure(
        self,
        consumer: _Consumer,
        rec: RecordedEvent,
        exc: BaseException,
        attempt: int,
        parked: bool,
    ) -> None:
        error = _error_text(exc)
        data: dict[str, Any] = {
            "consumer": consumer.name,
            "kind": consumer.kind,
            "event_id": rec.id,
            "event_type": rec.type,
            "position": rec.position,
            "error": error,
            "attempt": attempt,
            "parked": parked,
        }
        metadata = {
            "correlation_id": rec.metadata.get("correlation_id", rec.id),
            "causation_id": rec.id,
        }
        with self.store.transaction() as uow:
            uow.append(
                FAILURES_STREAM, [NewEvent(type=FAILURE, data=data, metadata=metadata)], None
            )
            if parked:
                uow.park_failure(
                    ParkedFailure(
                        consumer=consumer.name,
                        position=rec.position,
                        event_id=rec.id,
                        error=error,
                        attempts=attempt,
                        parked_at=datetime.now(UTC),
                    )
                )
                uow.set_checkpoint(consumer.name, rec.position)

    def _process_with_retries(self, consumer: _Consumer, rec: RecordedEvent, expected: int) -> bool:
        """Process an event, retrying and finally parking it; False if stopped midway."""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                self._process(consumer, self.app.shared_envelope(rec), expected)
                return True
            except _Overtaken:
                raise
            except Exception as exc:
                last = attempt >= self.retry.max_attempts
                log.warning(
                    "%s failed on event %s (attempt %d%s): %s",
                    consumer.name,
                    rec.position,
                    attempt,
                    ", parked" if last else "",
                    _error_text(exc),
                )
                self._record_failure(consumer, rec, exc, attempt, parked=last)
                if last:
                    return True
                if self._stopping.wait(self.retry.delay(attempt)):
                    return False
        return True

    def run_once(self, name: str) -> int:
        """Process the consumer's next batch of events; return how many there were."""
        consumer = self._consumers[name]
        with consumer.lock:
            stored = self.store.get_checkpoint(name)
            if stored != consumer.base:
                # first run, or someone else moved it (another process, a replay)
                consumer.stored(stored)
            after = consumer.position(stored)
            last = self.store.last_position()
            if last <= after:
                return 0
            size = self._batch_size(consumer)
            batch = self.store.read_all(after, size, consumer.types, last)
            if not batch:
                # nothing of ours up to `last`: follow the log in memory, write it lazily
                consumer.advance(stored, last)
                self._flush(consumer, stored)
                return 0
            end = last if len(batch) < size else batch[-1].position
            try:
                if consumer.view is not None and self._view_batch(consumer, batch, after, end):
                    consumer.stored(end)
                    return len(batch)
                if (
                    consumer.policy is not None
                    and len(batch) > 1
                    and self._policy_batch(consumer, batch, after, end)
                ):
                    consumer.stored(end)
                    return len(batch)
                cursor = after
                for rec in batch:
                    if not self._process_with_retries(consumer, rec, cursor):
                        return 0
                    cursor = rec.position
                    if consumer.policy is not None:
                        consumer.advance(stored, cursor)
            except _Overtaken:
                # another process runs this consumer too and got there first
                return 0
            if consumer.view is not None:
                # event by event: each event's transaction moved the checkpoint already
                consumer.stored(self.store.set_checkpoint(name, end))
            else:
                consumer.advance(stored, end)
                self._flush(consumer, stored)
            return len(batch)

    def _batch_size(self, consumer: _Consumer) -> int:
        if consumer.policy is not None:
            # a policy's batch runs its commands in one transaction: keep it short, other
            # writers wait for it
            return min(self.retry.batch_size, _POLICY_BATCH)
        return self.retry.batch_size

    def _flush(self, consumer: _Consumer, stored: int, *, force: bool = False) -> None:
        """Write the progress kept in memory when it is due (or forced)."""
        if consumer.dirty_since is None or consumer.position(stored) <= stored:
            return
        due = (
            force
            or consumer.reached - stored >= self.retry.checkpoint_lag
            or time.monotonic() - consumer.dirty_since >= self.retry.checkpoint_interval
        )
        if due:
            consumer.stored(self.store.set_checkpoint(consumer.name, consumer.reached))

    def flush(self, name: str | None = None) -> None:
        """Write every consumer's (or one's) pending progress to its stored checkpoint."""
        for consumer in self._consumers.values():
            if name is not None and consumer.name != name:
                continue
            with consumer.lock:
                self._flush(consumer, self.store.get_checkpoint(consumer.name), force=True)

    def position(self, name: str) -> int:
        """How far a consumer is done (its stored checkpoint, or further in memory)."""
        return self._consumers[name].position(self.store.get_checkpoint(name))

    def _view_batch(
        self, consumer: _Consumer, batch: list[RecordedEvent], after: int, end: int
    ) -> bool:
        """Apply a whole batch in one transaction; False if some event fails."""
        assert consumer.view is not None
        try:
            envelopes = [self.app.shared_envelope(rec) for rec in batch]
            with self.store.transaction() as uow:
                self._claim(uow, consumer.name, after)
                for env in envelopes:
                    self._apply_view(uow, consumer.view, env)
                uow.set_checkpoint(consumer.name, end)
            return True
        except _Overtaken:
            raise
        except Exception:
            # roll back and go one event at a time to find (and retry) the failing one
            return False

    def run_until_idle(self, timeout: float = 30.0) -> int:
        """Run every consumer until none has anything left; return events processed."""
        deadline = time.monotonic() + timeout
        total = 0
        while True:
            round_total = 0
            for name in self._consumers:
                round_total += self.run_once(name)
            total += round_total
            last = self.store.last_position()
            caught_up = all(self.position(name) >= last for name in self._consumers)
            if round_total == 0 and caught_up:
                self.flush()
                return total
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumers did not catch up within {timeout} s")

    # -- replay -----------------------------------------------------------------------------
    def replay_view(self, view: View[Any], progress: Progress | None = None) -> int:
        """Empty a view, reset its checkpoint and rebuild it from the whole log.

        `progress(position, end)` is called after each batch.
        """
        consumer = self._consumers[view.name]
        with consumer.lock:
            with self.store.transaction() as uow:
                uow.clear_view(view.name)
                uow.reset_checkpoint(view.name, 0)
                for failure in uow.list_failures(view.name):
                    uow.delete_failure(view.name, failure.position)
            consumer.stored(0)
            total = 0
            while True:
                done = self.run_once(view.name)
                total += done
                position, end = self.position(view.name), self.store.last_position()
                if progress is not None:
                    progress(min(position, end), end)
                if done == 0 and position >= end:
                    return total

    # -- parked failures ---------------------------------------------------------------------
    def retry_parked(self, name: str, position: int) -> bool:
        """Process a parked event once more; unpark it on success."""
        consumer = self._consumers.get(name)
        if consumer is None:
            raise KeyError(f"no view or policy named {name!r}")
        parked = {f.position: f for f in self.store.list_failures(name)}
        failure = parked.get(position)
        if failure is None:
            raise KeyError(f"no parked failure of {name} at position {position}")
        rec = self.store.read_event(position)
        if rec is None:
            raise KeyError(f"no event at position {position}")
        with consumer.lock:
            try:
                env = self.app.envelope(rec)
                if consumer.view is not None:
                    with self.store.transaction() as uow:
                        self._apply_view(uow, consumer.view, env)
                else:
                    assert consumer.policy is not None
                    self._react(consumer.policy, env)
            except Exception as exc:
                self._record_failure(consumer, rec, exc, failure.attempts + 1, parked=True)
                return False
            data = {"consumer": name, "event_id": rec.id, "position": position}
            with self.store.transaction() as uow:
                uow.delete_failure(name, position)
                uow.append(FAILURES_STREAM, [NewEvent(type=RESOLVED, data=data)], None)
            return True

    # -- background threads --------------------------------------------------------------------
    def start(self) -> None:
        """Start one daemon thread per consumer, and one dispatching new events to them."""
        if self._threads or not self._consumers:
            return
        self._stopping.clear()
        dispatcher = threading.Thread(
            target=self._dispatch, args=(self.store.last_position(),), name="stormgen:dispatch",
            daemon=True,
        )  # fmt: skip
        self._threads.append(dispatcher)
        dispatcher.start()
        for name in self._consumers:
            thread = threading.Thread(
                target=self._loop, args=(name,), name=f"stormgen:{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _loop(self, name: str) -> None:
        consumer = self._consumers[name]
        while not self._stopping.is_set():
            try:
                # cleared before reading, so a wake-up during the run is not lost
                consumer.wakeup.clear()
                done = self.run_once(name)
                if done >= self._batch_size(consumer):
                    continue  # a full batch: more is waiting
                # a short batch ran to the end of the log: wait for the dispatcher's call
                if not consumer.wakeup.wait(self.retry.idle_timeout):
                    self.flush(name)  # idle for a while: write what is pending
                elif self.retry.coalesce > 0:
                    # let a burst gather: one batch (one transaction) instead of many
                    self._stopping.wait(self.retry.coalesce)
            except Exception:
                # e.g. the database went away: keep the thread alive and try again later
                log.exception("consumer %s stopped on an error; retrying", name)
                self._stopping.wait(self.retry.idle_timeout)

    def _dispatch(self, watched: int) -> None:
        """Wake only the consumers an appended event concerns; move the others along.

        One reader for all consumers instead of every consumer waking, reading and
        finding nothing on every append. A consumer not woken still wakes after
        `idle_timeout` and reads for itself, so a missed event is late, never lost.
        """
        while not self._stopping.is_set():
            try:
                if not self.store.wait_for_events(watched, self.retry.idle_timeout):
                    continue
                last = self.store.last_position()
                # the types only: the consumers read (and decode) the events themselves
                seen = self.store.event_types(watched, last)
                for consumer in self._consumers.values():
                    if seen.intersection(consumer.types):
                        consumer.wakeup.set()
                    else:
                        self._skip(consumer, watched, last)
                watched = max(watched, last)
            except Exception:
                log.exception("the consumers' dispatcher stopped on an error; retrying")
                self._stopping.wait(self.retry.idle_timeout)

    @staticmethod
    def _skip(consumer: _Consumer, scanned_from: int, last: int) -> None:
        """Move an idle consumer past events it does not read, in memory."""
        if not consumer.lock.acquire(blocking=False):
            # busy with a batch that may end before `last`: have it look once more (it
            # finds nothing of its own and moves along in memory) rather than trail the
            # log until its idle timeout
            consumer.wakeup.set()
            return
        try:
            # only when it has reached where this scan began: nothing of its types since
            if consumer.base >= 0 and consumer.reached >= scanned_from:
                consumer.advance(consumer.base, last)
        finally:
            consumer.lock.release()

    def stop(self) -> None:
        """Stop the background threads and wait for them."""
        if not self._threads:
            return
        self._stopping.set()
        self.store.wake_waiters()
        for consumer in self._consumers.values():
            consumer.wakeup.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        try:
            self.flush()
        except Exception:
            # a store gone away: the progress is re-read after a restart, nothing is lost
            log.exception("could not write the consumers' checkpoints on stop")

    def progress(self) -> dict[str, dict[str, int]]:
        """Each consumer's checkpoint and lag behind the log."""
        last = self.store.last_position()
        out: dict[str, dict[str, int]] = {}
        for name in self._consumers:
            checkpoint = self.position(name)
            out[name] = {"position": checkpoint, "behind": max(0, last - checkpoint)}
        return out

    def names(self) -> list[str]:
        """The consumers' names (views and policies)."""
        return list(self._consumers)
