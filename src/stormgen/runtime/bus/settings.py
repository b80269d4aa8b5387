"""How a service reaches the bus: ``--bus nats://HOST:PORT[,HOST:PORT...]`` and the
``STORMGEN_BUS_*`` variables (docs/autonomous.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from stormgen.runtime.errors import StormgenRuntimeError

#: How long a context's stream keeps its messages by default: a week. Plain-text pii
#: stays on the broker no longer than this (`STORMGEN_BUS_RETENTION`).
DEFAULT_RETENTION: Final = 7 * 24 * 3600.0
#: The broker drops a message whose ``Nats-Msg-Id`` it saw within this window.
DEFAULT_DUPLICATE_WINDOW: Final = 120.0

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class BusConfigError(StormgenRuntimeError):
    """The bus URL or one of the ``STORMGEN_BUS_*`` variables is not valid."""


@dataclass(frozen=True)
class BusSettings:
    """Where the bus is and how the service's streams are kept."""

    servers: tuple[str, ...]
    #: seconds a stream keeps a message (JetStream's max_age)
    retention: float = DEFAULT_RETENTION
    #: copies of each stream in a JetStream cluster
    replicas: int = 1
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW

    @property
    def url(self) -> str:
        """The servers as one URL, as given."""
        return "nats://" + ",".join(s.removeprefix("nats://") for s in self.servers)

    @classmethod
    def parse(cls, url: str, env: Mapping[str, str] | None = None) -> BusSettings:
        """Settings from a bus URL and the ``STORMGEN_BUS_*`` variables of `env`."""
        env = os.environ if env is None else env
        text = url.strip()
        if not text.startswith("nats://"):
            raise BusConfigError(f"bus URL {url!r}: expected nats://HOST:PORT[,HOST:PORT...]")
        servers = []
        for part in text.removeprefix("nats://").split(","):
            part = part.strip().removeprefix("nats://")
            match = _HOST_PORT.match(part)
            if match is None or not 0 < int(match.group(2)) < 65536:
                raise BusConfigError(
                    f"bus URL {url!r}: {part!r} is not HOST:PORT (a port from 1 to 65535)"
                )
            servers.append(f"nats://{part}")
        retention = _duration(env, "STORMGEN_BUS_RETENTION", DEFAULT_RETENTION)
        window = _duration(env, "STORMGEN_BUS_DUPLICATE_WINDOW", DEFAULT_DUPLICATE_WINDOW)
        replicas_text = env.get("STORMGEN_BUS_REPLICAS", "1").strip()
        if not replicas_text.isdigit() or not 1 <= int(replicas_text) <= 5:
            raise BusConfigError(
                f"STORMGEN_BUS_REPLICAS={replicas_text!r}: expected a number from 1 to 5"
            )
        if window > retention:
            raise BusConfigError("STORMGEN_BUS_DUPLICATE_WINDOW must not exceed the retention")
        return cls(tuple(servers), retention, int(replicas_text), window)


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``12h`` or ``7d`` in the variable `name`."""
    text = env.get(name)
    if text is None or not text.strip():
        return default
    match = _DURATION.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise BusConfigError(
            f"{name}={text!r} is not a duration: a positive number with s, m, h or d (say 7d)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]
