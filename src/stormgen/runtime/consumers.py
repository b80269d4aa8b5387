"""Views and policies consuming the log, and failures as events (service.md §7).

Each view and each policy is a consumer with a durable checkpoint named after it. A
view applies a batch of events and moves its checkpoint in one transaction; a policy
issues its commands (idempotent by their deterministic ids) and then moves its
checkpoint, so delivery is at least once and effects happen once.

When a consumer fails on an event it appends a `$Failure` event to the `$failures`
stream, waits (exponential backoff) and tries again; after `max_attempts` it parks the
event for that consumer (a `$Failure` with `parked: true`) and goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag

from stormgen.runtime import codec
from stormgen.runtime.aggregate import id_text
from stormgen.runtime.crypto import MARKER, decrypt_value, encrypt_value
from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.messages import Envelope, info
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

    def delay(self, attempt: int) -> float:
        """The wait after the `attempt`-th failure (1-based)."""
        return float(min(self.max_delay, self.base_delay * self.factor ** (attempt - 1)))


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_GONE = object()  # a sealed value whose key was forgotten


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
        out = {name: doc[name] for name in hints if name in doc}
        gone: set[str] = set()
        for name in view.pii:
            token = doc.get(name)
            if isinstance(token, dict) and MARKER in token:
                value = self._open_token(view, name, token)
                if value is _GONE:
                    gone.add(name)
                    value = codec.redacted_value(hints[name])
                out[name] = value
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
        for name in view.pii:
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
        self._react(consumer.policy, env)
        self.store.set_checkpoint(consumer.name, env.position)

    def _react(self, policy: Policy, env: Envelope) -> None:
        assert env.event is not None
        correlation = env.metadata.get("correlation_id") or env.id
        for index, command in enumerate(policy.react(env.event, env)):
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
            if self.app.was_handled(str(cid)):
                # the system was asked before and its answer is in the log: don't ask twice
                continue
            port = self.app.ports.get(system)
            if port is None:
                raise LookupError(f"no adapter for the external system {system}")
            answers = port.send(command, cid)
            self.app.record_external(
                list(answers),
                idempotency_key=str(cid),
                actor=system,
                correlation_id=correlation,
                causation_id=str(cid),
            )

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
                self._process(consumer, self.app.envelope(rec), expected)
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
            after = self.store.get_checkpoint(name)
            last = self.store.last_position()
            if last <= after:
                return 0
            size = self.retry.batch_size
            batch = self.store.read_all(after, size, consumer.types, last)
            if not batch:
                # nothing of ours up to `last`: the checkpoint still follows the log
                self.store.set_checkpoint(name, last)
                return 0
            end = last if len(batch) < size else batch[-1].position
            try:
                if consumer.view is not None and self._view_batch(consumer, batch, after, end):
                    return len(batch)
                cursor = after
                for rec in batch:
                    if not self._process_with_retries(consumer, rec, cursor):
                        return 0
                    cursor = rec.position
            except _Overtaken:
                # another process runs this consumer too and got there first
                return 0
            self.store.set_checkpoint(name, end)
            return len(batch)

    def _view_batch(
        self, consumer: _Consumer, batch: list[RecordedEvent], after: int, end: int
    ) -> bool:
        """Apply a whole batch in one transaction; False if some event fails."""
        assert consumer.view is not None
        try:
            envelopes = [self.app.envelope(rec) for rec in batch]
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
            caught_up = all(
                self.store.get_checkpoint(name) >= self.store.last_position()
                for name in self._consumers
            )
            if round_total == 0 and caught_up:
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
            total = 0
            while True:
                done = self.run_once(view.name)
                total += done
                position, end = self.store.get_checkpoint(view.name), self.store.last_position()
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
        """Start one daemon thread per consumer."""
        if self._threads:
            return
        self._stopping.clear()
        for name in self._consumers:
            thread = threading.Thread(
                target=self._loop, args=(name,), name=f"stormgen:{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _loop(self, name: str) -> None:
        while not self._stopping.is_set():
            try:
                if self.run_once(name) == 0:
                    self.store.wait_for_events(
                        self.store.get_checkpoint(name), self.retry.idle_timeout
                    )
            except Exception:
                # e.g. the database went away: keep the thread alive and try again later
                log.exception("consumer %s stopped on an error; retrying", name)
                self._stopping.wait(self.retry.idle_timeout)

    def stop(self) -> None:
        """Stop the background threads and wait for them."""
        if not self._threads:
            return
        self._stopping.set()
        self.store.wake_waiters()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def progress(self) -> dict[str, dict[str, int]]:
        """Each consumer's checkpoint and lag behind the log."""
        last = self.store.last_position()
        out: dict[str, dict[str, int]] = {}
        for name in self._consumers:
            checkpoint = self.store.get_checkpoint(name)
            out[name] = {"position": checkpoint, "behind": max(0, last - checkpoint)}
        return out

    def names(self) -> list[str]:
        """The consumers' names (views and policies)."""
        return list(self._consumers)
