"""How long ``stormgen generate`` (the python target) takes on a big model.

Builds the synthetic model of ``benchmarks/synth.py`` (800 aggregates by default) and
times, best of ``--repeat``: loading the model (parse + graph), then ``render_project``
and its phases (the checks it runs first, the view-model: names, imports, compiled
expressions and test scenarios; the templates; the ruff pass that formats), and
writing the files into a folder on disk (``generate_s`` = render + write).
The figure the target applies to is ``cli_s``: the wall-clock time of the whole
command a user runs, ``stormgen generate MODEL -o DIR`` (a fresh process: start-up,
imports, parse, checks, render, format, write) into an empty folder.
Target: ``cli_s`` < 15 s for 800 aggregates. On a shared machine the wall-clock
figures move with the load; ``cli_cpu_s`` (the command's user + system time) and
``render_project_cpu_s`` (this process's, the ruff pass aside) move far less.

Usage: ``python benchmarks/bench_generate.py [--aggregates N] [--repeat N] [--json]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stormgen
from stormgen.render.python import render_project
from stormgen.render.targets import normalize, plan, write_files

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import synth

TARGET_S = 15.0


def best(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs, and the last result."""
    fastest, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest, result


def _children_cpu() -> float:
    """User + system seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(aggregates: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"synth_{aggregates}.storm"
        path.write_text(synth(aggregates), encoding="utf-8")
        # The command first: the in-process phases below write thousands of files, whose
        # flushing to disk would otherwise slow the command's own writes.
        cli_s = cli_cpu_s = float("inf")
        for run in range(repeat):
            start, cpu = time.perf_counter(), _children_cpu()
            subprocess.run(
                [sys.executable, "-m", "stormgen", "generate", str(path), "-o", f"{tmp}/cli{run}"],
                check=True,
                capture_output=True,
            )
            cli_s = min(cli_s, time.perf_counter() - start)
            cli_cpu_s = min(cli_cpu_s, _children_cpu() - cpu)
        cpu = time.process_time()
        load_s, loaded = best(repeat, lambda: stormgen.load(path))
        load_cpu_s = (time.process_time() - cpu) / repeat
        phases: dict[str, float] = {}
        render_s = render_cpu_s = float("inf")
        files: dict[str, Any] = {}
        for _ in range(repeat):
            timings: dict[str, float] = {}
            start, cpu = time.perf_counter(), time.process_time()
            files = normalize(render_project(loaded, timings=timings))
            elapsed = time.perf_counter() - start
            render_cpu_s = min(render_cpu_s, time.process_time() - cpu)
            if elapsed < render_s:
                render_s, phases = elapsed, timings
        out = Path(tmp) / "out"

        def write() -> None:
            write_files(files, out, plan(files, out).write)

        write_s, _ = best(1, write)
        size = sum(len(f.content.encode()) for f in files.values())
    total = render_s + write_s
    return {
        "benchmark": "generate-python",
        "aggregates": aggregates,
        "files": len(files),
        "bytes": size,
        "load_s": round(load_s, 3),
        "load_cpu_s": round(load_cpu_s, 3),
        **{f"{phase}_s": round(seconds, 3) for phase, seconds in phases.items()},
        "render_project_s": round(render_s, 3),
        "render_project_cpu_s": round(render_cpu_s, 3),
        "write_s": round(write_s, 3),
        "generate_s": round(total, 3),
        "cli_s": round(cli_s, 3),
        "cli_cpu_s": round(cli_cpu_s, 3),
        "target_s": TARGET_S,
        "ok": cli_s < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aggregates", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args.aggregates, args.repeat)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
