"""The event store contract every backend (memory, SQLite, PostgreSQL) implements.

Vocabulary: a *stream* is one aggregate instance's (or one external system's) part of
the log; its events carry gapless *stream versions* 1, 2, 3, ... Every event also gets
a global *position*, increasing in commit order, so a reader that has seen position N
never later finds a new event below N.

Besides the log a store holds, in the same database, the side tables the domain layer
needs so it can change them atomically with each other (and with appends) inside one
:meth:`EventStore.transaction`: consumer checkpoints, view tables, snapshots,
per-stream encryption keys, idempotency keys and parked failures.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final, NamedTuple

from stormgen.runtime.envelope import JSONDict, NewEvent, RecordedEvent
from stormgen.runtime.errors import VersionConflict

#: Current version of the stores' schema; stores refuse schemas newer than this and
#: upgrade older ones. Version 2 added the events' ``envelope`` column; version 3 put
#: the idempotency keys in namespaces (`INTERNAL_KEYS`, `CLIENT_KEYS`).
SCHEMA_VERSION: Final = 3

#: ``expected_version`` value meaning "append whatever the stream's version is".
ANY: Final = None

#: ``expected_version`` value meaning "the stream must not exist yet".
NO_STREAM: Final = 0

#: The metadata field in which an event records the idempotency key of its append, so
#: a copy of the log (`import_events`, a fork) remembers the keys as well.
IDEMPOTENCY_KEY: Final = "idempotency_key"

#: The namespace of the service's own idempotency keys: the ids policies give their
#: commands (and the answers of external systems to them), a program's own keys.
INTERNAL_KEYS: Final = "internal/"
#: The namespace of API clients' keys: ``client/<caller>/<type>/<key>``. The API writes
#: every client's key here, so no client can write (or read) an internal key.
CLIENT_KEYS: Final = "client/"


def namespaced_key(key: str) -> str:
    """The stored form of a key an event's metadata carries.

    A key written before schema version 3 has no namespace (keys were one namespace
    then): it is an internal one now, as the schema upgrade moved it.
    """
    if key.startswith((INTERNAL_KEYS, CLIENT_KEYS)):
        return key
    return INTERNAL_KEYS + key


#: Logical column types accepted by :meth:`EventStore.ensure_view_table`.
VIEW_COLUMN_TYPES: Final = frozenset(
    {"text", "integer", "real", "numeric", "boolean", "timestamp", "json"}
)

_IDENT = re.compile(r"[^a-z0-9_]+")


def view_table_name(view: str) -> str:
    """Return the SQL table name of a view: ``view_`` plus the name in snake case.

    ``Ordering.OrderSummary`` becomes ``view_ordering_order_summary``, so views can be
    queried with plain SQL without quoting.
    """
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", view)
    return "view_" + _IDENT.sub("_", snake.lower()).strip("_")


def column_name(column: str) -> str:
    """Return the SQL column name of a view field (snake case, lower case)."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column)
    name = _IDENT.sub("_", snake.lower()).strip("_")
    if not name or name[0].isdigit() or name in {"key", "doc"}:
        name = "c_" + name
    return name


@dataclass(slots=True, frozen=True)
class AppendResult:
    """What an append did: the stream's new version and the recorded events.

    ``duplicate`` is True when the idempotency key had been used before: then nothing
    was written and the fields describe the first append made with that key.
    """

    stream: str
    stream_version: int
    first_position: int
    last_position: int
    events: list[RecordedEvent]
    duplicate: bool = False

    def to_json(self) -> JSONDict:
        """Return a JSON-ready summary (used to remember idempotent results)."""
        return {
            "stream": self.stream,
            "stream_version": self.stream_version,
            "first_position": self.first_position,
            "last_position": self.last_position,
        }


@dataclass(slots=True, frozen=True)
class Snapshot:
    """An aggregate's state at a stream version, to skip replaying older events.

    ``position`` is the global position of the event at ``version``; ``schema_hash``
    identifies the state's shape so a changed model ignores stale snapshots.
    """

    stream: str
    version: int
    position: int
    state: JSONDict
    schema_hash: str


@dataclass(slots=True, frozen=True)
class ParkedFailure:
    """An event a consumer gave up on after its retries: kept until retried or dropped."""

    consumer: str
    position: int
    event_id: str
    error: str
    attempts: int
    parked_at: datetime


class ViewRow(NamedTuple):
    """One row of a view table: its key and its JSON document."""

    key: str
    doc: JSONDict


@dataclass(slots=True)
class ViewSpec:
    """The declared shape of a view table: real SQL columns besides ``key`` and ``doc``."""

    name: str
    table: str
    columns: dict[str, str] = field(default_factory=dict)


class UnitOfWork(ABC):
    """A database transaction on a store: everything done through it commits or none.

    Obtained from :meth:`EventStore.transaction`. Appends made through it become
    visible (and wake subscribers) only when the transaction commits.
    """

    # -- the log -----------------------------------------------------------------
    @abstractmethod
    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream`` at ``expected_version`` (see EventStore.append)."""

    @abstractmethod
    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        """Return the stream's events after ``after_version`` (up to a position)."""

    @abstractmethod
    def stream_version(self, stream: str) -> int:
        """Return the stream's current version (0 when it does not exist)."""

    # -- checkpoints ---------------------------------------------------------------
    @abstractmethod
    def get_checkpoint(self, consumer: str) -> int:
        """Return the last position the consumer has processed (0 when none)."""

    @abstractmethod
    def set_checkpoint(self, consumer: str, position: int) -> int:
        """Move the consumer's checkpoint forward to ``position``; return the stored value.

        A position at or below the stored one changes nothing (checkpoints only move
        forward); use :meth:`reset_checkpoint` to rewind on purpose (a replay).
        """

    @abstractmethod
    def reset_checkpoint(self, consumer: str, position: int = 0) -> None:
        """Set the consumer's checkpoint to ``position`` even if that moves it back."""

    def lock_checkpoint(self, consumer: str) -> int:
        """Return the consumer's checkpoint, locked against every other writer until
        this transaction ends (its row is written unchanged: PostgreSQL locks the row,
        SQLite holds the write lock already).

        A consumer claims its checkpoint so before it touches what the checkpoint
        guards (a view's rows), and moves it by compare-and-set: see ``consumers``.
        """
        return self.set_checkpoint(consumer, 0)

    # -- views -------------------------------------------------------------------
    @abstractmethod
    def upsert_row(self, view: str, key: str, doc: JSONDict) -> None:
        """Insert or replace a view row; declared columns are filled from ``doc``."""

    @abstractmethod
    def delete_row(self, view: str, key: str) -> bool:
        """Delete a view row; return whether it existed."""

    @abstractmethod
    def get_row(self, view: str, key: str) -> JSONDict | None:
        """Return a view row's document, or None."""

    @abstractmethod
    def query_rows(
        self,
        view: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_key: str | None = None,
        limit: int | None = None,
    ) -> list[ViewRow]:
        """Return rows ordered by key, filtered by equality on declared columns.

        ``where`` maps field names (as in the document) to values; only columns
        declared with :meth:`EventStore.ensure_view_table` can be filtered on
        (``ValueError`` otherwise). ``after_key`` and ``limit`` page through the rows.
        """

    @abstractmethod
    def clear_view(self, view: str) -> None:
        """Delete every row of a view (before a replay)."""

    # -- snapshots -----------------------------------------------------------------
    @abstractmethod
    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot, replacing the stream's previous one."""

    @abstractmethod
    def get_snapshot(self, stream: str, max_position: int | None = None) -> Snapshot | None:
        """Return the stream's snapshot, or None (also when it is past ``max_position``)."""

    @abstractmethod
    def delete_snapshot(self, stream: str) -> None:
        """Forget the stream's snapshot (after crypto-shredding, or a model change)."""

    # -- encryption keys (crypto-shredding) ----------------------------------------
    @abstractmethod
    def put_key(self, stream: str, key: bytes) -> None:
        """Store the stream's data-encryption key (replacing any previous one)."""

    def add_key(self, stream: str, key: bytes) -> bool:
        """Store ``key`` as the stream's key unless it has one; return whether it did.

        A stream's first key in one statement on the SQL stores (a new stream's
        first pii), where `get_key` then `put_key` take two.
        """
        if self.get_key(stream) is not None:
            return False
        self.put_key(stream, key)
        return True

    @abstractmethod
    def get_key(self, stream: str) -> bytes | None:
        """Return the stream's key, or None when there is none (or it was forgotten)."""

    @abstractmethod
    def delete_key(self, stream: str) -> bool:
        """Delete the stream's key for good (crypto-shredding); return whether it existed."""

    # -- idempotency keys ----------------------------------------------------------
    @abstractmethod
    def remembered(self, idempotency_key: str) -> JSONDict | None:
        """The first append made with the key (`AppendResult.to_json`), or None."""

    @abstractmethod
    def remember(self, idempotency_key: str, result: JSONDict) -> None:
        """Record the key's append (an import's; `append` records its own)."""

    # -- failures ------------------------------------------------------------------
    @abstractmethod
    def park_failure(self, failure: ParkedFailure) -> None:
        """Park an event for a consumer (replaces an earlier parking of the same pair)."""

    @abstractmethod
    def list_failures(self, consumer: str | None = None) -> list[ParkedFailure]:
        """Return parked failures ordered by position (of one consumer, or all)."""

    @abstractmethod
    def delete_failure(self, consumer: str, position: int) -> bool:
        """Remove a parked failure (it was retried); return whether it existed."""


def remember_imported(uow: UnitOfWork, events: Sequence[RecordedEvent]) -> None:
    """Remember the idempotency keys that imported events carry in their metadata.

    A key stands for the events of the one append made with it: consecutive events of
    one stream. An import in batches (`fork`) may split them; a later batch extends
    what an earlier one remembered. A key without a namespace (an event written
    before schema version 3) is remembered as an internal one (`namespaced_key`).
    """
    appends: dict[str, list[RecordedEvent]] = {}
    for event in events:
        key = event.metadata.get(IDEMPOTENCY_KEY)
        if isinstance(key, str):
            appends.setdefault(namespaced_key(key), []).append(event)
    for key, recorded in appends.items():
        first, last = recorded[0], recorded[-1]
        prior = uow.remembered(key)
        if prior is not None and prior["stream"] != first.stream:
            continue  # not the same append: the key's first use was elsewhere
        start = first.position if prior is None else int(prior["first_position"])
        result = AppendResult(first.stream, last.stream_version, start, last.position, [])
        uow.remember(key, result.to_json())


class Notifier:
    """Wakes threads waiting for new positions; polls as a fallback for other processes."""

    def __init__(self, poll: Callable[[], int] | None, poll_interval: float) -> None:
        self._cond = threading.Condition()
        self._known = 0
        self._generation = 0
        self._poll = poll
        self._poll_interval = poll_interval

    def notify(self, position: int) -> None:
        """Record that ``position`` is committed and wake every waiter."""
        with self._cond:
            if position > self._known:
                self._known = position
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake every waiter without new events (a subscription is stopping)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, after_position: int, timeout: float | None) -> bool:
        """Block until a position above ``after_position`` is known, a wake, or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            generation = self._generation
            while True:
                if self._known > after_position:
                    return True
                if self._generation != generation:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                step = remaining
                if self._poll is not None:
                    step = self._poll_interval if step is None else min(step, self._poll_interval)
                self._cond.wait(step)
                if self._poll is not None and self._known <= after_position:
                    # Another process may have appended: the condition cannot know.
                    self._cond.release()
                    try:
                        last = self._poll()
                    finally:
                        self._cond.acquire()
                    if last > self._known:
                        self._known = last


class EventStore(ABC):
    """An append-only event log plus the side tables derived from it, in one database.

    Thread-safe: one store object is shared by all threads of a process. Open stores
    with :func:`stormgen.runtime.store.open_store`; close them with :meth:`close`
    (or use the store as a context manager).
    """

    #: The URL the store was opened with (without secrets).
    url: str

    #: Whether writers gain by grouping many small writes into one transaction (group
    #: commit): True where writes queue one at a time anyway and each commit costs a
    #: disk sync (SQLite). The API then runs its commands on one thread, several to a
    #: transaction (``http/writer.py``); elsewhere each request commits on its own.
    group_commit: ClassVar[bool] = False

    # -- writing -------------------------------------------------------------------
    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append events to a stream atomically, at the expected stream version.

        ``expected_version`` is the stream's current version as the caller knows it
        (``NO_STREAM`` = 0: the stream must not exist; ``ANY`` = None: don't check).
        On a mismatch :class:`VersionConflict` is raised and nothing is written. With
        an ``idempotency_key`` that was already used, nothing is written and the first
        append's result is returned with ``duplicate=True``. The events are committed
        (durable) when this returns.
        """
        with self.transaction() as uow:
            return uow.append(stream, events, expected_version, idempotency_key=idempotency_key)

    @abstractmethod
    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """Open a write transaction; it commits when the block ends, rolls back on error.

        Write transactions are serialized per store (SQLite: ``BEGIN IMMEDIATE``;
        PostgreSQL: appends take a lock), so keep them short.
        """

    def reading(self) -> AbstractContextManager[UnitOfWork]:
        """Open a unit of work for reads only: no write lock (inside a transaction: it).

        Backends override this so reads never queue behind writers; writing through
        the returned unit of work outside a transaction is not supported.
        """
        return self.transaction()

    @abstractmethod
    def import_events(self, events: Sequence[RecordedEvent]) -> None:
        """Insert recorded events as they are (positions, ids, versions kept).

        Used by :func:`fork`; each event's position must be above the store's last
        position and stream versions must continue their streams.
        """

    # -- reading -------------------------------------------------------------------
    @abstractmethod
    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        """Return the stream's events with version above ``after_version``, in order.

        With ``up_to_position`` only events at or below that global position count
        (the stream as it was then).
        """

    @abstractmethod
    def read_all(
        self,
        after_position: int = 0,
        limit: int | None = None,
        types: Sequence[str] | None = None,
        up_to_position: int | None = None,
    ) -> list[RecordedEvent]:
        """Return events of the global log with position above ``after_position``.

        ``types`` keeps only events of those types; ``limit`` caps the count;
        ``up_to_position`` stops at that position.
        """

    def event_types(self, after_position: int, up_to_position: int) -> set[str]:
        """Return the types of the events with a position in (``after_position``,
        ``up_to_position``]: what a consumers' pass needs to know whom it concerns, without
        reading (and decoding) the events themselves."""
        found: set[str] = set()
        while after_position < up_to_position:
            page = self.read_all(after_position, 1000, None, up_to_position)
            if not page:
                break
            found.update(event.type for event in page)
            after_position = page[-1].position
        return found

    @abstractmethod
    def stream_version(self, stream: str) -> int:
        """Return the stream's current version (0 when it does not exist)."""

    @abstractmethod
    def last_position(self) -> int:
        """Return the highest committed position (0 for an empty log)."""

    @abstractmethod
    def position_at(self, when: datetime) -> int:
        """Return the last position recorded at or before ``when`` (0 if none): time travel."""

    def iter_all(
        self,
        after_position: int = 0,
        *,
        up_to_position: int | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[RecordedEvent]:
        """Yield the log from ``after_position`` in batches (for replays and forks)."""
        position = after_position
        while True:
            batch = self.read_all(position, batch_size, types, up_to_position)
            if not batch:
                return
            yield from batch
            position = batch[-1].position
            if len(batch) < batch_size:
                return

    def read_event(self, position: int) -> RecordedEvent | None:
        """Return the event at a global position, or None."""
        batch = self.read_all(position - 1, 1, None, position)
        return batch[0] if batch else None

    # -- waiting for new events ------------------------------------------------------
    #: Set by each backend when it opens.
    _notifier: Notifier

    @property
    def notifier(self) -> Notifier:
        """The store's wake-up mechanism (used by subscriptions)."""
        return self._notifier

    def wait_for_events(self, after_position: int, timeout: float | None = None) -> bool:
        """Block until an event above ``after_position`` may exist; False on timeout/wake."""
        return self.notifier.wait(after_position, timeout)

    def wake_waiters(self) -> None:
        """Wake every thread blocked in :meth:`wait_for_events` (to stop it)."""
        self.notifier.wake()

    # -- views ---------------------------------------------------------------------
    @abstractmethod
    def ensure_view_table(self, view: str, columns: Mapping[str, str] | None = None) -> bool:
        """Create the view's table with real SQL columns; return True if (re)created.

        ``columns`` maps document field names to a type in :data:`VIEW_COLUMN_TYPES`.
        A table whose declared columns differ is dropped and created empty (views are
        derived: the caller resets the view's checkpoint and replays when this
        returns True). The table is ``view_table_name(view)`` with columns ``key``
        (text primary key), ``doc`` (the JSON document) and one per declared field.
        """

    @abstractmethod
    def drop_view_table(self, view: str) -> None:
        """Drop a view's table if it exists."""

    # -- conveniences: one short transaction each -------------------------------------
    def get_checkpoint(self, consumer: str) -> int:
        """Return the consumer's checkpoint (0 when none)."""
        with self.reading() as uow:
            return uow.get_checkpoint(consumer)

    def set_checkpoint(self, consumer: str, position: int) -> int:
        """Move a checkpoint forward (never back); return the stored value."""
        with self.transaction() as uow:
            return uow.set_checkpoint(consumer, position)

    def get_snapshot(self, stream: str, max_position: int | None = None) -> Snapshot | None:
        """Return the stream's snapshot, or None."""
        with self.reading() as uow:
            return uow.get_snapshot(stream, max_position)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot."""
        with self.transaction() as uow:
            uow.save_snapshot(snapshot)

    def get_key(self, stream: str) -> bytes | None:
        """Return the stream's encryption key, or None."""
        with self.reading() as uow:
            return uow.get_key(stream)

    def put_key(self, stream: str, key: bytes) -> None:
        """Store the stream's encryption key."""
        with self.transaction() as uow:
            uow.put_key(stream, key)

    def delete_key(self, stream: str) -> bool:
        """Delete the stream's encryption key (crypto-shredding)."""
        with self.transaction() as uow:
            return uow.delete_key(stream)

    def remembered(self, idempotency_key: str) -> JSONDict | None:
        """The first append made with an idempotency key, or None if it is unused."""
        with self.reading() as uow:
            return uow.remembered(idempotency_key)

    def get_row(self, view: str, key: str) -> JSONDict | None:
        """Return one view row's document, or None."""
        with self.reading() as uow:
            return uow.get_row(view, key)

    def query_rows(
        self,
        view: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_key: str | None = None,
        limit: int | None = None,
    ) -> list[ViewRow]:
        """Return view rows (see :meth:`UnitOfWork.query_rows`)."""
        with self.reading() as uow:
            return uow.query_rows(view, where, after_key=after_key, limit=limit)

    def list_failures(self, consumer: str | None = None) -> list[ParkedFailure]:
        """Return parked failures."""
        with self.reading() as uow:
            return uow.list_failures(consumer)

    # -- health ----------------------------------------------------------------------
    def probe(self, timeout: float = 1.0) -> None:
        """Raise :class:`StoreUnavailable` (or :class:`StoreFull`) if the store cannot
        serve now; wait about ``timeout`` seconds at most for a connection (``/health``).
        """
        self.last_position()

    def maintain(self) -> None:
        """Housekeeping the store wants now and then (SQLite: truncate a grown WAL).

        The consumers' background thread calls it every few seconds; it must be cheap
        when there is nothing to do. Nothing, by default.
        """
        return

    # -- lifecycle -------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_expected(stream: str, expected: int | None, actual: int) -> None:
    """Raise :class:`VersionConflict` unless ``expected`` is ANY or equals ``actual``."""
    if expected is not None and expected != actual:
        raise VersionConflict(stream, expected, actual)


def check_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Validate declared view columns; return them as a plain dict."""
    out: dict[str, str] = {}
    for name, kind in (columns or {}).items():
        if kind not in VIEW_COLUMN_TYPES:
            raise ValueError(
                f"view column {name!r} has type {kind!r}; expected one of "
                + ", ".join(sorted(VIEW_COLUMN_TYPES))
            )
        out[name] = kind
    return out
