"""The consumers in the background: one thread running passes, failed ones alone.

One thread runs every consumer in passes (`Consumers.run_pass`), woken by new events;
when idle it writes the progress kept in memory. A consumer that fails in a pass goes
on alone in a thread of its own (`Consumers.run_once`: retries, backoff, parking) while
the passes go on without it, and rejoins them when it is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from stormgen.runtime.consumer import Consumer, RetrySettings
from stormgen.runtime.errors import StoreUnavailable
from stormgen.runtime.store.base import EventStore

log = logging.getLogger("stormgen.runtime")


def _log_stop(exc: Exception, who: str) -> None:
    """Log a background error: one line for a store that is away (it says so every
    second while it is), the traceback for anything else."""
    if isinstance(exc, StoreUnavailable):
        log.warning("%s stopped: %s; retrying", who, exc)
    else:
        log.exception("%s stopped on an error; retrying", who)


@dataclass(eq=False)
class Background:
    """The background threads of an application's consumers.

    `run_pass()` runs one pass and returns how far it got and whether more waits;
    `run_once(name)` runs one consumer alone; `flush_now(consumer, stored)` writes one
    consumer's pending progress (the stored checkpoint is `stored`), `flush_all()`
    everyone's.
    """

    store: EventStore
    retry: RetrySettings
    consumers: Mapping[str, Consumer]
    run_pass: Callable[[], tuple[int, bool]]
    run_once: Callable[[str], int]
    flush_now: Callable[[Consumer, int], None]
    flush_all: Callable[[], None]
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    #: set while stopping: waits between retries end early too
    stopping: threading.Event = field(default_factory=threading.Event, init=False)
    #: consumers that failed in a pass and run alone meanwhile, by name
    recovering: dict[str, threading.Thread] = field(default_factory=dict, init=False)
    _recovery_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def recover(self, consumer: Consumer) -> None:
        """Run a consumer that failed in a pass alone, in a thread: `run_once` retries,
        records failures and parks; then the passes take it back."""
        with self._recovery_lock:
            if consumer.name in self.recovering or self.stopping.is_set():
                return
            thread = threading.Thread(
                target=self._alone, args=(consumer,), name=f"stormgen:{consumer.name}", daemon=True
            )
            self.recovering[consumer.name] = thread
        thread.start()

    def _alone(self, consumer: Consumer) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.run_once(consumer.name)
                    return
                except Exception as exc:
                    # e.g. the database went away: try again later
                    _log_stop(exc, f"consumer {consumer.name}")
                    self.stopping.wait(self.retry.idle_timeout)
        finally:
            with self._recovery_lock:
                self.recovering.pop(consumer.name, None)
            self.store.wake_waiters()  # the passes take it back at once

    def start(self) -> None:
        """Run the views and policies in a background thread, a pass at a time."""
        if self._threads or not self.consumers:
            return
        self.stopping.clear()
        thread = threading.Thread(target=self._loop, name="stormgen:consumers", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _loop(self) -> None:
        maintained = time.monotonic()
        while not self.stopping.is_set():
            try:
                if time.monotonic() - maintained >= self.retry.maintain_interval:
                    maintained = time.monotonic()
                    self.store.maintain()
                seen, more = self.run_pass()
                if more:
                    continue
                if not self.store.wait_for_events(seen, self.retry.idle_timeout):
                    self._flush_idle()  # idle (or woken): write what is pending
                    continue
                if self.retry.coalesce > 0:
                    # let a burst gather: one pass (one transaction) instead of many
                    self.stopping.wait(self.retry.coalesce)
            except Exception as exc:
                # e.g. the database went away: keep the thread alive and try again later
                _log_stop(exc, "the consumers")
                self.stopping.wait(self.retry.idle_timeout)

    def _flush_idle(self) -> None:
        """Write the progress kept in memory of every consumer not running alone."""
        for consumer in self.consumers.values():
            if consumer.name in self.recovering or not consumer.lock.acquire(blocking=False):
                continue
            try:
                self.flush_now(consumer, self.store.get_checkpoint(consumer.name))
            finally:
                consumer.lock.release()

    def stop(self) -> None:
        """Stop the background threads and wait for them."""
        if not self._threads:
            return
        self.stopping.set()
        self.store.wake_waiters()
        for thread in self._threads:
            thread.join(timeout=10)
        with self._recovery_lock:
            alone = list(self.recovering.values())
        for thread in alone:
            thread.join(timeout=10)
        self._threads = []
        try:
            self.flush_all()
        except Exception:
            # a store gone away: the progress is re-read after a restart, nothing is lost
            log.exception("could not write the consumers' checkpoints on stop")
