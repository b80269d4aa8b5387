"""What an order costs the coffee shop in-process: its API command, then its policy chain.

Runs the generated coffee shop (the golden record of ``examples/coffee_shop.storm``,
``tests/golden/coffee_shop``) on a SQLite file, without HTTP: ``PlaceOrder`` commands
in groups (``Application.handle_together``, as the API's writer thread runs them),
then consumer passes (``Consumers.run_pass``, as the background thread runs them)
until the views and policies have caught up: the fake gateway's charge, ``MarkPaid``,
``OpenTicket`` and four view updates per order. Reports the CPU milliseconds per
order of each side (best and median of ``--repeat`` runs, each on a fresh store) and
the SQLite statements per order of the passes, by kind (a trace callback on the
connection).

The store lives in /dev/shm when it exists, so fsync is free and the figures are
software cost (``synchronous=FULL`` as by default). ``bench_http.py`` measures the
same work through the API against its floor.

Usage: ``python benchmarks/bench_consumers.py [--orders N] [--group N] [--repeat N]``
(prints JSON)
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "golden" / "coffee_shop" / "src"))

from coffee_shop.app import open_application  # noqa: E402
from coffee_shop.ordering.order import PlaceOrder  # noqa: E402
from coffee_shop.shared import Drink  # noqa: E402

from stormgen.runtime import Application  # noqa: E402

_LITERAL = re.compile(r"'[^']*'|\b\d+\b")


def place(app: Application, count: int) -> None:
    """``count`` orders (each a new id) in one group commit."""
    drinks = (Drink(name="Latte", price=Decimal("3.50")),)
    orders = [
        PlaceOrder(customer="Ada", drinks=drinks, total=Decimal("3.50")) for _ in range(count)
    ]
    outcomes = app.handle_together([lambda o=o: app.handle(o) for o in orders])
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome


def catch_up(app: Application, on_sql: Callable[[str], None] | None = None) -> None:
    """Run passes until every consumer has the log's last event; ``on_sql`` sees the
    statements of the passes (not this loop's own look at the log's head)."""
    conn = app.store._conn()  # type: ignore[attr-defined]  # this thread's connection
    while True:
        conn.set_trace_callback(on_sql)
        try:
            done, more = app.consumers.run_pass()
        finally:
            conn.set_trace_callback(None)
        if not more and done >= app.store.last_position():
            return


def run(orders: int, group: int, folder: str) -> dict[str, float]:
    """One fresh store: CPU per order of the commands and of the passes after them."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        app = open_application(f"sqlite:///{tmp}/events.db")
        try:
            place(app, group)  # warm up: imports, statement caches, view tables
            catch_up(app)
            api = passes = 0.0
            for _ in range(orders // group):
                start = time.process_time()
                place(app, group)
                middle = time.process_time()
                catch_up(app)
                api += middle - start
                passes += time.process_time() - middle
        finally:
            app.close()
    done = orders // group * group
    return {"api_ms": api / done * 1000, "consumers_ms": passes / done * 1000}


def statements(orders: int, group: int, folder: str) -> dict[str, Any]:
    """SQLite statements the passes run per order, by kind (literals masked)."""
    kinds: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        app = open_application(f"sqlite:///{tmp}/events.db")
        try:
            place(app, group)
            catch_up(app)
            for _ in range(orders // group):
                place(app, group)
                catch_up(app, lambda sql: kinds.update([_LITERAL.sub("?", sql)[:60]]))
        finally:
            app.close()
    done = orders // group * group
    return {
        "per_order": round(sum(kinds.values()) / done, 2),
        "by_kind": {sql: round(n / done, 2) for sql, n in kinds.most_common()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000, help="orders per run")
    parser.add_argument("--group", type=int, default=8, help="orders per group commit")
    parser.add_argument("--repeat", type=int, default=3, help="runs (fresh stores)")
    args = parser.parse_args(argv)
    folder = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
    runs = [run(args.orders, args.group, folder) for _ in range(args.repeat)]
    result: dict[str, Any] = {
        "benchmark": "consumers",
        "orders": args.orders,
        "group": args.group,
        "store": "sqlite (/dev/shm)" if folder == "/dev/shm" else "sqlite",
    }
    for side in ("api_ms", "consumers_ms"):
        values = [r[side] for r in runs]
        result[f"{side}_per_order_best"] = round(min(values), 3)
        result[f"{side}_per_order_median"] = round(statistics.median(values), 3)
    result["pass_statements"] = statements(min(args.orders, 400), args.group, folder)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
