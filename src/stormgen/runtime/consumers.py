"""Views and policies consuming the log, and failures as events (docs/runtime.md, "Failures").

Each view and each policy is a consumer with a durable checkpoint named after it. A
view applies a batch of events and moves its checkpoint in one transaction; a policy
issues its commands (idempotent by their deterministic ids) and then moves its
checkpoint, so delivery is at least once and effects happen once. Every write of a
checkpoint is a compare-and-set against the stored value the consumer went on from
(`consumer.claim`, `_move`): another process running the same consumer may have
moved it forward, a replay back (emptying the view first); either way the consumer
backs off and goes on from the stored value, so a replay while the service runs
loses nothing.

Consumers read only the event types they handle. Moving past events of other types
(and a policy's own progress) is kept in memory and written lazily: at most every
`checkpoint_interval` seconds or `checkpoint_lag` events, when idle, and on stop. A
crash then re-reads that stretch: nothing for a view (its rows moved with its
checkpoint), idempotent redelivery for a policy; nothing relevant is ever skipped.

In the background one thread runs every consumer in passes (`run_pass`, see
`passes`): policies, then views, over what is new, in one transaction with a savepoint
each. A view's rows are written by `view_rows`, a policy's reactions issued by
`reactions`.

When a consumer fails on an event it appends a `$Failure` event to the `$failures`
stream, waits (exponential backoff) and tries again; after `max_attempts` it parks the
event for that consumer (a `$Failure` with `parked: true`) and goes on (see
`failures`). In the background it does so alone, in a thread of its own, while the
passes go on (see `background`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stormgen.runtime.background import Background
from stormgen.runtime.consumer import (
    POLICY_BATCH,
    Batches,
    Consumer,
    Overtaken,
    claim,
    error_text,
)
from stormgen.runtime.consumer import RetrySettings as RetrySettings  # public here too
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.errors import StoreUnavailable
from stormgen.runtime.failures import FAILURE as FAILURE  # public here too
from stormgen.runtime.failures import RESOLVED as RESOLVED
from stormgen.runtime.failures import Failures
from stormgen.runtime.messages import Envelope, info
from stormgen.runtime.passes import Passes, Writer
from stormgen.runtime.process_runs import ProcessRuns, TimerThread
from stormgen.runtime.reactions import Reactions
from stormgen.runtime.view_rows import ViewRows
from stormgen.runtime.views import View

if TYPE_CHECKING:
    from stormgen.runtime.application import Application

log = logging.getLogger("stormgen.runtime")

Progress = Callable[[int, int], None]
"""Called with (position reached, end position) during long work."""


class Consumers:
    """The views and policies of an application, run synchronously or in a thread.

    The front of the consumers' parts: `batches` (a consumer's batch in one
    transaction), `passes`, `reactions`, `failures`, `background`; `rows` is the
    application's view rows.
    """

    def __init__(self, app: Application, retry: RetrySettings) -> None:
        self.app = app
        self.store = app.store
        self.retry = retry
        self.rows = app.rows
        self.reactions = Reactions(app.commands, app.reader, app.ports)
        self.batches = Batches(self.store, self.rows, self.reactions, app.reader, app.batch)
        self.failures = Failures(self.store, self.rows, self.reactions, app.reader)
        self._consumers: dict[str, Consumer] = {}
        #: runs the passes' transactions elsewhere (the single writer's thread) while set
        self.pass_writer: Writer | None = None
        for view in app.views.values():
            types = sorted({info(e).name for e in view.events})
            self._consumers[view.name] = Consumer(view.name, "view", types, view=view)
            if self.store.ensure_view_table(view.name, view.sql_columns(), view.sort_terms()):
                # a new (or reshaped) table starts empty: rebuild it from the log
                with self.store.transaction() as uow:
                    uow.reset_checkpoint(view.name, 0)
        for policy in app.policies.values():
            types = sorted({info(e).name for e in policy.events})
            self._consumers[policy.name] = Consumer(policy.name, "policy", types, policy=policy)
        self.processes = ProcessRuns(
            self.store,
            app.commands,
            self.reactions,
            app.processes,
            app.clock,
            retry,
            app.batch,
        )
        self.failures.processes = self.processes
        self.batches.processes = self.processes
        for process in app.processes.values():
            # a row per instance, written with each run: the list the HTTP API pages
            self.store.ensure_view_table(process.name, {})
            types = sorted({info(e).name for e in process.events})
            self._consumers[process.name] = Consumer(
                process.name, "process", types, process=process
            )
        self.timers = TimerThread(self.processes, retry.idle_timeout)
        self.background = Background(
            self.store,
            retry,
            self._consumers,
            run_pass=self.run_pass,
            run_once=self.run_once,
            flush_now=lambda consumer, stored: self._flush(consumer, stored, force=True),
            flush_all=self.flush,
        )
        self.passes = Passes(
            self.store,
            self._consumers,
            self.batches,
            cache=app.state_cache,
            batch_size=retry.batch_size,
            alone=self.background.recovering,
            flush=self._flush,
            recover=self.background.recover,
        )

    # -- view rows -------------------------------------------------------------------
    @staticmethod
    def view_key_text(view: View[Any], key: Any) -> str:
        """A row key as the text the table stores (see `ViewRows.key_text`)."""
        return ViewRows.key_text(view, key)

    def open_doc(self, view: View[Any], doc: dict[str, Any]) -> dict[str, Any]:
        """A stored row document as JSON, pii columns decrypted (or redacted)."""
        return self.rows.open_doc(view, doc)

    # -- processing ----------------------------------------------------------------------
    def _move(self, consumer: Consumer, position: int) -> int:
        """Move the stored checkpoint from `consumer.base` to `position` (compare-and-set);
        return the stored value: someone else's when it moved meanwhile."""
        with self.store.transaction() as uow:
            stored = uow.lock_checkpoint(consumer.name)
            if stored == consumer.base:
                stored = uow.set_checkpoint(consumer.name, position)
        return stored

    def _process(self, consumer: Consumer, env: Envelope) -> None:
        """Process one event with no retry; raises what the handler raised."""
        if consumer.view is not None:
            with self.store.transaction() as uow:
                claim(uow, consumer.name, consumer.base)
                self.rows.apply(uow, consumer.view, env)
                uow.set_checkpoint(consumer.name, env.position)
            return
        if consumer.process is not None:
            # its run and its checkpoint in one transaction, like a view's rows
            self.processes.handle_event(consumer, env)
            return
        assert consumer.policy is not None and env.event is not None
        # the checkpoint moves in memory (run_once): redelivery after a crash is harmless
        self.reactions.react(consumer.policy, env)

    def _process_with_retries(self, consumer: Consumer, rec: RecordedEvent) -> bool:
        """Process an event, retrying and finally parking it; False if stopped midway."""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                self._process(consumer, self.app.shared_envelope(rec))
                return True
            except (Overtaken, StoreUnavailable):
                # an unreachable store or a full disk is not the event's fault: the
                # caller tries again later, no attempt counted, nothing parked
                raise
            except Exception as exc:
                last = attempt >= self.retry.max_attempts
                log.warning(
                    "%s failed on event %s (attempt %d%s): %s",
                    consumer.name,
                    rec.position,
                    attempt,
                    ", parked" if last else "",
                    error_text(exc),
                )
                self.failures.record(consumer, rec, exc, attempt, parked=last)
                if last:
                    return True
                if self.background.stopping.wait(self.retry.delay(attempt)):
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
            batches = self.batches
            try:
                if consumer.view is not None and batches.view_batch(consumer, batch, after, end):
                    consumer.stored(end)
                    return len(batch)
                if (
                    consumer.policy is not None
                    and len(batch) > 1
                    and batches.policy_batch(consumer, batch, after, end)
                ):
                    consumer.stored(end)
                    return len(batch)
                if (
                    consumer.process is not None
                    and len(batch) > 1
                    and self.processes.handle_batch(
                        consumer, [self.app.shared_envelope(r) for r in batch], end
                    )
                ):
                    consumer.stored(end)
                    return len(batch)
                for rec in batch:
                    if not self._process_with_retries(consumer, rec):
                        return 0
                    if consumer.view is not None or consumer.process is not None:
                        consumer.stored(rec.position)  # its transaction moved the checkpoint
                    else:
                        consumer.advance(consumer.base, rec.position)
            except Overtaken:
                # another process runs this consumer too and got there first, or a
                # replay started over: go on from the stored checkpoint next time
                return 0
            if consumer.view is not None or consumer.process is not None:
                # event by event: each event's transaction moved the checkpoint already
                consumer.stored(self._move(consumer, end))
            else:
                consumer.advance(consumer.base, end)
                self._flush(consumer, consumer.base)
            return len(batch)

    def _batch_size(self, consumer: Consumer) -> int:
        if consumer.policy is not None or consumer.process is not None:
            # a policy's (a process's) batch runs its commands in one transaction: keep it
            # short, other writers wait for it
            return min(self.retry.batch_size, POLICY_BATCH)
        return self.retry.batch_size

    def _flush(self, consumer: Consumer, stored: int, *, force: bool = False) -> None:
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

    def run_until_idle(self, timeout: float = 30.0) -> int:
        """Run every consumer until none has anything left; return events processed."""
        deadline = time.monotonic() + timeout
        total = 0
        while True:
            round_total = 0
            if self.processes.processes:
                round_total += self.processes.fire_all_due()
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
        return self.failures.retry(consumer, failure, rec)

    # -- passes: every consumer, one transaction ---------------------------------------------
    def run_pass(self) -> tuple[int, bool]:
        """Run every consumer once over what is new, in one store transaction (the
        background path: see `Passes.run`); on the single writer's thread when one has
        taken the passes' writing over (`pass_writer`, see `CommandWriter.take_passes`).

        Returns how far every consumer it ran is done (wait for events after that) and
        whether more is known to be waiting (a full batch, a deferred reaction).
        """
        return self.passes.run(self.pass_writer)

    # -- background thread -----------------------------------------------------------------------
    def start(self) -> None:
        """Run the views, policies and processes in a background thread, a pass at a
        time, and the processes' timers in one of their own."""
        self.background.start()
        if self.processes.processes:
            self.timers.start()

    def stop(self) -> None:
        """Stop the background threads and wait for them."""
        self.timers.stop()
        self.background.stop()

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
