"""Failures as events (docs/runtime.md, "Failures"): recording, parking, retrying.

A failure appends a `$Failure` event to the `$failures` stream; the last attempt parks
the event for that consumer (`parked: true`) and moves the consumer's checkpoint past
it. A parked event retried with success is unparked and a `$FailureResolved` appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stormgen.runtime.aggregate import id_text
from stormgen.runtime.consumer import Consumer, claim, error_text
from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.messages import Envelope
from stormgen.runtime.reactions import Reactions
from stormgen.runtime.reading import EventReader
from stormgen.runtime.store.base import EventStore, ParkedFailure, UnitOfWork
from stormgen.runtime.view_rows import ViewRows

if TYPE_CHECKING:
    from stormgen.runtime.process_runs import ProcessRuns

FAILURE = "$Failure"
RESOLVED = "$FailureResolved"
#: The stream of failure events (docs/runtime.md, "Failures").
FAILURES_STREAM = "$failures"


@dataclass(eq=False)
class Failures:
    """The failures of an application's consumers, in its store (a parked event is
    retried through its view's `rows` or its policy's `reactions`)."""

    store: EventStore
    rows: ViewRows
    reactions: Reactions
    reader: EventReader
    #: the processes' runs, set by `Consumers` (a parked process event is retried there)
    processes: ProcessRuns | None = None

    def record(
        self,
        consumer: Consumer,
        rec: RecordedEvent,
        exc: BaseException,
        attempt: int,
        parked: bool,
        *,
        moves: bool = True,
    ) -> None:
        """Append a `$Failure`; a parked one (`moves`) also moves the checkpoint past the
        event, by compare-and-set like any other move (`Overtaken` if it moved)."""
        error = error_text(exc)
        data: dict[str, Any] = {
            "consumer": consumer.name,
            "kind": consumer.kind,
            "event_id": rec.id,
            "event_type": rec.type,
            "position": rec.position,
            "error": error,
            "attempt": attempt,
            "parked": parked,
        }
        metadata = {
            "correlation_id": rec.metadata.get("correlation_id", rec.id),
            "causation_id": rec.id,
        }
        moved = parked and moves
        with self.store.transaction() as uow:
            if moved:
                claim(uow, consumer.name, consumer.base)
            uow.append(
                FAILURES_STREAM, [NewEvent(type=FAILURE, data=data, metadata=metadata)], None
            )
            if parked:
                uow.park_failure(
                    ParkedFailure(
                        consumer=consumer.name,
                        position=rec.position,
                        event_id=rec.id,
                        error=error,
                        attempts=attempt,
                        parked_at=datetime.now(UTC),
                    )
                )
                if moved:
                    uow.set_checkpoint(consumer.name, rec.position)
        if moved:
            consumer.stored(rec.position)

    def retry(self, consumer: Consumer, failure: ParkedFailure, rec: RecordedEvent) -> bool:
        """Process a parked event once more, under the consumer's lock; unpark it on
        success (`KeyError` when a replay dropped the failure meanwhile)."""
        name, position = consumer.name, rec.position
        with consumer.lock:
            gone = False
            try:
                env = self.reader.envelope(rec)
                if consumer.view is not None:
                    with self.store.transaction() as uow:
                        # under the checkpoint's lock, like every writer of the view's rows:
                        # a replay that started over meanwhile dropped the failure and
                        # applies the event itself
                        upto = uow.lock_checkpoint(name)
                        still = {f.position for f in uow.list_failures(name)}
                        gone = position not in still
                        if not gone:
                            self._rebuild_row(uow, consumer, env, upto, still - {position})
                elif consumer.process is not None:
                    assert self.processes is not None
                    with self.processes.batch() as uow:
                        self.processes.apply_event(uow, consumer.process, env)
                else:
                    assert consumer.policy is not None
                    self.reactions.react(consumer.policy, env)
            except Exception as exc:
                attempts = failure.attempts + 1
                self.record(consumer, rec, exc, attempts, parked=True, moves=False)
                return False
            if gone:
                raise KeyError(f"no parked failure of {name} at position {position}")
            data = {"consumer": name, "event_id": rec.id, "position": position}
            with self.store.transaction() as uow:
                uow.delete_failure(name, position)
                uow.append(FAILURES_STREAM, [NewEvent(type=RESOLVED, data=data)], None)
            return True

    def _rebuild_row(
        self, uow: UnitOfWork, consumer: Consumer, env: Envelope, upto: int, parked: set[int]
    ) -> None:
        """Rebuild the row a parked event concerns from the log, its events in log order.

        The view went on past the parked event, so newer events may have changed its
        row since: applying the old one on top would undo them. Every event of the
        view's types up to its checkpoint is read again (the retry of a parked event is
        an operator's rare act; events still parked stay out).
        """
        view = consumer.view
        assert view is not None and env.event is not None
        key = view.key_of(env.event, env)
        if key is None:
            return
        key_text = id_text(key)
        uow.delete_row(view.name, key_text)
        after = 0
        while after < upto:
            page = self.store.read_all(after, 1000, consumer.types, upto)
            if not page:
                break
            for rec in page:
                if rec.position in parked:
                    continue
                other = env if rec.position == env.position else self.reader.envelope(rec)
                assert other.event is not None
                found = view.key_of(other.event, other)
                if found is not None and id_text(found) == key_text:
                    self.rows.apply(uow, view, other)
            after = page[-1].position
