"""Commands per second and latency through the HTTP API, against a floor.

Serves the coffee shop (examples/coffee_shop.storm) with ``stormgen run`` on SQLite and
sends ``PlaceOrder`` commands from 1, 8 and 32 concurrent clients (the policies charge,
pay and open a ticket in the background meanwhile, as in production). The floor is a
minimal FastAPI endpoint served by uvicorn with the same settings, taking the same
``PlaceOrder`` body the way a user would write it with FastAPI: a pydantic model
(benchmarks/peers/common.py: customer, drinks, total, the model's two rules) that parses
and validates it, as the generated service parses and validates its body; then one
SQLite insert of the order as JSON per request (WAL, ``synchronous=FULL``, like the
store; a plain ``INTEGER PRIMARY KEY``, like a new store's events table) and ``201
{"id": ...}``. The load comes from a minimal keep-alive HTTP/1.1 client (httpx capped
the floor at ~950/s on this 2-core machine: the client was the bottleneck, not the
server). Besides throughput and latency each level reports the server's CPU
milliseconds per request and, for the API, how far its views and policies trail the
log: positions behind when the load stops (``consumers_behind_at_end``) and the time
until every one of them has processed the log's last event (``catch_up_ms``; the CPU
spent meanwhile counts in the level's CPU per request). Last, with the service idle,
the time from an accepted order to its row on the pickup display (the policy chain and
the views, ``order_to_pickup_ms``). Prints JSON with ``--json``.

    python benchmarks/bench_http.py --json [--seconds 3] [--clients 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from starlette.concurrency import run_in_threadpool

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "peers"))

from common import PlaceOrder, rejection, serve  # noqa: E402 (the peers' folder, just put first)

MODEL = REPO / "examples" / "coffee_shop.storm"
STORMGEN = [sys.executable, "-m", "stormgen"]
PLACE_ORDER = "/ordering/order/place-order"
ORDER = {"customer": "Ada", "drinks": [{"name": "Latte", "price": "3.50"}], "total": "3.50"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- the floor server


def floor_server(port: int, db: str) -> None:
    """One SQLite insert per request, behind FastAPI on uvicorn (run in a subprocess).

    The body is a ``PlaceOrder`` parsed and validated by FastAPI with a pydantic model,
    as a user would write it (422 when it does not fit, 409 when a rule says no), the
    work the generated service does for its body; the insert keeps the order as JSON.
    """
    conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    lock = threading.Lock()
    app = FastAPI()

    def insert(body: str) -> int:
        with lock:
            cursor = conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
            return int(cursor.lastrowid or 0)

    @app.post("/insert", status_code=201)
    async def endpoint(order: PlaceOrder) -> dict[str, int]:
        problem = rejection(order)
        if problem:
            raise HTTPException(status_code=409, detail=problem)
        return {"id": await run_in_threadpool(insert, order.model_dump_json())}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}  # no "position": the floor has no log

    serve(app, port)  # uvicorn with the settings of `stormgen run`


# ---------------------------------------------------------------- load


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough HTTP for the load.

    httpx costs far more CPU per request than the servers under test, and the client
    shares the machine's two cores with them: the load is sent with pre-built request
    bytes and only the status line and ``Content-Length`` are read from the answers.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, _, port = url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one whole request; return the answer's status and body."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def post_bytes(url: str, path: str, body: dict[str, Any]) -> bytes:
    """The whole bytes of a JSON POST (the same for every request of a load)."""
    data = json.dumps(body).encode()
    host = url.removeprefix("http://")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def load(url: str, path: str, clients: int, seconds: float) -> dict[str, Any]:
    """Send POSTs from ``clients`` concurrent clients for ``seconds``; measure."""
    latencies: list[float] = []
    errors = 0
    raw = post_bytes(url, path, ORDER)

    async def health() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            found: dict[str, Any] = (await client.get("/health")).json()
            return found

    async def worker(connection: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status, _ = await connection.request(raw)
            if status != 201:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    connections = [await Connection.open(url) for _ in range(clients)]
    try:
        before = (await health()).get("position")
        began = time.perf_counter()
        stop_at = began + seconds
        await asyncio.gather(*(worker(c) for c in connections))
        elapsed = time.perf_counter() - began
        end = await health()
        after = end.get("position")
    finally:
        for connection in connections:
            connection.close()
    latencies.sort()
    count = len(latencies)
    return {
        "clients": clients,
        "requests": count,
        "errors": errors,
        "per_second": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if count else None,
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))] * 1000, 2) if count else None,
        # events the log grew by meanwhile (the API only: policies append too)
        "log_events": after - before if before is not None and after is not None else None,
        # how far the slowest view or policy trailed the log when the load stopped
        "consumers_behind_at_end": max(
            (c["behind"] for c in end.get("consumers", {}).values()), default=None
        ),
    }


def journey(url: str, orders: int = 20) -> dict[str, Any]:
    """How long an accepted order takes to reach the pickup display, one order at a time.

    After ``PlaceOrder`` is answered, the policies charge the card, mark the order paid
    and open a ticket, and the ``Display.Pickup`` view shows it: the time until its
    row answers, polled every millisecond (the service otherwise idle).
    """
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(orders):
            started = time.perf_counter()
            answer = client.post(PLACE_ORDER, json=ORDER)
            answer.raise_for_status()
            row = f"/display/views/pickup/{answer.json()['id']}"
            while client.get(row).status_code != 200:
                if time.perf_counter() - started > 30:
                    raise SystemExit("an order did not reach the pickup display in 30 s")
                time.sleep(0.001)
            times.append(time.perf_counter() - started)
    times.sort()
    return {
        "orders": orders,
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(times[-1] * 1000, 1),
    }


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, path: str, clients: int, seconds: float, server: subprocess.Popen[bytes]
) -> dict[str, Any]:
    """:func:`load`, plus the server's CPU time per answered request.

    The machine is shared and noisy: the CPU a request costs the server (background
    consumers included, for the API) moves far less between runs than throughput does.
    For the API, the time its views and policies take to process the log's last event
    after the load stops is measured (``catch_up_ms``), and the CPU they spend
    meanwhile is billed to the level: work deferred past the load is not work saved
    (``server_cpu_ms_per_request_during_load`` leaves it out: the requests' own, and
    whatever of the chain ran during the load).
    """
    before = cpu_seconds(server.pid)
    result = asyncio.run(load(url, path, clients, seconds))
    during = cpu_seconds(server.pid)
    if before is not None and during is not None and result["requests"]:
        # the load alone (for the API: the request path, and what of the chain ran)
        load_ms = (during - before) * 1000 / result["requests"]
        result["server_cpu_ms_per_request_during_load"] = round(load_ms, 3)
    if result["consumers_behind_at_end"] is not None:
        started = time.perf_counter()
        wait_idle(url, poll=0.01)
        result["catch_up_ms"] = round((time.perf_counter() - started) * 1000, 1)
    after = cpu_seconds(server.pid)
    if before is not None and after is not None and result["requests"]:
        result["server_cpu_ms_per_request"] = round((after - before) * 1000 / result["requests"], 3)
    return result


def wait_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited at start")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def launch(argv: list[str], cwd: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a server on a free port; return its URL and process once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
    process = subprocess.Popen(
        [*argv, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_up(url, process)
    return url, process


def wait_idle(url: str, timeout: float = 120, poll: float = 0.1) -> None:
    """Wait until the service's views and policies have caught up with the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumers = httpx.get(f"{url}/health", timeout=10).json()["consumers"]
        if all(c["behind"] == 0 for c in consumers.values()):
            return
        time.sleep(poll)
    raise SystemExit("the service's consumers did not catch up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--seconds", type=float, default=3.0, help="load time per level")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels")
    parser.add_argument("--floor-server", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        floor_server(args.port, args.floor_server)
        return
    levels = [int(n) for n in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="stormgen-bench-") as tmp:
        work = Path(tmp)
        # generate once, outside the timed part
        subprocess.run(
            [sys.executable, "-m", "stormgen", "generate", str(MODEL), "-o", str(work / "shop")],
            check=True,
            capture_output=True,
        )
        api_url, api_server = launch(
            [*STORMGEN, "run", str(work / "shop"), "--store", f"sqlite:///{work / 'events.db'}"],
            work,
        )
        floor_url, floor_server_process = launch(
            [sys.executable, __file__, "--floor-server", str(work / "floor.db")], work
        )
        api: list[dict[str, Any]] = []
        floor: list[dict[str, Any]] = []
        try:
            # warm up (imports, caches, first pages), then alternate the two at each
            # level so both see the same machine; the API starts each level with its
            # views and policies caught up (the work of one level is not billed to the next)
            asyncio.run(load(api_url, PLACE_ORDER, 1, 0.5))
            asyncio.run(load(floor_url, "/insert", 1, 0.5))
            for clients in levels:
                wait_idle(api_url)
                api.append(measure(api_url, PLACE_ORDER, clients, args.seconds, api_server))
                wait_idle(api_url)
                floor.append(
                    measure(floor_url, "/insert", clients, args.seconds, floor_server_process)
                )
            wait_idle(api_url)
            order_to_pickup = journey(api_url)
        finally:
            stop(api_server)
            stop(floor_server_process)
    result: dict[str, Any] = {
        "benchmark": "http",
        "store": "sqlite",
        "seconds_per_level": args.seconds,
        "api": api,
        "floor": floor,
        "order_to_pickup_ms": order_to_pickup,
        "ratio": {
            str(a["clients"]): round(a["per_second"] / f["per_second"], 3)
            if f["per_second"]
            else None
            for a, f in zip(api, floor, strict=True)
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for a, f in zip(api, floor, strict=True):
            print(
                f"{a['clients']:>3} clients: api {a['per_second']:>8}/s "
                f"p50 {a['p50_ms']} ms p99 {a['p99_ms']} ms catch-up {a.get('catch_up_ms')} ms "
                f"| floor {f['per_second']:>8}/s "
                f"p50 {f['p50_ms']} ms p99 {f['p99_ms']} ms | "
                f"ratio {result['ratio'][str(a['clients'])]}"
            )
        trip = order_to_pickup
        print(
            f"order to pickup display: p50 {trip['p50_ms']} ms, max {trip['max_ms']} ms "
            f"({trip['orders']} orders, one at a time)"
        )


if __name__ == "__main__":
    main()
