"""The server's memory with many event-stream clients over a log holding a large event.

Serves the coffee shop (examples/coffee_shop.storm) with ``stormgen run`` on SQLite,
puts one order with a drink name of ``--event-mb`` MB in the log (through the API,
with the body and string limits raised for that first run), restarts the server with
the default limits and opens ``--clients`` connections to ``/events/stream?after=0``
that read the response's first bytes and then nothing more (a slow client). Reports
the server's resident memory (VmRSS) before the streams, with them open, and the
growth per stream. Run it on older code with ``PYTHONPATH=<old checkout>/src``.

    python benchmarks/bench_stream_memory.py [--event-mb 5] [--clients 1,10,20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "examples" / "coffee_shop.storm"
STORMGEN = [sys.executable, "-m", "stormgen"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Server:
    """``stormgen run`` on a SQLite file, with ``STORMGEN_*`` settings from ``env``."""

    def __init__(self, workdir: Path, store: str, **env: str) -> None:
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
        environ.update(env)
        self.process = subprocess.Popen(
            [*STORMGEN, "run", str(MODEL), "--store", store, "--port", str(self.port)],
            cwd=workdir,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(self.url + "/health", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def slow_stream(port: int) -> socket.socket | None:
    """A stream client that reads its first event's first bytes, then nothing.

    None when the server refused it (503: more streams than it serves).
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /events/stream?after=0 HTTP/1.1\r\nHost: bench\r\n\r\n")
    received = b""
    while b"id: " not in received:
        chunk = sock.recv(4096)
        if not chunk or received.startswith(b"HTTP/1.1 503"):
            sock.close()
            return None
        received += chunk
    return sock


def settle(pid: int, seconds: float = 1.0) -> float:
    """The server's RSS once it stops growing (sampled every 0.1 s, for ``seconds``)."""
    last, stable_since = rss_mib(pid), time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() - stable_since < seconds and time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_mib(pid)
        if abs(now - last) > 1:
            last, stable_since = now, time.monotonic()
    return last


def measure(workdir: Path, store: str, clients: int) -> dict[str, Any]:
    server = Server(workdir, store)
    try:
        # one client first, closed: the server's own first-use costs are not counted
        first = slow_stream(server.port)
        if first is not None:
            first.close()
        before = settle(server.process.pid)
        opened = [slow_stream(server.port) for _ in range(clients)]
        served = [sock for sock in opened if sock is not None]
        during = settle(server.process.pid)
        for sock in served:
            sock.close()
        return {
            "clients": clients,
            "served": len(served),
            "rss_before_mib": round(before, 1),
            "rss_with_streams_mib": round(during, 1),
            "growth_mib": round(during - before, 1),
            "growth_per_stream_mib": round((during - before) / max(len(served), 1), 2),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--event-mb", type=float, default=5.0)
    parser.add_argument("--clients", default="1,10,20")
    args = parser.parse_args()
    size = int(args.event_mb * 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = f"sqlite:///{workdir / 'events.db'}"
        big = {
            "customer": "Ada",
            "drinks": [{"name": "x" * size, "price": "1"}],
            "total": "1",
        }
        writer = Server(
            workdir,
            store,
            STORMGEN_MAX_BODY_BYTES=str(size + 10_000),
            STORMGEN_MAX_STRING_LENGTH=str(size + 10),
        )
        try:
            answer = httpx.post(writer.url + "/ordering/order/place-order", json=big, timeout=120)
            answer.raise_for_status()
        finally:
            writer.stop()
        levels = [measure(workdir, store, int(n)) for n in args.clients.split(",")]
    print(json.dumps({"event_mb": args.event_mb, "levels": levels}))


if __name__ == "__main__":
    main()
