"""The memory image's cost: bytes per coffee-shop Order instance held in the state cache.

Generates examples/coffee_shop.storm, places ``--instances`` orders (one Latte each, a
customer name of 8-12 characters) into a memory store with the state cache off, then,
as a restarted process would, loads every one of them through a fresh application whose
state cache holds them all: the states are decoded from the log, so nothing but the
cache keeps them. The bytes the cache holds are measured with tracemalloc as what
clearing it frees (its entries, their states, the LRU's links), and the process's
resident memory growth while loading is reported beside it. Prints JSON (last line).

    python benchmarks/bench_memory_image.py [--instances 100000] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

from stormgen.runtime import Application
from stormgen.runtime.store.memory import MemoryStore

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "examples" / "coffee_shop.storm"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="2,000 instances")
    args = parser.parse_args()
    count = 2_000 if args.quick else args.instances
    with tempfile.TemporaryDirectory(prefix="stormgen-image-") as tmp:
        project = Path(tmp) / "shop"
        subprocess.run(
            [sys.executable, "-m", "stormgen", "generate", str(MODEL), "-o", str(project)],
            check=True,
            capture_output=True,
        )
        sys.path.insert(0, str(project / "src"))
        app_module: Any = importlib.import_module("coffee_shop.app")
        order: Any = importlib.import_module("coffee_shop.ordering.order")
        shared: Any = importlib.import_module("coffee_shop.shared")
    store = MemoryStore()
    writer = Application(store, state_cache=0, **app_module.definitions())
    latte = (shared.Drink(name="Latte", price=Decimal("3.50")),)
    ids = []
    began = time.perf_counter()
    for n in range(count):
        placed = writer.handle(
            order.PlaceOrder(customer=f"customer {n}", drinks=latte, total=Decimal("3.50"))
        )
        ids.append(placed.id)
    placing = time.perf_counter() - began
    reader = Application(store, state_cache=count, **app_module.definitions())
    gc.collect()
    rss_before = rss_mib()
    tracemalloc.start()
    began = time.perf_counter()
    for ident in ids:
        reader.state("Ordering.Order", ident)
    loading = time.perf_counter() - began
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    rss_after = rss_mib()
    cached = len(reader.state_cache)
    reader.state_cache.clear()
    gc.collect()
    freed = held - tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    result = {
        "benchmark": "memory_image",
        "aggregate": "Ordering.Order",
        "instances": count,
        "cached": cached,
        "bytes_per_instance": round(freed / cached),
        "cache_mib": round(freed / 2**20, 1),
        "rss_growth_mib": round(rss_after - rss_before, 1),
        "place_ms_per_order": round(placing * 1000 / count, 3),
        "load_ms_per_instance": round(loading * 1000 / count, 3),
    }
    print(
        f"{cached} Order states cached: {result['bytes_per_instance']} bytes each, "
        f"{result['cache_mib']} MiB (RSS +{result['rss_growth_mib']} MiB while loading)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
