"""Event ids: random uuid4 strings, drawn from a per-thread pool."""

from __future__ import annotations

import uuid

from stormgen.runtime.envelope import new_event_id


def test_event_ids_are_distinct_canonical_uuid4_strings() -> None:
    ids = [new_event_id() for _ in range(2000)]  # several refills of the pool
    assert len(set(ids)) == len(ids)
    for text in ids:
        value = uuid.UUID(text)
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        assert str(value) == text
