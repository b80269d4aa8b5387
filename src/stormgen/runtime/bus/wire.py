"""What goes on the bus (docs/autonomous.md): stream and subject names, headers, payloads.

Every name is derived from the service's namespace (its Python package, say
``coffee_shop``), the context and the event's type name:

- a context's JetStream stream: ``STORMGEN_<NAMESPACE>_<CONTEXT>`` in upper case
  (``STORMGEN_COFFEE_SHOP_ORDERING``), holding the subjects ``stormgen.<namespace>.<Context>.>``;
- one subject per published event type: ``stormgen.<namespace>.<Context>.<Event>``
  (``stormgen.coffee_shop.Ordering.OrderPlaced``), the type name after the prefix;
- the forgetting of one of the context's instances: ``stormgen.<namespace>.<Context>.$Forgotten``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from stormgen.runtime.codec import dumps
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.messages import Envelope

PREFIX: Final = "stormgen"
#: The last token of the subject on which a context says an instance was forgotten.
FORGOTTEN_TOKEN: Final = "$Forgotten"

#: Headers every message carries besides ``Nats-Msg-Id`` (the event's id).
MSG_ID: Final = "Nats-Msg-Id"
AGGREGATE_ID: Final = "Stormgen-Aggregate-Id"
STREAM: Final = "Stormgen-Stream"
TYPE: Final = "Stormgen-Type"
VERSION: Final = "Stormgen-Version"

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def check_token(name: str, what: str) -> str:
    """``name`` if it can be one token of a subject (and part of a stream name)."""
    if not _TOKEN.match(name):
        raise ValueError(f"{what} {name!r} cannot name a bus subject: use letters, digits, _ or -")
    return name


@dataclass(frozen=True)
class Names:
    """The bus names of one service (its namespace: the generated package's name)."""

    namespace: str

    def __post_init__(self) -> None:
        check_token(self.namespace, "the namespace")

    def stream(self, context: str) -> str:
        """The JetStream stream of a context's published events."""
        return f"{PREFIX}_{self.namespace}_{context}".upper().replace("-", "_")

    def subjects(self, context: str) -> str:
        """The subjects the stream of a context holds (a wildcard)."""
        return f"{PREFIX}.{self.namespace}.{context}.>"

    def subject(self, event_type: str) -> str:
        """The subject of an event type (``Ordering.OrderPlaced``)."""
        return f"{PREFIX}.{self.namespace}.{event_type}"

    def forgotten(self, context: str) -> str:
        """The subject on which a context says one of its instances was forgotten."""
        return f"{PREFIX}.{self.namespace}.{context}.{FORGOTTEN_TOKEN}"

    def durable(self, consumer_context: str) -> str:
        """The durable consumer name of a consuming context on an upstream stream."""
        return f"{self.namespace}_{consumer_context}".replace("-", "_")


def event_message(envelope: Envelope) -> tuple[bytes, dict[str, str]]:
    """The payload (the envelope as JSON, pii in plain text) and headers of an event."""
    headers = {
        MSG_ID: envelope.id,
        STREAM: envelope.stream,
        TYPE: envelope.type,
        VERSION: str(envelope.version),
    }
    if envelope.stream_id is not None:
        headers[AGGREGATE_ID] = envelope.stream_id
    return dumps(envelope.to_json()), headers


def forgotten_message(marker: RecordedEvent, stream: str) -> tuple[bytes, dict[str, Any]]:
    """The payload and headers saying a stream was forgotten (its marker's id dedups)."""
    body = marker.to_json()
    headers = {MSG_ID: marker.id, STREAM: stream, TYPE: marker.type, VERSION: "1"}
    return dumps(body), headers
