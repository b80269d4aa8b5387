"""The event store contract every backend (memory, SQLite, PostgreSQL) implements.

Vocabulary: a *stream* is one aggregate instance's (or one external system's) part of
the log; its events carry gapless *stream versions* 1, 2, 3, ... Every event also gets
a global *position*, increasing in commit order, so a reader that has seen position N
never later finds a new event below N.

Besides the log a store holds, in the same database, the side tables the domain layer
needs so it can change them atomically with each other (and with appends) inside one
:meth:`EventStore.transaction`: consumer checkpoints, view tables, snapshots,
per-stream encryption keys, idempotency keys and parked failures. Each is a role with
a contract of its own (``roles``); `UnitOfWork` plays them all on one transaction.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from stormgen.runtime.envelope import JSONDict, NewEvent, RecordedEvent
from stormgen.runtime.errors import VersionConflict

# the records the roles exchange, importable from here as before
from stormgen.runtime.store.roles import AppendResult as AppendResult
from stormgen.runtime.store.roles import (
    Checkpoints,
    EncryptionKeys,
    Failures,
    IdempotencyRecords,
    LogReader,
    LogWriter,
    Snapshots,
    StoreRecords,
    StreamReader,
    Timers,
    ViewRows,
)
from stormgen.runtime.store.roles import ParkedFailure as ParkedFailure
from stormgen.runtime.store.roles import Snapshot as Snapshot
from stormgen.runtime.store.roles import Timer as Timer
from stormgen.runtime.store.roles import ViewRow as ViewRow

#: Current version of the stores' schema; stores refuse schemas newer than this and
#: upgrade older ones. Version 2 added the events' ``envelope`` column; version 3 put
#: the idempotency keys in namespaces (`INTERNAL_KEYS`, `CLIENT_KEYS`); version 4 added
#: the processes' timers table; version 5 made new SQLite stores number their events
#: without AUTOINCREMENT (older stormgen versions expect its counter; PostgreSQL only
#: records the number).
SCHEMA_VERSION: Final = 5

#: The store record (`StoreRecords`) holding the store's identity.
STORE_ID: Final = "store_id"
#: The store record of where a store came from: a JSON list of origins, the nearest
#: first (a fork's source and position, then the source's own origins; or a merge).
ORIGIN: Final = "origin"
#: The store record a merge writes first and removes last: a store that carries it is
#: an interrupted merge, refused by `open_store`.
MERGE_IN_PROGRESS: Final = "merge_in_progress"

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
    {"text", "integer", "real", "numeric", "boolean", "timestamp", "duration", "json"}
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


@dataclass(slots=True)
class ViewSpec:
    """The declared shape of a view table: real SQL columns besides ``key`` and ``doc``."""

    name: str
    table: str
    columns: dict[str, str] = field(default_factory=dict)


class UnitOfWork(
    LogWriter,
    StreamReader,
    Checkpoints,
    ViewRows,
    Snapshots,
    EncryptionKeys,
    IdempotencyRecords,
    Failures,
    StoreRecords,
    Timers,
):
    """A database transaction on a store: everything done through it commits or none.

    Obtained from :meth:`EventStore.transaction`. It plays every role of a store (see
    ``roles``) on that one transaction, so a view's rows and its checkpoint, or an
    append and its stream's key, are written together. Appends made through it become
    visible (and wake subscribers) only when the transaction commits.
    """


def remember_imported(uow: IdempotencyRecords, events: Sequence[RecordedEvent]) -> None:
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
        #: the condition's lock, taken directly where nothing waits on it (a Condition's
        #: own `with` costs two Python calls)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._known = 0
        self._generation = 0
        #: threads in `wait` (changed with the condition's lock held)
        self._waiting = 0
        self._poll = poll
        self._poll_interval = poll_interval

    def notify(self, position: int) -> None:
        """Record that ``position`` is committed and wake every waiter."""
        with self._lock:
            if position > self._known:
                self._known = position
            # a commit with nobody waiting (most of them) skips the condition's work
            if self._waiting:
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
            self._waiting += 1
            try:
                return self._wait(after_position, deadline)
            finally:
                self._waiting -= 1

    def _wait(self, after_position: int, deadline: float | None) -> bool:
        """`wait` with the condition's lock held."""
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


class EventStore(LogWriter, LogReader):
    """An append-only event log plus the side tables derived from it, in one database.

    It plays the log's roles itself (`LogWriter`, `LogReader`); the other roles are
    played by its units of work (:meth:`transaction`), with a shortcut here for the
    calls made on their own (one short transaction each).

    Thread-safe: one store object is shared by all threads of a process. Open stores
    with :func:`stormgen.runtime.store.open_store`; close them with :meth:`close`
    (or use the store as a context manager).
    """

    #: The URL the store was opened with (without secrets).
    url: str

    #: Whether writers gain by grouping many small writes into one transaction (group
    #: commit): True where writes queue one at a time anyway and each commit costs a
    #: disk sync (SQLite). Callers with many small writes then group them (the API runs
    #: its commands on one thread, several to a transaction); elsewhere each commits alone.
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
        """Append in a transaction of its own (see `LogWriter.append`)."""
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
    def ensure_view_table(
        self,
        view: str,
        columns: Mapping[str, str] | None = None,
        order: Sequence[tuple[str | None, bool]] = (),
    ) -> bool:
        """Create the view's table with real SQL columns; return True if (re)created.

        ``columns`` maps document field names to a type in :data:`VIEW_COLUMN_TYPES`.
        ``order`` is the view's `order by` as :meth:`UnitOfWork.query_rows` takes it:
        an SQL store keeps an index on those sort terms and the key (dropping one made
        for another order), so an ordered page reads the index instead of sorting the
        table.
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
        order: Sequence[tuple[str | None, bool]] = (),
    ) -> list[ViewRow]:
        """Return view rows (see :meth:`UnitOfWork.query_rows`)."""
        with self.reading() as uow:
            return uow.query_rows(view, where, after_key=after_key, limit=limit, order=order)

    def list_failures(self, consumer: str | None = None) -> list[ParkedFailure]:
        """Return parked failures."""
        with self.reading() as uow:
            return uow.list_failures(consumer)

    def get_meta(self, key: str) -> str | None:
        """Return one of the store's own records (see `StoreRecords`), or None."""
        with self.reading() as uow:
            return uow.get_meta(key)

    def identity(self) -> str:
        """The store's identity: a uuid recorded (as ``store_id``) the first time it is
        asked for, so a fork or a merge can name the store it came from."""
        found = self.get_meta(STORE_ID)
        if found is not None:
            return found
        with self.transaction() as uow:
            found = uow.get_meta(STORE_ID)
            if found is None:
                found = str(uuid.uuid4())
                uow.set_meta(STORE_ID, found)
            return found

    @abstractmethod
    def discard_everything(self) -> None:
        """Delete the log and every side table's rows (drop the view tables): what an
        interrupted merge left, before it is done again. Only `merge` calls it."""

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
