"""The shared store (``postgresql://user:pass@host:port/db``): psycopg 3 with a pool.

Appends are serialized by ``LOCK TABLE events IN EXCLUSIVE MODE`` (readers are not
blocked) and take ``max(position) + 1`` under that lock, so positions commit in order
and without holes: a reader that has seen position N never later finds a new event
below N, and a rolled-back append leaves nothing a reader could wait for. Each append
sends ``NOTIFY`` inside its transaction (delivered on commit) to wake subscribers in
every process; polling is the fallback.

When the server goes away, nothing waits long: a connection is acquired within
``acquire_timeout`` (2 s) or the operation fails with `StoreUnavailable`; a pooled
connection the server has closed is noticed before use (a readable socket on an idle
connection is the server's goodbye) and replaced. Once a connection was lost (or none
came in time) operations wait only 0.1 s for one until a connection works again; the
pool retries connecting at most a second apart, so the first operation after the
server's return finds a connection.
"""

from __future__ import annotations

import os
import re
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from stormgen.runtime._collector import LONG_ROWS, LONG_TEXT, without_collections
from stormgen.runtime.codec_durations import duration_microseconds
from stormgen.runtime.envelope import (
    EventPage,
    JSONDict,
    NewEvent,
    RecordedEvent,
    format_time,
)
from stormgen.runtime.errors import (
    ConcurrencyError,
    InvalidStoreURL,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from stormgen.runtime.store._sql import (
    Dialect,
    SQLStore,
    SQLUnitOfWork,
    encode,
    recorded_events,
)
from stormgen.runtime.store.base import (
    AppendResult,
    Notifier,
    UnitOfWork,
    check_expected,
    remember_imported,
)
from stormgen.runtime.store.postgres_schema import prepare_schema

_SQL_TYPES = {
    "text": "text",
    "integer": "bigint",
    "real": "double precision",
    "numeric": "numeric",
    "boolean": "boolean",
    "timestamp": "timestamptz",
    # Durations as whole microseconds (as in SQLite): they order and compare as numbers.
    "duration": "bigint",
    "json": "jsonb",
}

_APPEND_CALL = (
    "SELECT status, first_position, last_position, stream_version, recorded_at, prior"
    " FROM stormgen_append(%s, %s, %s::json, %s, %s)"
)
#: Larger appends go through COPY (about twice as fast per event as array inserts).
COPY_MIN_EVENTS = 50

_HEAD = (
    "SELECT (SELECT coalesce(max(position), 0) FROM events),"
    " (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream = %s),"
    " clock_timestamp()"
)
_NOTIFY = "SELECT pg_notify(%s, %s)"
_COPY = (
    "COPY events (position, id, type, version, stream, stream_id, stream_version,"
    " recorded_at, data, metadata, envelope) FROM STDIN"
)

_SAFE_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_OUR_OPTIONS = {
    "schema",
    "pool_max",
    "pool_min",
    "poll_interval",
    "connect_timeout",
    "acquire_timeout",
}
#: How long the pool keeps retrying one lost connection (attempts 1 s apart) before it
#: gives up on it; a later request starts a new attempt at once. psycopg_pool's backoff
#: doubles the wait between attempts (1, 2, 4... s): long outages made the first
#: success after the server's return take up to half the outage again.
_RECONNECT_SECONDS = 2.0
#: How long an operation waits for a connection while the server seems away (a
#: connection was lost, or none came within ``acquire_timeout``): a request fails in a
#: tenth of a second rather than holding a thread for the whole timeout, whatever the
#: load. The first live connection ends it.
_AWAY_WAIT_SECONDS = 0.1


def _alive(conn: psycopg.Connection[Any]) -> bool:
    """Whether a pooled (idle) connection still reaches its server.

    An idle connection has nothing to read; a readable socket holds the server's
    goodbye (a shutdown, a terminated backend, a closed proxy) or, rarely, a notice:
    then one empty round trip decides. A poll costs a microsecond, a round trip per
    acquire (psycopg_pool's ``check``) would cost every operation one.
    """
    if conn.closed:
        return False
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if not poller.poll(0):
        return True
    try:
        conn.execute("")
    except psycopg.Error:
        conn.close()
        return False
    return True


def _json_loads(data: str | bytes) -> Any:
    return msgspec.json.decode(data)


def _text(value: Any) -> str:
    return encode(value).decode()


# Each event is stored with its envelope, the JSON array RecordedEvent decodes from
# (the text of [id, type, version, stream, stream_id, stream_version, position,
# recorded_at, data, metadata]): a read joins the texts server-side and decodes them in
# one msgspec call. Building the JSON per row (json_build_array over the columns) was
# two thirds of a read.


def _head(event: NewEvent | RecordedEvent, stream: str) -> str:
    """The start of an event's envelope, up to its stream version (what the client knows)."""
    start = encode([event.id, event.type, event.version, stream, event.stream_id]).decode()
    return start[:-1] + ","


def _envelope(
    event: NewEvent | RecordedEvent,
    stream: str,
    stream_version: int,
    position: int,
    at: str,
    data: str,
    metadata: str,
) -> str:
    """An event's stored envelope: ``at`` is the time as `format_time` writes it, ``data``
    and ``metadata`` are JSON text."""
    return f'{_head(event, stream)}{stream_version},{position},"{at}",{data},{metadata}]'


def _cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """The connection's cursor for the store's hot statements (an append, a read), kept
    on the connection: ``conn.execute`` makes a cursor per statement, which then looks
    up its adapters again (a third of a command's append call in Python). Only for a
    statement whose rows are fetched at once: the next one replaces them."""
    cur: psycopg.Cursor[Any] | None = conn.__dict__.get("_stormgen_cursor")
    if cur is None or cur.closed:
        cur = conn.__dict__["_stormgen_cursor"] = conn.cursor()
    return cur


_decode_events = msgspec.json.Decoder(list[RecordedEvent]).decode
_by_position = attrgetter("position")
_envelope_of = itemgetter(0)
_STREAM_ENVELOPES = "SELECT * FROM stormgen_stream_envelopes(%s, %s::integer, %s::bigint)"


def _select_events(
    conn: psycopg.Connection[Any],
    where: str,
    params: Sequence[Any],
    limit: int | None = None,
) -> list[RecordedEvent]:
    """Return the (first ``limit``) events matching ``where`` in position order."""
    inner = f"SELECT envelope FROM events WHERE {where}"
    if limit is not None:
        inner += " ORDER BY position LIMIT %s"
        params = [*params, limit]
    # Without a limit, no ORDER BY at all: the rows come in the plan's order (the
    # table's, which is about position order: the log is only appended to) and sorting
    # them here is one cheap pass.
    query = f"SELECT string_agg(envelope, ',') FROM ({inner}) e"
    row = _cursor(conn).execute(query, params).fetchone()
    assert row is not None
    return [] if row[0] is None else _page(conn, row[0])


def _stream_page(conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any]) -> list[RecordedEvent]:
    """The events of the envelopes ``cur``'s result holds, a row each (a stream read).

    Joined here: `stormgen_stream_envelopes` returning one text joined with
    `string_agg` took ~1 ms longer on a 10,000-event stream (the function copies its
    result). Many rows are fetched with the collector paused: each is a tuple, which
    it counts.
    """
    rows = cur.fetchall() if cur.rowcount < LONG_ROWS else without_collections(cur.fetchall)
    return _page(conn, ",".join(map(_envelope_of, rows))) if rows else []


def _page(conn: psycopg.Connection[Any], text: str) -> list[RecordedEvent]:
    """The events of ``text``, envelopes joined by commas, in position order.

    The brackets are added here: the server joining them on took a copy of the whole
    text per bracket (~4 ms of a 10,000-event read).
    """
    try:
        if len(text) < LONG_TEXT:
            events = _decode_events(f"[{text}]")
        else:
            events = without_collections(_decode_events, f"[{text}]")
    except msgspec.DecodeError as exc:
        path = conn.execute("SHOW search_path").fetchone()
        raise StoreCorrupt(
            f"PostgreSQL schema {path[0] if path else '?'}: an event's stored envelope is"
            f" damaged ({exc})"
        ) from None
    events.sort(key=_by_position)
    return EventPage.of(events, text)


def _view_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json" or isinstance(value, dict | list):
        return _text(value)
    if kind == "boolean":
        return bool(value)
    if kind == "duration":
        return duration_microseconds(value)
    return value


def _dict(value: Any) -> JSONDict:
    return dict(value)


_DIALECT = Dialect(
    param="%s",
    array_params=True,
    json_param="%s::jsonb",
    greatest="greatest",
    # COLLATE "C": byte order, the same as SQLite and Python, so paging agrees.
    key='key COLLATE "C"',
    text_collate=' COLLATE "C"',
    table_indexes=(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s"
    ),
    index_nulls_first=" NULLS FIRST",
    index_nulls_last=" NULLS LAST",
    column_types=_SQL_TYPES,
    view_value=_view_value,
    load_json=_dict,
    max_identifier=63,
    skip_locked=" FOR UPDATE SKIP LOCKED",
)


class PostgresUnitOfWork(SQLUnitOfWork[psycopg.Connection[Any]]):
    """A transaction on a PostgreSQL store (one pooled connection)."""

    _store: PostgresStore

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
        super().__init__(store, conn)
        self._locked = False

    def _lock(self) -> None:
        if not self._locked:
            self._conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            self._locked = True

    # -- the log -----------------------------------------------------------------
    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        if len(events) < COPY_MIN_EVENTS:
            result = self._store._call_append(
                self._conn, stream, events, expected_version, idempotency_key
            )
            if result.events and not result.duplicate:
                self.appended_to = result.last_position
            return result
        conn = self._conn
        # Encode first: an event that cannot be encoded fails before anything is sent.
        datas = [_text(e.data) for e in events]
        metas = ["{}" if not e.metadata else _text(e.metadata) for e in events]
        self._lock()
        prior = self.remembered(idempotency_key) if idempotency_key is not None else None
        if prior is not None:
            return self._store._replay_result(conn, prior)
        row = conn.execute(_HEAD, (stream,)).fetchone()
        assert row is not None
        position, current, now = int(row[0]), int(row[1]), row[2]
        check_expected(stream, expected_version, current)
        n = len(events)
        at = format_time(now)
        rows = [
            (
                position + i,
                e.id,
                e.type,
                e.version,
                stream,
                e.stream_id,
                current + i,
                now,
                datas[i - 1],
                metas[i - 1],
                _envelope(e, stream, current + i, position + i, at, datas[i - 1], metas[i - 1]),
            )
            for i, e in enumerate(events, 1)
        ]
        recorded = recorded_events(stream, events, current, position, now)
        first = position + 1 if n else position
        result = AppendResult(stream, current + n, first, position + n, recorded)
        try:
            self._store._copy_events(conn, rows)
            self._after_insert(position + n, idempotency_key, result)
        except psycopg.errors.UniqueViolation as exc:
            raise ConcurrencyError(f"cannot append to {stream!r}: {exc}") from exc
        if n:
            self.appended_to = position + n
        return result

    def _after_insert(self, last: int, idempotency_key: str | None, result: AppendResult) -> None:
        conn = self._conn
        if result.events:
            conn.execute(_NOTIFY, (self._store.channel, str(last)))
        if idempotency_key is not None:
            self.remember(idempotency_key, result.to_json())


class _Thread(threading.local):
    """A thread's open transaction (`uow`), if any: a class default, so reading it
    unset does not raise and catch an AttributeError (as ``getattr`` with a default
    does)."""

    uow: PostgresUnitOfWork | None = None


class PostgresStore(SQLStore[psycopg.Connection[Any]]):
    """An event store in a PostgreSQL schema, shared by any number of processes.

    Over 300 lines (the module over 600) because its parts share one pool and its
    fail-fast state: connecting and acquiring (an outage fails in seconds), the
    append paths (one function call; COPY for large batches), imports, reads and
    the LISTEN thread. The schema is in ``postgres_schema``.
    """

    dialect = _DIALECT

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        pool_min: int = 1,
        pool_max: int = 10,
        poll_interval: float = 1.0,
        connect_timeout: float = 3.0,
        acquire_timeout: float = 2.0,
        display_url: str | None = None,
    ) -> None:
        if not _SAFE_SCHEMA.match(schema):
            raise InvalidStoreURL(f"schema {schema!r} is not a plain SQL identifier")
        super().__init__()
        self.conninfo = conninfo
        self.schema = schema
        self.url = display_url or conninfo
        self.channel = f"stormgen_{schema}"[:63]
        parts = urlsplit(conninfo)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        self._connect_timeout = connect_timeout
        if not acquire_timeout > 0:
            raise InvalidStoreURL(f"acquire_timeout={acquire_timeout}: expected seconds above 0")
        self._acquire_timeout = acquire_timeout
        #: a connection was lost, or none came in time (see _AWAY_WAIT_SECONDS)
        self._away = False
        self._kwargs: dict[str, Any] = {
            # Keep the user's PGOPTIONS (libpq drops it when options are given).
            "options": f"{os.environ.get('PGOPTIONS', '')} -c search_path={schema} "
            "-c TimeZone=UTC".strip(),
            "connect_timeout": max(1, round(connect_timeout)),
            "autocommit": True,
        }
        self._local = _Thread()
        self._open()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=pool_min,
            max_size=max(pool_min, pool_max),
            kwargs=self._kwargs,
            configure=self._configure,
            open=False,
            name=f"stormgen-{schema}",
            timeout=acquire_timeout,
            reconnect_timeout=_RECONNECT_SECONDS,
        )
        try:
            self._pool.open(wait=True, timeout=max(connect_timeout, 5.0))
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL at {self._where}: {exc}") from exc
        self._notifier = Notifier(self.last_position, poll_interval)
        self._listener: threading.Thread | None = None
        self._listener_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Open the store a ``postgresql://`` URL names (``?schema=``, ``?pool_max=``)."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        ours = {k: v for k, v in query if k in _OUR_OPTIONS}
        rest = [(k, v) for k, v in query if k not in _OUR_OPTIONS]
        scheme = "postgresql"
        conninfo = urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), ""))
        display = conninfo
        if parts.password:
            display = display.replace(f":{parts.password}@", ":***@", 1)
        if ours.get("schema"):
            display += ("&" if rest else "?") + f"schema={ours['schema']}"
        try:
            return cls(
                conninfo,
                schema=ours.get("schema", "public"),
                pool_min=int(ours.get("pool_min", "1")),
                pool_max=int(ours.get("pool_max", "10")),
                poll_interval=float(ours.get("poll_interval", "1.0")),
                connect_timeout=float(ours.get("connect_timeout", "3")),
                acquire_timeout=float(ours.get("acquire_timeout", "2")),
                display_url=display,
            )
        except ValueError as exc:
            if isinstance(exc, StoreError):
                raise
            raise InvalidStoreURL(f"store URL {display!r}: {exc}") from exc

    # -- connections -----------------------------------------------------------------
    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        set_json_loads(_json_loads, conn)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.conninfo, **self._kwargs)
        except psycopg.OperationalError as exc:
            # psycopg's message spans lines (one per address tried): keep it on one.
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreUnavailable(f"cannot reach PostgreSQL at {self._where}: {reason}") from exc
        self._configure(conn)
        return conn

    def _open(self) -> None:
        """Check the schema is ours and current, then create what is missing."""
        with self._connect() as conn, conn.transaction():
            prepare_schema(conn, self.schema, self.channel, f"PostgreSQL {self._where}")

    @contextmanager
    def _connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (the thread's transaction's, inside one); ``timeout``: how
        long to wait for one (default ``acquire_timeout``)."""
        current: PostgresUnitOfWork | None = self._local.uow
        if current is not None:
            yield current._conn
            return
        if self.closed:
            raise StoreError(f"store {self.url} is closed")
        conn = self._acquire(self._acquire_timeout if timeout is None else timeout)
        try:
            yield conn
        except psycopg.OperationalError as exc:
            self._away = self._away or conn.closed
            # psycopg's message spans lines (one per address tried): keep it on one.
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreUnavailable(f"lost PostgreSQL at {self._where}: {reason}") from exc
        finally:
            self._pool.putconn(conn)

    def _acquire(self, timeout: float) -> psycopg.Connection[Any]:
        """A live connection from the pool within ``timeout`` seconds, or StoreUnavailable."""
        if self._away:
            timeout = min(timeout, _AWAY_WAIT_SECONDS)
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = self._pool.getconn(max(0.001, deadline - time.monotonic()))
            except PoolTimeout as exc:
                self._away = True
                raise StoreUnavailable(
                    f"no connection to PostgreSQL at {self._where} within {timeout:g} s"
                    " (the server is down or every connection is busy)"
                ) from exc
            if _alive(conn):
                self._away = False
                return conn
            # closed: the pool replaces it (the others of a restarted server follow here)
            self._away = True
            self._pool.putconn(conn)

    def probe(self, timeout: float = 1.0) -> None:
        with self._connection(timeout) as conn:
            conn.execute("")

    # -- transactions ---------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[PostgresUnitOfWork]:
        outer: PostgresUnitOfWork | None = self._local.uow
        if outer is not None:
            with outer._conn.transaction():
                yield outer
            return
        with self._connection() as conn:
            uow = PostgresUnitOfWork(self, conn)
            self._local.uow = uow
            try:
                with conn.transaction():
                    yield uow
            except (
                psycopg.errors.DeadlockDetected,
                psycopg.errors.SerializationFailure,
            ) as exc:
                # Two units of work locked rows in opposite orders: retrying is safe.
                raise ConcurrencyError(f"concurrent transaction conflict: {exc}") from exc
            finally:
                self._local.uow = None
        if uow.appended_to:
            self._notifier.notify(uow.appended_to)

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        if len(events) >= COPY_MIN_EVENTS or self._local.uow is not None:
            return super().append(stream, events, expected_version, idempotency_key=idempotency_key)
        # On an autocommit connection the call is a transaction of its own: one round trip.
        with self._connection() as conn:
            result = self._call_append(conn, stream, events, expected_version, idempotency_key)
        if result.events and not result.duplicate:
            self._notifier.notify(result.last_position)
        return result

    def _call_append(
        self,
        conn: psycopg.Connection[Any],
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        idempotency_key: str | None,
    ) -> AppendResult:
        """Append through ``stormgen_append`` (see ``_APPEND_FUNCTION``)."""
        # the events as one JSON array (a list of lists made psycopg adapt each item:
        # converting the parameters cost more than the rest of the call in Python)
        batch = encode([[e.id, e.type, e.version, e.stream_id, e.data, e.metadata] for e in events])
        params = (stream, expected_version, batch.decode(), idempotency_key, self.channel)
        try:
            row = _cursor(conn).execute(_APPEND_CALL, params).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise ConcurrencyError(f"cannot append to {stream!r}: {exc}") from exc
        assert row is not None
        status, first, last, version, now, prior = row
        if status == "duplicate":
            return self._replay_result(conn, prior)
        if status == "conflict":
            raise VersionConflict(stream, expected_version, version)
        current = version - len(events)
        recorded = recorded_events(stream, events, current, first - 1, now)
        return AppendResult(stream, version, first, last, recorded)

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        outer: PostgresUnitOfWork | None = self._local.uow
        if outer is not None:
            yield outer
            return
        # An autocommit connection: each statement sees the last commit, no lock taken.
        with self._connection() as conn:
            yield PostgresUnitOfWork(self, conn)

    def import_events(self, events: Sequence[RecordedEvent]) -> None:
        with self.transaction() as uow:
            uow._lock()
            conn = uow._conn
            self._check_import(conn, events)
            if not events:
                return
            self._copy_events(
                conn,
                [
                    (
                        e.position,
                        e.id,
                        e.type,
                        e.version,
                        e.stream,
                        e.stream_id,
                        e.stream_version,
                        e.recorded_at,
                        data,
                        metadata,
                        _envelope(
                            e,
                            e.stream,
                            e.stream_version,
                            e.position,
                            format_time(e.recorded_at),
                            data,
                            metadata,
                        ),
                    )
                    for e in events
                    for data, metadata in ((_text(e.data), _text(e.metadata)),)
                ],
            )
            remember_imported(uow, events)
            conn.execute("SELECT pg_notify(%s, %s)", (self.channel, str(events[-1].position)))
            uow.appended_to = events[-1].position

    @staticmethod
    def _copy_events(conn: psycopg.Connection[Any], rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur, cur.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)

    # -- reading -------------------------------------------------------------------
    def _select_events(
        self,
        conn: psycopg.Connection[Any],
        where: str,
        params: Sequence[Any],
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        return _select_events(conn, where, params, limit)

    def _read_stream(
        self,
        conn: psycopg.Connection[Any],
        stream: str,
        after_version: int,
        up_to_position: int | None,
    ) -> list[RecordedEvent]:
        # `stormgen_stream_envelopes` (see postgres_schema): always by the stream's index
        params = (stream, after_version, up_to_position)
        return _stream_page(conn, _cursor(conn).execute(_STREAM_ENVELOPES, params))

    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        with self._connection() as conn:
            return self._read_stream(conn, stream, after_version, up_to_position)

    def read_all(
        self,
        after_position: int = 0,
        limit: int | None = None,
        types: Sequence[str] | None = None,
        up_to_position: int | None = None,
    ) -> list[RecordedEvent]:
        where, params = self.dialect.log_filter(after_position, up_to_position, types)
        with self._connection() as conn:
            return _select_events(conn, where, params, limit)

    def event_types(self, after_position: int, up_to_position: int) -> set[str]:
        with self._connection() as conn:
            return self._event_types(conn, after_position, up_to_position)

    def event_ids(
        self, after_position: int, up_to_position: int, limit: int
    ) -> list[tuple[int, str]]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT position, id FROM events WHERE position > %s AND position <= %s"
                " ORDER BY position LIMIT %s",
                (after_position, up_to_position, limit),
            )
            return [(int(r[0]), str(r[1])) for r in rows]

    def stream_version(self, stream: str) -> int:
        with self._connection() as conn:
            return self._stream_version(conn, stream)

    def last_position(self) -> int:
        with self._connection() as conn:
            return self._last_position(conn)

    def position_at(self, when: datetime) -> int:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._connection() as conn:
            row = conn.execute(
                "SELECT position FROM events WHERE recorded_at <= %s "
                "ORDER BY position DESC LIMIT 1",
                (when,),
            ).fetchone()
        return int(row[0]) if row else 0

    # -- waiting ---------------------------------------------------------------------
    def wait_for_events(self, after_position: int, timeout: float | None = None) -> bool:
        self._start_listener()
        return self._notifier.wait(after_position, timeout)

    def _start_listener(self) -> None:
        with self._listener_lock:
            if self._listener is not None or self.closed:
                return
            self._listener = threading.Thread(
                target=self._listen, name=f"stormgen-listen-{self.schema}", daemon=True
            )
            self._listener.start()

    def _listen(self) -> None:
        """Turn NOTIFYs from any process into wake-ups; reconnect after errors."""
        while not self.closed:
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    # Anything committed before LISTEN took effect is found by this read.
                    self._notifier.notify(self._last_position(conn))
                    while not self.closed:
                        for note in conn.notifies(timeout=0.25):
                            with suppress(ValueError):
                                self._notifier.notify(int(note.payload))
            except (psycopg.Error, StoreError):
                if self.closed:
                    return
                threading.Event().wait(1.0)

    # -- views ---------------------------------------------------------------------
    def _tables(self, conn: psycopg.Connection[Any]) -> list[str]:
        query = (
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE'"
        )
        return [str(r[0]) for r in conn.execute(query, (self.schema,))]

    def _lock_view(self, conn: psycopg.Connection[Any], view: str) -> None:
        # Two processes starting at once must not both rebuild the table.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("view:" + view,))

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._notifier.wake()
        if self._listener is not None:
            self._listener.join(2.0)
        self._pool.close()
