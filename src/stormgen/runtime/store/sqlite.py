"""The embedded store (``sqlite:///path.db``): one file, WAL mode, durable on commit.

Writes are serialized (``BEGIN IMMEDIATE``, plus a lock between the threads of one
process so they hand over without SQLite's busy back-off), so positions (the rowid,
``max(position) + 1``; a store made before schema 5 follows its AUTOINCREMENT counter)
become visible in commit order.
Each thread uses its own connection. Threads of this process are woken right after a
commit; other processes' appends are found by polling.

A full disk fails the write that needs the space (`StoreFull`; SQLite rolls the
transaction back, so nothing half-written stays) and is remembered until a write
succeeds again: `probe` then tries one small write. The WAL is emptied (``PRAGMA
wal_checkpoint(TRUNCATE)``) by `maintain` once it has grown past ``wal_limit``: SQLite's
own checkpoints cannot restart it while readers keep using it, so under steady reads
it would otherwise grow without bound.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import cache
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from stormgen.runtime._collector import LONG_TEXT, without_collections
from stormgen.runtime.codec_durations import duration_microseconds
from stormgen.runtime.envelope import EventPage, NewEvent, RecordedEvent, format_time
from stormgen.runtime.errors import (
    ConcurrencyError,
    InvalidStoreURL,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreUnavailable,
    VersionConflict,
)
from stormgen.runtime.store._sql import (
    Dialect,
    SQLStore,
    SQLUnitOfWork,
    decode_json,
    encode,
    encode_json,
    recorded_events,
)
from stormgen.runtime.store.base import (
    AppendResult,
    Notifier,
    UnitOfWork,
    remember_imported,
)
from stormgen.runtime.store.sqlite_schema import (
    SQLITE_HEADER,
    counts_positions,
    prepare_schema,
)

_SQL_TYPES = {
    "text": "TEXT",
    "integer": "INTEGER",
    "real": "REAL",
    # Decimals travel as strings; TEXT keeps them exact (NUMERIC affinity would round).
    "numeric": "TEXT",
    "boolean": "INTEGER",
    "timestamp": "TEXT",
    # Durations as whole microseconds: they order and compare as numbers.
    "duration": "INTEGER",
    "json": "TEXT",
}

_INSERT = (
    "INSERT INTO events (position, type, stream, stream_version, recorded_at, envelope) VALUES "
)
#: a stream's version and the last position given, in one statement; a store made
#: before schema 5 gives positions after its AUTOINCREMENT counter instead
_HEAD = "SELECT (SELECT max(stream_version) FROM events WHERE stream = ?), (SELECT {})"
_LAST_POSITION = "max(position) FROM events"
_COUNTER = "seq FROM sqlite_sequence WHERE name = 'events'"
#: and an idempotency key's remembered result
_KEY = ", (SELECT result FROM idempotency_keys WHERE key = ?)"
#: rows per INSERT statement: 600 parameters, under the oldest SQLite limit (999)
_ROWS_PER_INSERT = 100


@cache
def _insert_rows(count: int) -> str:
    """The statement inserting ``count`` events: one statement for a whole batch.

    ``executemany`` runs the statement once per row (with its bookkeeping each
    time); one multi-row INSERT made batch appends 35% faster.
    """
    return _INSERT + ", ".join(["(?, ?, ?, ?, ?, ?)"] * count)


_INSERT_ONE = _insert_rows(1)


_decode_events = msgspec.json.Decoder(list[RecordedEvent]).decode


_by_position = attrgetter("position")
_MAX_POSITION = 2**63 - 1

#: The WAL's size past which `SQLiteStore.maintain` empties it (and the size SQLite
#: trims it to after its own checkpoints, ``PRAGMA journal_size_limit``).
WAL_LIMIT = 16 * 2**20
#: How long an emptying checkpoint waits for readers to leave the WAL before it gives up
#: until the next time (writers of this process wait meanwhile).
_CHECKPOINT_BUSY_SECONDS = 1.0
_SQLITE_FULL = 13
_SQLITE_IOERR = 10
log = logging.getLogger("stormgen.runtime")


def storage_error(path: Path, exc: sqlite3.Error) -> StoreError | None:
    """The store error a full disk or a failing one (an I/O error) is, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    if code & 0xFF == _SQLITE_FULL:
        return StoreFull(f"{path}: the disk is full; nothing more can be written ({exc})")
    if code & 0xFF == _SQLITE_IOERR:
        return StoreUnavailable(f"{path}: the disk failed a read or write ({exc})")
    return None


def select_events(
    conn: sqlite3.Connection,
    where: str,
    params: Sequence[Any],
    limit: int | None = None,
) -> list[RecordedEvent]:
    """Return the (first ``limit``) events matching ``where`` (SQL on ``events``) in order.

    The rows' envelopes are joined in the order of the index the ``where`` uses
    (stream_version within a stream, else position) and decoded in one call. A page
    (``limit``) is bounded by its last position, found on the position index alone:
    feeding the aggregate from an ordered, limited subquery copies every row first.
    That bound comes first in the ``WHERE``: SQLite scans the position index up to
    one upper bound only, the first it meets, and the ``where``'s own (``position <=``
    the reader's head) made a 50-event page of a policy read every row up to the head,
    ~1 ms at 6,000 events past it instead of ~20 µs.
    """
    if limit is not None and limit <= 0:
        return []
    if limit is None:
        sql = f"SELECT '[' || group_concat(envelope) || ']' FROM events WHERE {where}"
    else:
        sql = (
            "SELECT '[' || group_concat(envelope) || ']' FROM events WHERE position <="
            f" coalesce((SELECT position FROM events WHERE {where} ORDER BY position"
            f" LIMIT 1 OFFSET ?), {_MAX_POSITION}) AND {where}"
        )
        params = [*params, limit - 1, *params]
    text = conn.execute(sql, params).fetchone()[0]
    if text is None:
        return []
    try:
        if len(text) < LONG_TEXT:
            events = _decode_events(text)
        else:
            events = without_collections(_decode_events, text)
    except msgspec.DecodeError as exc:
        file = conn.execute("PRAGMA database_list").fetchone()[2]
        raise StoreCorrupt(f"{file}: an event's stored envelope is damaged ({exc})") from None
    # Sorting an already sorted list is one linear pass, and makes the order not depend
    # on the plan SQLite picks.
    events.sort(key=_by_position)
    return EventPage.of(events, text)


def _envelope(
    event: NewEvent | RecordedEvent,
    stream: str,
    stream_version: int,
    position: int,
    recorded_at: str,
) -> str:
    """The stored envelope of an event (the JSON array ``RecordedEvent`` decodes from)."""
    return encode(
        (
            event.id,
            event.type,
            event.version,
            stream,
            event.stream_id,
            stream_version,
            position,
            recorded_at,
            event.data,
            event.metadata,
        )
    ).decode()


def _rows(
    events: Sequence[NewEvent], stream: str, version: int, position: int, at: str
) -> list[tuple[Any, ...]]:
    """The rows of events appended to ``stream`` after ``version`` and ``position``."""
    return [
        (
            position + i,
            e.type,
            stream,
            version + i,
            at,
            _envelope(e, stream, version + i, position + i, at),
        )
        for i, e in enumerate(events, 1)
    ]


def _insert(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert event rows (with the columns ``_INSERT`` names)."""
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        conn.execute(_insert_rows(len(chunk)), list(chain.from_iterable(chunk)))


def _view_value(kind: str, value: Any) -> Any:
    """Convert a document value for a declared view column."""
    if value is None:
        return None
    if kind == "boolean":
        return int(bool(value))
    if kind == "duration":
        return duration_microseconds(value)
    if kind == "json" or isinstance(value, dict | list):
        return encode_json(value)
    return value


_DIALECT = Dialect(
    param="?",
    json_param="?",
    greatest="max",
    key="key",
    numeric_order="CAST({} AS REAL)",  # decimals are stored as text
    # none sorts first ascending and last descending by default (no NULLS in an index)
    table_indexes="SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
    column_types=_SQL_TYPES,
    view_value=_view_value,
    load_json=decode_json,
    dump_time=format_time,
    load_time=datetime.fromisoformat,
    false="0",
)


class SQLiteUnitOfWork(SQLUnitOfWork[sqlite3.Connection]):
    """A write transaction on a SQLite store (one connection, ``BEGIN IMMEDIATE``)."""

    _store: SQLiteStore
    #: the cursor its appends run their statements on (made at the first)
    _cursor: sqlite3.Cursor | None = None

    # -- the log -----------------------------------------------------------------
    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        cur = self._cursor
        if cur is None:
            cur = self._cursor = self._conn.cursor()
        result = _append(self._store, cur, stream, events, expected_version, idempotency_key)
        if events and not result.duplicate:
            self.appended_to = result.last_position
        return result


def _append(
    store: SQLiteStore,
    cur: sqlite3.Cursor,
    stream: str,
    events: Sequence[NewEvent],
    expected_version: int | None,
    idempotency_key: str | None,
) -> AppendResult:
    """Append events within the open transaction of the cursor's connection (see
    `SQLiteUnitOfWork`). Its statements run on the one cursor: ``conn.execute`` makes
    a cursor for each (four a command: a twentieth of its time)."""
    # the stream's version, and the last position given (writers are serialized);
    # with a key, what it remembers, in the same statement
    if idempotency_key is None:
        current, position = cur.execute(store.head, (stream,)).fetchone()
    else:
        current, position, prior = cur.execute(
            store.keyed_head, (stream, idempotency_key)
        ).fetchone()
        if prior is not None:
            return store._replay_result(cur.connection, decode_json(prior))
    current = current or 0
    position = position or 0
    if expected_version is not None and expected_version != current:
        raise VersionConflict(stream, expected_version, current)
    now = datetime.now(UTC)
    at = format_time(now)
    n = len(events)
    try:
        if n == 1:
            # a command's append: its one row without the batch's lists
            e = events[0]
            version, last = current + 1, position + 1
            envelope = _envelope(e, stream, version, last, at)
            cur.execute(_INSERT_ONE, (last, e.type, stream, version, at, envelope))
        else:
            _insert(cur.connection, _rows(events, stream, current, position, at))
    except sqlite3.IntegrityError as exc:
        raise ConcurrencyError(f"cannot append to {stream!r}: {exc}") from exc
    if n:
        first, last = position + 1, position + n
    else:
        first = last = store._last_position(cur.connection)
    recorded = recorded_events(stream, events, current, position, now)
    result = AppendResult(stream, current + n, first, last, recorded)
    if idempotency_key is not None:
        cur.execute(store.dialect.remember, (idempotency_key, encode_json(result.to_json())))
    return result


class _StorageErrors:
    """A context manager turning a full or failing disk into a StoreError (remembered
    in the store's ``write_failure``); it keeps no state, so a store has one."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: Any
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            error = storage_error(self._store.path, exc)
            if error is not None:
                self._store.write_failure = error
                raise error from exc


class _Thread(threading.local):
    """A thread's own connection, its append cursor, its open transaction (`uow`) and
    savepoints: attributes with class defaults, so reading an unset one does not
    raise and catch an AttributeError (as ``getattr(local, name, None)`` does)."""

    conn: sqlite3.Connection | None = None
    cursor: sqlite3.Cursor | None = None
    uow: SQLiteUnitOfWork | None = None
    depth = 0


class SQLiteStore(SQLStore[sqlite3.Connection]):
    """An event store in one SQLite file (WAL mode).

    Its connections, transactions (savepoints, the write lock, a full disk), reads and
    WAL upkeep stay in one class of about 300 lines because they share the per-thread
    connections and the write lock; the schema is in ``sqlite_schema``.
    """

    dialect = _DIALECT
    group_commit = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "full",
        poll_interval: float = 0.2,
        busy_timeout: float = 30.0,
        wal_limit: int = WAL_LIMIT,
    ) -> None:
        if synchronous not in ("full", "normal", "extra"):
            raise InvalidStoreURL(f"synchronous={synchronous!r}: expected full, normal or extra")
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.wal_limit = wal_limit
        #: why the last write failed on storage (a full disk), until one succeeds
        self.write_failure: StoreError | None = None
        super().__init__()
        self._local = _Thread()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # Threads of this process queue here rather than in SQLite's sleeping busy handler.
        self._write_lock = threading.RLock()
        #: what turns a full or failing disk into a StoreError, and remembers it
        self._storage_errors = _StorageErrors(self)
        self._open()
        self._notifier = Notifier(self.last_position, poll_interval)
        self._notifier.notify(self.last_position())

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Open the store a ``sqlite:///path`` URL names (``?synchronous=full|normal``,
        ``?poll_interval=``, ``?wal_limit=`` bytes)."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise InvalidStoreURL(
                f"store URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = unquote(parts.path)
        # sqlite:///x.db → "/x.db" is relative; sqlite:////abs/x.db → "//abs/x.db".
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise InvalidStoreURL(f"store URL {url!r} names no file")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"synchronous", "poll_interval", "wal_limit"}
        if unknown:
            raise InvalidStoreURL(f"store URL {url!r}: unknown option(s) {sorted(unknown)}")
        wal_limit = options.get("wal_limit", str(WAL_LIMIT))
        if not wal_limit.isdigit():
            raise InvalidStoreURL(f"store URL {url!r}: wal_limit must be a number of bytes")
        return cls(
            path,
            synchronous=options.get("synchronous", "full").lower(),
            poll_interval=float(options.get("poll_interval", "0.2")),
            wal_limit=int(wal_limit),
        )

    # -- connections -----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        conn.execute(f"PRAGMA journal_size_limit = {self.wal_limit}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = self._local.conn
        if conn is None:
            if self.closed:
                raise StoreError(f"store {self.url} is closed")
            conn = self._connect()
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _open(self) -> None:
        """Check the file is ours and not too new, then create or upgrade the schema."""
        where = str(self.path)
        if self.path.exists():
            if self.path.is_dir():
                raise StoreCorrupt(f"{where} is a directory, not a stormgen store")
            with open(self.path, "rb") as fh:
                header = fh.read(16)
            if header and header != SQLITE_HEADER:
                raise StoreCorrupt(f"{where} is not a SQLite database (not a stormgen store)")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"cannot create the folder of {where}: {exc}") from exc
        try:
            conn = self._connect()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"cannot open {where}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"{where} is damaged or not a SQLite database: {exc}") from exc
        try:
            prepare_schema(conn, where)
            last = _COUNTER if counts_positions(conn) else _LAST_POSITION
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreUnavailable(f"cannot open {where}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreCorrupt(f"{where} is damaged or not a SQLite database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        #: the statement an append reads its stream's version and the last position with
        self.head = _HEAD.format(last)
        self.keyed_head = self.head + _KEY
        self._local.conn = conn
        self._connections.append(conn)

    # -- transactions ---------------------------------------------------------------
    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append in a transaction of its own or, inside this thread's transaction, in
        it without a savepoint: before anything can fail the append writes at most one
        INSERT statement, which SQLite undoes by itself when it fails (a conflict);
        what fails after it (the key's row: only the storage can) reaches the enclosing
        savepoint or transaction, which rolls back."""
        if len(events) > _ROWS_PER_INSERT:
            return super().append(stream, events, expected_version, idempotency_key=idempotency_key)
        local = self._local
        outer = local.uow
        if outer is not None:
            self._still_open(outer._conn)
            return outer.append(stream, events, expected_version, idempotency_key=idempotency_key)
        # A transaction of its own, as `transaction` makes one, without its context
        # managers and unit of work (a command's append is the hot path: they were a
        # tenth of it). Nothing the append calls reaches the store again.
        cur = local.cursor or self._cursor()
        with self._write_lock:
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    result = _append(self, cur, stream, events, expected_version, idempotency_key)
                    cur.execute("COMMIT")
                except BaseException:
                    conn = cur.connection
                    if conn.in_transaction:  # SQLite may have rolled it back already
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._storage_failed(exc)
                raise
            self.write_failure = None
        if events and not result.duplicate:
            self._notifier.notify(result.last_position)
        return result

    def _storage_failed(self, exc: sqlite3.Error) -> None:
        """Raise (and remember) the store error a full or failing disk is; else return."""
        error = storage_error(self.path, exc)
        if error is not None:
            self.write_failure = error
            raise error from exc

    def _cursor(self) -> sqlite3.Cursor:
        """This thread's cursor for its appends (on its connection)."""
        cur = self._conn().cursor()
        self._local.cursor = cur
        return cur

    def _still_open(self, conn: sqlite3.Connection) -> None:
        """Raise if SQLite rolled the thread's whole transaction back (an I/O error, a
        full disk): a statement now would run, and commit, on its own."""
        if not conn.in_transaction:
            raise StoreError(f"store {self.url}: the transaction was rolled back")

    @contextmanager
    def transaction(self) -> Iterator[SQLiteUnitOfWork]:
        outer = self._local.uow
        if outer is not None:
            # Nested: a savepoint inside the thread's open transaction (a SAVEPOINT
            # outside one would begin a new transaction, committed at its RELEASE).
            conn = outer._conn
            self._still_open(conn)
            # one name per depth (a connection has one transaction at a time): the
            # statements' texts repeat, so they stay in the connection's statement cache
            name = f"sp{self._local.depth}"
            self._local.depth += 1
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield outer
            except BaseException:
                # a full disk rolls the whole transaction back: no savepoint is left
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            finally:
                self._local.depth -= 1
            return
        conn = self._conn()
        with self._write_lock, self._storage_errors:
            conn.execute("BEGIN IMMEDIATE")
            uow = SQLiteUnitOfWork(self, conn)
            self._local.uow = uow
            try:
                yield uow
            except BaseException:
                self._local.uow = None
                if conn.in_transaction:  # SQLite may have rolled it back already
                    conn.execute("ROLLBACK")
                raise
            self._local.uow = None
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self.write_failure = None
        if uow.appended_to:
            self._notifier.notify(uow.appended_to)

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        outer = self._local.uow
        # Autocommit reads: each statement sees the last commit, no lock is taken.
        yield outer if outer is not None else SQLiteUnitOfWork(self, self._conn())

    def import_events(self, events: Sequence[RecordedEvent]) -> None:
        with self.transaction() as uow:
            conn = uow._conn
            self._check_import(conn, events)
            rows = [
                (
                    e.position,
                    e.type,
                    e.stream,
                    e.stream_version,
                    at,
                    _envelope(e, e.stream, e.stream_version, e.position, at),
                )
                for e in events
                for at in (format_time(e.recorded_at),)
            ]
            _insert(conn, rows)
            remember_imported(uow, events)
            if events:
                uow.appended_to = events[-1].position

    # -- reading -------------------------------------------------------------------
    def _select_events(
        self,
        conn: sqlite3.Connection,
        where: str,
        params: Sequence[Any],
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        return select_events(conn, where, params, limit)

    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        return self._read_stream(self._conn(), stream, after_version, up_to_position)

    def read_all(
        self,
        after_position: int = 0,
        limit: int | None = None,
        types: Sequence[str] | None = None,
        up_to_position: int | None = None,
    ) -> list[RecordedEvent]:
        where, params = self.dialect.log_filter(after_position, up_to_position, types)
        return select_events(self._conn(), where, params, limit)

    def event_types(self, after_position: int, up_to_position: int) -> set[str]:
        return self._event_types(self._conn(), after_position, up_to_position)

    def event_ids(
        self, after_position: int, up_to_position: int, limit: int
    ) -> list[tuple[int, str]]:
        rows = self._conn().execute(
            "SELECT position, json_extract(envelope, '$[0]') FROM events"
            " WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
            (after_position, up_to_position, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def stream_version(self, stream: str) -> int:
        return self._stream_version(self._conn(), stream)

    def last_position(self) -> int:
        return self._last_position(self._conn())

    def position_at(self, when: datetime) -> int:
        row = (
            self._conn()
            .execute(
                "SELECT position FROM events WHERE recorded_at <= ? ORDER BY position DESC LIMIT 1",
                (format_time(when),),
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    def _tables(self, conn: sqlite3.Connection) -> list[str]:
        # sqlite_sequence too: a merge done again starts its positions at 1
        return [
            str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]

    # -- health ----------------------------------------------------------------------
    def probe(self, timeout: float = 1.0) -> None:
        """Reads must work; after a write failed on storage, one small write must too."""
        self.last_position()
        if self.write_failure is None:
            return
        if not self._write_lock.acquire(timeout=timeout):
            raise StoreUnavailable(f"{self.path}: no write went through within {timeout:g} s")
        try:
            with self.transaction() as uow:
                # a value that changes: SQLite writes nothing for an unchanged row
                uow._conn.execute(
                    "INSERT OR REPLACE INTO stormgen_meta (key, value) VALUES (?, ?)",
                    ("probed_at", format_time(datetime.now(UTC))),
                )
        finally:
            self._write_lock.release()

    def maintain(self) -> None:
        """Empty the WAL once it is larger than ``wal_limit`` bytes."""
        try:
            size = os.path.getsize(f"{self.path}-wal")
        except OSError:
            return
        if size > self.wal_limit and not self.closed:
            self.checkpoint()

    def checkpoint(self, busy_seconds: float = _CHECKPOINT_BUSY_SECONDS) -> bool:
        """Copy the WAL into the database and empty it (``wal_checkpoint(TRUNCATE)``).

        Waits up to ``busy_seconds`` for readers to leave the WAL; False when they did
        not (the WAL is left as it is, for next time).
        """
        conn = self._conn()
        with self._write_lock, self._storage_errors:
            conn.execute(f"PRAGMA busy_timeout = {round(busy_seconds * 1000)}")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000)}")
        if busy:
            log.info("%s: readers kept the WAL busy; it is emptied later", self.path)
        return not busy

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        self.closed = True
        self._notifier.wake()
        with self._connections_lock:
            for conn in self._connections:
                with suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = _Thread()
