"""Passes: every consumer over what is new, in one store transaction (the background path).

Policies go first, in the order they were declared, then the processes, then the
views, each in a savepoint of its own: one commit for all of them instead of one each.
A consumer that fails in a pass rolls back its own savepoint only and goes on alone
(the `recover` hook: `Consumers.run_once` with retries, in a thread of its own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from stormgen.runtime.consumer import (
    POLICY_BATCH,
    Batch,
    Batches,
    Consumer,
    Overtaken,
    error_text,
)
from stormgen.runtime.reactions import Plans
from stormgen.runtime.state import StateCache
from stormgen.runtime.store.base import EventStore

log = logging.getLogger("stormgen.runtime")

_CHAIN_ROUNDS = 8  # how far a pass follows policies reacting to what policies appended

#: runs a pass's transaction (given what to run first inside it) on the single writer's
#: thread (`CommandWriter.take_passes`), told the lowest position the pass's consumers
#: have reached (how far the chain trails the log); returns once it committed, raises
#: if it did not
Writer = Callable[[Callable[[Callable[[], None] | None], None], int], None]


@dataclass
class Pass:
    """What one pass took, did and left."""

    start: int  # the log's head when the pass began
    head: int  # how far the pass has looked (what its policies append moves it)
    # the stretches of log the transaction looked at past `start`, with their types
    rounds: list[tuple[int, int, set[str]]] = field(default_factory=list)
    taken: list[Consumer] = field(default_factory=list)
    policies: list[Batch] = field(default_factory=list)
    processes: list[Batch] = field(default_factory=list)
    views: list[Consumer] = field(default_factory=list)
    done: list[tuple[Consumer, int]] = field(default_factory=list)
    failed: list[Consumer] = field(default_factory=list)
    overtaken: list[Consumer] = field(default_factory=list)
    more: bool = False

    def look(self, store: EventStore, top: int) -> set[str]:
        """The types appended in (head, top]; the pass has now looked up to `top`."""
        seen = store.event_types(self.head, top)
        self.rounds.append((self.head, top, seen))
        self.head = top
        return seen

    def appended(self, consumer: Consumer) -> bool:
        """Whether events of the consumer's types lie past where it is, among those
        the transaction looked at."""
        after = self.reached(consumer)
        return any(
            end > after and seen.intersection(consumer.types) for _, end, seen in self.rounds
        )

    def stored(self, consumer: Consumer) -> int:
        """The consumer's stored checkpoint as this pass's transaction left it."""
        for done, end in reversed(self.done):
            if done is consumer:
                return end
        return consumer.base

    def reached(self, consumer: Consumer) -> int:
        """How far the consumer is done, this pass's work included."""
        for done, end in reversed(self.done):
            if done is consumer:
                return end
        return consumer.position(consumer.base)


class LogTypes:
    """Which event types the log holds past a position: each type's last position among
    the events looked at so far, read a stretch at a time as the log grows.

    Passes ask it where their consumers are behind, a stretch that starts at the
    slowest consumer: asked of the store each time (`SELECT DISTINCT type` over it),
    a backlog was read again by every pass working through it. Here each pass reads
    only what was appended since the one before. A type seen in a stretch counts as
    last seen at the stretch's end: the answer may name a type whose events all lie
    before the position (the consumer then reads and finds nothing), never miss one.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        # the events in (since, looked] were looked at (none yet)
        self.since = self.looked = -1
        self.last: dict[str, int] = {}
        self._lock = threading.Lock()  # a synchronous pass beside the background one

    def after(self, position: int, head: int) -> set[str]:
        """The types of the events in (position, head] (perhaps a few more)."""
        with self._lock:
            if position < self.since or self.since < 0:
                # further back than looked at (the first pass, a consumer back from
                # running alone): start over from there
                self.since = self.looked = position
                self.last = {}
            if head > self.looked:
                for kind in self.store.event_types(self.looked, head):
                    self.last[kind] = head
                self.looked = head
            return {kind for kind, last in self.last.items() if last > position}


@dataclass(eq=False)
class Passes:
    """Runs an application's consumers in passes.

    `consumers` by name; `alone` the names of those running alone meanwhile (a pass
    leaves them out); `flush(consumer, stored)` writes progress kept in memory when
    due; `recover(consumer)` sends a consumer that failed off to run alone.
    """

    store: EventStore
    consumers: Mapping[str, Consumer]
    batches: Batches
    cache: StateCache
    batch_size: int
    alone: Collection[str]
    flush: Callable[[Consumer, int], None]
    recover: Callable[[Consumer], None]
    log_types: LogTypes = field(init=False)

    def __post_init__(self) -> None:
        self.log_types = LogTypes(self.store)

    def run(self, through: Writer | None = None) -> tuple[int, bool]:
        """Run every consumer once over what is new, in one store transaction.

        The background path (`start`). Policies go first, in the order they were
        declared, then the processes, then the views, each in a savepoint of its own:
        one commit for all of them instead of one each. Reading inside the transaction,
        a policy (a process) sees what the ones before it appended, so a chain of
        policies, the processes and the views that follow it are brought up to date in
        one pass. External systems are asked
        before the transaction begins, never while it holds the store's write lock;
        a reaction to an event appended during the pass that would ask one waits for
        the next pass. A consumer that fails rolls back its own savepoint only and
        goes on alone (`run_once`: retries, backoff, parking) in a thread of its own,
        while the passes go on without it.

        `through` hands the pass's writing part to the single writer
        (`CommandWriter.take_passes`): this thread reads and asks the external systems,
        the writer runs the transaction, with the commands that arrived meanwhile run
        first inside it (what they append is seen by the policies' chain and the views
        like the policies' own appends, and commits with them: one commit for both).

        Returns how far every consumer it ran is done (wait for events after that) and
        whether more is known to be waiting (a full batch, a deferred reaction).
        """
        head = self.store.last_position()
        run = Pass(head, head)
        try:
            self._take(run)
            if through is None:
                self._transact(run, None)
            else:
                reached = min((c.position(c.base) for c in run.taken), default=run.head)
                through(lambda inside: self._transact(run, inside), reached)
            for consumer, end in run.done:
                consumer.stored(end)
            running = [c for c in run.taken if c not in run.failed + run.overtaken]
            for consumer in running:
                if consumer.position(consumer.base) >= run.start and not run.appended(consumer):
                    # nothing of its types among what was appended during the pass
                    consumer.advance(consumer.base, run.head)
                self.flush(consumer, consumer.base)
            done = min((c.position(c.base) for c in running), default=run.start)
        finally:
            for consumer in run.taken:
                consumer.lock.release()
        for consumer in run.failed:
            self.recover(consumer)
        return done, run.more

    def _transact(self, run: Pass, inside: Callable[[], None] | None) -> None:
        """The pass's transaction, `inside` first in it: committed when this returns."""
        if run.policies or run.processes or run.views or inside is not None:
            with self.batches.batch():
                if inside is not None:
                    inside()
                self._pass_policies(run)
                self._pass_views(run)

    def _take(self, run: Pass) -> None:
        """Lock the consumers that may have events up to the pass's head; move the
        others along in memory (written lazily)."""
        for consumer in self.consumers.values():
            if consumer.name in self.alone or not consumer.lock.acquire(blocking=False):
                continue  # running alone (a failure, a replay, a synchronous run)
            run.taken.append(consumer)
            stored = self.store.get_checkpoint(consumer.name)
            if stored != consumer.base:
                consumer.stored(stored)  # first pass, or moved by someone else
        behind = [c for c in run.taken if c.position(c.base) < run.head]
        if not behind:
            return
        seen = self.log_types.after(min(c.position(c.base) for c in behind), run.head)
        for consumer in behind:
            if not seen.intersection(consumer.types):
                consumer.advance(consumer.base, run.head)
            elif consumer.process is not None:
                self._prepare_process(consumer, run, run.head, consumer.base, initial=True)
            elif consumer.policy is not None:
                self._prepare(consumer, run)
            else:
                run.views.append(consumer)

    def _prepare(self, consumer: Consumer, run: Pass) -> None:
        """Read a policy's next batch and ask the external systems its reactions call,
        outside any transaction; a reaction that asks after issuing goes alone."""
        policy = consumer.policy
        assert policy is not None
        after = consumer.position(consumer.base)
        batch = self.store.read_all(after, POLICY_BATCH, consumer.types, run.head)
        if not batch:
            consumer.advance(consumer.base, run.head)
            return
        try:
            plans = self.batches.reactions.plans(policy, batch)
            if plans is None:
                run.failed.append(consumer)  # keep the order of effects: event by event
                return
            answered = self.batches.reactions.ask_all(policy, plans)
        except Exception:
            run.failed.append(consumer)  # alone, with retries and failure events
            return
        full = len(batch) == POLICY_BATCH
        run.more = run.more or full
        end = batch[-1].position if full else run.head
        run.policies.append(Batch(consumer, after, end, plans, answered, base=consumer.base))

    def _prepare_process(
        self, consumer: Consumer, run: Pass, top: int, base: int, *, initial: bool
    ) -> Batch | None:
        """A process's next batch of events up to `top` (its handlers run in the pass's
        transaction, like a policy's reactions: one commit for all of them)."""
        after = run.reached(consumer)
        batch = self.store.read_all(after, POLICY_BATCH, consumer.types, top)
        if not batch:
            if initial:
                consumer.advance(consumer.base, top)
            return None
        full = len(batch) == POLICY_BATCH
        run.more = run.more or full
        end = batch[-1].position if full else top
        prepared = self.batches.of_view(consumer, batch, after, end, base)
        if initial:
            run.processes.append(prepared)
        return prepared

    def _pass_policies(self, run: Pass) -> None:
        """The prepared batches (policies', then processes'), then the reactions to what
        they appended (a chain)."""
        for batch in run.policies + run.processes:
            self._in_savepoint(run, batch)
        for _ in range(_CHAIN_ROUNDS):
            top = self.store.last_position()  # inside the transaction: its own appends too
            if top <= run.head:
                return
            seen = run.look(self.store, top)
            for consumer in self.consumers.values():
                if consumer.view is not None or not seen.intersection(consumer.types):
                    continue
                if consumer not in run.taken or consumer in run.failed + run.overtaken:
                    continue
                if consumer.process is not None:
                    base = run.stored(consumer)
                    chained = self._prepare_process(consumer, run, top, base, initial=False)
                else:
                    chained = self._chained(consumer, run, top)
                if chained is not None:
                    self._in_savepoint(run, chained)

    def _chained(self, consumer: Consumer, run: Pass, top: int) -> Batch | None:
        """A policy's batch of events appended during the pass, up to the first whose
        reaction would ask an external system (that one waits for the next pass)."""
        policy = consumer.policy
        assert policy is not None
        after = run.reached(consumer)
        batch = self.store.read_all(after, POLICY_BATCH, consumer.types, top)
        if not batch:
            return None
        plans = self.batches.reactions.plans(policy, batch)
        if plans is None:
            run.more = True  # the next pass sends it alone
            return None
        kept: Plans = []
        for env, commands in plans:
            if next(self.batches.reactions.unasked(policy, env, commands), None) is not None:
                run.more = True
                break
            kept.append((env, commands))
        if not kept:
            return None
        full = len(kept) < len(plans) or len(batch) == POLICY_BATCH
        run.more = run.more or full
        end = kept[-1][0].position if full else top
        return Batch(consumer, after, end, kept, {}, base=run.stored(consumer))

    def _in_savepoint(self, run: Pass, batch: Batch) -> None:
        """One consumer's batch in a savepoint: on error only it is rolled back."""
        consumer = batch.consumer
        try:
            with self.store.transaction() as uow, self.cache.undone_on_error():
                self.batches.apply(uow, batch)
        except Overtaken:
            run.overtaken.append(consumer)  # another process got there first
            return
        except Exception as exc:
            log.info("%s failed in a pass, going on alone: %s", consumer.name, error_text(exc))
            run.failed.append(consumer)
            return
        run.done.append((consumer, batch.end))

    def _pass_views(self, run: Pass) -> None:
        """Every view with events of its types up to the log's head, policies' too."""
        top = self.store.last_position()
        if top > run.head:
            run.look(self.store, top)
        size = self.batch_size
        for consumer in self.consumers.values():
            # appended during the pass (by its policies, or committed by others before
            # its transaction began): the views those events concern join in
            if consumer not in run.views and not (
                consumer.view is not None and consumer in run.taken and run.appended(consumer)
            ):
                continue
            after = consumer.position(consumer.base)
            batch = self.store.read_all(after, size, consumer.types, top)
            if not batch:
                if after < run.start:
                    # nothing of its types up to the pass's start (committed before it
                    # began: `_take`'s answer may name types a view has none of)
                    consumer.advance(consumer.base, run.start)
                continue
            full = len(batch) == size
            run.more = run.more or full
            end = batch[-1].position if full else top
            view_batch = self.batches.of_view(consumer, batch, after, end, consumer.base)
            self._in_savepoint(run, view_batch)
