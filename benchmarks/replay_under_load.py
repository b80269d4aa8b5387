"""`stormgen replay` in the middle of traffic: do the views the service leaves hold every order?

Serves the coffee shop (examples/coffee_shop.storm) with ``stormgen run`` on a store
(a SQLite file by default, or ``--store URL``, e.g. a PostgreSQL schema), has
``--clients`` threads place orders over HTTP, runs ``stormgen replay`` as a process of
its own once ``--warmup`` orders are in, lets the orders go on until it is done, waits
until ``/health`` says every consumer has caught up and then compares the views the
service left with a fresh rebuild from the log (row counts, and the orders the daily
sales counted). The adversarial run of issue 18 found 1,999 of 5,101 pickup rows there.

    python benchmarks/replay_under_load.py [--store URL] [--clients 8] [--warmup 2000]

Prints JSON; exits 1 when a view differs from the rebuild.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import test_e2e_replay_live as live  # noqa: E402
from e2e_support import MODEL, Server, stormgen  # noqa: E402


def _views(application: Any) -> dict[str, Any]:
    counts: dict[str, Any] = {n: len(application.view_rows(n)) for n in sorted(application.views)}
    counts["daily_sales_orders"] = sum(
        row["orders"] for row in application.view_rows("Ordering.DailySales")
    )
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--clients", type=int, default=8, help="client threads")
    parser.add_argument("--warmup", type=int, default=2000, help="orders before the replay")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="replay-under-load-"))
    store = args.store or f"sqlite:///{workdir / 'events.db'}"
    live.CLIENTS = args.clients
    server = Server(workdir, store).start(timeout=120)
    try:
        with live.Traffic(server) as traffic:
            while traffic.count() < args.warmup and not traffic.errors:
                time.sleep(0.05)
            started = time.monotonic()
            replayed = stormgen("replay", str(MODEL), "--store", store, cwd=workdir, timeout=900)
            took = time.monotonic() - started
            time.sleep(0.5)  # orders go on after it, too
        with server.client() as client:
            health = server.wait_idle(client, timeout=300)
    finally:
        server.stop()
    sys.path.insert(0, str(workdir / ".stormgen" / "build" / "coffee_shop" / "src"))
    open_application = importlib.import_module("coffee_shop.app").open_application
    with open_application(store) as application:
        placed = sum(1 for e in application.events() if e.type == "Ordering.OrderPlaced")
        left = _views(application)
        application.replay()
        rebuilt = _views(application)
    report = {
        "store": store.split("?")[0],
        "clients": args.clients,
        "replay_exit": replayed.returncode,
        "replay_said": replayed.stderr.strip().splitlines()[-1:],
        "replay_s": round(took, 1),
        "log_events": health["position"],
        "orders_placed": placed,
        "client_errors": traffic.errors[:3],
        "health_status": health["status"],
        "views_left_by_the_service": left,
        "views_rebuilt_from_the_log": rebuilt,
    }
    print(json.dumps(report, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if left == rebuilt and replayed.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
