"""The event envelope (docs/runtime.md, "Stores"): events to append and events as recorded."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import Any

import msgspec

JSONDict = dict[str, Any]


class _Thread(threading.local):
    """A thread's pools: random bytes (`random_bytes`) and event ids (`new_event_id`);
    class defaults, so a fresh thread reads them empty without an AttributeError."""

    pool = b""
    at = 0
    ids: list[str] | None = None


_local = _Thread()
#: How many random bytes one read of the OS's random source gives a thread's pool.
_POOL = 4096


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the OS's random source, through a per-thread pool.

    Each ``os.urandom`` call is a system call that lets the calling thread lose the
    GIL to a busy one, and a new stream's key, each sealed field's nonce and each batch
    of event ids asked for one: the pool reads ``_POOL`` bytes at a time and hands each
    byte out once.
    """
    local = _local
    pool, at = local.pool, local.at
    if at + count > len(pool):
        pool, at = os.urandom(max(_POOL, count)), 0
        local.pool = pool
    local.at = at + count
    return pool[at : at + count]


#: byte maps setting a uuid4's version bits (byte 6) and variant bits (byte 8)
_VERSION_4 = bytes(b & 0x0F | 0x40 for b in range(256))
_RFC_4122_VARIANT = bytes(b & 0x3F | 0x80 for b in range(256))
#: an id's text, its dashes in place, and a space after it to split the pool's text at
_ID_TEMPLATE = b"00000000-0000-0000-0000-000000000000 "
#: (place in the id's text, hex digit of its 32) for every digit
_DIGITS = [(d + (d >= 8) + (d >= 12) + (d >= 16) + (d >= 20), d) for d in range(32)]


def _fresh_ids(count: int = 256) -> list[str]:
    """Make ``count`` random uuid4 strings from one read of the OS's random source."""
    raw = bytearray(random_bytes(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122_VARIANT)
    # each hex digit goes to its place in every id at once, by a slice with a step (32
    # slices, not a formatting call per id: a quarter of the time)
    digits = raw.hex().encode()
    text = bytearray(_ID_TEMPLATE * count)
    step = len(_ID_TEMPLATE)
    for place, digit in _DIGITS:
        text[place::step] = digits[digit::32]
    return text.decode().split()


def _forget_pools() -> None:
    # A forked child must not hand out the bytes and ids its parent will also use
    # (keys, nonces and event ids repeated across two processes).
    global _local
    _local = _Thread()


os.register_at_fork(after_in_child=_forget_pools)


def new_event_id() -> str:
    """Return a fresh random event id (a uuid4 as a string).

    Ids are drawn from a per-thread pool filled 256 at a time: ``str(uuid.uuid4())``
    per event was a third of the cost of appending a batch.
    """
    ids = _local.ids
    if not ids:
        ids = _local.ids = _fresh_ids()
    return ids.pop()


#: msgspec writes an aware UTC datetime as ``2026-12-07T12:00:00.123456Z`` (a tenth of
#: strftime's time), but without the fraction when it is zero
_builtin = msgspec.to_builtins


def format_time(when: datetime) -> str:
    """Format a datetime as ISO 8601 UTC with microseconds and a ``Z`` suffix."""
    if when.tzinfo is not UTC:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        when = when.astimezone(UTC)
    if when.year < 1000:
        # strftime writes such a year without its leading zeros: the text stays as it was
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text: str = _builtin(when)
    return text if when.microsecond else f"{text[:-1]}.000000Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time; a time without zone is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


#: The key of the one-entry object that stands for an encrypted (``pii``) field in stored
#: event data: ``{"$pii": "<base64 nonce + ciphertext>"}`` (see ``crypto``).
SEALED_KEY = "$pii"


class NewEvent(msgspec.Struct, kw_only=True):
    """An event the domain layer wants appended; the store adds stream, version, position.

    Construct with keywords. ``data`` and ``metadata`` must already be JSON-ready (the
    domain layer encodes decimals, datetimes and uuids as strings).
    """

    type: str
    data: JSONDict
    version: int = 1
    stream_id: str | None = None
    metadata: JSONDict = msgspec.field(default_factory=dict)
    id: str = msgspec.field(default_factory=new_event_id)


class RecordedEvent(msgspec.Struct, array_like=True, gc=False):
    """An event as stored in the log: its envelope (docs/runtime.md, "Stores").

    ``version`` is the event's schema version; ``stream_version`` its place in the
    stream (1-based, gapless); ``position`` its place in the global log (1-based,
    increasing in commit order). Treat instances as read-only. Serialise them with
    :meth:`to_json`: as a msgspec struct an instance encodes as a JSON array, the
    compact form the SQLite store decodes whole result sets from in one call. Events
    are not tracked by the cycle collector (reads of many events stay fast): do not
    put an event inside its own ``data``.
    """

    id: str
    type: str
    version: int
    stream: str
    stream_id: str | None
    stream_version: int
    position: int
    recorded_at: datetime
    data: JSONDict
    metadata: JSONDict

    def to_json(self) -> JSONDict:
        """Return the envelope as a JSON-ready dict (``stream_id`` absent when None)."""
        out: JSONDict = {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "stream": self.stream,
        }
        if self.stream_id is not None:
            out["stream_id"] = self.stream_id
        out["stream_version"] = self.stream_version
        out["position"] = self.position
        out["recorded_at"] = format_time(self.recorded_at)
        out["data"] = self.data
        out["metadata"] = self.metadata
        return out

    @classmethod
    def from_json(cls, envelope: JSONDict) -> RecordedEvent:
        """Build a recorded event from an envelope (as produced by ``to_json``)."""
        return cls(
            id=str(envelope["id"]),
            type=str(envelope["type"]),
            version=int(envelope.get("version", 1)),
            stream=str(envelope["stream"]),
            stream_id=envelope.get("stream_id"),
            stream_version=int(envelope["stream_version"]),
            position=int(envelope["position"]),
            recorded_at=parse_time(str(envelope["recorded_at"])),
            data=dict(envelope.get("data") or {}),
            metadata=dict(envelope.get("metadata") or {}),
        )


class EventPage(list[RecordedEvent]):
    """Events a store read in one go, with what their stored text told it.

    ``unsealed`` is True when no event of the page can hold an encrypted field: the
    stores that read a page as one JSON text set it when the token key ``"$pii"``
    occurs nowhere in that text (a JSON encoder writes every key in full). A decoder may
    then skip looking for tokens value by value; False (the default, and any plain
    list) means some event may hold one.
    """

    unsealed = False

    @classmethod
    def of(cls, events: list[RecordedEvent], text: str) -> EventPage:
        """The page of ``events``, decoded from the JSON ``text``."""
        page = cls(events)
        # a "$" is rare in JSON text and found at memchr speed; the quoted key's search
        # stumbles on every quote
        page.unsealed = "$" not in text or _QUOTED_SEALED_KEY not in text
        return page


_QUOTED_SEALED_KEY = f'"{SEALED_KEY}"'
