"""What the SQL stores (SQLite, PostgreSQL) share: side tables, views, imports, replays.

A backend describes its SQL with a :class:`Dialect` (parameter marker, JSON casts, key
collation, column types, value conversions); the statements here are written once for
both. What differs in kind stays in the backend: connections, transactions and locking,
the tuned append paths, how a result set becomes events, and waking subscribers.
"""

from __future__ import annotations

import hashlib
import re
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from stormgen.runtime.envelope import JSONDict, NewEvent, RecordedEvent
from stormgen.runtime.errors import SchemaTooNew, StoreCorrupt, StoreError
from stormgen.runtime.store.base import (
    SCHEMA_VERSION,
    AppendResult,
    EventStore,
    ParkedFailure,
    Snapshot,
    Timer,
    UnitOfWork,
    ViewRow,
    check_columns,
    column_name,
    view_table_name,
)

encode = msgspec.json.Encoder().encode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode


def encode_json(value: Any) -> str:
    """Encode a JSON-ready value as compact JSON text."""
    return encode(value).decode()


def decode_json(text: str | bytes) -> JSONDict:
    """Decode a JSON object (fresh dict each call)."""
    return _decode_dict(text)


def recorded_events(
    stream: str, events: Sequence[NewEvent], version: int, position: int, now: datetime
) -> list[RecordedEvent]:
    """Return the events an append wrote after stream ``version`` and global ``position``."""
    if len(events) == 1:
        # a command's append: one event, without a comprehension (a fifth of the time)
        return [_recorded(events[0], stream, version + 1, position + 1, now)]
    return [_recorded(e, stream, version + i, position + i, now) for i, e in enumerate(events, 1)]


def _recorded(
    e: NewEvent, stream: str, stream_version: int, position: int, now: datetime
) -> RecordedEvent:
    """The event ``e`` as recorded at ``stream_version`` and ``position``."""
    return RecordedEvent(
        e.id,
        e.type,
        e.version,
        stream,
        e.stream_id,
        stream_version,
        position,
        now,
        e.data,
        e.metadata,
    )


def quote(name: str) -> str:
    """Quote an SQL identifier (the same rule on SQLite and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


class Cursor(Protocol):
    """The part of a DB-API cursor the shared statements use."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the shared statements use."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Cursor: ...


ConnT = TypeVar("ConnT", bound=Connection)

#: The idempotency index stores kept before `idempotency_keys` became the one record of
#: a key (a view table with its `stormgen_views` row, and a checkpoint): unused since.
OLD_IDEMPOTENCY_INDEX = "_stormgen.Idempotency"


def drop_old_idempotency_index(conn: Connection, placeholder: str) -> None:
    """Drop what is left of the old idempotency index (in the caller's open transaction)."""
    p = placeholder
    found = conn.execute(
        f"SELECT (SELECT count(*) FROM stormgen_views WHERE view = {p}) "
        f"+ (SELECT count(*) FROM checkpoints WHERE consumer = {p})",
        (OLD_IDEMPOTENCY_INDEX, OLD_IDEMPOTENCY_INDEX),
    ).fetchone()
    if not found[0]:
        return
    conn.execute(f"DROP TABLE IF EXISTS {quote(view_table_name(OLD_IDEMPOTENCY_INDEX))}")
    conn.execute(f"DELETE FROM stormgen_views WHERE view = {p}", (OLD_IDEMPOTENCY_INDEX,))
    conn.execute(f"DELETE FROM checkpoints WHERE consumer = {p}", (OLD_IDEMPOTENCY_INDEX,))


def recorded_schema_version(conn: Connection, where: str) -> int:
    """The schema version a stormgen store records (in ``stormgen_meta``).

    Raises `StoreCorrupt` when it records none, `SchemaTooNew` when it is newer than
    this stormgen understands (``where`` names the store in the message).
    """
    row = conn.execute("SELECT value FROM stormgen_meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise StoreCorrupt(f"{where} is a stormgen store without a schema version")
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{where} has store schema version {version}, newer than this stormgen "
            f"understands ({SCHEMA_VERSION}); upgrade stormgen"
        )
    return version


def _as_is(value: Any) -> Any:
    return value


class Dialect:
    """How one database spells the statements the SQL stores share (built once)."""

    def __init__(
        self,
        *,
        param: str,
        json_param: str,
        greatest: str,
        key: str,
        column_types: Mapping[str, str],
        view_value: Callable[[str, Any], Any],
        load_json: Callable[[Any], JSONDict],
        dump_time: Callable[[datetime], Any] = _as_is,
        load_time: Callable[[Any], datetime] = _as_is,
        max_identifier: int | None = None,
        array_params: bool = False,
        text_collate: str = "",
        numeric_order: str = "{}",
        table_indexes: str = "",
        index_nulls_first: str = "",
        index_nulls_last: str = "",
        skip_locked: str = "",
        false: str = "false",
    ) -> None:
        p, j = param, json_param
        self.param = p
        #: what follows a text view column sorted by an `order by` (byte order, like keys)
        self.text_collate = text_collate
        #: how a numeric view column is sorted by an `order by` (``{}`` is the column)
        self.numeric_order = numeric_order
        #: the names of a table's indexes (one parameter: the table)
        self.table_indexes = table_indexes
        #: what an index column says for an `order by`'s none first ascending and none
        #: last descending (nothing where that is the database's default)
        self.index_nulls_first = index_nulls_first
        self.index_nulls_last = index_nulls_last
        #: the driver binds a Python list as an SQL array (``= ANY(%s)``)
        self.array_params = array_params
        self.json_param = j
        #: the view key as compared and sorted (byte order on every backend)
        self.key = key
        #: SQL type of each logical view column type (see ``VIEW_COLUMN_TYPES``)
        self.column_types = column_types
        #: converts a document value for a declared view column of a logical type
        self.view_value = view_value
        #: returns a JSON column's value, as the driver reads it, as a fresh dict
        self.load_json = load_json
        #: convert a time to what the database stores, and back to an aware datetime
        self.dump_time = dump_time
        self.load_time = load_time
        #: longest identifier the database keeps (None: no limit)
        self.max_identifier = max_identifier
        self.last_position = "SELECT coalesce(max(position), 0) FROM events"
        self.stream_version = (
            f"SELECT coalesce(max(stream_version), 0) FROM events WHERE stream = {p}"
        )
        self.stream_after = f"stream = {p} AND stream_version > {p}"
        self.stream_up_to = f"stream = {p} AND stream_version > {p} AND position <= {p}"
        self.replay_where = f"position BETWEEN {p} AND {p} AND stream = {p}"
        self.get_checkpoint = f"SELECT position FROM checkpoints WHERE consumer = {p}"
        self.set_checkpoint = (
            f"INSERT INTO checkpoints AS c (consumer, position) VALUES ({p}, {p}) "
            "ON CONFLICT (consumer) DO UPDATE SET "
            f"position = {greatest}(c.position, excluded.position) RETURNING position"
        )
        self.reset_checkpoint = (
            f"INSERT INTO checkpoints (consumer, position) VALUES ({p}, {p}) "
            "ON CONFLICT (consumer) DO UPDATE SET position = excluded.position"
        )
        self.save_snapshot = (
            "INSERT INTO snapshots (stream, version, position, state, schema_hash) "
            f"VALUES ({p}, {p}, {p}, {j}, {p}) ON CONFLICT (stream) DO UPDATE SET "
            "version = excluded.version, position = excluded.position, "
            "state = excluded.state, schema_hash = excluded.schema_hash"
        )
        self.get_snapshot = (
            f"SELECT version, position, state, schema_hash FROM snapshots WHERE stream = {p}"
        )
        self.delete_snapshot = f"DELETE FROM snapshots WHERE stream = {p}"
        self.put_key = (
            f"INSERT INTO stream_keys (stream, key) VALUES ({p}, {p}) "
            "ON CONFLICT (stream) DO UPDATE SET key = excluded.key"
        )
        self.add_key = (
            f"INSERT INTO stream_keys (stream, key) VALUES ({p}, {p}) "
            "ON CONFLICT (stream) DO NOTHING"
        )
        self.get_key = f"SELECT key FROM stream_keys WHERE stream = {p}"
        self.delete_key = f"DELETE FROM stream_keys WHERE stream = {p}"
        self.remembered = f"SELECT result FROM idempotency_keys WHERE key = {p}"
        self.remember = (
            f"INSERT INTO idempotency_keys (key, result) VALUES ({p}, {j}) "
            "ON CONFLICT (key) DO UPDATE SET result = excluded.result"
        )
        self.park_failure = (
            "INSERT INTO parked_failures "
            "(consumer, position, event_id, error, attempts, parked_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (consumer, position) "
            "DO UPDATE SET event_id = excluded.event_id, error = excluded.error, "
            "attempts = excluded.attempts, parked_at = excluded.parked_at"
        )
        self.list_failures = (
            "SELECT consumer, position, event_id, error, attempts, parked_at FROM parked_failures"
        )
        self.consumer_is = f" WHERE consumer = {p}"
        self.delete_failure = f"DELETE FROM parked_failures WHERE consumer = {p} AND position = {p}"
        self.view_spec = f"SELECT table_name, columns FROM stormgen_views WHERE view = {p}"
        self.view_columns = f"SELECT columns FROM stormgen_views WHERE view = {p}"
        self.save_view = (
            f"INSERT INTO stormgen_views (view, table_name, columns) VALUES ({p}, {p}, {j}) "
            "ON CONFLICT (view) DO UPDATE SET table_name = excluded.table_name, "
            "columns = excluded.columns"
        )
        self.delete_view = f"DELETE FROM stormgen_views WHERE view = {p}"
        self.get_meta = f"SELECT value FROM stormgen_meta WHERE key = {p}"
        self.set_meta = (
            f"INSERT INTO stormgen_meta (key, value) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        self.delete_meta = f"DELETE FROM stormgen_meta WHERE key = {p}"
        self.set_timer = (
            "INSERT INTO process_timers (process, key, name, due, run_at, attempts, parked) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, 0, {false}) "
            "ON CONFLICT (process, key, name) DO UPDATE SET due = excluded.due, "
            f"run_at = excluded.run_at, attempts = 0, parked = {false}"
        )
        self.delete_timer = (
            f"DELETE FROM process_timers WHERE process = {p} AND key = {p} AND name = {p}"
        )
        self.delete_timers = f"DELETE FROM process_timers WHERE process = {p} AND key = {p}"
        self.timer_columns = "SELECT process, key, name, due, run_at, attempts, parked"
        # the row is locked by the claim; a concurrent claim skips it (never fires twice)
        self.claim_timers = (
            f"{self.timer_columns} FROM process_timers WHERE NOT parked AND run_at <= {p} "
            f"ORDER BY run_at, due, process, key, name LIMIT {p}{skip_locked}"
        )
        self.retry_timer = (
            f"UPDATE process_timers SET run_at = {p}, attempts = {p}, parked = {p} "
            f"WHERE process = {p} AND key = {p} AND name = {p} AND due = {p}"
        )
        self.next_timer = "SELECT min(run_at) FROM process_timers WHERE NOT parked"
        self.list_timers = f"{self.timer_columns} FROM process_timers"
        self.process_is = f" WHERE process = {p}"

    def log_filter(
        self, after_position: int, up_to_position: int | None, types: Sequence[str] | None
    ) -> tuple[str, list[Any]]:
        """The ``WHERE`` of a read of the whole log, with its parameters."""
        p = self.param
        where = f"position > {p}"
        params: list[Any] = [after_position]
        if up_to_position is not None:
            where += f" AND position <= {p}"
            params.append(up_to_position)
        if types:
            if self.array_params:
                where += f" AND type = ANY({p})"
                params.append(list(types))
            else:
                where += f" AND type IN ({', '.join([p] * len(types))})"
                params.extend(types)
        return where, params

    def marker(self, kind: str) -> str:
        """Return the parameter marker for a view column of logical type ``kind``."""
        return self.json_param if kind == "json" else self.param


class SQLUnitOfWork(UnitOfWork, Generic[ConnT]):
    """A transaction on a SQL store (one connection): the side tables' operations."""

    def __init__(self, store: SQLStore[ConnT], conn: ConnT) -> None:
        self._store = store
        self._conn = conn
        self._sql = store.dialect
        self.appended_to = 0

    # -- the log -----------------------------------------------------------------
    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        return self._store._read_stream(self._conn, stream, after_version, up_to_position)

    def stream_version(self, stream: str) -> int:
        return self._store._stream_version(self._conn, stream)

    # -- checkpoints ---------------------------------------------------------------
    def get_checkpoint(self, consumer: str) -> int:
        row = self._conn.execute(self._sql.get_checkpoint, (consumer,)).fetchone()
        return int(row[0]) if row else 0

    def set_checkpoint(self, consumer: str, position: int) -> int:
        row = self._conn.execute(self._sql.set_checkpoint, (consumer, position)).fetchone()
        return int(row[0])

    def reset_checkpoint(self, consumer: str, position: int = 0) -> None:
        self._conn.execute(self._sql.reset_checkpoint, (consumer, position))

    # -- views ---------------------------------------------------------------------
    def upsert_row(self, view: str, key: str, doc: JSONDict) -> None:
        store = self._store
        spec = store._view_spec(self._conn, view)
        table, columns = spec
        d = self._sql
        cached = store._upserts.get(view)
        if cached is not None and cached[0] is spec:
            statement = cached[1]
        else:
            # built once per view spec (a changed spec is a new tuple): every view
            # update used to spend more on this text than on the insert
            names = ["key", "doc", *(column_name(c) for c in columns)]
            markers = [d.param, d.json_param, *(d.marker(kind) for kind in columns.values())]
            statement = (
                f"INSERT INTO {quote(table)} ({', '.join(map(quote, names))}) "
                f"VALUES ({', '.join(markers)}) ON CONFLICT (key) DO UPDATE SET "
                + ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names[1:])
            )
            store._upserts[view] = (spec, statement)
        values = [key, encode_json(doc)]
        view_value = d.view_value
        values.extend(view_value(kind, doc.get(c)) for c, kind in columns.items())
        self._conn.execute(statement, values)

    def delete_row(self, view: str, key: str) -> bool:
        table, _ = self._store._view_spec(self._conn, view)
        cur = self._conn.execute(
            f"DELETE FROM {quote(table)} WHERE key = {self._sql.param}", (key,)
        )
        return cur.rowcount > 0

    def get_row(self, view: str, key: str) -> JSONDict | None:
        table, _ = self._store._view_spec(self._conn, view)
        row = self._conn.execute(
            f"SELECT doc FROM {quote(table)} WHERE key = {self._sql.param}", (key,)
        ).fetchone()
        return self._sql.load_json(row[0]) if row else None

    def query_rows(
        self,
        view: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_key: str | None = None,
        limit: int | None = None,
        order: Sequence[tuple[str | None, bool]] = (),
    ) -> list[ViewRow]:
        table, columns = self._store._view_spec(self._conn, view)
        d = self._sql
        # an `order by`: keyset paging on the sort values of the row `after_key` names,
        # then on the key
        terms = _order_terms(d, columns, order, view) if order else None
        clauses: list[str] = []
        params: list[Any] = []
        for name, value in (where or {}).items():
            if name not in columns:
                raise ValueError(f"view {view!r} has no column {name!r} to filter on")
            if value is None:
                clauses.append(f"{quote(column_name(name))} IS NULL")
            else:
                clauses.append(f"{quote(column_name(name))} = {d.marker(columns[name])}")
                params.append(self._sql.view_value(columns[name], value))
        if terms is not None:
            if after_key is not None:
                clause, values = self._after_row(table, view, terms, after_key)
                clauses.append(clause)
                params.extend(values)
            ordering = ", ".join(
                f"{expr} DESC NULLS LAST" if desc else f"{expr} ASC NULLS FIRST"
                for expr, desc in terms
            )
        else:
            if after_key is not None:
                clauses.append(f"{d.key} > {d.param}")
                params.append(after_key)
            ordering = d.key
        statement = f"SELECT key, doc FROM {quote(table)}"
        if clauses:
            statement += " WHERE " + " AND ".join(clauses)
        statement += f" ORDER BY {ordering}"
        if limit is not None:
            statement += f" LIMIT {d.param}"
            params.append(limit)
        load = d.load_json
        return [ViewRow(k, load(doc)) for k, doc in self._conn.execute(statement, params)]

    def _after_row(
        self, table: str, view: str, terms: list[tuple[str, bool]], after_key: str
    ) -> tuple[str, list[Any]]:
        """The condition "after the row ``after_key`` names" in the view's order."""
        d = self._sql
        selected = ", ".join(expr for expr, _ in terms)
        found = self._conn.execute(
            f"SELECT {selected} FROM {quote(table)} WHERE key = {d.param}", (after_key,)
        ).fetchone()
        if found is None:
            raise ValueError(f"view {view!r} has no row {after_key!r} to page after")
        return _after_clause(d.param, terms, list(found))

    def clear_view(self, view: str) -> None:
        table, _ = self._store._view_spec(self._conn, view)
        self._conn.execute(f"DELETE FROM {quote(table)}")

    # -- snapshots -----------------------------------------------------------------
    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._conn.execute(
            self._sql.save_snapshot,
            (
                snapshot.stream,
                snapshot.version,
                snapshot.position,
                encode_json(snapshot.state),
                snapshot.schema_hash,
            ),
        )

    def get_snapshot(self, stream: str, max_position: int | None = None) -> Snapshot | None:
        row = self._conn.execute(self._sql.get_snapshot, (stream,)).fetchone()
        if row is None or (max_position is not None and row[1] > max_position):
            return None
        return Snapshot(stream, row[0], row[1], self._sql.load_json(row[2]), row[3])

    def delete_snapshot(self, stream: str) -> None:
        self._conn.execute(self._sql.delete_snapshot, (stream,))

    # -- idempotency keys ----------------------------------------------------------
    def remembered(self, idempotency_key: str) -> JSONDict | None:
        row = self._conn.execute(self._sql.remembered, (idempotency_key,)).fetchone()
        return self._sql.load_json(row[0]) if row else None

    def remember(self, idempotency_key: str, result: JSONDict) -> None:
        self._conn.execute(self._sql.remember, (idempotency_key, encode_json(result)))

    # -- keys ----------------------------------------------------------------------
    def put_key(self, stream: str, key: bytes) -> None:
        self._conn.execute(self._sql.put_key, (stream, bytes(key)))

    def add_key(self, stream: str, key: bytes) -> bool:
        return self._conn.execute(self._sql.add_key, (stream, bytes(key))).rowcount > 0

    def get_key(self, stream: str) -> bytes | None:
        row = self._conn.execute(self._sql.get_key, (stream,)).fetchone()
        return bytes(row[0]) if row else None

    def delete_key(self, stream: str) -> bool:
        return self._conn.execute(self._sql.delete_key, (stream,)).rowcount > 0

    # -- failures ------------------------------------------------------------------
    def park_failure(self, failure: ParkedFailure) -> None:
        self._conn.execute(
            self._sql.park_failure,
            (
                failure.consumer,
                failure.position,
                failure.event_id,
                failure.error,
                failure.attempts,
                self._sql.dump_time(failure.parked_at),
            ),
        )

    # -- the store's own records -----------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute(self._sql.get_meta, (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._conn.execute(self._sql.delete_meta, (key,))
        else:
            self._conn.execute(self._sql.set_meta, (key, value))

    def list_failures(self, consumer: str | None = None) -> list[ParkedFailure]:
        statement = self._sql.list_failures
        params: tuple[Any, ...] = ()
        if consumer is not None:
            statement += self._sql.consumer_is
            params = (consumer,)
        statement += " ORDER BY position, consumer"
        load_time = self._sql.load_time
        return [
            ParkedFailure(c, p, e, err, a, load_time(at))
            for c, p, e, err, a, at in self._conn.execute(statement, params)
        ]

    def delete_failure(self, consumer: str, position: int) -> bool:
        cur = self._conn.execute(self._sql.delete_failure, (consumer, position))
        return cur.rowcount > 0

    # -- timers ----------------------------------------------------------------------
    def set_timer(self, process: str, key: str, name: str, due: datetime) -> None:
        at = self._sql.dump_time(due)
        self._conn.execute(self._sql.set_timer, (process, key, name, at, at))

    def delete_timer(self, process: str, key: str, name: str) -> bool:
        return self._conn.execute(self._sql.delete_timer, (process, key, name)).rowcount > 0

    def delete_timers(self, process: str, key: str) -> int:
        return int(self._conn.execute(self._sql.delete_timers, (process, key)).rowcount)

    def _timer(self, row: Any) -> Timer:
        load = self._sql.load_time
        return Timer(row[0], row[1], row[2], load(row[3]), load(row[4]), row[5], bool(row[6]))

    def claim_due_timers(self, now: datetime, limit: int) -> list[Timer]:
        rows = self._conn.execute(self._sql.claim_timers, (self._sql.dump_time(now), limit))
        return [self._timer(row) for row in rows]

    def retry_timer(self, timer: Timer, run_at: datetime, attempts: int, parked: bool) -> None:
        dump = self._sql.dump_time
        self._conn.execute(
            self._sql.retry_timer,
            (dump(run_at), attempts, parked, timer.process, timer.key, timer.name, dump(timer.due)),
        )

    def next_timer_at(self) -> datetime | None:
        row = self._conn.execute(self._sql.next_timer).fetchone()
        return None if row is None or row[0] is None else self._sql.load_time(row[0])

    def list_timers(self, process: str | None = None) -> list[Timer]:
        statement, params = self._sql.list_timers, tuple[str, ...]()
        if process is not None:
            statement, params = statement + self._sql.process_is, (process,)
        rows = self._conn.execute(statement + " ORDER BY due, process, key, name", params)
        return [self._timer(row) for row in rows]


class SQLStore(EventStore, Generic[ConnT]):
    """An event store in a SQL database: what SQLite and PostgreSQL do the same way."""

    #: how this database spells the shared statements
    dialect: Dialect

    def __init__(self) -> None:
        # View name -> (table, declared columns), read from stormgen_views once.
        self._views: dict[str, tuple[str, dict[str, str]]] = {}
        self._views_lock = threading.Lock()
        #: a view's upsert statement, with the spec it was built for (by identity)
        self._upserts: dict[str, tuple[tuple[str, dict[str, str]], str]] = {}
        self.closed = False

    @abstractmethod
    def transaction(self) -> AbstractContextManager[SQLUnitOfWork[ConnT]]:
        """Open a write transaction (see :meth:`EventStore.transaction`)."""

    @abstractmethod
    def _select_events(
        self,
        conn: ConnT,
        where: str,
        params: Sequence[Any],
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Return the (first ``limit``) events matching ``where`` (SQL on ``events``) in
        position order."""

    # -- the log -----------------------------------------------------------------------
    def _last_position(self, conn: ConnT) -> int:
        return int(conn.execute(self.dialect.last_position).fetchone()[0])

    def _event_types(self, conn: ConnT, after_position: int, up_to_position: int) -> set[str]:
        where, params = self.dialect.log_filter(after_position, up_to_position, None)
        return {
            row[0]
            for row in conn.execute(f"SELECT DISTINCT type FROM events WHERE {where}", params)
        }

    def _read_stream(
        self, conn: ConnT, stream: str, after_version: int, up_to_position: int | None
    ) -> list[RecordedEvent]:
        if up_to_position is None:
            return self._select_events(conn, self.dialect.stream_after, (stream, after_version))
        return self._select_events(
            conn, self.dialect.stream_up_to, (stream, after_version, up_to_position)
        )

    def _stream_version(self, conn: ConnT, stream: str) -> int:
        return int(conn.execute(self.dialect.stream_version, (stream,)).fetchone()[0])

    def _replay_result(self, conn: ConnT, saved: JSONDict) -> AppendResult:
        """Return the result of the append an idempotency key remembers."""
        first, last = int(saved["first_position"]), int(saved["last_position"])
        events = self._select_events(
            conn, self.dialect.replay_where, (first, last, saved["stream"])
        )
        return AppendResult(
            str(saved["stream"]), int(saved["stream_version"]), first, last, events, True
        )

    def _check_import(self, conn: ConnT, events: Sequence[RecordedEvent]) -> None:
        """Raise :class:`StoreError` unless ``events`` continue the log and their streams."""
        last = self._last_position(conn)
        if events and events[0].position <= last:
            raise StoreError(
                f"cannot import event at position {events[0].position}: "
                f"the store is already at {last}"
            )
        versions: dict[str, int] = {}
        for e in events:
            expected = versions.get(e.stream)
            if expected is None:
                expected = self._stream_version(conn, e.stream)
            if e.stream_version != expected + 1:
                raise StoreError(
                    f"cannot import {e.stream} version {e.stream_version}: "
                    f"the stream is at version {expected}"
                )
            versions[e.stream] = e.stream_version

    # -- views ---------------------------------------------------------------------
    def _view_spec(self, conn: ConnT, view: str) -> tuple[str, dict[str, str]]:
        spec = self._views.get(view)
        if spec is not None:
            return spec
        row = conn.execute(self.dialect.view_spec, (view,)).fetchone()
        if row is None:
            self._create_view(conn, view, {})
            spec = (view_table_name(view), {})
        else:
            spec = (row[0], self.dialect.load_json(row[1]))
        with self._views_lock:
            self._views[view] = spec
        return spec

    def _create_view(self, conn: ConnT, view: str, columns: dict[str, str]) -> None:
        d = self.dialect
        table = view_table_name(view)
        cols = "".join(f", {quote(column_name(c))} {d.column_types[k]}" for c, k in columns.items())
        conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
        conn.execute(
            f"CREATE TABLE {quote(table)} (key {d.column_types['text']} PRIMARY KEY, "
            f"doc {d.column_types['json']} NOT NULL{cols})"
        )
        for c in columns:
            index = f"{table}_{column_name(c)}"[: d.max_identifier]
            conn.execute(f"CREATE INDEX {quote(index)} ON {quote(table)} ({quote(column_name(c))})")
        conn.execute(d.save_view, (view, table, encode_json(columns)))

    def _lock_view(self, conn: ConnT, view: str) -> None:
        """Keep other processes from rebuilding the view's table until this commits."""

    def ensure_view_table(
        self,
        view: str,
        columns: Mapping[str, str] | None = None,
        order: Sequence[tuple[str | None, bool]] = (),
    ) -> bool:
        wanted = check_columns(columns)
        with self.transaction() as uow:
            conn = uow._conn
            self._lock_view(conn, view)
            row = conn.execute(self.dialect.view_columns, (view,)).fetchone()
            changed = row is None or self.dialect.load_json(row[0]) != wanted
            if changed:
                self._create_view(conn, view, wanted)
            self._order_index(conn, view, wanted, order)
        with self._views_lock:
            self._views[view] = (view_table_name(view), wanted)
        return changed

    def _order_index(
        self,
        conn: ConnT,
        view: str,
        columns: Mapping[str, str],
        order: Sequence[tuple[str | None, bool]],
    ) -> None:
        """Keep one index on an `order by`'s sort terms and the key, as `query_rows`
        sorts (expressions, collations, directions, where nulls go), named after a hash
        of its definition; drop the view's index made for another order."""
        d = self.dialect
        table = view_table_name(view)
        terms = _order_terms(d, columns, order, view) if order else []
        definition = ", ".join(
            f"{expr} DESC{d.index_nulls_last}" if desc else f"{expr} ASC{d.index_nulls_first}"
            for expr, desc in terms
        )
        digest = hashlib.sha1(definition.encode(), usedforsecurity=False).hexdigest()[:10]
        suffix = f"_order_{digest}"
        name = table[: (d.max_identifier or 1000) - len(suffix)] + suffix
        for (existing,) in list(conn.execute(d.table_indexes, (table,))):
            if _ORDER_INDEX.fullmatch(existing) and existing != name:
                conn.execute(f"DROP INDEX IF EXISTS {quote(existing)}")
        if terms:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} ({definition})"
            )

    def drop_view_table(self, view: str) -> None:
        with self.transaction() as uow:
            uow._conn.execute(f"DROP TABLE IF EXISTS {quote(view_table_name(view))}")
            uow._conn.execute(self.dialect.delete_view, (view,))
        with self._views_lock:
            self._views.pop(view, None)

    @abstractmethod
    def _tables(self, conn: ConnT) -> list[str]:
        """The names of every table of the store (its own and its views')."""

    def discard_everything(self) -> None:
        with self.transaction() as uow:
            conn = uow._conn
            views = {
                view_table_name(str(r[0])) for r in conn.execute("SELECT view FROM stormgen_views")
            }
            for table in self._tables(conn):
                if table in views:
                    conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
                elif table != "stormgen_meta":
                    conn.execute(f"DELETE FROM {quote(table)}")
            conn.execute("DELETE FROM stormgen_meta WHERE key <> 'schema_version'")
        with self._views_lock:
            self._views.clear()


#: the name of an index `_order_index` made (a column's index never ends so)
_ORDER_INDEX = re.compile(r".*_order_[0-9a-f]{10}")


def _order_terms(
    d: Dialect, columns: Mapping[str, str], order: Sequence[tuple[str | None, bool]], view: str
) -> list[tuple[str, bool]]:
    """The SQL expressions an `order by` sorts on and their direction, ending with the
    key (which breaks ties; nothing after it matters)."""
    terms: list[tuple[str, bool]] = []
    for name, desc in order:
        if name is None:
            terms.append((d.key, desc))
            return terms
        if name not in columns:
            raise ValueError(f"view {view!r} has no column {name!r} to order by")
        expr = quote(column_name(name))
        if columns[name] == "text":
            expr += d.text_collate
        elif columns[name] == "numeric":
            expr = d.numeric_order.format(expr)
        terms.append((expr, desc))
    terms.append((d.key, False))
    return terms


def _after_clause(
    param: str, terms: Sequence[tuple[str, bool]], values: Sequence[Any]
) -> tuple[str, list[Any]]:
    """The rows after one whose sort values are ``values``, in the order of ``terms``
    (none first ascending, last descending): equal on the first terms, then after on
    one."""
    ors: list[str] = []
    params: list[Any] = []
    for i, (expr, desc) in enumerate(terms):
        value = values[i]
        if value is None and desc:
            continue  # nothing comes after none in a descending order
        parts: list[str] = []
        branch: list[Any] = []
        for (same, _), earlier in zip(terms[:i], values[:i], strict=True):
            if earlier is None:
                parts.append(f"{same} IS NULL")
            else:
                parts.append(f"{same} = {param}")
                branch.append(earlier)
        if value is None:
            parts.append(f"{expr} IS NOT NULL")
        elif desc:
            parts.append(f"({expr} < {param} OR {expr} IS NULL)")
            branch.append(value)
        else:
            parts.append(f"{expr} > {param}")
            branch.append(value)
        ors.append("(" + " AND ".join(parts) + ")")
        params.extend(branch)
    return ("(" + " OR ".join(ors) + ")" if ors else "1 = 0"), params
