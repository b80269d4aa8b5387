"""The API's commands on one thread, several to a store transaction (group commit).

Writes to a SQLite store are serialized anyway (one writer at a time, one fsync per
commit). Handing each request's command to a pool thread made the threads queue on
the store's write lock and pass the GIL back and forth at every statement; here one
thread takes the commands that arrived while it was busy and runs them together
(:meth:`Application.handle_together`): one transaction, one savepoint per append, one
COMMIT, and only then are the requests answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

from stormgen.runtime.application import Application

#: The most commands one transaction takes (the store's write lock is held meanwhile).
MAX_GROUP = 64

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class CommandWriter:
    """A thread running commands for the event loop, grouped by arrival."""

    def __init__(self, application: Application, max_group: int = MAX_GROUP) -> None:
        self.application = application
        self.max_group = max_group
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

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

    def stop(self) -> None:
        """Finish the commands queued so far, then end the thread (it starts again on use)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            stopping = False
            while len(jobs) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.append(more)
            try:
                outcomes = self.application.handle_together([unit for unit, _, _ in jobs])
            except BaseException as exc:  # only what handle_together lets through
                outcomes = [exc] * len(jobs)
                _answer(jobs, outcomes)
                raise
            _answer(jobs, outcomes)
            if stopping:
                return


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
