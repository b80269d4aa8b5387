"""Failures as events (service.md §7): recording a consumer's failure, parking, retrying.

A failure appends a `$Failure` event to the `$failures` stream; the last attempt parks
the event for that consumer (`parked: true`) and moves the consumer's checkpoint past
it. A parked event retried with success is unparked and a `$FailureResolved` appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stormgen.runtime.consumer import Consumer, claim, error_text
from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.reactions import Reactions
from stormgen.runtime.reading import EventReader
from stormgen.runtime.store.base import EventStore, ParkedFailure
from stormgen.runtime.view_rows import ViewRows

FAILURE = "$Failure"
RESOLVED = "$FailureResolved"
#: The stream of failure events (service.md §7).
FAILURES_STREAM = "$failures"


@dataclass(eq=False)
class Failures:
    """The failures of an application's consumers, in its store (a parked event is
    retried through its view's `rows` or its policy's `reactions`)."""

    store: EventStore
    rows: ViewRows
    reactions: Reactions
    reader: EventReader

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
                        uow.lock_checkpoint(name)
                        gone = all(f.position != position for f in uow.list_failures(name))
                        if not gone:
                            self.rows.apply(uow, consumer.view, env)
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
