"""Benchmark loading and validating synthetic models of 100 to 800 aggregates.

For each size, in a fresh process (so peak memory is that size's own), this prints one
JSON object: the model's lines; the textX parse alone (``parse_s``: textX's
``model_from_str`` with the parser as arpeggio makes it, the grammar's parse and textX's
object model, what any textX tool pays); the grammar's parse tree only (``tree_s``, the
floor: stormgen reads this tree directly, from its faster parser); the full validate
(read the files, parse, build the model and its graph, run every check); and the peak
resident memory. Times are the best of ``--repeat``
runs, as CPU time of the process (stable on a shared machine) and as wall-clock time.
A last object sums up the targets (on CPU time): validate at most 1.5 times the parse,
800 aggregates at most 9 times 100, 800 aggregates in under 10 s and 1 GiB.

Usage: ``python benchmarks/bench_validate.py [SIZE ...] [--repeat N]``
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import synth

SIZES = (100, 200, 400, 800)


def measure(size: int, repeat: int) -> dict[str, object]:
    """Time one size in this process: best of ``repeat`` for parse and validate."""
    import stormgen
    from stormgen.lang import grammar
    from stormgen.lang.grammar import blank_comments, metamodel

    try:
        from stormgen.checks import check
    except ImportError:  # the checks are optional for this benchmark
        check = None

    text = synth(size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"synth_{size}.storm"
        path.write_text(text, encoding="utf-8")
        metamodel()  # built once per process; not part of either figure
        # textX's parser as it comes (an older stormgen has only the one metamodel)
        stock = getattr(grammar, "stock_metamodel", metamodel)()

        validate_s = validate_wall = float("inf")
        findings: list[str] = []
        for _ in range(repeat):
            start, wall = time.process_time(), time.perf_counter()
            loaded = stormgen.load(path)
            diagnostics = check(loaded.model) if check is not None else []
            validate_s = min(validate_s, time.process_time() - start)
            validate_wall = min(validate_wall, time.perf_counter() - wall)
            findings = sorted({d.code for d in diagnostics})
            del loaded, diagnostics
            gc.collect()
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        parse_s = parse_wall = tree_s = float("inf")
        for _ in range(repeat):
            source = path.read_text(encoding="utf-8")
            gc.disable()  # as the loader does
            try:
                start, wall = time.process_time(), time.perf_counter()
                stock.model_from_str(blank_comments(source))
                parse_s = min(parse_s, time.process_time() - start)
                parse_wall = min(parse_wall, time.perf_counter() - wall)
                start = time.process_time()
                metamodel()._parser_blueprint.clone().parse(blank_comments(source))
                tree_s = min(tree_s, time.process_time() - start)
            finally:
                gc.enable()
            gc.collect()

    return {
        "aggregates": size,
        "lines": text.count("\n"),
        "parse_s": round(parse_s, 3),
        "tree_s": round(tree_s, 3),
        "validate_s": round(validate_s, 3),
        "parse_wall_s": round(parse_wall, 3),
        "validate_wall_s": round(validate_wall, 3),
        "validate_over_parse": round(validate_s / parse_s, 2),
        "validate_over_tree": round(validate_s / tree_s, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "checks": check is not None,
        "findings": findings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()

    if args.one is not None:
        print(json.dumps(measure(args.one, args.repeat)))
        return

    results = []
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out)
        results.append(result)
        print(json.dumps(result), flush=True)

    by_size = {r["aggregates"]: r for r in results}
    summary: dict[str, object] = {
        "max_validate_over_parse": max(float(r["validate_over_parse"]) for r in results)
    }
    if 100 in by_size and 800 in by_size:
        small, big = by_size[100], by_size[800]
        summary["validate_800_over_100"] = round(
            float(big["validate_s"]) / float(small["validate_s"]), 2
        )
        summary["validate_800_s"] = big["validate_s"]
        summary["peak_800_mib"] = big["peak_rss_mib"]
        summary["targets_met"] = {
            "validate_le_1.5x_parse": summary["max_validate_over_parse"] <= 1.5,
            "800_vs_100_le_9x": float(summary["validate_800_over_100"]) <= 9,
            "800_under_10s": float(big["validate_s"]) < 10,
            "800_under_1GiB": float(big["peak_rss_mib"]) < 1024,
        }
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
