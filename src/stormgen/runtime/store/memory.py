"""The in-process store (``memory://``): Python structures behind one lock, for tests."""

from __future__ import annotations

import bisect
import copy
import decimal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from stormgen.runtime.codec_durations import duration_microseconds
from stormgen.runtime.envelope import JSONDict, NewEvent, RecordedEvent
from stormgen.runtime.errors import StoreError
from stormgen.runtime.store.base import (
    AppendResult,
    EventStore,
    Notifier,
    ParkedFailure,
    Snapshot,
    Timer,
    UnitOfWork,
    ViewRow,
    check_columns,
    check_expected,
    remember_imported,
)

_named: dict[str, MemoryStore] = {}
_named_lock = threading.Lock()


def open_memory_store(url: str) -> MemoryStore:
    """Return a new store for ``memory://``, or the process-wide one for ``memory://name``."""
    name = url.partition("://")[2].strip("/")
    if not name:
        return MemoryStore(url)
    with _named_lock:
        store = _named.get(name)
        if store is None or store.closed:
            store = _named[name] = MemoryStore(url)
        return store


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _json_copy(value: JSONDict) -> JSONDict:
    """Copy through JSON, so what goes in comes out as from the SQL stores (or fails)."""
    return _decode(_encode(value))


def _clone(event: RecordedEvent) -> RecordedEvent:
    """Copy an event so a caller mutating its data cannot change the stored log."""
    return RecordedEvent(
        event.id,
        event.type,
        event.version,
        event.stream,
        event.stream_id,
        event.stream_version,
        event.position,
        event.recorded_at,
        copy.deepcopy(event.data),
        copy.deepcopy(event.metadata),
    )


class _State:
    """Everything a memory store holds; copied for a transaction's rollback."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.streams: dict[str, list[RecordedEvent]] = {}
        self.checkpoints: dict[str, int] = {}
        self.views: dict[str, dict[str, JSONDict]] = {}
        self.view_columns: dict[str, dict[str, str]] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.keys: dict[str, bytes] = {}
        self.idempotency: dict[str, JSONDict] = {}
        self.failures: dict[tuple[str, int], ParkedFailure] = {}
        self.meta: dict[str, str] = {}
        self.timers: dict[tuple[str, str, str], Timer] = {}


class _Undo:
    """Records how to reverse each change so a failed transaction leaves no trace."""

    def __init__(self) -> None:
        self.actions: list[Any] = []

    def rollback(self) -> None:
        for action in reversed(self.actions):
            action()


class MemoryUnitOfWork(UnitOfWork):
    """A transaction on a memory store: changes apply at once, undone on rollback."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._s = store._state
        self._undo = _Undo()
        self.appended_to = 0

    # -- the log -----------------------------------------------------------------
    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        s = self._s
        if idempotency_key is not None and idempotency_key in s.idempotency:
            return self._store._replay_result(s.idempotency[idempotency_key])
        history = s.streams.get(stream)
        current = len(history) if history else 0
        check_expected(stream, expected_version, current)
        if history is None:
            history = s.streams[stream] = []
            self._undo.actions.append(lambda: s.streams.pop(stream, None))
        position = s.events[-1].position if s.events else 0
        now = datetime.now(UTC)
        recorded = []
        for offset, new in enumerate(events, 1):
            recorded.append(
                RecordedEvent(
                    new.id,
                    new.type,
                    new.version,
                    stream,
                    new.stream_id,
                    current + offset,
                    position + offset,
                    now,
                    _json_copy(new.data),
                    _json_copy(new.metadata),
                )
            )
        n_events, n_stream = len(s.events), len(history)
        s.events.extend(recorded)
        history.extend(recorded)

        def undo_append() -> None:
            del s.events[n_events:]
            del history[n_stream:]

        self._undo.actions.append(undo_append)
        first = recorded[0].position if recorded else position
        last = recorded[-1].position if recorded else position
        result = AppendResult(stream, current + len(recorded), first, last, recorded)
        if idempotency_key is not None:
            s.idempotency[idempotency_key] = result.to_json()
            key = idempotency_key
            self._undo.actions.append(lambda: s.idempotency.pop(key, None))
        if recorded:
            self.appended_to = last
        return result

    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        return self._store._read_stream(stream, after_version, up_to_position)

    def stream_version(self, stream: str) -> int:
        return len(self._s.streams.get(stream) or ())

    # -- checkpoints ---------------------------------------------------------------
    def get_checkpoint(self, consumer: str) -> int:
        return self._s.checkpoints.get(consumer, 0)

    def set_checkpoint(self, consumer: str, position: int) -> int:
        old = self._s.checkpoints.get(consumer)
        if old is not None and position <= old:
            return old
        self._put(self._s.checkpoints, consumer, position)
        return position

    def reset_checkpoint(self, consumer: str, position: int = 0) -> None:
        self._put(self._s.checkpoints, consumer, position)

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        missing = key not in table
        old = table.get(key)

        def undo() -> None:
            if missing:
                table.pop(key, None)
            else:
                table[key] = old

        table[key] = value
        self._undo.actions.append(undo)

    def _pop(self, table: dict[Any, Any], key: Any) -> bool:
        if key not in table:
            return False
        old = table.pop(key)
        self._undo.actions.append(lambda: table.__setitem__(key, old))
        return True

    # -- views ---------------------------------------------------------------------
    def _view(self, view: str) -> dict[str, JSONDict]:
        rows = self._s.views.get(view)
        if rows is None:
            rows = {}
            self._put(self._s.views, view, rows)
            self._put(self._s.view_columns, view, {})
        return rows

    def upsert_row(self, view: str, key: str, doc: JSONDict) -> None:
        self._put(self._view(view), key, copy.deepcopy(doc))

    def delete_row(self, view: str, key: str) -> bool:
        return self._pop(self._view(view), key)

    def get_row(self, view: str, key: str) -> JSONDict | None:
        doc = self._s.views.get(view, {}).get(key)
        return copy.deepcopy(doc) if doc is not None else None

    def query_rows(
        self,
        view: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_key: str | None = None,
        limit: int | None = None,
        order: Sequence[tuple[str | None, bool]] = (),
    ) -> list[ViewRow]:
        rows = self._s.views.get(view, {})
        columns = self._s.view_columns.get(view, {})
        for name in where or {}:
            if name not in columns:
                raise ValueError(f"view {view!r} has no column {name!r} to filter on")
        keys = sorted(rows)
        if order:
            keys = _ordered_keys(view, rows, columns, keys, order)
            if after_key is not None:
                if after_key not in rows:
                    raise ValueError(f"view {view!r} has no row {after_key!r} to page after")
                keys = keys[keys.index(after_key) + 1 :]
                after_key = None
        out: list[ViewRow] = []
        for key in keys:
            if after_key is not None and key <= after_key:
                continue
            doc = rows[key]
            if where and any(doc.get(k) != v for k, v in where.items()):
                continue
            out.append(ViewRow(key, copy.deepcopy(doc)))
            if limit is not None and len(out) >= limit:
                break
        return out

    def clear_view(self, view: str) -> None:
        rows = self._view(view)
        old = dict(rows)
        rows.clear()
        self._undo.actions.append(lambda: rows.update(old))

    # -- snapshots -----------------------------------------------------------------
    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._put(self._s.snapshots, snapshot.stream, copy.deepcopy(snapshot))

    def get_snapshot(self, stream: str, max_position: int | None = None) -> Snapshot | None:
        snap = self._s.snapshots.get(stream)
        if snap is None or (max_position is not None and snap.position > max_position):
            return None
        return copy.deepcopy(snap)

    def delete_snapshot(self, stream: str) -> None:
        self._pop(self._s.snapshots, stream)

    # -- idempotency keys ----------------------------------------------------------
    def remembered(self, idempotency_key: str) -> JSONDict | None:
        found = self._s.idempotency.get(idempotency_key)
        return dict(found) if found is not None else None

    def remember(self, idempotency_key: str, result: JSONDict) -> None:
        self._put(self._s.idempotency, idempotency_key, dict(result))

    # -- keys ----------------------------------------------------------------------
    def put_key(self, stream: str, key: bytes) -> None:
        self._put(self._s.keys, stream, bytes(key))

    def get_key(self, stream: str) -> bytes | None:
        return self._s.keys.get(stream)

    def delete_key(self, stream: str) -> bool:
        return self._pop(self._s.keys, stream)

    # -- failures ------------------------------------------------------------------
    def park_failure(self, failure: ParkedFailure) -> None:
        self._put(self._s.failures, (failure.consumer, failure.position), failure)

    def list_failures(self, consumer: str | None = None) -> list[ParkedFailure]:
        found = [f for f in self._s.failures.values() if consumer is None or f.consumer == consumer]
        return sorted(found, key=lambda f: (f.position, f.consumer))

    def delete_failure(self, consumer: str, position: int) -> bool:
        return self._pop(self._s.failures, (consumer, position))

    def get_meta(self, key: str) -> str | None:
        return self._s.meta.get(key)

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._pop(self._s.meta, key)
        else:
            self._put(self._s.meta, key, value)

    # -- timers --------------------------------------------------------------------
    def set_timer(self, process: str, key: str, name: str, due: datetime) -> None:
        self._put(self._s.timers, (process, key, name), Timer(process, key, name, due, due))

    def delete_timer(self, process: str, key: str, name: str) -> bool:
        return self._pop(self._s.timers, (process, key, name))

    def delete_timers(self, process: str, key: str) -> int:
        found = [k for k in self._s.timers if k[0] == process and k[1] == key]
        for k in found:
            self._pop(self._s.timers, k)
        return len(found)

    def claim_due_timers(self, now: datetime, limit: int) -> list[Timer]:
        # the store's lock, held by the transaction, keeps any other claim out
        due = [t for t in self._s.timers.values() if not t.parked and t.run_at <= now]
        due.sort(key=lambda t: (t.run_at, t.due, t.process, t.key, t.name))
        return due[:limit]

    def retry_timer(self, timer: Timer, run_at: datetime, attempts: int, parked: bool) -> None:
        key = (timer.process, timer.key, timer.name)
        if key in self._s.timers:
            again = Timer(timer.process, timer.key, timer.name, timer.due, run_at, attempts, parked)
            self._put(self._s.timers, key, again)

    def next_timer_at(self) -> datetime | None:
        return min((t.run_at for t in self._s.timers.values() if not t.parked), default=None)

    def list_timers(self, process: str | None = None) -> list[Timer]:
        found = [t for t in self._s.timers.values() if process is None or t.process == process]
        return sorted(found, key=lambda t: (t.due, t.process, t.key, t.name))


class _Thread(threading.local):
    """A thread's open transaction (`uow`), if any: a class default, so reading it
    unset does not raise and catch an AttributeError (as ``getattr`` with a default
    does)."""

    uow: MemoryUnitOfWork | None = None


class MemoryStore(EventStore):
    """An event store in process memory; same guarantees as the others, nothing durable."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._state = _State()
        # Reentrant so a handler may read the store inside its own transaction.
        self._lock = threading.RLock()
        self._local = _Thread()
        self._notifier = Notifier(None, 1.0)
        self.closed = False

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        self._check_open()
        with self._lock:
            outer: MemoryUnitOfWork | None = self._local.uow
            uow = MemoryUnitOfWork(self)
            self._local.uow = uow
            try:
                yield uow
            except BaseException:
                uow._undo.rollback()
                raise
            finally:
                self._local.uow = outer
            if outer is not None:
                # nested: a savepoint, undone with the outer transaction if that fails
                outer._undo.actions.extend(uow._undo.actions)
                outer.appended_to = max(outer.appended_to, uow.appended_to)
                return
        if uow.appended_to:
            self._notifier.notify(uow.appended_to)

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError(f"store {self.url} is closed")

    def _replay_result(self, saved: JSONDict) -> AppendResult:
        first, last = int(saved["first_position"]), int(saved["last_position"])
        events = [_clone(e) for e in self._slice(first - 1, last) if e.stream == saved["stream"]]
        return AppendResult(
            str(saved["stream"]), int(saved["stream_version"]), first, last, events, True
        )

    def _slice(self, after: int, up_to: int | None) -> list[RecordedEvent]:
        events = self._state.events
        start = bisect.bisect_right(events, after, key=lambda e: e.position)
        if up_to is None:
            return events[start:]
        end = bisect.bisect_right(events, up_to, key=lambda e: e.position)
        return events[start:end]

    def _read_stream(
        self, stream: str, after_version: int, up_to_position: int | None
    ) -> list[RecordedEvent]:
        history = self._state.streams.get(stream) or []
        out = history[after_version:]
        if up_to_position is not None:
            out = [e for e in out if e.position <= up_to_position]
        return [_clone(e) for e in out]

    def import_events(self, events: Sequence[RecordedEvent]) -> None:
        self._check_open()
        with self._lock:
            s = self._state
            last = s.events[-1].position if s.events else 0
            for event in events:
                if event.position <= last:
                    raise StoreError(
                        f"cannot import event at position {event.position}: "
                        f"the store is already at {last}"
                    )
                history = s.streams.setdefault(event.stream, [])
                if event.stream_version != len(history) + 1:
                    raise StoreError(
                        f"cannot import {event.stream} version {event.stream_version}: "
                        f"the stream is at version {len(history)}"
                    )
                copied = copy.deepcopy(event)
                s.events.append(copied)
                history.append(copied)
                last = event.position
            remember_imported(MemoryUnitOfWork(self), events)
        if events:
            self._notifier.notify(events[-1].position)

    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        self._check_open()
        with self._lock:
            return self._read_stream(stream, after_version, up_to_position)

    def read_all(
        self,
        after_position: int = 0,
        limit: int | None = None,
        types: Sequence[str] | None = None,
        up_to_position: int | None = None,
    ) -> list[RecordedEvent]:
        self._check_open()
        with self._lock:
            found = self._slice(after_position, up_to_position)
            if types:
                wanted = set(types)
                found = [e for e in found if e.type in wanted]
            if limit is not None:
                found = found[:limit]
            return [_clone(e) for e in found]

    def stream_version(self, stream: str) -> int:
        with self._lock:
            return len(self._state.streams.get(stream) or ())

    def last_position(self) -> int:
        with self._lock:
            events = self._state.events
            return events[-1].position if events else 0

    def position_at(self, when: datetime) -> int:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            events = self._state.events
            index = bisect.bisect_right(events, when, key=lambda e: e.recorded_at)
            return events[index - 1].position if index else 0

    def ensure_view_table(
        self,
        view: str,
        columns: Mapping[str, str] | None = None,
        order: Sequence[tuple[str | None, bool]] = (),
    ) -> bool:
        wanted = check_columns(columns)  # no index here: rows are sorted in memory
        with self._lock:
            s = self._state
            if view in s.views and s.view_columns.get(view) == wanted:
                return False
            s.views[view] = {}
            s.view_columns[view] = wanted
            return True

    def drop_view_table(self, view: str) -> None:
        with self._lock:
            self._state.views.pop(view, None)
            self._state.view_columns.pop(view, None)

    def discard_everything(self) -> None:
        with self._lock:
            self._state = _State()

    def close(self) -> None:
        self.closed = True
        self._notifier.wake()


def _ordered_keys(
    view: str,
    rows: Mapping[str, JSONDict],
    columns: Mapping[str, str],
    keys: list[str],
    order: Sequence[tuple[str | None, bool]],
) -> list[str]:
    """``keys`` (sorted) sorted by an `order by`, as the SQL stores sort: none first
    ascending and last descending, the key breaking ties (stable sorts, last term first)."""
    for name, desc in reversed(order):
        if name is None:
            keys.sort(reverse=desc)
            continue
        if name not in columns:
            raise ValueError(f"view {view!r} has no column {name!r} to order by")
        kind = columns[name]

        def sort_key(key: str, name: str = name, kind: str = kind) -> tuple[bool, Any]:
            value = rows[key].get(name)
            return (False, 0) if value is None else (True, _sortable(kind, value))

        keys.sort(key=sort_key, reverse=desc)
    return keys


def _sortable(kind: str, value: Any) -> Any:
    """A view column's JSON value as the SQL stores compare it."""
    if kind == "numeric":
        return decimal.Decimal(str(value))
    if kind == "timestamp":
        return datetime.fromisoformat(str(value))
    if kind == "duration":
        return duration_microseconds(value)
    return value
