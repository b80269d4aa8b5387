"""Views and policies consuming the log, and failures as events (service.md §7).

Each view and each policy is a consumer with a durable checkpoint named after it. A
view applies a batch of events and moves its checkpoint in one transaction; a policy
issues its commands (idempotent by their deterministic ids) and then moves its
checkpoint, so delivery is at least once and effects happen once. Every write of a
checkpoint is a compare-and-set against the stored value the consumer went on from
(`_claim`, `_move`): another process running the same consumer may have moved it
forward, a replay back (emptying the view first); either way the consumer backs off
and goes on from the stored value, so a replay while the service runs loses nothing.

Consumers read only the event types they handle. Moving past events of other types
(and a policy's own progress) is kept in memory and written lazily: at most every
`checkpoint_interval` seconds or `checkpoint_lag` events, when idle, and on stop. A
crash then re-reads that stretch: nothing for a view (its rows moved with its
checkpoint), idempotent redelivery for a policy; nothing relevant is ever skipped.

In the background one thread runs every consumer in passes (`run_pass`): policies,
then views, over what is new, in one transaction with a savepoint each.

When a consumer fails on an event it appends a `$Failure` event to the `$failures`
stream, waits (exponential backoff) and tries again; after `max_attempts` it parks the
event for that consumer (a `$Failure` with `parked: true`) and goes on. In the
background it does so alone, in a thread of its own, while the passes go on.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.messages import Envelope, Event, info
from stormgen.runtime.policies import Policy
from stormgen.runtime.reactions import Plans, Reactions
from stormgen.runtime.store.base import EventStore, ParkedFailure, UnitOfWork
from stormgen.runtime.view_rows import ViewRows
from stormgen.runtime.views import View

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
    # after a wake-up, wait this long for more events before a pass (in the background
    # only): a burst becomes one pass, one transaction; views and policy chains lag by
    # as much
    coalesce: float = 0.02

    def delay(self, attempt: int) -> float:
        """The wait after the `attempt`-th failure (1-based)."""
        return float(min(self.max_delay, self.base_delay * self.factor ** (attempt - 1)))


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_POLICY_BATCH = 50


_CHAIN_ROUNDS = 8  # how far a pass follows policies reacting to what policies appended


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


@dataclass
class _Batch:
    """A consumer's events for a pass, with its reactions (policies) planned."""

    consumer: _Consumer
    after: int
    end: int
    plans: Plans
    answered: dict[uuid.UUID, Sequence[Event]]
    # the stored checkpoint `after` was worked out from (the claim checks it is unmoved)
    base: int


@dataclass
class _Pass:
    """What one pass took, did and left."""

    start: int  # the log's head when the pass began
    head: int  # how far the pass has looked (what its policies append moves it)
    # the stretches of log the transaction looked at past `start`, with their types
    rounds: list[tuple[int, int, set[str]]] = field(default_factory=list)
    taken: list[_Consumer] = field(default_factory=list)
    policies: list[_Batch] = field(default_factory=list)
    views: list[_Consumer] = field(default_factory=list)
    done: list[tuple[_Consumer, int]] = field(default_factory=list)
    failed: list[_Consumer] = field(default_factory=list)
    overtaken: list[_Consumer] = field(default_factory=list)
    more: bool = False

    def look(self, store: EventStore, top: int) -> set[str]:
        """The types appended in (head, top]; the pass has now looked up to `top`."""
        seen = store.event_types(self.head, top)
        self.rounds.append((self.head, top, seen))
        self.head = top
        return seen

    def appended(self, consumer: _Consumer) -> bool:
        """Whether events of the consumer's types lie past where it is, among those
        the transaction looked at."""
        after = self.reached(consumer)
        return any(
            end > after and seen.intersection(consumer.types) for _, end, seen in self.rounds
        )

    def stored(self, consumer: _Consumer) -> int:
        """The consumer's stored checkpoint as this pass's transaction left it."""
        for done, end in reversed(self.done):
            if done is consumer:
                return end
        return consumer.base

    def reached(self, consumer: _Consumer) -> int:
        """How far the consumer is done, this pass's work included."""
        for done, end in reversed(self.done):
            if done is consumer:
                return end
        return consumer.position(consumer.base)


class Consumers:
    """The views and policies of an application, run synchronously or in a thread."""

    def __init__(self, app: Application, retry: RetrySettings) -> None:
        self.app = app
        self.store = app.store
        self.retry = retry
        self.rows = app.rows
        self.reactions = Reactions(app.commands, app.reader, app.ports)
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
        # consumers that failed in a pass and run alone meanwhile, by name
        self._recovering: dict[str, threading.Thread] = {}
        self._recovery_lock = threading.Lock()

    # -- view rows -------------------------------------------------------------------
    @staticmethod
    def view_key_text(view: View[Any], key: Any) -> str:
        """A row key as the text the table stores (see `ViewRows.key_text`)."""
        return ViewRows.key_text(view, key)

    def open_doc(self, view: View[Any], doc: dict[str, Any]) -> dict[str, Any]:
        """A stored row document as JSON, pii columns decrypted (or redacted)."""
        return self.rows.open_doc(view, doc)

    # -- processing ----------------------------------------------------------------------
    @staticmethod
    def _claim(uow: UnitOfWork, name: str, base: int) -> None:
        """Lock the consumer's checkpoint row for this transaction and check it is still
        `base`, the stored value the caller worked out where to go on from.

        Compare-and-set: another process running the same consumer moved it forward, or
        a replay moved it back (and emptied the view); either way the caller backs off
        and starts again from what is stored, instead of applying events twice or
        writing its stale position over a rebuild. The lock is held until commit: a
        process that claims the checkpoint meanwhile waits, then sees it moved.
        """
        if uow.lock_checkpoint(name) != base:
            raise _Overtaken(name)

    def _move(self, consumer: _Consumer, position: int) -> int:
        """Move the stored checkpoint from `consumer.base` to `position` (compare-and-set);
        return the stored value: someone else's when it moved meanwhile."""
        with self.store.transaction() as uow:
            stored = uow.lock_checkpoint(consumer.name)
            if stored == consumer.base:
                stored = uow.set_checkpoint(consumer.name, position)
        return stored

    def _process(self, consumer: _Consumer, env: Envelope) -> None:
        """Process one event with no retry; raises what the handler raised."""
        if consumer.view is not None:
            with self.store.transaction() as uow:
                self._claim(uow, consumer.name, consumer.base)
                self.rows.apply(uow, consumer.view, env)
                uow.set_checkpoint(consumer.name, env.position)
            return
        assert consumer.policy is not None and env.event is not None
        # the checkpoint moves in memory (run_once): redelivery after a crash is harmless
        self.reactions.react(consumer.policy, env)

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
            plans = self.reactions.plans(policy, batch)
            if plans is None:
                return False  # a system asked after a command: keep the order of effects
            answered = self.reactions.ask_all(policy, plans)
            # the states the commands cache stay this thread's until the commit: other
            # threads must not decide on (or show) what may be rolled back
            with self.app.batch() as uow:
                planned = _Batch(consumer, after, end, plans, answered, base=consumer.base)
                self._apply_batch(uow, planned)
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
        *,
        moves: bool = True,
    ) -> None:
        """Append a `$Failure`; a parked one (`moves`) also moves the checkpoint past the
        event, by compare-and-set like any other move (`_Overtaken` if it moved)."""
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
        moved = parked and moves
        with self.store.transaction() as uow:
            if moved:
                self._claim(uow, consumer.name, consumer.base)
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
                if moved:
                    uow.set_checkpoint(consumer.name, rec.position)
        if moved:
            consumer.stored(rec.position)

    def _process_with_retries(self, consumer: _Consumer, rec: RecordedEvent) -> bool:
        """Process an event, retrying and finally parking it; False if stopped midway."""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                self._process(consumer, self.app.shared_envelope(rec))
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
                for rec in batch:
                    if not self._process_with_retries(consumer, rec):
                        return 0
                    if consumer.view is not None:
                        consumer.stored(rec.position)  # its transaction moved the checkpoint
                    else:
                        consumer.advance(consumer.base, rec.position)
            except _Overtaken:
                # another process runs this consumer too and got there first, or a
                # replay started over: go on from the stored checkpoint next time
                return 0
            if consumer.view is not None:
                # event by event: each event's transaction moved the checkpoint already
                consumer.stored(self._move(consumer, end))
            else:
                consumer.advance(consumer.base, end)
                self._flush(consumer, consumer.base)
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
            # compare-and-set: a replay that reset the checkpoint meanwhile must not see it
            # jump forward over what it has not rebuilt yet
            consumer.stored(self._move(consumer, consumer.reached))

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
        try:
            with self.store.transaction() as uow:
                view_batch = self._view_batch_of(consumer, batch, after, end, consumer.base)
                self._apply_batch(uow, view_batch)
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
                # first the checkpoint: no process applies events to the view until this
                # commits (each claims it first), and afterwards each sees it moved back
                uow.lock_checkpoint(view.name)
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
            gone = False
            try:
                env = self.app.envelope(rec)
                if consumer.view is not None:
                    with self.store.transaction() as uow:
                        # under the checkpoint's lock, like every writer of the view's rows:
                        # a replay that started over meanwhile dropped the failure and
                        # applies the event itself
                        uow.lock_checkpoint(name)
                        gone = all(f.position != position for f in uow.list_failures(name))
                        if not gone:
                            self.rows.apply(uow, consumer.view, env)
                else:
                    assert consumer.policy is not None
                    self.reactions.react(consumer.policy, env)
            except Exception as exc:
                attempts = failure.attempts + 1
                self._record_failure(consumer, rec, exc, attempts, parked=True, moves=False)
                return False
            if gone:
                raise KeyError(f"no parked failure of {name} at position {position}")
            data = {"consumer": name, "event_id": rec.id, "position": position}
            with self.store.transaction() as uow:
                uow.delete_failure(name, position)
                uow.append(FAILURES_STREAM, [NewEvent(type=RESOLVED, data=data)], None)
            return True

    # -- passes: every consumer, one transaction ---------------------------------------------
    def run_pass(self) -> tuple[int, bool]:
        """Run every consumer once over what is new, in one store transaction.

        The background path (`start`). Policies go first, in the order they were
        declared, then the views, each in a savepoint of its own: one commit for all
        of them instead of one each. Reading inside the transaction, a policy sees
        what the ones before it appended, so a chain of policies and the views that
        follow it are brought up to date in one pass. External systems are asked
        before the transaction begins, never while it holds the store's write lock;
        a reaction to an event appended during the pass that would ask one waits for
        the next pass. A consumer that fails rolls back its own savepoint only and
        goes on alone (`run_once`: retries, backoff, parking) in a thread of its own,
        while the passes go on without it.

        Returns how far every consumer it ran is done (wait for events after that) and
        whether more is known to be waiting (a full batch, a deferred reaction).
        """
        head = self.store.last_position()
        run = _Pass(head, head)
        try:
            self._take(run)
            if run.policies or run.views:
                with self.app.batch():
                    self._pass_policies(run)
                    self._pass_views(run)
                for consumer, end in run.done:
                    consumer.stored(end)
            running = [c for c in run.taken if c not in run.failed + run.overtaken]
            for consumer in running:
                if consumer.position(consumer.base) >= run.start and not run.appended(consumer):
                    # nothing of its types among what was appended during the pass
                    consumer.advance(consumer.base, run.head)
                self._flush(consumer, consumer.base)
            done = min((c.position(c.base) for c in running), default=run.start)
        finally:
            for consumer in run.taken:
                consumer.lock.release()
        for consumer in run.failed:
            self._recover(consumer)
        return done, run.more

    def _take(self, run: _Pass) -> None:
        """Lock the consumers that may have events up to the pass's head; move the
        others along in memory (written lazily)."""
        for consumer in self._consumers.values():
            if consumer.name in self._recovering or not consumer.lock.acquire(blocking=False):
                continue  # running alone (a failure, a replay, a synchronous run)
            run.taken.append(consumer)
            stored = self.store.get_checkpoint(consumer.name)
            if stored != consumer.base:
                consumer.stored(stored)  # first pass, or moved by someone else
        behind = [c for c in run.taken if c.position(c.base) < run.head]
        if not behind:
            return
        seen = self.store.event_types(min(c.position(c.base) for c in behind), run.head)
        for consumer in behind:
            if not seen.intersection(consumer.types):
                consumer.advance(consumer.base, run.head)
            elif consumer.policy is not None:
                self._prepare(consumer, run)
            else:
                run.views.append(consumer)

    def _prepare(self, consumer: _Consumer, run: _Pass) -> None:
        """Read a policy's next batch and ask the external systems its reactions call,
        outside any transaction; a reaction that asks after issuing goes alone."""
        policy = consumer.policy
        assert policy is not None
        after = consumer.position(consumer.base)
        batch = self.store.read_all(after, _POLICY_BATCH, consumer.types, run.head)
        if not batch:
            consumer.advance(consumer.base, run.head)
            return
        try:
            plans = self.reactions.plans(policy, batch)
            if plans is None:
                run.failed.append(consumer)  # keep the order of effects: event by event
                return
            answered = self.reactions.ask_all(policy, plans)
        except Exception:
            run.failed.append(consumer)  # alone, with retries and failure events
            return
        full = len(batch) == _POLICY_BATCH
        run.more = run.more or full
        end = batch[-1].position if full else run.head
        run.policies.append(_Batch(consumer, after, end, plans, answered, base=consumer.base))

    def _pass_policies(self, run: _Pass) -> None:
        """The prepared batches, then the reactions to what they appended (a chain)."""
        for batch in run.policies:
            self._in_savepoint(run, batch)
        for _ in range(_CHAIN_ROUNDS):
            top = self.store.last_position()  # inside the transaction: its own appends too
            if top <= run.head:
                return
            seen = run.look(self.store, top)
            for consumer in self._consumers.values():
                if consumer.policy is None or not seen.intersection(consumer.types):
                    continue
                if consumer not in run.taken or consumer in run.failed + run.overtaken:
                    continue
                chained = self._chained(consumer, run, top)
                if chained is not None:
                    self._in_savepoint(run, chained)

    def _chained(self, consumer: _Consumer, run: _Pass, top: int) -> _Batch | None:
        """A policy's batch of events appended during the pass, up to the first whose
        reaction would ask an external system (that one waits for the next pass)."""
        policy = consumer.policy
        assert policy is not None
        after = run.reached(consumer)
        batch = self.store.read_all(after, _POLICY_BATCH, consumer.types, top)
        if not batch:
            return None
        plans = self.reactions.plans(policy, batch)
        if plans is None:
            run.more = True  # the next pass sends it alone
            return None
        kept: Plans = []
        for env, commands in plans:
            if next(self.reactions.unasked(policy, env, commands), None) is not None:
                run.more = True
                break
            kept.append((env, commands))
        if not kept:
            return None
        full = len(kept) < len(plans) or len(batch) == _POLICY_BATCH
        run.more = run.more or full
        end = kept[-1][0].position if full else top
        return _Batch(consumer, after, end, kept, {}, base=run.stored(consumer))

    def _view_batch_of(
        self,
        consumer: _Consumer,
        batch: Sequence[RecordedEvent],
        after: int,
        end: int,
        base: int,
    ) -> _Batch:
        """A view's events as a batch (a view issues no commands)."""
        plans: Plans = [(self.app.shared_envelope(rec), []) for rec in batch]
        return _Batch(consumer, after, end, plans, {}, base=base)

    def _apply_batch(self, uow: UnitOfWork, batch: _Batch) -> None:
        """Claim the consumer's checkpoint, apply (view) or react to (policy) the batch's
        events, and move the checkpoint to its end, in the caller's transaction."""
        consumer = batch.consumer
        self._claim(uow, consumer.name, batch.base)
        if consumer.view is not None:
            for env, _ in batch.plans:
                self.rows.apply(uow, consumer.view, env)
        else:
            assert consumer.policy is not None
            for env, commands in batch.plans:
                self.reactions.react(consumer.policy, env, commands, batch.answered)
        uow.set_checkpoint(consumer.name, batch.end)

    def _in_savepoint(self, run: _Pass, batch: _Batch) -> None:
        """One consumer's batch in a savepoint: on error only it is rolled back."""
        consumer = batch.consumer
        try:
            with self.store.transaction() as uow, self.app.state_cache.undone_on_error():
                self._apply_batch(uow, batch)
        except _Overtaken:
            run.overtaken.append(consumer)  # another process got there first
            return
        except Exception as exc:
            log.info("%s failed in a pass, going on alone: %s", consumer.name, _error_text(exc))
            run.failed.append(consumer)
            return
        run.done.append((consumer, batch.end))

    def _pass_views(self, run: _Pass) -> None:
        """Every view with events of its types up to the log's head, policies' too."""
        top = self.store.last_position()
        if top > run.head:
            run.look(self.store, top)
        size = self.retry.batch_size
        for consumer in self._consumers.values():
            # appended during the pass (by its policies, or committed by others before
            # its transaction began): the views those events concern join in
            if consumer not in run.views and not (
                consumer.view is not None and consumer in run.taken and run.appended(consumer)
            ):
                continue
            after = consumer.position(consumer.base)
            batch = self.store.read_all(after, size, consumer.types, top)
            if not batch:
                continue
            full = len(batch) == size
            run.more = run.more or full
            end = batch[-1].position if full else top
            view_batch = self._view_batch_of(consumer, batch, after, end, consumer.base)
            self._in_savepoint(run, view_batch)

    def _recover(self, consumer: _Consumer) -> None:
        """Run a consumer that failed in a pass alone, in a thread: `run_once` retries,
        records failures and parks; then the passes take it back."""
        with self._recovery_lock:
            if consumer.name in self._recovering or self._stopping.is_set():
                return
            thread = threading.Thread(
                target=self._alone, args=(consumer,), name=f"stormgen:{consumer.name}", daemon=True
            )
            self._recovering[consumer.name] = thread
        thread.start()

    def _alone(self, consumer: _Consumer) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self.run_once(consumer.name)
                    return
                except Exception:
                    # e.g. the database went away: try again later
                    log.exception("consumer %s stopped on an error; retrying", consumer.name)
                    self._stopping.wait(self.retry.idle_timeout)
        finally:
            with self._recovery_lock:
                self._recovering.pop(consumer.name, None)
            self.store.wake_waiters()  # the passes take it back at once

    # -- background thread -----------------------------------------------------------------------
    def start(self) -> None:
        """Run the views and policies in a background thread, a pass at a time."""
        if self._threads or not self._consumers:
            return
        self._stopping.clear()
        thread = threading.Thread(target=self._passes, name="stormgen:consumers", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _passes(self) -> None:
        while not self._stopping.is_set():
            try:
                seen, more = self.run_pass()
                if more:
                    continue
                if not self.store.wait_for_events(seen, self.retry.idle_timeout):
                    self._flush_idle()  # idle (or woken): write what is pending
                    continue
                if self.retry.coalesce > 0:
                    # let a burst gather: one pass (one transaction) instead of many
                    self._stopping.wait(self.retry.coalesce)
            except Exception:
                # e.g. the database went away: keep the thread alive and try again later
                log.exception("the consumers stopped on an error; retrying")
                self._stopping.wait(self.retry.idle_timeout)

    def _flush_idle(self) -> None:
        """Write the progress kept in memory of every consumer not running alone."""
        for consumer in self._consumers.values():
            if consumer.name in self._recovering or not consumer.lock.acquire(blocking=False):
                continue
            try:
                self._flush(consumer, self.store.get_checkpoint(consumer.name), force=True)
            finally:
                consumer.lock.release()

    def stop(self) -> None:
        """Stop the background threads and wait for them."""
        if not self._threads:
            return
        self._stopping.set()
        self.store.wake_waiters()
        for thread in self._threads:
            thread.join(timeout=10)
        with self._recovery_lock:
            alone = list(self._recovering.values())
        for thread in alone:
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
