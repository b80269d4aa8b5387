"""The coffee shop's order flow: the generated service against two hand-written ones.

Three contenders serve the same flow (place an order; the card is charged by a fake
gateway, the order marked paid, a ticket opened, three views updated) over the same
routes, each on uvicorn with the same settings, on SQLite files (WAL,
``synchronous=FULL``), loaded by the same client:

- ``stormgen``: examples/coffee_shop.storm generated and served by ``stormgen run``;
- ``peer``: the flow by hand with FastAPI and Python's ``eventsourcing`` 9.5
  (benchmarks/peers/eventsourcing_peer.py: applications, a process system, projections);
- ``floor``: the flow by hand with FastAPI and ``sqlite3``, the whole chain inside the
  request's one transaction (benchmarks/peers/floor.py).

Their docstrings say what each does per order and why it is the same work. A fourth,
``stormgen-split`` (asked for with ``--contenders``), is the generated service with
``STORMGEN_SINGLE_WRITER=off``: its views' and policies' transactions on their own
thread instead of the command writer's, to compare the two in one run. A fifth,
``stormgen-base``, is the generated service on another stormgen's code (``--baseline
SRC``, a ``src`` folder put first on its ``PYTHONPATH``, say an exported older commit's),
to compare two versions of the runtime side by side in one run.

At 1, 8 and 32 concurrent clients, alternating the contenders at each level so they
share the machine's state, the client sends ``PlaceOrder`` for ``--seconds`` and then
waits until every order it placed has its row on the pickup display (the chain is
complete), watching each contender's ``pickup`` table in its SQLite file. Per level:

- ``orders_per_second``: orders placed / the time from the first request until the last
  order's pickup row exists (the chain complete, not just the request answered);
- ``requests_per_second``, ``p50_ms``/``p99_ms``: the ``PlaceOrder`` requests alone;
- ``pickup_p50_ms``/``pickup_p99_ms``: from sending an order to its pickup row (polled
  every 2 ms);
- ``server_cpu_ms_per_order``: the server's CPU (user + system, all its threads) from
  the first request until the chain is complete, per order;
- ``peak_rss_mib``: the server's peak resident memory so far (VmHWM).

A second table keeps the API-only figure of bench_http.py: ``PlaceOrder`` requests per
second of the generated service against a FastAPI endpoint that parses and validates
the same body with a pydantic model and does one SQLite insert (bench_http.py's floor).
Under load the service's commands go first and its chain trails (docs/http.md,
"Commands first"), so the level also reports how far the chain trailed when the load
stopped (``consumers_behind_at_end``) and how long it took to catch up
(``catch_up_ms``); the CPU spent catching up is billed to the level
(``server_cpu_ms_per_request``). Every generated service asked for (``stormgen``,
``stormgen-split``, ``stormgen-base``) takes its turn at each level with the floor
(``api_only.services``, their ratios to the floor in ``api_only.ratios``);
``--api-only`` runs this table alone. The chain may trail by
``STORMGEN_CHAIN_LAG`` seconds (10) and ``STORMGEN_CHAIN_BACKLOG`` events (100,000)
before it runs in step with the commands again: ``--chain-lag S`` and
``--chain-backlog N`` set them for the generated services (a small S or N puts the
chain in step early in the level; huge ones hold it back for the whole level, leaving
the request path alone, as the floor is). ``ratio`` gives stormgen/peer and stormgen/floor
side by side. The last line is JSON.

    python benchmarks/bench_service.py [--seconds 5] [--clients 1,8,32] [--quick]
        [--contenders stormgen,peer,floor] [--baseline SRC] [--api-only]
        [--chain-lag S] [--chain-backlog N] [--profile SVG]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_http import (
    MODEL,
    ORDER,
    PLACE_ORDER,
    STORMGEN,
    Connection,
    cpu_seconds,
    free_port,
    launch,
    measure,
    post_bytes,
    stop,
    wait_up,
)

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
ID = re.compile(rb'"id":\s*"([0-9a-f-]{36})"')


@dataclass
class Contender:
    """A served contender: where its pickup display lives, and its server process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    pickup_db: Path
    pickup_table: str
    #: every order placed so far (the pickup table must reach this count between levels)
    placed: int = 0
    levels: list[dict[str, Any]] = field(default_factory=list)


def start(
    names: list[str],
    work: Path,
    baseline: str | None = None,
    backlog: int | None = None,
    lag: float | None = None,
) -> list[Contender]:
    """Start the contenders' servers side by side; return them once they all answer
    (``stormgen-base`` on the code in ``baseline``; the generated services with
    ``STORMGEN_CHAIN_BACKLOG=backlog`` and ``STORMGEN_CHAIN_LAG=lag`` when given)."""
    started: list[tuple[str, str, subprocess.Popen[bytes], Path, str]] = []
    for name in names:
        folder = work / name
        folder.mkdir()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
        if name.startswith("stormgen"):
            db = folder / "events.db"
            if name == "stormgen-split":
                env["STORMGEN_SINGLE_WRITER"] = "off"
            if backlog is not None:
                env["STORMGEN_CHAIN_BACKLOG"] = str(backlog)
            if lag is not None:
                env["STORMGEN_CHAIN_LAG"] = str(lag)
            if name == "stormgen-base" and baseline is not None:
                env["PYTHONPATH"] = os.pathsep.join(
                    [baseline, *filter(None, [env.get("PYTHONPATH")])]
                )
            argv = [*STORMGEN, "run", str(work / "shop"), "--store", f"sqlite:///{db}"]
            table = "view_display_pickup"
        else:
            script = {"peer": "eventsourcing_peer.py", "floor": "floor.py"}[name]
            argv = [sys.executable, str(PEERS / script), str(folder)]
            db = folder / ("views.db" if name == "peer" else "floor.db")
            table = "pickup"
        process = subprocess.Popen(
            [*argv, "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append((name, f"http://127.0.0.1:{port}", process, db, table))
    for _, url, process, _, _ in started:
        wait_up(url, process)
    return [Contender(*item) for item in started]


class PickupWatch:
    """Notes when each order's pickup row appears (a thread polling the table)."""

    def __init__(self, contender: Contender) -> None:
        self.conn = sqlite3.connect(
            f"file:{contender.pickup_db}?mode=ro", uri=True, check_same_thread=False
        )
        self.table = contender.pickup_table
        self.seen: dict[str, float] = {}
        (self.last,) = self.conn.execute(
            f"SELECT COALESCE(MAX(rowid), 0) FROM {self.table}"
        ).fetchone()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        query = f"SELECT rowid, key FROM {self.table} WHERE rowid > ? ORDER BY rowid"
        while not self.stopping.is_set():
            rows = self.conn.execute(query, (self.last,)).fetchall()
            now = time.perf_counter()
            for rowid, key in rows:
                self.seen[key] = now
                self.last = rowid
            time.sleep(0.002)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.conn.close()

    def count(self) -> int:
        (found,) = self.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()
        return int(found)


def wait_complete(contender: Contender, timeout: float = 300) -> None:
    """Wait until the pickup display has a row for every order placed so far."""
    conn = sqlite3.connect(f"file:{contender.pickup_db}?mode=ro", uri=True)
    deadline = time.monotonic() + timeout
    try:
        while conn.execute(f"SELECT COUNT(*) FROM {contender.pickup_table}").fetchone()[0] < (
            contender.placed
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"{contender.name}: orders did not reach the pickup display")
            time.sleep(0.01)
    finally:
        conn.close()


async def place_orders(url: str, clients: int, seconds: float) -> tuple[list[Any], float, int]:
    """PlaceOrder from ``clients`` clients for ``seconds``: (id, sent, answered) each."""
    raw = post_bytes(url, PLACE_ORDER, ORDER)
    orders: list[tuple[str, float, float]] = []
    errors = 0

    async def worker(connection: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            sent = time.perf_counter()
            status, body = await connection.request(raw)
            found = ID.search(body)
            if status != 201 or found is None:
                errors += 1
                continue
            orders.append((found.group(1).decode(), sent, time.perf_counter()))

    connections = [await Connection.open(url) for _ in range(clients)]
    try:
        began = time.perf_counter()
        stop_at = began + seconds
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return orders, began, errors


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * share))] * 1000, 2)


def peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def level(contender: Contender, clients: int, seconds: float) -> dict[str, Any]:
    """One contender at one level: load, then wait for every chain to complete."""
    wait_complete(contender)
    watch = PickupWatch(contender)
    cpu_before = cpu_seconds(contender.process.pid)
    try:
        orders, began, errors = asyncio.run(place_orders(contender.url, clients, seconds))
        answered = max((o[2] for o in orders), default=began)
        contender.placed += len(orders)
        deadline = time.monotonic() + 300
        while any(order_id not in watch.seen for order_id, _, _ in orders):
            if time.monotonic() > deadline:
                raise SystemExit(f"{contender.name}: orders did not reach the pickup display")
            time.sleep(0.005)
    finally:
        watch.close()
    # a synchronous chain's last row may be seen before its answer reaches the client
    complete = max([answered, *(watch.seen[o[0]] for o in orders)])
    cpu_after = cpu_seconds(contender.process.pid)
    count = len(orders)
    requests = [o[2] - o[1] for o in orders]
    journeys = [watch.seen[o[0]] - o[1] for o in orders]
    result: dict[str, Any] = {
        "clients": clients,
        "orders": count,
        "errors": errors,
        "orders_per_second": round(count / (complete - began), 1) if count else 0.0,
        "requests_per_second": round(count / (answered - began), 1) if count else 0.0,
        "p50_ms": round(statistics.median(requests) * 1000, 2) if count else None,
        "p99_ms": percentile(requests, 0.99),
        "pickup_p50_ms": round(statistics.median(journeys) * 1000, 2) if count else None,
        "pickup_p99_ms": percentile(journeys, 0.99),
        "drain_ms": round((complete - answered) * 1000, 1),
        "server_cpu_ms_per_order": None,
        "peak_rss_mib": peak_rss_mib(contender.process.pid),
    }
    if cpu_before is not None and cpu_after is not None and count:
        result["server_cpu_ms_per_order"] = round((cpu_after - cpu_before) * 1000 / count, 3)
    return result


def profile(contender: Contender, svg: str) -> subprocess.Popen[bytes]:
    """Attach py-spy to the server (each thread apart, CPU only) until SIGINT."""
    profiler = subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(contender.process.pid),
            "--rate",
            "250",
            "--threads",
            "--format",
            "flamegraph",
            "--output",
            svg,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # py-spy attached before the load begins
    return profiler


def ratios(mine: list[dict[str, Any]], theirs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Level by level (a level repeated in ``--clients`` is keyed ``8``, ``8#2``, ...)."""
    out: dict[str, Any] = {}
    for a, b in zip(mine, theirs, strict=True):
        name, n = str(a["clients"]), 1
        while name in out:
            n += 1
            name = f"{a['clients']}#{n}"
        out[name] = round(a[key] / b[key], 3) if b[key] else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per level")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: 0.2 s at 1 and 8 clients"
    )
    parser.add_argument(
        "--contenders",
        default="stormgen,peer,floor",
        help="which to run: stormgen, peer, floor, stormgen-split (the generated "
        "service with STORMGEN_SINGLE_WRITER=off: its passes on a thread of their own) "
        "and stormgen-base (the generated service on the code of --baseline)",
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="the src folder of another stormgen (say `git archive COMMIT | tar -x -C "
        "DIR`, then DIR/src) that stormgen-base runs on",
    )
    parser.add_argument(
        "--chain-lag",
        type=float,
        metavar="S",
        help="STORMGEN_CHAIN_LAG for the generated services (how many seconds their chain "
        "may trail while their commands go first)",
    )
    parser.add_argument(
        "--chain-backlog",
        type=int,
        metavar="N",
        help="STORMGEN_CHAIN_BACKLOG for the generated services (how many events their "
        "chain may trail while their commands go first; a huge N holds it back for the "
        "whole load: the request path alone)",
    )
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="only the API-only table (no full-chain levels)",
    )
    parser.add_argument(
        "--profile",
        metavar="SVG",
        help="py-spy flame graph of the stormgen server over its levels (stormgen only)",
    )
    args = parser.parse_args()
    seconds = 0.2 if args.quick else args.seconds
    levels = [1, 8] if args.quick else [int(n) for n in args.clients.split(",")]
    names = ["stormgen"] if args.profile else args.contenders.split(",")
    if "stormgen-base" in names and not args.baseline:
        parser.error("stormgen-base needs --baseline SRC")
    with tempfile.TemporaryDirectory(prefix="stormgen-service-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [*STORMGEN, "generate", str(MODEL), "-o", str(work / "shop")],
            check=True,
            capture_output=True,
        )
        contenders: list[Contender] = []
        api: dict[str, list[dict[str, Any]]] = {}
        insert: list[dict[str, Any]] = []
        insert_url = insert_process = None
        try:
            contenders.extend(start(names, work, args.baseline, args.chain_backlog, args.chain_lag))
            # warm up (imports, caches, first pages) outside the measured levels
            for contender in [] if args.quick else contenders:
                level(contender, 1, 0.5)
            profiler = profile(contenders[0], args.profile) if args.profile else None
            for clients in [] if args.api_only else levels:
                for contender in contenders:
                    contender.levels.append(level(contender, clients, seconds))
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(60)
            # the API-only table: PlaceOrder answered (the chain in the background) vs
            # the floor's validated insert, as bench_http.py measures them; every
            # generated service and the floor take turns at each level
            served = [c for c in contenders if c.name.startswith("stormgen")]
            if served:
                insert_url, insert_process = launch(
                    [
                        sys.executable,
                        str(HERE / "bench_http.py"),
                        "--floor-server",
                        str(work / "insert.db"),
                    ],
                    work,
                )
                for n, clients in enumerate(levels):
                    turns: list[Contender | None] = [*served, None]
                    for contender in turns[n % len(turns) :] + turns[: n % len(turns)]:
                        if contender is None:
                            insert.append(
                                measure(insert_url, "/insert", clients, seconds, insert_process)
                            )
                            continue
                        wait_complete(contender)
                        row = measure(
                            contender.url, PLACE_ORDER, clients, seconds, contender.process
                        )
                        api.setdefault(contender.name, []).append(row)
                        contender.placed += row["requests"]
        finally:
            for contender in contenders:
                stop(contender.process)
            if insert_process is not None:
                stop(insert_process)
    by_name = {c.name: c.levels for c in contenders}
    result: dict[str, Any] = {
        "benchmark": "service",
        "store": "sqlite (WAL, synchronous=FULL)",
        "seconds_per_level": seconds,
        "chain_backlog": args.chain_backlog,
        "chain_lag": args.chain_lag,
        "contenders": by_name,
        "ratio": {},
        "api_only": {
            "stormgen": api.get("stormgen", []),
            "insert_floor": insert,
            "ratio": ratios(api["stormgen"], insert, "per_second") if "stormgen" in api else {},
            # every generated service's rows and ratios to the floor (stormgen's too)
            "services": api,
            "ratios": {name: ratios(rows, insert, "per_second") for name, rows in api.items()},
        },
    }
    mine = by_name.get("stormgen")
    for other in ("peer", "floor", "stormgen-split", "stormgen-base"):
        if mine and other in by_name:
            result["ratio"][f"stormgen/{other}"] = ratios(mine, by_name[other], "orders_per_second")
    print_table(result)
    print(json.dumps(result))


def print_table(result: dict[str, Any]) -> None:
    head = (
        f"{'contender':<14} {'clients':>7} {'orders/s':>9} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'pickup p50':>10} {'pickup p99':>10} {'cpu ms/order':>12} {'rss MiB':>8}"
    )
    print(head)
    for name, levels in result["contenders"].items():
        for row in levels:
            print(
                f"{name:<14} {row['clients']:>7} {row['orders_per_second']:>9} "
                f"{row['requests_per_second']:>8} {row['p50_ms']!s:>7} {row['p99_ms']!s:>7} "
                f"{row['pickup_p50_ms']!s:>10} {row['pickup_p99_ms']!s:>10} "
                f"{row['server_cpu_ms_per_order']!s:>12} {row['peak_rss_mib']!s:>8}"
            )
    for pair, by_level in result["ratio"].items():
        print(f"{pair} orders/s: {by_level}")
    api = result["api_only"]
    for name, rows in api["services"].items():
        by_level = api["ratios"][name]
        for (level, ratio), a, f in zip(by_level.items(), rows, api["insert_floor"], strict=True):
            print(
                f"API only, {name}, {level:>4} clients: PlaceOrder {a['per_second']}/s "
                f"(p99 {a['p99_ms']} ms, chain {a['consumers_behind_at_end']} behind at the "
                f"end, caught up in {a.get('catch_up_ms')} ms, CPU "
                f"{a.get('server_cpu_ms_per_request')} ms/order, "
                f"{a.get('server_cpu_ms_per_request_during_load')} during the load) vs the "
                f"floor's validated insert {f['per_second']}/s (p99 {f['p99_ms']} ms, CPU "
                f"{f.get('server_cpu_ms_per_request')} ms): {ratio}"
            )


if __name__ == "__main__":
    main()
