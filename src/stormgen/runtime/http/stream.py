"""The log as Server-Sent Events (`GET /events/stream`), in pages with backpressure.

Streams read the log a page at a time, shared between them while in use, and hand it
to the server in bounded pieces that each wait for the client: a stream's memory does
not grow with the log's size, its events' size or the number of streams.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any

import msgspec
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from stormgen.runtime.application import Application
from stormgen.runtime.http import errors
from stormgen.runtime.http.params import MAX_POSITION

_ENCODER = msgspec.json.Encoder()


#: A comment line sent on an idle event stream so proxies keep it open.
_KEEPALIVE_SECONDS = 15.0


#: The most events an event stream reads from the store at once.
_STREAM_PAGE = 100


#: A stream's page ends after the event that takes its frames past this many bytes.
_STREAM_PAGE_BYTES = 256 * 1024


#: The most bytes a stream hands to the server at once (each send awaits the client).
_STREAM_SEND_BYTES = 64 * 1024


def last_event_id(request: Request) -> int:
    """The position in a ``Last-Event-ID`` header (0 without one); 400 when it is none."""
    text = (request.headers.get("last-event-id") or "").strip()
    if not text:
        return 0
    if not text.isdigit() or int(text) > MAX_POSITION:
        raise errors.bad_request(
            f"Last-Event-ID must be a log position (0 to {MAX_POSITION}), not {text[:40]!r}"
        )
    return int(text)


class EventStream(StreamingResponse):
    """An event stream that gives its place back (calls ``release`` once) when it ends."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.release: Callable[[], None] | None = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.release is not None:
                self.release()
                self.release = None


class Page:
    """Some events of the log after a position, as Server-Sent Events frames."""

    __slots__ = ("__weakref__", "cut", "frames", "last")

    def __init__(self, frames: list[bytes], last: int, cut: bool) -> None:
        self.frames = frames
        #: the position of the last event in the page
        self.last = last
        #: True when the page stopped at its size in bytes before the events read
        self.cut = cut


class Pages:
    """The log's pages for the event streams: read one at a time, shared while in use.

    Streams read the store through here, one page at a time for all of them (so one
    page's events are decoded at any moment, however many streams there are), and a
    page still held by a stream is handed to every other stream asking for the same
    position instead of being read again: N streams over a large event hold one copy
    of its frame, not N. ``executor`` gives the executor that reads the store (the
    API's, which a restart replaces).
    """

    def __init__(self, application: Application, executor: Callable[[], Executor]) -> None:
        self.application = application
        self._executor = executor
        self._shared: weakref.WeakValueDictionary[int, Page] = weakref.WeakValueDictionary()
        # an asyncio.Lock belongs to one event loop: a new one for a new loop (tests
        # start the app on several)
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def after(self, position: int, count: int) -> Page | None:
        """The page after ``position`` (at most ``count`` events), None at the log's end."""
        page = self._shared.get(position)
        if page is not None:
            return page
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        async with self._lock[1]:
            page = self._shared.get(position)
            if page is None:
                page = await loop.run_in_executor(self._executor(), self._read, position, count)
                if page is not None:
                    self._shared[position] = page
        return page

    def _read(self, position: int, count: int) -> Page | None:
        batch = self.application.events(position, count)
        frames: list[bytes] = []
        size = 0
        for env in batch:
            data = _ENCODER.encode(env.to_json())
            frames.append(
                b"id: %d\nevent: %s\ndata: %s\n\n" % (env.position, env.type.encode(), data)
            )
            size += len(frames[-1])
            if size >= _STREAM_PAGE_BYTES:
                break
        if not frames:
            return None
        return Page(frames, batch[len(frames) - 1].position, len(frames) < len(batch))


def _pieces(page: Page) -> Iterator[bytes]:
    """A page's frames in pieces of at most `_STREAM_SEND_BYTES` (small frames joined)."""
    pending: list[bytes] = []
    size = 0
    for frame in page.frames:
        if size + len(frame) > _STREAM_SEND_BYTES and pending:
            yield b"".join(pending)
            pending, size = [], 0
        if len(frame) > _STREAM_SEND_BYTES:
            view = memoryview(frame)
            for start in range(0, len(frame), _STREAM_SEND_BYTES):
                yield bytes(view[start : start + _STREAM_SEND_BYTES])
            continue
        pending.append(frame)
        size += len(frame)
    if pending:
        yield b"".join(pending)


async def sse(pages: Pages, request: Request, after: int) -> AsyncIterator[bytes]:
    """The log as Server-Sent Events: ``id`` is the position, ``event`` the type.

    The log goes out a page at a time (`Pages`), in pieces of at most 64 KiB; each
    piece waits until the server could hand the previous one to the client, so a
    stream holds a bounded part of the log whatever its size and its client's speed.
    """
    store = pages.application.store
    position = after
    count = _STREAM_PAGE
    yield b": stormgen event stream\nretry: 1000\n\n"
    loop = asyncio.get_running_loop()
    idle = 0.0
    while True:
        page = await pages.after(position, count)
        if page is not None:
            idle = 0.0
            # a page cut at its size holds large events: read fewer next time
            count = max(1, len(page.frames)) if page.cut else min(_STREAM_PAGE, count * 2)
            position = page.last
            for piece in _pieces(page):
                yield piece
            del page
            continue
        if await request.is_disconnected():
            return
        started = loop.time()
        await run_in_threadpool(store.wait_for_events, position, 1.0)
        idle += loop.time() - started
        if idle >= _KEEPALIVE_SECONDS:
            idle = 0.0
            yield b": keep-alive\n\n"
