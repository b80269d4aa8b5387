"""Benchmark the expression type checks (E401-E403) on synthetic models.

Usage: ``python benchmarks/bench_expressions.py [--quick]`` — prints one JSON object:
for each model size (aggregates), the parse time, and the time and rate of
``check_expressions`` (expressions and defaults checked per second).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from stormgen.checks.expressions import check_expressions
from stormgen.lang import parse_model
from stormgen.model.nodes import Model
from stormgen.model.scope import Scope
from synth import synth


def count_expressions(model: Model) -> int:
    """Top-level expressions the check visits: conditions, assignments, `by`, defaults."""
    n = sum(1 for v in model.values for f in v.fields if f.default is not None)
    for c in model.contexts:
        for a in c.aggregates:
            n += sum(1 for f in a.state if f.default is not None)
            for cmd in a.commands:
                n += len(cmd.requires) + sum(f.default is not None for f in cmd.fields)
                n += sum(len(e.assignments) + (e.condition is not None) for e in cmd.emits)
            n += sum(len(e.apply) + sum(f.default is not None for f in e.fields) for e in a.events)
        for p in c.policies:
            n += (p.condition is not None) + sum(len(t.assignments) for t in p.thens)
        for v in c.views:
            n += sum(f.default is not None for f in v.fields)
            n += sum(len(o.assignments) + (o.by is not None) for o in v.handlers)
    return n


def measure(aggregates: int, repeat: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synth.storm"
        path.write_text(synth(aggregates))
        start = time.perf_counter()
        model = parse_model(path)
        parsed = time.perf_counter() - start
    scope = Scope(model)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        findings = check_expressions(model, scope)
        best = min(best, time.perf_counter() - start)
    assert findings == [], findings[:3]
    expressions = count_expressions(model)
    return {
        "aggregates": aggregates,
        "expressions": expressions,
        "parse_seconds": round(parsed, 4),
        "check_seconds": round(best, 4),
        "expressions_per_second": round(expressions / best),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small models, one run each")
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    repeat = 1 if args.quick else 3
    print(json.dumps({"check_expressions": [measure(n, repeat) for n in sizes]}, indent=2))


if __name__ == "__main__":
    main()
