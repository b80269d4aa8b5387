"""One job on the bus (the relay, an inbox) in a thread of its own.

Each job has its own asyncio loop and its own connection to the bus. While the bus
cannot be reached the job retries (backing off up to `MAX_BACKOFF` seconds) and says
so once per outage; the service meanwhile keeps accepting its commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from stormgen.runtime.bus.settings import BusSettings
from stormgen.runtime.errors import StoreError
from stormgen.runtime.store.base import EventStore

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

#: The longest wait between two attempts to reach the bus, in seconds.
MAX_BACKOFF = 2.0
#: How long a request to the broker (a publish's ack, a stream look-up) may take.
REQUEST_TIMEOUT = 5.0

Say = Callable[[str], None]
T = TypeVar("T")


class Link(ABC):
    """A job on the bus: connects, runs `work` until stopped, reconnects on failure."""

    #: what the job is, for its thread's name and its messages ("relay", "inbox Ordering")
    title: str
    #: what a user should know while the bus is down
    meanwhile: str

    def __init__(self, settings: BusSettings, store: EventStore, say: Say) -> None:
        self.settings = settings
        self.store = store
        self.say = say
        self.connected = False
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._said_down = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the job's thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()),
            name=f"stormgen-bus-{self.title.replace(' ', '-')}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the job to stop and wait for it (it finishes the batch in hand)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def stopping(self) -> bool:
        """Whether the job was asked to stop."""
        return self._stop.is_set()

    async def pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, less when the job is asked to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, deadline - time.monotonic()))

    # -- the job -------------------------------------------------------------------------
    @abstractmethod
    async def work(self, js: JetStreamContext) -> None:
        """Do the job until `stopping`; raise when the bus fails (the link reconnects)."""

    def status(self) -> dict[str, Any]:
        """What `/health` shows of the job."""
        out: dict[str, Any] = {"connected": self.connected}
        if self.error is not None and not self.connected:
            out["error"] = self.error
        return out

    async def _run(self) -> None:
        import nats

        backoff = 0.1
        while not self.stopping:
            client: Client | None = None
            try:
                client = await self._unless_stopped(
                    nats.connect(
                        servers=list(self.settings.servers),
                        name=f"stormgen {self.title}",
                        connect_timeout=2,
                        reconnect_time_wait=0.2,
                        max_reconnect_attempts=-1,
                        error_cb=self._noted,
                        disconnected_cb=self._disconnected,
                        reconnected_cb=self._reconnected,
                    )
                )
                self._up()
                backoff = 0.1
                await self._unless_stopped(self.work(client.jetstream(timeout=REQUEST_TIMEOUT)))
            except _Stopped:
                break
            except Exception as exc:
                self._down(exc)
            finally:
                if client is not None:
                    # closing a broken connection: nothing to save
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.close(), 2)
            await self.pause(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _unless_stopped(self, step: Coroutine[Any, Any, T]) -> T:
        """Run `step`, cancelled (at its next await) when the job is asked to stop: a
        connection attempt or a request to a broker that is gone never holds up a stop.
        The relay moves its checkpoint past what was acked, the inbox acks nothing it
        did not commit, whenever the cancellation comes."""
        task = asyncio.ensure_future(step)
        while not task.done():
            if self.stopping:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise _Stopped
            await asyncio.wait({task}, timeout=0.05)
        return task.result()

    def _up(self) -> None:
        self.connected = True
        self.error = None
        if self._said_down:
            self.say(f"bus {self.title}: connected to {self.settings.url} again")
            self._said_down = False

    def _down(self, exc: BaseException) -> None:
        self.connected = False
        self.error = _describe(exc)
        if not self._said_down:
            what = (
                "the store failed"
                if isinstance(exc, StoreError)
                else f"{self.settings.url} cannot be reached or failed"
            )
            self.say(f"bus {self.title}: {what} ({self.error}); {self.meanwhile}; retrying")
            self._said_down = True

    async def _noted(self, exc: Exception) -> None:
        # the client's own (re)connection attempts fail here: say so once per outage
        if self.connected:
            self.error = _describe(exc)
        else:
            self._down(exc)

    async def _disconnected(self) -> None:
        self.connected = False

    async def _reconnected(self) -> None:
        self._up()


class _Stopped(Exception):
    """The job was asked to stop while a step was running."""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text and name not in text else text or name


async def ensure_stream(
    js: JetStreamContext, name: str, subjects: str, settings: BusSettings, *, owner: bool
) -> None:
    """Create a context's stream unless it exists; its `owner` (the context's relay)
    also updates the retention when it changed."""
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    config = StreamConfig(
        name=name,
        subjects=[subjects],
        max_age=settings.retention,
        duplicate_window=settings.duplicate_window,
        num_replicas=settings.replicas,
        storage=StorageType.FILE,
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        return
    if owner and info.config.max_age != settings.retention:
        await js.update_stream(config)
