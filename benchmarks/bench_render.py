"""How long rendering the board and the graphs takes, and opening the board in Chromium.

Builds the synthetic model of ``benchmarks/synth.py`` (800 aggregates by default),
then times: parsing (for reference), the board (layout + HTML), the diagrams (context
map and event flow, Mermaid and DOT, and the context map through Graphviz), and
opening the board in headless Chromium until its first frames are drawn.
Targets: render < 10 s, open < 3 s.

Usage: ``python benchmarks/bench_render.py [--aggregates N] [--json]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stormgen.lang import parse_model
from stormgen.render.board import build_board, render_board_page
from stormgen.render.diagram import context_map, event_flow, to_dot, to_mermaid, to_svg
from stormgen.render.targets import with_graph

HERE = Path(__file__).resolve().parent
TARGETS = {"render_s": 10.0, "open_s": 3.0}


def load_module(name: str, path: Path) -> Any:
    """Import a Python file that is not on the import path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: Chromium launched as the browser tests launch it.
browser_support = load_module("browser_support", HERE.parent / "tests/browser/browser_support.py")


def synth_text(aggregates: int) -> str:
    text: str = load_module("synth", HERE / "synth.py").synth(aggregates)
    return text


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def open_in_chromium(page_file: Path, runs: int = 3) -> list[float]:
    """Seconds from navigation to the second animation frame (the page drawn), per run."""
    times = []
    with browser_support.chromium() as browser:
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e, found=errors: found.append(str(e)))
            start = time.perf_counter()
            page.goto(page_file.as_uri(), wait_until="load")
            page.evaluate(
                "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
            )
            times.append(time.perf_counter() - start)
            if errors:
                raise RuntimeError(f"the board raised in Chromium: {errors[0]}")
            page.close()
    return times


def run(aggregates: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "synth.storm"
        source.write_text(synth_text(aggregates), encoding="utf-8")
        model, parse_s = timed(parse_model, source)
        loaded, graph_s = timed(with_graph, model)
        cpu_start = time.process_time()
        board, layout_s = timed(build_board, loaded)
        html, html_s = timed(render_board_page, board)
        board_cpu_s = time.process_time() - cpu_start
        page_file = Path(tmp) / "board.html"
        page_file.write_text(html, encoding="utf-8")
        diagrams: dict[str, float] = {}
        cmap, diagrams["context_map_build_s"] = timed(context_map, loaded.graph)
        flow, diagrams["event_flow_build_s"] = timed(event_flow, loaded.graph)
        _, diagrams["mermaid_s"] = timed(lambda: (to_mermaid(cmap), to_mermaid(flow)))
        dot_text, diagrams["dot_s"] = timed(lambda: (to_dot(cmap), to_dot(flow)))
        if shutil.which("dot"):
            _, diagrams["context_map_svg_s"] = timed(to_svg, dot_text[0])
        opens = open_in_chromium(page_file) if Path(browser_support.CHROMIUM).exists() else []
    board_render_s = layout_s + html_s
    graph_render_s = sum(diagrams.values())
    result: dict[str, Any] = {
        "aggregates": aggregates,
        "notes": len(board.notes),
        "lanes": len(board.lanes),
        "parse_s": round(parse_s, 3),
        "model_graph_s": round(graph_s, 3),
        "board_layout_s": round(layout_s, 3),
        "board_html_s": round(html_s, 3),
        "board_render_s": round(board_render_s, 3),
        # CPU time of this process: what the wall time would be on an idle machine.
        "board_render_cpu_s": round(board_cpu_s, 3),
        "board_bytes": len(html.encode("utf-8")),
        "graph": {k: round(v, 3) for k, v in diagrams.items()},
        "graph_render_s": round(graph_render_s, 3),
        "render_s": round(board_render_s + graph_render_s, 3),
        "board_open_s": round(min(opens), 3) if opens else None,
        "board_open_runs_s": [round(t, 3) for t in opens],
        "targets": TARGETS,
    }
    result["ok"] = result["render_s"] < TARGETS["render_s"] and (
        result["board_open_s"] is not None and result["board_open_s"] < TARGETS["open_s"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aggregates", type=int, default=800)
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args()
    result = run(args.aggregates)
    if not args.json:
        print(
            f"{result['aggregates']} aggregates, {result['notes']} notes: "
            f"board {result['board_render_s']} s, graphs {result['graph_render_s']} s, "
            f"open {result['board_open_s']} s",
            file=sys.stderr,
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
