"""How long the server keeps slow clients' connections: partial headers, partial bodies.

Serves the coffee shop with ``stormgen run`` on SQLite (the default limits, or the
``STORMGEN_*`` variables set when it runs), opens ``--clients`` connections that send
half a request's headers and as many that send full headers and one byte of a
100-byte body, then waits up to ``--wait`` seconds for the server to close each one.
Reports how many it closed and when (seconds after they were opened). Run it on
older code with ``PYTHONPATH=<old checkout>/src``.

    python benchmarks/bench_slow_clients.py [--clients 300] [--wait 40]
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import tempfile
import time
from pathlib import Path

from bench_stream_memory import Server

PLACE = b"POST /ordering/order/place-order HTTP/1.1\r\nHost: bench\r\n"
PARTIAL = {
    "partial_headers": PLACE,
    "partial_bodies": PLACE + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--wait", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), f"sqlite:///{Path(tmp) / 'events.db'}")
        try:
            selector = selectors.DefaultSelector()
            started = time.monotonic()
            for kind, request in PARTIAL.items():
                for _ in range(args.clients):
                    sock = socket.create_connection(("127.0.0.1", server.port))
                    sock.sendall(request)
                    sock.setblocking(False)
                    selector.register(sock, selectors.EVENT_READ, kind)
            closed: dict[str, list[float]] = {kind: [] for kind in PARTIAL}
            remaining = 2 * args.clients
            while remaining and time.monotonic() - started < args.wait:
                for key, _ in selector.select(0.5):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        if sock.recv(65536):
                            continue
                    except ConnectionResetError:
                        pass
                    closed[key.data].append(time.monotonic() - started)
                    selector.unregister(sock)
                    sock.close()
                    remaining -= 1
            for key in list(selector.get_map().values()):
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
        finally:
            server.stop()
    report = {
        kind: {
            "clients": args.clients,
            "closed_by_server": len(times),
            "first_closed_s": round(min(times), 1) if times else None,
            "last_closed_s": round(max(times), 1) if times else None,
        }
        for kind, times in closed.items()
    }
    print(json.dumps({"wait_s": args.wait, **report}))


if __name__ == "__main__":
    main()
