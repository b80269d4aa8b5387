"""The HTTP API's limits: request sizes, event streams, connections and timeouts.

Every limit has a default, an environment variable and a field of :class:`Limits`
(``create_app(limits=...)``, ``serve(limits=...)``); docs/http.md lists them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

#: 1 MiB
_MIB = 1024 * 1024


class LimitsError(ValueError):
    """A limit is configured with an unusable value (one sentence)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much the API accepts from a client and for how long it waits for one."""

    #: the largest request body, in bytes (413 past it)
    max_body_bytes: int = _MIB
    #: the longest string in a command's or an external event's fields, in characters
    max_string_length: int = 10_000
    #: the most items in a list (or entries in a map) of such a field
    max_list_items: int = 1_000
    #: the most `/events/stream` connections open at once (503 past it)
    max_streams: int = 100
    #: the most connections the server holds open at once (more are closed at once)
    max_connections: int = 1_000
    #: seconds a client has to send a request's headers
    header_timeout: float = 10.0
    #: seconds a client has to send a request's body once its headers are in
    body_timeout: float = 15.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise LimitsError(
                    f"the limit {field.name} must be a positive number, not {value!r}"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by the ``STORMGEN_*`` variables that are set."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = env_name(field.name)
            text = environ.get(name, "").strip()
            if not text:
                continue
            number = float if field.type == "float" else int
            try:
                values[field.name] = number(text)
            except ValueError:
                kind = "a number of seconds" if number is float else "a whole number"
                raise LimitsError(f"{name} must be {kind}, not {text!r}") from None
            if values[field.name] <= 0:
                raise LimitsError(f"{name} must be greater than 0, not {text!r}")
        return cls(**values)


def env_name(field: str) -> str:
    """The environment variable of a limit: ``max_body_bytes`` -> ``STORMGEN_MAX_BODY_BYTES``."""
    return f"STORMGEN_{field.upper()}"
