"""Benchmark the expression type checks (E401-E404) on synthetic models, and the
speed of a compiled comprehension guard.

Usage: ``python benchmarks/bench_expressions.py [--quick]`` — prints one JSON object:
for each model size (aggregates), the parse time, and the time and rate of
``check_expressions`` (expressions and defaults checked per second); and
``compiled_guard``: a command whose guard is ``any(...)`` and whose event is a list
comprehension, over a state of 1,000 list items, decided by the generated code and by
the same logic written by hand with loops (best time of each; the target is a ratio
of at most 2).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from stormgen.checks.expressions import check_expressions
from stormgen.lang import parse_model
from stormgen.model.nodes import Model
from stormgen.model.scope import Scope
from synth import synth


def count_expressions(model: Model) -> int:
    """Top-level expressions the check visits: conditions, `let`s, assignments, `by`,
    fan-outs and defaults."""
    n = sum(1 for v in model.values for f in v.fields if f.default is not None)
    for c in model.contexts:
        for a in c.aggregates:
            n += sum(1 for f in a.state if f.default is not None)
            for cmd in a.commands:
                n += len(cmd.requires) + len(cmd.lets)
                n += sum(f.default is not None for f in cmd.fields)
                n += sum(len(e.assignments) + (e.condition is not None) for e in cmd.emits)
            n += sum(len(e.apply) + sum(f.default is not None for f in e.fields) for e in a.events)
        for p in c.policies:
            n += p.condition is not None
            n += sum(len(t.assignments) + (t.condition is not None) for t in p.thens)
            n += sum(t.fan is not None for t in p.thens)
        for v in c.views:
            n += sum(f.default is not None for f in v.fields)
            n += sum(len(o.assignments) + len(o.lets) + (o.by is not None) for o in v.handlers)
            n += sum(o.condition is not None for o in v.handlers)
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


GUARD_MODEL = """
model Bench
actor User
value Line { sku: str, qty: int = 1 }
context Shop {
  aggregate Basket {
    state { lines: list[Line] = [] }
    command Open by User creates { emit Opened }
    command Remove by User {
      sku: str
      require any(l.sku == sku for l in lines) else "not in the basket"
      emit Removed { lines = [l for l in lines if l.sku != sku] }
    }
    event Opened { }
    event Removed { lines: list[Line] }
  }
}
"""


def compiled_guard(items: int, number: int) -> dict[str, float | int]:
    """The generated ``decide`` of a comprehension guard against hand-written loops."""
    from stormgen import load
    from stormgen.render.python import render_project
    from stormgen.render.targets import normalize, plan, write_files
    from stormgen.runtime import Rejected

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "bench.storm"
        model.write_text(GUARD_MODEL)
        files = normalize(render_project(load(model)))
        out = Path(tmp) / "project"
        write_files(files, out, plan(files, out).write)
        sys.path.insert(0, str(out / "src"))
        module: Any = importlib.import_module("bench.shop.basket")
    base, line, remove, removed = module.BasketBase(), module.Line, module.Remove, module.Removed
    state = base.initial_state()
    state = type(state)(lines=tuple(line(sku=f"S-{i}", qty=1) for i in range(items)))
    command = remove(basket_id=module.UUID(int=1), sku=f"S-{items - 1}")

    def by_hand() -> list[Any]:
        found = False
        for item in state.lines:
            if item.sku == command.sku:
                found = True
                break
        if not found:
            raise Rejected("not in the basket")
        kept = []
        for item in state.lines:
            if item.sku != command.sku:
                kept.append(item)
        return [removed(basket_id=command.basket_id, lines=tuple(kept))]

    assert base.decide(state, command) == by_hand()
    generated = min(timeit.repeat(lambda: base.decide(state, command), number=number, repeat=5))
    hand = min(timeit.repeat(by_hand, number=number, repeat=5))
    return {
        "items": items,
        "generated_us": round(generated / number * 1e6, 1),
        "by_hand_us": round(hand / number * 1e6, 1),
        "ratio": round(generated / hand, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small models, one run each")
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    repeat = 1 if args.quick else 3
    result: dict[str, object] = {"check_expressions": [measure(n, repeat) for n in sizes]}
    result["compiled_guard"] = compiled_guard(1000, 50 if args.quick else 200)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
