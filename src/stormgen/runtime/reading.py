"""Reading recorded events: decrypting, upcasting and decoding them into envelopes.

`EventReader` turns what the store recorded into what the service works with: an
`Envelope` (the typed event, its JSON of the current schema with forgotten pii
redacted) or just the typed event, one at a time or a page at once. It keeps the
envelopes the consumers share (each event is decoded once for every view and policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

from stormgen.runtime._collector import without_collections
from stormgen.runtime.crypto import KeyRing, is_sealed
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.messages import REDACTED, Envelope, Event
from stormgen.runtime.upcasting import Registry

_NONE: frozenset[str] = frozenset()
#: decoded envelopes kept for the consumers (a few seconds of events under load): the
#: last this many positions of the log
_SHARED_ENVELOPES = 4096

#: From this many records on, `decode_all` pauses the cycle collector (see there).
_PAUSE_GC_FROM = 64

_data_of = attrgetter("data")
_type_of = attrgetter("type")
_version_of = attrgetter("version")


class _Unsealed:
    """The key marker of what was read from no encrypted field."""


UNSEALED = _Unsealed()

#: The stream key sealed fields were read with (None: forgotten), or `UNSEALED`: a
#: state or an envelope kept for later is used again only while its stream's key is
#: still this one (a `forget` is never undone by a cache).
KeyMark = bytes | _Unsealed | None


class EventReader:
    """Recorded events into envelopes and typed events, with the stream keys and the
    message classes (and their upcasters) of a service. Thread-safe."""

    def __init__(self, registry: Registry, keys: KeyRing) -> None:
        self.registry = registry
        self.keys = keys
        #: decoded envelopes shared by the consumers (see `shared_envelope`), each in
        #: the slot of its position: positions are dense, so the slots hold the last
        #: `_SHARED_ENVELOPES` of the log (a newer event takes an older one's slot), and
        #: keeping one is a list assignment, atomic without a lock
        self._envelopes: list[tuple[KeyMark, Envelope] | None] = [None] * _SHARED_ENVELOPES

    def envelope(self, recorded: RecordedEvent) -> Envelope:
        """Decrypt, upcast and decode a recorded event (unknown types stay untyped)."""
        data, gone = self.keys.decrypt(recorded.stream, recorded.data)
        cls = self.registry.get(recorded.type)
        if cls is None or not issubclass(cls, Event):
            if gone:
                data = dict(data)
                for name in gone:
                    data[name] = REDACTED
            return Envelope(recorded, None, data, recorded.version, frozenset(gone))
        event = self.registry.decode(recorded.type, recorded.version, data, gone)
        return Envelope(
            recorded, event, data, cls.__message__.version, frozenset(gone) if gone else _NONE
        )

    def shared_envelope(self, recorded: RecordedEvent) -> Envelope:
        """`envelope(recorded)`, decoded once for all the consumers reading it.

        Every view and policy reading an event would otherwise decrypt and decode it
        again. An entry is used only for the same event id (a rolled-back append may
        leave its position to another event) and, when the event holds sealed fields,
        only while the stream's key is the one taken before decrypting them: a
        `forget` is never undone by the cache (the state cache's rule).
        """
        position = recorded.position
        hit = self._envelopes[position % _SHARED_ENVELOPES]
        if hit is not None:
            key, envelope = hit
            kept = envelope.recorded
            if (
                kept.position == position
                and kept.id == recorded.id
                and (key is UNSEALED or self.keys.key_for_reading(recorded.stream) == key)
            ):
                return envelope
        data = recorded.data
        key = UNSEALED
        if dict in map(type, data.values()) and is_sealed(data):
            key = self.keys.key_for_reading(recorded.stream)
        envelope = self.envelope(recorded)
        self.share(position, key, envelope)
        return envelope

    def share(self, position: int, key: KeyMark, envelope: Envelope) -> None:
        """Keep an envelope for the consumers about to read it (see `shared_envelope`):
        `envelope` is the one of the event at `position`."""
        self._envelopes[position % _SHARED_ENVELOPES] = (key, envelope)

    def fresh_envelope(self, recorded: RecordedEvent, plain: dict[str, Any]) -> Envelope:
        """The envelope of an event just appended, from its data before sealing.

        The same as `envelope(recorded)` (the stored pii decrypts to exactly this data,
        and the key cannot have been forgotten within the append) without decrypting.
        """
        cls = self.registry.get(recorded.type)
        if cls is None or not issubclass(cls, Event):
            return self.envelope(recorded)
        event = self.registry.decode(recorded.type, recorded.version, plain)
        # `plain` is `to_data` of the event just decided, which is what `data` would
        # compute again from its decoded copy: the cached property is filled now
        envelope = Envelope.of_fresh(recorded, event, plain, cls.__message__.version)
        if plain is recorded.data or not is_sealed(recorded.data):
            # nothing sealed: the consumers about to read this event can take it as is
            self.share(recorded.position, UNSEALED, envelope)
        return envelope

    def decode(self, recorded: RecordedEvent) -> Event:
        """The typed event of a record (decrypted, upcast); `UnknownEventType` if unknown."""
        data = recorded.data
        if is_sealed(data):
            data, gone = self.keys.decrypt(recorded.stream, data)
            return self.registry.decode(recorded.type, recorded.version, data, gone)
        return self.registry.decode(recorded.type, recorded.version, data)

    def decode_all(
        self, records: Sequence[RecordedEvent], key: KeyMark = None
    ) -> tuple[list[Event], KeyMark]:
        """Decode records with one msgspec call per type and version; also the key marker.

        `key` is the stream key marker of a load: when it is `UNSEALED` and some record
        has sealed fields, the stream's key is taken before they are decrypted (a later
        forget then shows as a changed key). Any other `key` is given back as it is.

        The common case (no encrypted field, one type) runs without a Python step per
        record: a page the store read as one text says when it holds no token
        (`EventPage.unsealed`); otherwise the sealed test first looks for any dict-valued
        field in the whole page at C level (a token is a dict; most pages have none).

        A long batch is decoded with the cycle collector paused (`without_collections`):
        each collection it set off walked the events made so far again. Events the
        caller drops before the next collection are then never walked at all.
        """
        if len(records) < _PAUSE_GC_FROM:
            return self._decode_all(records, key)
        return without_collections(self._decode_all, records, key)

    def _decode_all(
        self, records: Sequence[RecordedEvent], key: KeyMark
    ) -> tuple[list[Event], KeyMark]:
        datas = list(map(_data_of, records))
        if getattr(records, "unsealed", False) or dict not in map(
            type, chain.from_iterable(map(dict.values, datas))
        ):
            sealed = []
        else:
            sealed = [i for i, data in enumerate(datas) if is_sealed(data)]
        decode_many = self.registry.decode_many
        types = set(map(_type_of, records))
        if not sealed and len(types) == 1:
            versions = set(map(_version_of, records))
            if len(versions) == 1:
                return decode_many(types.pop(), versions.pop(), datas), key
        groups: dict[tuple[str, int], list[int]] = {}
        skip = set(sealed)
        kinds = zip(map(_type_of, records), map(_version_of, records), strict=True)
        for i, kind in enumerate(kinds):
            if i not in skip:
                groups.setdefault(kind, []).append(i)
        out: list[Any] = [None] * len(records)
        for (type_name, version), places in groups.items():
            batch = [datas[i] for i in places]
            for i, event in zip(places, decode_many(type_name, version, batch), strict=True):
                out[i] = event
        if sealed:
            if key is UNSEALED:
                key = self.keys.key_for_reading(records[sealed[0]].stream)
            for i in sealed:
                out[i] = self.decode(records[i])
        return out, key
