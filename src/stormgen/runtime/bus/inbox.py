"""An inbox: what an upstream context publishes, appended to this context's own log.

One durable pull consumer per upstream stream, named after the consuming context,
receives the upstream's events this context consumes (its views', policies' and
processes' events from that context) and the upstream's forgets. Each fetched batch is
written in one store transaction and acked after its commit:

- an event is appended to the stream it was recorded on upstream, with its id, the
  idempotency key ``bus/<event id>`` (a redelivered message writes nothing) and
  ``source`` metadata (the bus stream and sequence, the upstream position); its pii is
  sealed with this store's own key for that stream;
- a forget deletes this store's key (and snapshot) of the stream and appends a
  `$Forgotten` marker, as the upstream did;
- a message that cannot be read (not JSON, an unknown type, a schema version newer
  than this service knows, missing fields) becomes a `$Failure` event in `$failures`
  holding the message, and is terminated on the broker: never redelivered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec

from stormgen.runtime.bus import wire
from stormgen.runtime.bus.link import Link, Say, ensure_stream
from stormgen.runtime.bus.relay import FORGOTTEN
from stormgen.runtime.bus.settings import BusSettings
from stormgen.runtime.codec import to_data
from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.failures import FAILURE, FAILURES_STREAM
from stormgen.runtime.messages import info
from stormgen.runtime.reading import EventReader
from stormgen.runtime.store.base import IDEMPOTENCY_KEY, INTERNAL_KEYS, EventStore, UnitOfWork

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

#: Messages fetched (and committed) at a time.
BATCH: Final = 256
#: Seconds a fetch waits for messages. The client returns a fetch that found none at
#: once only when the whole batch came or this time is up: it bounds each hop's latency.
FETCH_WAIT: Final = 0.1
#: Seconds the broker waits for a delivered batch's acks before delivering it again.
ACK_WAIT: Final = 5.0
#: The stream of the `$Forgotten` markers (the application's `SYSTEM_STREAM`).
SYSTEM_STREAM: Final = "$system"
#: How much of a bad message a failure event keeps.
KEPT_BYTES: Final = 16_384
#: Metadata a received event does not carry over: the upstream's own bookkeeping.
_UPSTREAM_ONLY = frozenset({IDEMPOTENCY_KEY, "fingerprint"})


class BadMessage(Exception):
    """A message on a consumed subject that this service cannot take."""


@dataclass
class _Write:
    """What one message writes: an event appended or a stream forgotten (or nothing)."""

    stream: str
    event: NewEvent | None = None
    pii: frozenset[str] = frozenset()
    forget: bool = False
    key: str = ""


@dataclass
class _Batch:
    writes: list[tuple[Msg, _Write | None]] = field(default_factory=list)
    failures: list[tuple[Msg, str]] = field(default_factory=list)


class Inbox(Link):
    """Receives one upstream context's events for the contexts this service hosts."""

    meanwhile = "this service serves what it has and catches up when the bus is back"

    def __init__(
        self,
        settings: BusSettings,
        store: EventStore,
        reader: EventReader,
        names: wire.Names,
        upstream: str,
        consumer: str,
        types: Collection[str],
        say: Say,
    ) -> None:
        super().__init__(settings, store, say)
        self.title = f"inbox {upstream}"
        self.reader = reader
        self.names = names
        self.upstream = upstream
        self.consumer = consumer
        self.durable = names.durable(consumer)
        self.types = frozenset(types)
        self.received = 0
        self.failed = 0
        self.pending: int | None = None
        #: stream of forgotten instances whose cached keys to drop after a commit
        self._forgotten: list[str] = []

    def subjects(self) -> list[str]:
        """Exactly the subjects this context consumes from the upstream."""
        return [
            *sorted(self.names.subject(t) for t in self.types),
            self.names.forgotten(self.upstream),
        ]

    async def work(self, js: JetStreamContext) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        stream = self.names.stream(self.upstream)
        await ensure_stream(
            js, stream, self.names.subjects(self.upstream), self.settings, owner=False
        )
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # a batch not acked by then (its process died) is delivered again; a slow
            # batch delivered twice writes nothing twice (the idempotency keys)
            ack_wait=ACK_WAIT,
            max_deliver=-1,
            description=f"what {self.consumer} consumes of {self.upstream}",
        )
        if _server_at_least(js, (2, 10)):
            config.filter_subjects = self.subjects()
            wanted = self.subjects()[0]
        else:
            # one filter subject per consumer before NATS 2.10: the upstream's published
            # language, of which the events this context does not consume are acked unread
            wanted = self.names.subjects(self.upstream)
        subscription = await js.pull_subscribe(wanted, self.durable, stream=stream, config=config)
        looked = 0.0
        while not self.stopping:
            try:
                messages = await subscription.fetch(BATCH, timeout=FETCH_WAIT)
            except TimeoutError:  # nothing came (nats-py's timeouts are TimeoutErrors)
                messages = []
            if messages:
                await self._take(messages)
            if time.monotonic() - looked > 0.5:
                consumer = await subscription.consumer_info()
                self.pending = int(consumer.num_pending or 0) + int(consumer.num_ack_pending or 0)
                looked = time.monotonic()

    async def _take(self, messages: Sequence[Msg]) -> None:
        batch = _Batch()
        for message in messages:
            try:
                batch.writes.append((message, self._read(message)))
            except BadMessage as exc:
                batch.failures.append((message, str(exc)))
        try:
            self._commit(batch)
        except Exception as exc:
            # the store failed: nothing was written, the broker delivers them again
            self.error = f"the store failed: {exc}"
            for message in messages:
                await message.nak(delay=1.0)
            await self.pause(1.0)
            return
        for stream in self._forgotten:
            self.reader.keys.evict(stream)
        self._forgotten.clear()
        for message, _ in batch.writes:
            await message.ack()
        for message, _ in batch.failures:
            await message.term()
        self.received += len(batch.writes)
        self.failed += len(batch.failures)

    def _read(self, message: Msg) -> _Write | None:
        """What a message writes (None: an event this context does not consume)."""
        try:
            body = json.loads(message.data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadMessage(f"the message is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadMessage("the message is not a JSON object")
        try:
            ident, kind, stream = str(body["id"]), str(body["type"]), str(body["stream"])
            version = int(body.get("version", 1))
            data = body["data"]
        except (KeyError, TypeError, ValueError) as exc:
            raise BadMessage(f"the message is not an event envelope: {exc!r} missing") from None
        if not isinstance(data, dict):
            raise BadMessage("the event's data is not a JSON object")
        key = f"{INTERNAL_KEYS}bus/{ident}"
        source = self._source(message, body)
        if kind == FORGOTTEN:
            gone = str(data.get("stream", ""))
            if not gone.startswith(f"{self.upstream}."):
                raise BadMessage(f"{self.upstream} cannot forget {gone!r}: not its instance")
            marker = NewEvent(
                type=FORGOTTEN,
                data={"stream": gone},
                metadata={"source": source, IDEMPOTENCY_KEY: key},
                id=ident,
            )
            return _Write(gone, marker, forget=True, key=key)
        if kind not in self.types:
            if self.names.subject(kind) == message.subject and kind.startswith(f"{self.upstream}."):
                return None  # published, but not consumed here
            raise BadMessage(f"{kind} is not an event this context consumes from {message.subject}")
        registry = self.reader.registry
        try:
            event = registry.decode(kind, version, data)
        except Exception as exc:
            raise BadMessage(str(exc)) from None
        meta = info(event)
        metadata = {
            k: v for k, v in dict(body.get("metadata") or {}).items() if k not in _UPSTREAM_ONLY
        }
        metadata["source"] = source
        metadata[IDEMPOTENCY_KEY] = key
        new = NewEvent(
            type=kind,
            data=to_data(event),
            version=meta.version,
            stream_id=body.get("stream_id"),
            metadata=metadata,
            id=ident,
        )
        return _Write(stream, new, meta.pii, key=key)

    def _source(self, message: Msg, body: dict[str, Any]) -> dict[str, Any]:
        meta = message.metadata
        return {
            "bus_stream": meta.stream,
            "sequence": meta.sequence.stream,
            "position": body.get("position"),
        }

    def _commit(self, batch: _Batch) -> None:
        if not batch.writes and not batch.failures:
            return
        keys = self.reader.keys
        with self.store.transaction() as uow:
            for _, write in batch.writes:
                if write is None or write.event is None:
                    continue
                if write.forget:
                    self._forget(uow, write)
                    continue
                event = write.event
                if write.pii and uow.remembered(write.key) is None:
                    sealed = keys.encrypt(uow, write.stream, event.data, write.pii)
                    event = msgspec.structs.replace(event, data=sealed)
                uow.append(write.stream, [event], None, idempotency_key=write.key)
            for message, error in batch.failures:
                uow.append(FAILURES_STREAM, [self._failure(message, error)], None)

    def _forget(self, uow: UnitOfWork, write: _Write) -> None:
        assert write.event is not None
        if uow.remembered(write.key) is not None:
            return  # forgotten before: a redelivery
        uow.delete_key(write.stream)
        uow.delete_snapshot(write.stream)
        uow.append(SYSTEM_STREAM, [write.event], None, idempotency_key=write.key)
        self._forgotten.append(write.stream)

    def _failure(self, message: Msg, error: str) -> NewEvent:
        meta = message.metadata
        text = message.data[:KEPT_BYTES].decode("utf-8", "replace")
        return NewEvent(
            type=FAILURE,
            data={
                "consumer": f"$inbox.{self.upstream}",
                "kind": "inbox",
                "event_id": (message.headers or {}).get(wire.MSG_ID),
                "event_type": (message.headers or {}).get(wire.TYPE),
                "position": 0,
                "error": error,
                "attempt": meta.num_delivered or 1,
                "parked": True,
                "subject": message.subject,
                "bus_stream": meta.stream,
                "sequence": meta.sequence.stream,
                "message": text,
            },
        )

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "stream": self.names.stream(self.upstream),
            "durable": self.durable,
            "subjects": self.subjects(),
            "pending": self.pending,
            "received": self.received,
            "failed": self.failed,
        }


def _server_at_least(js: JetStreamContext, version: tuple[int, int]) -> bool:
    """Whether the server the context's connection reached is at least `version`."""
    text = str(js._nc._server_info.get("version", "0.0"))
    parts = tuple(int(p) for p in text.split("-")[0].split(".")[:2] if p.isdigit())
    return parts >= version
