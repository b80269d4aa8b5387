"""How far the chain trails the log under a steady, moderate load (commands first).

Serves the coffee shop (examples/coffee_shop.storm) with ``stormgen run`` on SQLite and,
at each level ``CLIENTSxRATE``, sends ``PlaceOrder`` from CLIENTS clients, each at RATE
orders per second on average with random (exponential) gaps, an open loop: a client
sends its next order at its time whether or not the last was answered quickly (on its
one keep-alive connection, so never two of its own at once). Under a moderate load the
API is not crowded without a break, so the single writer keeps the chain (policies,
processes, views) in step with the commands (docs/http.md, "Commands first"); a closed
loop of several clients (as in bench_service.py) is what holds the chain back.

Per level: orders placed, request p50/p99, how far the slowest view or policy trailed
the log when the load stopped (``chain_behind_at_end``, events, from ``/health``) and
the time it then took to catch up (``catch_up_ms``). The last line is JSON.

    python benchmarks/bench_chain_lag.py [--seconds 6] [--levels 1x200,8x20,16x20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench_http import (
    MODEL,
    ORDER,
    PLACE_ORDER,
    STORMGEN,
    Connection,
    launch,
    post_bytes,
    stop,
    wait_idle,
)


async def open_loop(url: str, clients: int, rate: float, seconds: float) -> list[float]:
    """Each client sends PlaceOrder at `rate` per second on average; the latencies."""
    raw = post_bytes(url, PLACE_ORDER, ORDER)
    latencies: list[float] = []

    async def client(connection: Connection) -> None:
        end = time.perf_counter() + seconds
        due = time.perf_counter() + random.expovariate(rate)
        while due < end:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            due += random.expovariate(rate)
            sent = time.perf_counter()
            status, _ = await connection.request(raw)
            if status == 201:
                latencies.append(time.perf_counter() - sent)

    connections = [await Connection.open(url) for _ in range(clients)]
    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return latencies


def level(url: str, clients: int, rate: float, seconds: float) -> dict[str, Any]:
    wait_idle(url, timeout=300, poll=0.05)
    latencies = sorted(asyncio.run(open_loop(url, clients, rate, seconds)))
    consumers = httpx.get(f"{url}/health", timeout=10).json()["consumers"]
    behind = max((c["behind"] for c in consumers.values()), default=0)
    started = time.perf_counter()
    wait_idle(url, timeout=300, poll=0.01)
    return {
        "clients": clients,
        "rate_per_client": rate,
        "orders": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": (round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None),
        "chain_behind_at_end": behind,
        "catch_up_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="load time per level")
    parser.add_argument(
        "--levels",
        default="1x200,8x20,16x20",
        help="CLIENTSxRATE, comma-separated (RATE: orders per second per client)",
    )
    args = parser.parse_args()
    levels = [(int(c), float(r)) for c, r in (item.split("x") for item in args.levels.split(","))]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stormgen-chain-lag-") as tmp:
        work = Path(tmp)
        argv = [*STORMGEN, "run", str(MODEL), "--store", f"sqlite:///{work / 'events.db'}"]
        url, server = launch(argv, work)
        try:
            for clients, rate in levels:
                results.append(level(url, clients, rate, args.seconds))
                row = results[-1]
                print(
                    f"{clients:>3} clients x {rate:g}/s: {row['orders']} orders, p50 "
                    f"{row['p50_ms']} ms, p99 {row['p99_ms']} ms, chain "
                    f"{row['chain_behind_at_end']} events behind at the end, caught up in "
                    f"{row['catch_up_ms']} ms",
                    flush=True,
                )
        finally:
            stop(server)
    print(json.dumps({"benchmark": "chain_lag", "store": "sqlite", "levels": results}))


if __name__ == "__main__":
    main()
