"""The roles a store plays: one small contract each, with the records it exchanges.

A unit of work (`UnitOfWork` in ``base``) plays every role on one transaction, so
what one role writes commits or rolls back with what the others write; the store
(`EventStore`) plays the log's roles itself and the others through its transactions.
Each role has its own contract tests, run on every backend (memory, SQLite,
PostgreSQL): ``tests/runtime/store/test_contract_<role>.py``.

- `LogWriter`, `StreamReader`, `LogReader`: the log (``test_contract_log.py``);
- `Checkpoints`: how far each consumer has read (``test_contract_checkpoints.py``);
- `ViewRows`: the rows of the view tables (``test_contract_view_rows.py``);
- `Snapshots`: aggregates' states, to skip old events (``test_contract_snapshots.py``);
- `EncryptionKeys`: per-stream keys, for crypto-shredding (``test_contract_keys.py``);
- `IdempotencyRecords`: the append each idempotency key stands for
  (``test_contract_idempotency.py``);
- `Failures`: events consumers gave up on (``test_contract_failures.py``);
- `StoreRecords`: the store's own records, its identity and origin (``test_contract_meta.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from stormgen.runtime.envelope import JSONDict, NewEvent, RecordedEvent


# -- the log -----------------------------------------------------------------------------
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


class LogWriter(ABC):
    """Appends to the log's streams."""

    @abstractmethod
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
        append's result is returned with ``duplicate=True``. Through a unit of work the
        events are written when its transaction commits; through the store, in a
        transaction of their own, committed (durable) when this returns.
        """


class StreamReader(ABC):
    """Reads one stream of the log (inside a transaction: as that transaction sees it)."""

    @abstractmethod
    def read_stream(
        self, stream: str, after_version: int = 0, up_to_position: int | None = None
    ) -> list[RecordedEvent]:
        """Return the stream's events with version above ``after_version``, in order.

        With ``up_to_position`` only events at or below that global position count
        (the stream as it was then).
        """

    @abstractmethod
    def stream_version(self, stream: str) -> int:
        """Return the stream's current version (0 when it does not exist)."""


class LogReader(StreamReader):
    """Reads the whole log in position order: what consumers, replays and forks need."""

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

    @abstractmethod
    def last_position(self) -> int:
        """Return the highest committed position (0 for an empty log)."""

    @abstractmethod
    def position_at(self, when: datetime) -> int:
        """Return the last position recorded at or before ``when`` (0 if none): time travel."""

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

    def event_ids(
        self, after_position: int, up_to_position: int, limit: int
    ) -> list[tuple[int, str]]:
        """Return the positions and ids of the first ``limit`` events with a position in
        (``after_position``, ``up_to_position``], in order: what a merge compares to find
        two logs' common prefix, without decoding the events (the SQL stores override)."""
        page = self.read_all(after_position, limit, None, up_to_position)
        return [(e.position, e.id) for e in page]

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


# -- checkpoints -------------------------------------------------------------------------
class Checkpoints(ABC):
    """How far each consumer (view, policy, process) has read the log."""

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


# -- view rows ---------------------------------------------------------------------------
class ViewRow(NamedTuple):
    """One row of a view table: its key and its JSON document."""

    key: str
    doc: JSONDict


class ViewRows(ABC):
    """The rows of the view tables (the tables themselves: `EventStore.ensure_view_table`)."""

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
        order: Sequence[tuple[str | None, bool]] = (),
    ) -> list[ViewRow]:
        """Return rows ordered by key, filtered by equality on declared columns.

        ``where`` maps field names (as in the document) to values; only columns
        declared with :meth:`EventStore.ensure_view_table` can be filtered on
        (``ValueError`` otherwise). ``after_key`` and ``limit`` page through the rows.
        ``order`` sorts by declared columns first (``(column, descending)``; ``None``
        names the key), none first ascending and last descending, then by key; with it,
        ``after_key`` names the last row of the previous page, whose sort values the
        next page continues from (``ValueError`` if no row has that key).
        """

    @abstractmethod
    def clear_view(self, view: str) -> None:
        """Delete every row of a view (before a replay)."""


# -- snapshots ---------------------------------------------------------------------------
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


class Snapshots(ABC):
    """One snapshot per stream, the latest."""

    @abstractmethod
    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot, replacing the stream's previous one."""

    @abstractmethod
    def get_snapshot(self, stream: str, max_position: int | None = None) -> Snapshot | None:
        """Return the stream's snapshot, or None (also when it is past ``max_position``)."""

    @abstractmethod
    def delete_snapshot(self, stream: str) -> None:
        """Forget the stream's snapshot (after crypto-shredding, or a model change)."""


# -- encryption keys (crypto-shredding) --------------------------------------------------
class EncryptionKeys(ABC):
    """Each stream's data-encryption key; deleting it makes the stream's pii unreadable."""

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


# -- idempotency keys --------------------------------------------------------------------
class IdempotencyRecords(ABC):
    """The append each idempotency key stands for (`LogWriter.append` records its own)."""

    @abstractmethod
    def remembered(self, idempotency_key: str) -> JSONDict | None:
        """The first append made with the key (`AppendResult.to_json`), or None."""

    @abstractmethod
    def remember(self, idempotency_key: str, result: JSONDict) -> None:
        """Record the key's append (an import's; `append` records its own)."""


# -- failures ----------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class ParkedFailure:
    """An event a consumer gave up on after its retries: kept until retried or dropped."""

    consumer: str
    position: int
    event_id: str
    error: str
    attempts: int
    parked_at: datetime


class Failures(ABC):
    """Parked failures: one per consumer and position."""

    @abstractmethod
    def park_failure(self, failure: ParkedFailure) -> None:
        """Park an event for a consumer (replaces an earlier parking of the same pair)."""

    @abstractmethod
    def list_failures(self, consumer: str | None = None) -> list[ParkedFailure]:
        """Return parked failures ordered by position (of one consumer, or all)."""

    @abstractmethod
    def delete_failure(self, consumer: str, position: int) -> bool:
        """Remove a parked failure (it was retried); return whether it existed."""


# -- the store's own records ---------------------------------------------------------------
class StoreRecords(ABC):
    """Named text values the store keeps about itself: its identity (`store_id`), where
    it came from (a fork's or a merge's `origin`), a merge in progress."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """Return the value recorded under ``key``, or None."""

    @abstractmethod
    def set_meta(self, key: str, value: str | None) -> None:
        """Record ``value`` under ``key`` (replacing it); None removes the key."""


# -- timers ------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class Timer:
    """A process instance's pending timer: due at `due`, next tried at `run_at` (later
    than `due` after a failed attempt), `parked` after the last attempt failed."""

    process: str
    key: str
    name: str
    due: datetime
    run_at: datetime
    attempts: int = 0
    parked: bool = False


class Timers(ABC):
    """Processes' durable timers: one row per process, instance key and timer name."""

    @abstractmethod
    def set_timer(self, process: str, key: str, name: str, due: datetime) -> None:
        """Schedule (or reschedule) a timer: due and next tried at `due`, no attempts."""

    @abstractmethod
    def delete_timer(self, process: str, key: str, name: str) -> bool:
        """Drop a timer (cancelled or fired); return whether it existed."""

    @abstractmethod
    def delete_timers(self, process: str, key: str) -> int:
        """Drop every timer of an instance (it ended); return how many there were."""

    def claim_due_timer(self, now: datetime) -> Timer | None:
        """The unparked timer tried soonest among those whose `run_at` is at or before
        `now` (earliest first, then by due time), locked for this transaction: another
        transaction claiming meanwhile skips it (it never fires twice)."""
        found = self.claim_due_timers(now, 1)
        return found[0] if found else None

    @abstractmethod
    def claim_due_timers(self, now: datetime, limit: int) -> list[Timer]:
        """Up to `limit` unparked timers due to be tried by `now`, soonest first (as
        `claim_due_timer`), each locked for this transaction."""

    @abstractmethod
    def retry_timer(self, timer: Timer, run_at: datetime, attempts: int, parked: bool) -> None:
        """Record a failed attempt: try again at `run_at`, or never (`parked`)."""

    @abstractmethod
    def next_timer_at(self) -> datetime | None:
        """When the soonest unparked timer is to be tried (None: no timer pending)."""

    @abstractmethod
    def list_timers(self, process: str | None = None) -> list[Timer]:
        """Every timer (of one process), by due time."""
