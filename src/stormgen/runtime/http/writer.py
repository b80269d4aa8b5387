"""The API's commands on one thread, several to a store transaction (group commit).

Writes to a SQLite store are serialized anyway (one writer at a time, one fsync per
commit). Handing each request's command to a pool thread made the threads queue on
the store's write lock and pass the GIL back and forth at every statement; here one
thread takes the commands that arrived while it was busy and runs them together
(:meth:`Application.handle_together`): one transaction, one savepoint per append, one
COMMIT, and only then are the requests answered.

The single writer: once it has taken the application's passes over (`take_passes`, done
by the API while its views and policies run in the background), the writer is the only
thread of the process that writes. Each round it takes the commands that arrived and
runs them inside a pass of the views and policies (`Passes.run`): the commands, the
policies' reactions and the views' rows in one transaction, one COMMIT (one fsync) for
all of them, instead of two transactions queueing on each other for SQLite's write lock.
While the API is under load (`under_load`: command requests in without a break for
`BUSY` seconds, two at once lately), the commands go first: the writer runs them on their own and
holds the pass back until the load eases, as long as the chain trails the log by less
than `lag` seconds (the age of the oldest event it has not processed) and fewer than
`backlog` events (`take_passes`); past either, the pass goes first again with the
commands inside it.
The pass asks external systems before its transaction begins, as it always does; each
command runs in a savepoint of its own, so one failing command fails only itself; if
the transaction as a whole fails, each command runs again alone. Nothing is answered
before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from typing import Any

from stormgen.runtime.application import Application
from stormgen.runtime.errors import StoreError

log = logging.getLogger("stormgen.runtime")

#: The most commands one transaction takes (the store's write lock is held meanwhile).
MAX_GROUP = 64
#: How long (seconds: the age of the oldest event it has not processed) the chain
#: (policies, processes, views) may trail the log while the API is under load and the
#: writer serves its commands first (0: always in step).
CHAIN_LAG = 10.0
#: How many events it may trail meanwhile, whatever their age (0: always in step).
CHAIN_BACKLOG = 100_000
#: How long the API must have had a command request in without a break, and how
#: lately two at once, to count as under load (a moderate load leaves gaps sooner).
BUSY = 0.05
#: The longest break between command requests that does not end a busy stretch (a
#: client's next request after its answer, the next wave of a few clients' requests).
_GAP = 0.005
#: How long the writer, holding a pass back, waits for a command before it looks again.
_GRACE = 0.005

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class _PassJob:
    """A pass's transaction handed to the writer (`Passes.run`), and how it went."""

    def __init__(self, transact: Callable[[Callable[[], None] | None], None], reached: int) -> None:
        self.transact = transact
        #: the lowest position the pass's consumers have reached
        self.reached = reached
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self, inside: Callable[[], None] | None) -> bool:
        """Run the transaction (`inside` first in it); whether it committed."""
        try:
            self.transact(inside)
        except BaseException as exc:
            self.error = exc
            return False
        finally:
            self.done.set()
        return True


class CommandWriter:
    """A thread running commands for the event loop, grouped by arrival."""

    def __init__(self, application: Application, max_group: int = MAX_GROUP) -> None:
        self.application = application
        self.max_group = max_group
        #: with the passes here: commands first while the chain trails by fewer events
        #: than `backlog` and less than `lag` seconds (`take_passes`)
        self.backlog = 0
        self.lag = 0.0
        #: the oldest event the chain had not processed when last looked: (its position,
        #: when it was recorded)
        self._oldest: tuple[int, datetime] | None = None
        self._queue: SimpleQueue[_Job | _PassJob | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: command requests being served now (counted by the HTTP layer); since when
        #: there has been one at least, but for gaps of `_GAP` at most; since when none;
        #: when one came in while another was (`time.monotonic`)
        self.serving = 0
        self.busy_since = 0.0
        self.idle_since = 0.0
        self.crowded_at = 0.0
        #: whether the application's passes run here (`take_passes`)
        self._passes = False

    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` on the writer thread, answered after its commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._thread is None:
            self._start()
        self._queue.put((functools.partial(function, *args, **kwargs), loop, future))
        return await future

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="stormgen-commands", daemon=True
                )
                self._thread.start()

    def request_started(self) -> None:
        """A command request came in (the HTTP layer tells, on the event loop)."""
        now = time.monotonic()
        if self.serving == 0:
            if now - self.idle_since > _GAP:
                self.busy_since = now  # after a real break: a new busy stretch
        else:
            self.crowded_at = now  # two requests in at once
        self.serving += 1

    def request_ended(self) -> None:
        """A command request was answered."""
        self.serving -= 1
        if self.serving == 0:
            self.idle_since = time.monotonic()

    def under_load(self) -> bool:
        """Whether the API has had command requests in without a break (no gap longer
        than `_GAP`) for `BUSY` seconds or more, and two at once in the last `BUSY`
        seconds (a lone client's requests, however fast, are no load)."""
        now = time.monotonic()
        if self.serving == 0 and now - self.idle_since > _GAP:
            return False
        return now - self.busy_since >= BUSY and now - self.crowded_at < BUSY

    def take_passes(self, backlog: int = CHAIN_BACKLOG, lag: float = CHAIN_LAG) -> None:
        """Run the transactions of the application's passes (its views and policies) on
        this thread, with the commands: the single writer. Until `stop`.

        While the API is under load (command requests in without a break for `BUSY`
        seconds), the writer serves the commands first and holds the passes back, as
        long as the chain trails the log by less than `lag` seconds (the age of the
        oldest event it has not processed) and fewer than `backlog` events (either 0:
        always in step)."""
        self.backlog = backlog
        self.lag = lag
        self._start()
        self._passes = True
        self.application.consumers.pass_writer = self.write_pass

    def write_pass(
        self, transact: Callable[[Callable[[], None] | None], None], reached: int
    ) -> None:
        """Run a pass's transaction here, the next commands first inside it (in the
        caller's thread while the writer is stopped); return once it committed.

        `reached`: the lowest position the pass's consumers have reached."""
        job = _PassJob(transact, reached)
        with self._lock:
            queued = self._thread is not None
            if queued:
                self._queue.put(job)
        if not queued:
            transact(None)
            return
        job.done.wait()
        if job.error is not None:
            raise job.error

    def stop(self) -> None:
        """Finish the commands queued so far, then end the thread (it starts again on use).

        Passes asked meanwhile run in their callers' threads again."""
        if self._passes:
            self._passes = False
            self.application.consumers.pass_writer = None
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _work(self) -> None:
        held: list[_PassJob] = []  # passes held back while commands wait
        while True:
            if held:
                try:
                    job = self._queue.get(timeout=_GRACE)
                except Empty:
                    if self._commands_first(held):
                        continue  # requests are on their way
                    self._with_passes([], held)  # the chain's turn
                    held = []
                    continue
            else:
                job = self._queue.get()
            if job is None:
                if held:
                    self._with_passes([], held)
                return
            jobs: list[_Job] = []
            passes: list[_PassJob] = held
            held = []
            stopping = False
            while True:
                if isinstance(job, _PassJob):
                    passes.append(job)
                else:
                    jobs.append(job)
                if len(jobs) >= self.max_group:
                    break
                try:
                    more = self._queue.get_nowait()
                except Empty:
                    break
                if more is None:
                    stopping = True
                    break
                job = more
            try:
                if passes and jobs and not stopping and self._commands_first(passes):
                    held = passes
                    outcomes = self.application.handle_together([unit for unit, _, _ in jobs])
                elif passes:
                    outcomes = self._with_passes([unit for unit, _, _ in jobs], passes)
                elif jobs:
                    outcomes = self.application.handle_together([unit for unit, _, _ in jobs])
                else:
                    outcomes = []
            except BaseException as exc:  # only what handle_together lets through
                _answer(jobs, [exc] * len(jobs))
                raise
            _answer(jobs, outcomes)
            if stopping:
                return

    def _commands_first(self, passes: list[_PassJob]) -> bool:
        """Whether the commands go before the passes: while the API is under load
        (`under_load`) and the chain trails the log by fewer than `backlog` events and
        less than `lag` seconds."""
        if self.backlog <= 0 or self.lag <= 0 or not self.under_load():
            return False
        reached = min(job.reached for job in passes)
        try:
            head = self.application.store.last_position()
            if head - reached >= self.backlog:
                return False
            return head <= reached or self._trailing(reached + 1) < self.lag
        except StoreError:
            return False  # the passes run and meet the store's failure themselves

    def _trailing(self, position: int) -> float:
        """How long ago the event at `position` was recorded, in seconds (looked up
        once per position: the chain does not move while its pass is held)."""
        if self._oldest is None or self._oldest[0] != position:
            event = self.application.store.read_event(position)
            if event is None:
                return 0.0
            self._oldest = (position, event.recorded_at)
        return (datetime.now(UTC) - self._oldest[1]).total_seconds()

    def _with_passes(self, units: list[Callable[[], Any]], passes: list[_PassJob]) -> list[Any]:
        """The commands inside the first pass's transaction; the other passes alone.

        Each command runs in a savepoint: a domain answer or an error of its own fails
        it alone. If the transaction fails (the store, the commit, a pass's own
        error), each command runs again alone.
        """
        application = self.application
        store = application.store
        cache = application.state_cache
        outcomes: list[Any] = []

        def inside() -> None:
            outcomes.clear()
            for unit in units:
                try:
                    with store.transaction(), cache.undone_on_error():
                        outcomes.append(unit())
                except StoreError:
                    raise  # the transaction itself: nothing of the round holds
                except Exception as exc:
                    outcomes.append(exc)

        first, *others = passes
        if not first.run(inside if units else None) and units:
            log.warning("a round of %d commands failed; running each alone", len(units))
            outcomes = [application.handle_together([unit])[0] for unit in units]
        for job in others:
            job.run(None)
        return outcomes


def _answer(jobs: list[_Job], outcomes: list[Any]) -> None:
    """Settle the jobs' futures, one wake-up of each event loop for the whole group."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for (_, loop, future), outcome in zip(jobs, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, settled in by_loop.items():
        # a closed loop: nobody waits for these answers any more
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in settled:
        if future.cancelled():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
