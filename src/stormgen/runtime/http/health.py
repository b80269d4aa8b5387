"""What `GET /health` says: the store's state and each consumer's lag, within a bound
time whatever the store does.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stormgen.runtime.application import Application
from stormgen.runtime.errors import StoreFull, StoreUnavailable

log = logging.getLogger("stormgen.http")


#: `GET /health` answers within this many seconds, whatever the store does.
HEALTH_TIMEOUT = 0.8


#: How long its look at the store (`EventStore.probe`) may wait for a connection.
_PROBE_TIMEOUT = 0.5


class HealthCheck:
    """What `GET /health` says, within `HEALTH_TIMEOUT` seconds whatever the store does.

    One look at the store at a time, on a thread of its own (not behind requests
    waiting for the store): requests arriving meanwhile share its answer. A look that
    takes longer is answered as a failing store; it finishes in the background.
    """

    def __init__(self, application: Application, timeout: float = HEALTH_TIMEOUT) -> None:
        self.application = application
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stormgen-health")
        self._running: asyncio.Future[dict[str, Any]] | None = None

    async def __call__(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        running = self._running
        if running is None or running.done() or running.get_loop() is not loop:
            running = self._running = loop.run_in_executor(self._executor, self.look)
        try:
            return await asyncio.wait_for(asyncio.shield(running), self.timeout)
        except TimeoutError:
            return _failing("timeout", f"the store did not answer within {self.timeout:g} s")

    def look(self) -> dict[str, Any]:
        """The store's state and each consumer's lag (blocking)."""
        app = self.application
        try:
            app.store.probe(_PROBE_TIMEOUT)
            last = app.store.last_position()
            consumers: dict[str, Any] = {}
            for name, progress in app.progress().items():
                kind = "view" if name in app.views else "policy"
                consumers[name] = {"kind": kind, **progress}
            parked = len(app.parked())
            bus = app.bus.status() if app.bus is not None else None
        except Exception as exc:
            # the details stay in the log: /health needs no token
            if isinstance(exc, StoreFull):
                log.warning("health: %s", exc)
                return _failing("full", "the store's disk is full: writes fail until it has room")
            if isinstance(exc, StoreUnavailable):
                log.warning("health: %s", exc)
                return _failing("unreachable", "the store cannot be reached")
            log.exception("health: the store failed")
            return _failing("failed", "the store failed")
        out = {
            "status": "ok",
            "store": {"ok": True},
            "position": last,
            "consumers": consumers,
            "parked": parked,
        }
        if bus is not None:
            out["bus"] = bus
        return out


def _failing(error: str, message: str) -> dict[str, Any]:
    return {"status": "failing", "store": {"ok": False, "error": error, "message": message}}
