"""One consumer's progress against its checkpoint, and a batch of its work.

A consumer (a view or a policy) goes on from its stored checkpoint, or from further on
when it has moved past events of other types in memory only (written lazily). Every
write of a checkpoint is a compare-and-set against the stored value the consumer went
on from (`claim`): `Overtaken` when another process moved it meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.messages import Event
from stormgen.runtime.policies import Policy
from stormgen.runtime.processes import Process
from stormgen.runtime.reactions import Plans, Reactions
from stormgen.runtime.reading import EventReader
from stormgen.runtime.store.base import EventStore, UnitOfWork
from stormgen.runtime.view_rows import ViewRows
from stormgen.runtime.views import View

if TYPE_CHECKING:
    from stormgen.runtime.process_runs import ProcessRuns

#: the events a policy's batch reacts to in one transaction (other writers wait for it)
POLICY_BATCH = 50


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
    # how often the background thread lets the store do its housekeeping
    # (`EventStore.maintain`: SQLite empties a grown WAL)
    maintain_interval: float = 5.0

    def delay(self, attempt: int) -> float:
        """The wait after the `attempt`-th failure (1-based)."""
        return float(min(self.max_delay, self.base_delay * self.factor ** (attempt - 1)))


def error_text(exc: BaseException) -> str:
    """An exception as a failure event's `error`: its type and message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Overtaken(Exception):
    """Another process moved this consumer's checkpoint first."""


class Consumer:
    """One consumer: a name, the event types it reads and how to process an event."""

    def __init__(
        self,
        name: str,
        kind: str,
        types: list[str],
        view: View[Any] | None = None,
        policy: Policy | None = None,
        process: Process[Any] | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.types = types
        self.view = view
        self.policy = policy
        self.process = process
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
class Batch:
    """A consumer's events for a pass, with its reactions (policies) planned."""

    consumer: Consumer
    after: int
    end: int
    plans: Plans
    answered: dict[uuid.UUID, Sequence[Event]]
    # the stored checkpoint `after` was worked out from (the claim checks it is unmoved)
    base: int


def claim(uow: UnitOfWork, name: str, base: int) -> None:
    """Lock the consumer's checkpoint row for this transaction and check it is still
    `base`, the stored value the caller worked out where to go on from.

    Compare-and-set: another process running the same consumer moved it forward, or
    a replay moved it back (and emptied the view); either way the caller backs off
    and starts again from what is stored, instead of applying events twice or
    writing its stale position over a rebuild. The lock is held until commit: a
    process that claims the checkpoint meanwhile waits, then sees it moved.
    """
    if uow.lock_checkpoint(name) != base:
        raise Overtaken(name)


@dataclass(eq=False)
class Batches:
    """Batches of events applied to a view's rows or reacted to by a policy.

    `batch` opens the transaction of this thread's commands (`CommandHandler.batch`);
    `processes` runs a process's handlers (set once the application's processes are).
    """

    store: EventStore
    rows: ViewRows
    reactions: Reactions
    reader: EventReader
    batch: Callable[[], AbstractContextManager[UnitOfWork]]
    processes: ProcessRuns | None = None

    def of_view(
        self,
        consumer: Consumer,
        batch: Sequence[RecordedEvent],
        after: int,
        end: int,
        base: int,
    ) -> Batch:
        """A view's (a process's) events as a batch: no commands planned."""
        plans: Plans = [(self.reader.shared_envelope(rec), []) for rec in batch]
        return Batch(consumer, after, end, plans, {}, base=base)

    def apply(self, uow: UnitOfWork, batch: Batch) -> None:
        """Claim the consumer's checkpoint, apply (view), react to (policy) or run the
        handlers of (process) the batch's events, and move the checkpoint to its end,
        in the caller's transaction."""
        consumer = batch.consumer
        claim(uow, consumer.name, batch.base)
        if consumer.view is not None:
            for env, _ in batch.plans:
                self.rows.apply(uow, consumer.view, env)
        elif consumer.process is not None:
            assert self.processes is not None
            for env, _ in batch.plans:
                self.processes.apply_event(uow, consumer.process, env)
        else:
            assert consumer.policy is not None
            for env, commands in batch.plans:
                self.reactions.react(consumer.policy, env, commands, batch.answered)
        uow.set_checkpoint(consumer.name, batch.end)

    def view_batch(
        self, consumer: Consumer, batch: list[RecordedEvent], after: int, end: int
    ) -> bool:
        """Apply a whole batch in one transaction; False if some event fails."""
        try:
            with self.store.transaction() as uow:
                view_batch = self.of_view(consumer, batch, after, end, consumer.base)
                self.apply(uow, view_batch)
            return True
        except Overtaken:
            raise
        except Exception:
            # roll back and go one event at a time to find (and retry) the failing one
            return False

    def policy_batch(
        self, consumer: Consumer, batch: list[RecordedEvent], after: int, end: int
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
            with self.batch() as uow:
                planned = Batch(consumer, after, end, plans, answered, base=consumer.base)
                self.apply(uow, planned)
            return True
        except Overtaken:
            raise
        except Exception:
            # rolled back (with the states cached meanwhile): go event by event
            return False
