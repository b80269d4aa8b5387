"""Subscriptions: read the log from a position (catch-up), then wait for new events (live).

Two ways to consume:

- iterate: ``for event in Subscription(store, after_position=p): ...`` (blocks waiting
  for new events until :meth:`Subscription.stop` is called from another thread);
- callback: ``sub = Subscription(store, consumer="Ordering.Kitchen"); sub.start(handler)``
  runs ``handler(event)`` in a background thread; with ``checkpoint=True`` the
  consumer's checkpoint is moved after each handled batch. Handlers that write views
  should instead set the checkpoint in their own unit of work (``uow.set_checkpoint``),
  atomically with the rows, and leave ``checkpoint=False``.

In-process appends wake subscribers at once; appends from other processes are seen by
polling (SQLite) or LISTEN/NOTIFY plus polling (PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.store.base import EventStore

Handler = Callable[[RecordedEvent], None]


class Subscription:
    """A catch-up-then-live reader of the global log, stoppable from any thread.

    Starts after ``after_position``; when that is None, after the consumer's stored
    checkpoint (or from the beginning when there is no consumer). ``types`` keeps
    only events of those types. ``position`` is the last position delivered.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        consumer: str | None = None,
        after_position: int | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 500,
        checkpoint: bool = False,
        idle_timeout: float = 1.0,
    ) -> None:
        if checkpoint and consumer is None:
            raise ValueError("checkpoint=True needs a consumer name")
        self.store = store
        self.consumer = consumer
        self.types = list(types) if types else None
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self.idle_timeout = idle_timeout
        if after_position is None:
            after_position = store.get_checkpoint(consumer) if consumer else 0
        self.position = after_position
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped.is_set()

    def stop(self) -> None:
        """Stop delivering; a blocked iterator returns, a running thread ends."""
        self._stopped.set()
        self.store.wake_waiters()

    def batches(self) -> Iterator[list[RecordedEvent]]:
        """Yield batches of new events until stopped (catch-up first, then live)."""
        while not self._stopped.is_set():
            # Remember how far the log went before reading: with a ``types`` filter a
            # batch may be empty although positions moved on. Without one, an empty
            # batch means nothing lies beyond (the read sees what `last_position` saw),
            # so the catch-up makes one round trip a page, not two.
            last = self.store.last_position() if self.types else 0
            batch = self.store.read_all(self.position, self.batch_size, self.types)
            if batch:
                yield batch
                self.position = batch[-1].position
                continue
            if last > self.position:
                # Only filtered-out events up to ``last``: skip past them.
                self.position = last
                continue
            self.store.wait_for_events(self.position, self.idle_timeout)

    def __iter__(self) -> Iterator[RecordedEvent]:
        """Yield events one by one until stopped."""
        for batch in self.batches():
            for event in batch:
                if self._stopped.is_set():
                    return
                yield event

    def run(self, handler: Handler) -> None:
        """Call ``handler`` for every event in the current thread until stopped."""
        for batch in self.batches():
            for event in batch:
                handler(event)
            if self.checkpoint and self.consumer is not None:
                self.store.set_checkpoint(self.consumer, batch[-1].position)

    def start(self, handler: Handler, *, name: str | None = None) -> Subscription:
        """Run :meth:`run` in a daemon thread; an exception stops it (see ``error``)."""

        def target() -> None:
            try:
                self.run(handler)
            except BaseException as exc:  # kept for the owner to inspect
                self.error = exc
                self._stopped.set()

        self._thread = threading.Thread(
            target=target, name=name or f"subscription-{self.consumer or 'anon'}", daemon=True
        )
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait for the background thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join(5.0)
