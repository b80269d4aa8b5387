"""The service benchmark's smoke test: ``--quick`` runs all three contenders end to end.

It checks the JSON the benchmark prints has every figure for every contender and level
(the chain complete for every order, no failed request); the figures themselves are
measurements, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_service.py"
LEVEL = {
    "clients",
    "orders",
    "errors",
    "orders_per_second",
    "requests_per_second",
    "p50_ms",
    "p99_ms",
    "pickup_p50_ms",
    "pickup_p99_ms",
    "drain_ms",
    "server_cpu_ms_per_order",
    "peak_rss_mib",
}


def quick(*args: str) -> dict[str, Any]:
    """A ``--quick`` run of the benchmark with ``args``: the JSON of its last line."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_quick_run_reports_every_figure() -> None:
    result = quick()
    assert result["benchmark"] == "service"
    assert set(result["contenders"]) == {"stormgen", "peer", "floor"}
    for levels in result["contenders"].values():
        assert [row["clients"] for row in levels] == [1, 8]
        for row in levels:
            assert set(row) >= LEVEL
            assert row["orders"] > 0
            assert row["errors"] == 0
    assert set(result["ratio"]) == {"stormgen/peer", "stormgen/floor"}
    for by_level in result["ratio"].values():
        assert set(by_level) == {"1", "8"}
    api = result["api_only"]
    assert [row["clients"] for row in api["stormgen"]] == [1, 8]
    assert [row["clients"] for row in api["insert_floor"]] == [1, 8]
    assert set(api["ratio"]) == {"1", "8"}
    assert api["services"] == {"stormgen": api["stormgen"]}
    assert api["ratios"] == {"stormgen": api["ratio"]}
    for row in api["stormgen"]:
        assert row["errors"] == 0
        # the load's CPU alone, and with the chain's catch-up after it
        during = row["server_cpu_ms_per_request_during_load"]
        assert during is not None and during <= row["server_cpu_ms_per_request"]


def test_a_baseline_runs_beside_the_code_under_test() -> None:
    # stormgen-base: the generated service on another stormgen's code (here this
    # checkout's own src, as an exported older commit's would be)
    src = Path(__file__).resolve().parents[2] / "src"
    result = quick("--contenders", "stormgen,stormgen-base", "--baseline", str(src))
    assert set(result["contenders"]) == {"stormgen", "stormgen-base"}
    for levels in result["contenders"].values():
        assert all(row["orders"] > 0 and row["errors"] == 0 for row in levels)
    assert set(result["ratio"]) == {"stormgen/stormgen-base"}
    # both take their turns in the API-only table (no floor asked for: it runs anyway)
    api = result["api_only"]
    assert set(api["services"]) == {"stormgen", "stormgen-base"}
    assert set(api["ratios"]) == {"stormgen", "stormgen-base"}
    for rows in api["services"].values():
        assert [row["clients"] for row in rows] == [1, 8]
        assert all(row["requests"] > 0 and row["errors"] == 0 for row in rows)
    missing = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--contenders", "stormgen,stormgen-base"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0
    assert "stormgen-base needs --baseline SRC" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_api_only_table_alone_with_the_chain_held_back() -> None:
    result = quick(
        "--api-only",
        "--contenders",
        "stormgen,floor",
        "--chain-backlog",
        "1000000",
        "--chain-lag",
        "600",
    )
    assert result["chain_backlog"] == 1_000_000 and result["chain_lag"] == 600
    # no full-chain levels, only the API-only table
    assert result["contenders"] == {"stormgen": [], "floor": []}
    assert result["ratio"] == {}
    api = result["api_only"]
    assert [row["clients"] for row in api["stormgen"]] == [1, 8]
    assert all(row["requests"] > 0 and row["errors"] == 0 for row in api["stormgen"])
    assert set(api["ratio"]) == {"1", "8"}
