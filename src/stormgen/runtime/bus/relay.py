"""The outbox relay: a context's own log, published to the context's stream on the bus.

The relay follows the log from a checkpoint kept in the store (`RELAY_CHECKPOINT`) and
publishes, in log order and one at a time, each event of the context's published
language and each `$Forgotten` marker of one of the context's instances. The
checkpoint moves only past events the broker acknowledged; an event published but not
yet checkpointed when the process dies is published again, and the broker drops it
(same ``Nats-Msg-Id`` within the duplicate window) or the inbox does (same id).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Final

from stormgen.runtime.bus import wire
from stormgen.runtime.bus.link import Link, Say, ensure_stream
from stormgen.runtime.bus.settings import BusSettings
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.reading import EventReader
from stormgen.runtime.store.base import EventStore

if TYPE_CHECKING:
    from nats.js import JetStreamContext

#: The store checkpoint of the relay: the log position up to which the broker acked.
RELAY_CHECKPOINT: Final = "$bus.relay"
#: The `$Forgotten` marker's type (the application's `FORGOTTEN`).
FORGOTTEN: Final = "$Forgotten"
#: Events read from the log at a time.
BATCH: Final = 500
#: Publishes in flight at once (their acks awaited in log order).
WINDOW: Final = 64
#: Tests only: ``exit-after-publish:N`` ends the process (exit code 70) right after the
#: broker acked the N-th message, before the checkpoint moves.
FAULT_VARIABLE: Final = "STORMGEN_BUS_FAULT"


class Relay(Link):
    """Publishes the published events of `contexts` (and their forgets) in log order."""

    meanwhile = "commands are still accepted and their events wait in the outbox (the log)"

    def __init__(
        self,
        settings: BusSettings,
        store: EventStore,
        reader: EventReader,
        names: wire.Names,
        contexts: Collection[str],
        published: Collection[str],
        aggregates: Collection[str],
        say: Say,
    ) -> None:
        super().__init__(settings, store, say)
        self.title = "relay"
        self.reader = reader
        self.names = names
        self.contexts = sorted(contexts)
        self.types = [*sorted(published), FORGOTTEN]
        #: the stream prefixes of the context's own instances (`Ordering.Order/`)
        self.own_streams = tuple(f"{name}/" for name in aggregates)
        self.published = 0
        self._fault_after = _fault_after(os.environ.get(FAULT_VARIABLE, ""))

    async def work(self, js: JetStreamContext) -> None:
        for context in self.contexts:
            await ensure_stream(
                js,
                self.names.stream(context),
                self.names.subjects(context),
                self.settings,
                owner=True,
            )
        while not self.stopping:
            checkpoint = self.store.get_checkpoint(RELAY_CHECKPOINT)
            if not await self._publish_after(js, checkpoint):
                self.store.wait_for_events(self.store.get_checkpoint(RELAY_CHECKPOINT), 0.2)

    async def _publish_after(self, js: JetStreamContext, checkpoint: int) -> bool:
        """Publish the next batch after `checkpoint`; False when there was none.

        Up to `WINDOW` publishes are in flight at once, written in log order on the one
        connection (so the stream stores them in that order); their acks are taken in
        that order too, and the checkpoint moves past the last event acked without a gap.
        """
        last = self.store.last_position()
        records = self.store.read_all(checkpoint, BATCH, self.types)
        acked = checkpoint
        window: list[tuple[int, asyncio.Future[Any] | None]] = []
        try:
            for record in records:
                message = self._message(record)
                if message is None:
                    window.append((record.position, None))
                else:
                    subject, payload, headers = message
                    publish = js.publish(subject, payload, headers=headers)
                    window.append((record.position, asyncio.ensure_future(publish)))
                if len(window) >= WINDOW:
                    acked = await self._settle(window, acked)
                    window = []
            acked = await self._settle(window, acked)
            window = []
            if len(records) < BATCH:
                # every event up to `last` was committed before the read: none was missed
                acked = max(acked, last)
        finally:
            unsettled = [future for _, future in window if future is not None]
            for future in unsettled:
                future.cancel()
            await asyncio.gather(*unsettled, return_exceptions=True)
            if acked > checkpoint:
                self.store.set_checkpoint(RELAY_CHECKPOINT, acked)
        return bool(records)

    async def _settle(
        self, window: list[tuple[int, asyncio.Future[Any] | None]], acked: int
    ) -> int:
        """Take the window's acks in log order; the last position acked without a gap
        (the first failure is raised, the caller cancels the rest)."""
        while window:
            position, sent = window[0]
            if sent is not None:
                await sent
                self.published += 1
                if self.published == self._fault_after:
                    os._exit(70)
            acked = position
            window.pop(0)
        return acked

    def _message(self, record: RecordedEvent) -> tuple[str, bytes, dict[str, Any]] | None:
        if record.type == FORGOTTEN:
            stream = str(record.data.get("stream", ""))
            if not stream.startswith(self.own_streams):
                return None  # another context's instance, forgotten here too
            payload, headers = wire.forgotten_message(record, stream)
            return self.names.forgotten(stream.split(".", 1)[0]), payload, headers
        payload, headers = wire.event_message(self.reader.envelope(record))
        return self.names.subject(record.type), payload, headers

    def status(self) -> dict[str, Any]:
        checkpoint = self.store.get_checkpoint(RELAY_CHECKPOINT)
        behind = len(self.store.read_all(checkpoint, 10_000, self.types))
        return {
            **super().status(),
            "streams": [self.names.stream(c) for c in self.contexts],
            "checkpoint": checkpoint,
            "lag": behind,
            "published": self.published,
        }


def _fault_after(text: str) -> int:
    name, _, count = text.partition(":")
    return int(count) if name == "exit-after-publish" and count.isdigit() else -1
