"""The chain-lag benchmark's smoke test: one short level end to end.

It checks the JSON the benchmark prints has every figure (orders answered, and the
chain caught up afterwards); the figures themselves are measurements, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_chain_lag.py"


def test_a_short_level_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", "0.5", "--levels", "2x20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "chain_lag"
    (row,) = result["levels"]
    assert row["clients"] == 2 and row["rate_per_client"] == 20
    assert row["orders"] > 0
    assert {"p50_ms", "p99_ms", "chain_behind_at_end", "catch_up_ms"} <= set(row)
    assert row["chain_behind_at_end"] >= 0 and row["catch_up_ms"] >= 0
