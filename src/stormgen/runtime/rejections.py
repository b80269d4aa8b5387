"""Errors of the domain layer: rejected commands and unreadable messages.

Storage errors (version conflicts, connection problems) live in `stormgen.runtime.errors`;
`VersionConflict` and `UnknownEventType` are re-exported here.
"""

from __future__ import annotations

from stormgen.runtime.errors import StormgenRuntimeError, UnknownEventType, VersionConflict

__all__ = [
    "AlreadyExists",
    "DecodeError",
    "DomainError",
    "KeyReused",
    "NotFound",
    "Rejected",
    "UnknownCommand",
    "UnknownEventType",
    "UpcastError",
    "VersionConflict",
    "require",
]


class DomainError(StormgenRuntimeError):
    """Base of the domain layer's errors."""


class Rejected(DomainError):
    """A command was refused by a guard (`require ... else "message"`); the API answers 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require(condition: bool, message: str) -> None:
    """A guard as the model writes it: raise `Rejected(message)` unless `condition` holds."""
    if not condition:
        raise Rejected(message)


class NotFound(Rejected):
    """A command or read names an aggregate instance that does not exist; the API answers 404."""


class AlreadyExists(Rejected):
    """A `creates` command names an instance that already exists; the API answers 409."""


class DecodeError(DomainError, ValueError):
    """Data does not fit a message or value class; `path` names the bad field (`$.drinks[0]`)."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class KeyReused(DomainError):
    """An idempotency key that was used for a different request (another type or body):
    nothing was written; the API answers 422."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownCommand(DomainError, TypeError):
    """A command class that no aggregate or external system of the service handles."""


class UpcastError(DomainError):
    """A stored event of an older schema version cannot be read as the current one."""
