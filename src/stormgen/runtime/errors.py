"""Errors raised by the bundled runtime: a small, DB-API-like hierarchy."""

from __future__ import annotations


class StormgenRuntimeError(Exception):
    """Base class of every error the runtime raises on purpose."""


class StoreError(StormgenRuntimeError):
    """Something went wrong in an event store."""


class InvalidStoreURL(StoreError, ValueError):
    """A store URL that names no known backend or carries a bad option."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (PostgreSQL down, file not writable)."""


class StoreFull(StoreUnavailable):
    """The store's disk is full: nothing more can be written until space is freed."""


class StoreCorrupt(StoreError):
    """The file or schema is not a stormgen store, or is damaged."""


class SchemaTooNew(StoreError):
    """The store was written by a newer stormgen with a schema this one cannot read."""


class ConcurrencyError(StoreError):
    """A concurrent writer got there first; reload and retry."""


class VersionConflict(ConcurrencyError):
    """An append expected a stream version that is no longer current."""

    def __init__(self, stream: str, expected: int | None, actual: int) -> None:
        super().__init__(
            f"version conflict on stream {stream!r}: expected version {expected}, "
            f"the stream is at version {actual}"
        )
        self.stream = stream
        self.expected = expected
        self.actual = actual


class UnknownEventType(StormgenRuntimeError):
    """An event type (or schema version) that this service does not know."""
