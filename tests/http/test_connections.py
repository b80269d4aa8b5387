"""The server's connections write each answer in one piece (real sockets, real transports)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from stormgen.runtime.http.connections import _Coalescing


async def _connected() -> tuple[asyncio.Transport, socket.socket]:
    """An event loop's transport on one end of a socket pair, the other end to read."""
    ours, theirs = socket.socketpair()
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, ours)
    theirs.setblocking(False)
    return transport, theirs


async def _read(peer: socket.socket, size: int) -> bytes:
    """``size`` bytes from the peer, the event loop running meanwhile (it sends them)."""
    received = b""
    for _ in range(100_000):
        try:
            received += peer.recv(size - len(received))
        except BlockingIOError:
            await asyncio.sleep(0.001)
        if len(received) >= size:
            break
    return received


def _nothing_yet(peer: socket.socket) -> bool:
    try:
        peer.recv(1024)
    except BlockingIOError:
        return True
    return False


def test_a_write_is_held_and_sent_with_the_next_or_when_flushed() -> None:
    async def run() -> None:
        transport, peer = await _connected()
        writes = _Coalescing(transport, asyncio.get_running_loop())
        writes.write(b"HTTP/1.1 201 Created\r\n\r\n")
        writes.write(b"")
        assert writes.get_write_buffer_size() == 24
        assert _nothing_yet(peer)
        writes.write(memoryview(b'{"id": 1}'))  # with the one held, at once
        assert peer.recv(1024) == b'HTTP/1.1 201 Created\r\n\r\n{"id": 1}'
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert _nothing_yet(peer)
        writes.flush()  # the response is complete
        assert peer.recv(1024) == b"HTTP/1.1 200 OK\r\n\r\n"
        writes.flush()  # nothing held: nothing sent
        assert _nothing_yet(peer)
        big = b"x" * (1 << 20)  # a large write is not copied to join the held one
        writes.write(b"head")
        writes.write(big)
        assert writes.get_write_buffer_size() == transport.get_write_buffer_size()
        assert await _read(peer, len(big) + 4) == b"head" + big
        writes.close()
        peer.close()

    asyncio.run(run())


def test_held_writes_go_out_at_the_loops_next_turn() -> None:
    # a streamed answer's head, say: nobody flushes it, it is not kept waiting
    async def run() -> None:
        transport, peer = await _connected()
        writes = _Coalescing(transport, asyncio.get_running_loop())
        writes.write(b"data: 1\n\n")
        assert _nothing_yet(peer)
        await asyncio.sleep(0)
        assert peer.recv(1024) == b"data: 1\n\n"
        writes.close()
        peer.close()

    asyncio.run(run())


@pytest.mark.parametrize("ending", ["close", "write_eof"])
def test_closing_sends_what_is_held_first(ending: str) -> None:
    async def run() -> None:
        transport, peer = await _connected()
        writes = _Coalescing(transport, asyncio.get_running_loop())
        writes.write(b"last words")
        getattr(writes, ending)()
        for _ in range(10):
            await asyncio.sleep(0)
        peer.setblocking(True)
        peer.settimeout(5)
        assert peer.recv(1024) == b"last words"
        assert peer.recv(1024) == b""  # and then the end
        transport.close()
        peer.close()

    asyncio.run(run())
