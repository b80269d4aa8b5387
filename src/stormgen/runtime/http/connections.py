"""uvicorn's HTTP protocol with the limits it lacks: a header timeout, a cap on connections.

uvicorn closes idle keep-alive connections but waits for ever for a request's headers
and for a body nothing reads, and accepts every connection: enough slow clients run
the process out of file descriptors. :func:`limited_protocol` returns uvicorn's own
protocol class (httptools when installed, else h11) with three checks added:

- a connection past ``limits.max_connections`` is answered 503 and closed at once;
- a request whose headers are not all in ``limits.header_timeout`` seconds after its
  first byte (or after the connection opened) is answered 408 and closed;
- a request whose body is not all in ``limits.body_timeout`` seconds (plus a second,
  so the application's own 408 goes first when it reads the body) is closed.

It also writes each answer in one piece: uvicorn writes a response's head and its body
apart, two ``send`` calls (two TCP segments) for every answer. A write is held back
(:class:`_Coalescing`) until the next one, the response's completion or the event
loop's next turn, and goes out with it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from typing import Any

from stormgen.runtime.http.limits import Limits

log = logging.getLogger("stormgen.http")

#: seconds past ``body_timeout`` before the server closes a connection whose body stalls
_BODY_GRACE = 1.0
#: the largest write joined to a held one (a larger one goes out apart: no copy of it)
_JOIN_AT_MOST = 64 * 1024


def _answer(status: int, reason: str, error: str, message: str, *extra: str) -> bytes:
    body = json.dumps({"status": status, "error": error, "message": message}).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _base() -> type[Any]:
    """The protocol uvicorn's ``http="auto"`` picks: httptools when installed, else h11."""
    if importlib.util.find_spec("httptools") is None:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return HttpToolsProtocol


class _Coalescing:
    """A transport that holds a write back until the next one, to send both at once.

    One write at most is held (a response's head, say): the next write goes out with
    it, in one piece (each apart when that one is large: nothing big is copied), and
    so do a flush (`flush`: the protocol's response is complete), the event loop's
    next turn and the transport's end. Everything else is the transport's own, flow
    control included: nothing piles up here.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        held = self._held
        if not held:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)  # a streamed response's head, say
            return
        self._held = b""
        if len(data) > _JOIN_AT_MOST:
            self._transport.write(held)
            self._transport.write(data)
        else:
            self._transport.write(held + data)

    def writelines(self, chunks: Any) -> None:
        for data in chunks:
            self.write(data)

    def flush(self) -> None:
        """Send the write held back, if any."""
        held = self._held
        if held:
            self._held = b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = b""
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def limited_protocol(limits: Limits) -> type[Any]:
    """uvicorn's HTTP protocol class with ``limits``' connection cap and timeouts."""
    base = _base()
    busy = _answer(
        503,
        "Service Unavailable",
        "unavailable",
        f"the server holds {limits.max_connections} connections, the most it serves; retry later",
        "retry-after: 1",
    )
    late = _answer(
        408,
        "Request Timeout",
        "timeout",
        f"the request headers did not arrive within {limits.header_timeout:g} s",
    )

    class LimitedProtocol(base):  # type: ignore[misc, valid-type]
        """uvicorn's protocol, with a connection cap and request timeouts."""

        def connection_made(self, transport: asyncio.Transport) -> None:
            self._waiting_since: Any = None  # the cycle the timer waits to see replaced
            self._timer: asyncio.TimerHandle | None = None
            over = len(self.connections) >= limits.max_connections
            self._writes = _Coalescing(transport, self.loop)
            super().connection_made(self._writes)
            if over:
                log.warning("refused a connection: %d are open", len(self.connections) - 1)
                transport.write(busy)
                transport.close()
                return
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._check()

        def on_response_complete(self) -> None:
            self._writes.flush()  # the whole answer, head and body, in one write
            super().on_response_complete()
            self._check()

        # -- timers ----------------------------------------------------------------------
        def _check(self) -> None:
            """Arm the timer that fits where the connection is (headers, body, neither)."""
            if self.transport.is_closing():
                self._cancel()
                return
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                # between requests: uvicorn's keep-alive timer covers an idle
                # connection; once a byte of the next request arrives, it is ours
                if self.timeout_keep_alive_task is None and self._waiting_since is not cycle:
                    self._await_headers()
                return
            if cycle.more_body and self._waiting_since is not cycle:
                self._await_body(cycle)
            elif not cycle.more_body and self._timer is not None:
                self._cancel()

        def _await_headers(self) -> None:
            self._cancel()
            self._waiting_since = self.cycle
            self._timer = self.loop.call_later(limits.header_timeout, self._headers_late)

        def _await_body(self, cycle: Any) -> None:
            self._cancel()
            self._waiting_since = cycle
            self._timer = self.loop.call_later(
                limits.body_timeout + _BODY_GRACE, self._body_late, cycle
            )

        def _cancel(self) -> None:
            if getattr(self, "_timer", None) is not None:
                self._timer.cancel()  # type: ignore[union-attr]
            self._timer = None
            self._waiting_since = None

        def _headers_late(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if self.cycle is self._waiting_since or self.cycle.response_complete:
                self.transport.write(late)
                self.transport.close()

        def _body_late(self, cycle: Any) -> None:
            self._timer = None
            if self.cycle is cycle and cycle.more_body and not self.transport.is_closing():
                self.transport.close()

    return LimitedProtocol
