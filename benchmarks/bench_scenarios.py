"""`stormgen test` on 1,000 scenarios: the whole command, as a user runs it.

Writes a model of ``--contexts`` copies of a shop context (an aggregate with guards, a
`let`, a conditional emit and a list filter; a policy with a fan-out; a view with
`+=`; a process with state and a timer), each with its share of ``--scenarios``
scenarios over every kind of step (accepted with events, commands and a view row;
rejected; time passing, firing the process's timer), then runs
``stormgen test MODEL`` as a process ``--repeat`` times. Reports the wall and CPU
seconds of the command (parse, validate, run, print), best and median, the CPU seconds
of the scenario runs alone in-process, and the load average (on a shared machine the
CPU figure is the one to compare); the goal is under 10 s for 1,000 scenarios.

Usage: ``python benchmarks/bench_scenarios.py [--scenarios N] [--contexts N] [--repeat N]``
(prints JSON, last line)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTEXT = """
context Shop{n} {{
  aggregate Cart {{
    state {{ items: list[str] = [], total: int = 0, closed: bool = false }}
    command OpenCart creates {{ owner: str  emit CartOpened }}
    command Add {{
      sku: str
      price: int
      require not closed else "the cart is closed"
      let total_after = total + price
      require total_after <= 100 else "a cart holds at most 100"
      emit Added {{ total = total_after }}
      emit BecameBig if total_after > 50
    }}
    command Remove {{ sku: str  emit Removed }}
    command Close {{ emit Closed {{ skus = items }} }}
    event CartOpened {{ owner: str }}
    event Added {{ sku: str, price: int, total: int  apply {{ items += [sku] }} }}
    event BecameBig {{}}
    event Removed {{ sku: str  apply {{ items = [i for i in items if i != sku] }} }}
    event Closed {{ skus: list[str]  apply {{ closed = true }} }}
  }}
  external Warehouse {{ command Pick {{ sku: str }} }}
  policy PickEach {{ when Closed then Warehouse.Pick {{ sku = s }} for s in skus }}
  view Carts {{ key cart_id: uuid  owner: str?  total: int = 0  big: bool = false
    on CartOpened
    on Added {{ total += price }}
    on BecameBig {{ big = true }}
  }}
  process Idle {{
    key cart_id: uuid
    state {{ added: int = 0 }}
    on CartOpened starts {{ timer Nudge after minutes(30) }}
    on Added {{
      added += 1
      timer Nudge after minutes(30)
    }}
    on Closed {{ end }}
    on timer Nudge if added > 0 {{
      then Warehouse.Pick {{ sku = "reminder" }}
      end
    }}
  }}
{scenarios}}}
"""

KINDS = [
    """  scenario "adding {i}" {{
    given CartOpened {{ cart_id = id("c{i}"), owner = "Ada" }}
          Added {{ cart_id = id("c{i}"), sku = "tea", price = 40, total = 40 }}
    when Add {{ cart_id = id("c{i}"), sku = "mug", price = 20 }}
    then Added {{ sku = "mug", total = 60 }} BecameBig
         Carts[id("c{i}")] {{ owner = "Ada", total = 60, big = true }}
  }}
""",
    """  scenario "too much {i}" {{
    given CartOpened {{ cart_id = id("c{i}"), owner = "Ada" }}
          Added {{ cart_id = id("c{i}"), sku = "tea", price = 90, total = 90 }}
    when Add {{ cart_id = id("c{i}"), sku = "mug", price = 20 }}
    then rejected "a cart holds at most 100"
  }}
""",
    """  scenario "closing {i}" {{
    given CartOpened {{ cart_id = id("c{i}"), owner = "Ada" }}
          Added {{ cart_id = id("c{i}"), sku = "tea", price = 3, total = 3 }}
          Added {{ cart_id = id("c{i}"), sku = "mug", price = 5, total = 8 }}
    when Close {{ cart_id = id("c{i}") }}
    then Closed {{ skus = ["tea", "mug"] }} Warehouse.Pick {{ sku = "mug" }}
         Warehouse.Pick {{ sku = "tea" }}
  }}
""",
    """  scenario "removing {i}" {{
    given CartOpened {{ cart_id = id("c{i}"), owner = "Ada" }}
          Added {{ cart_id = id("c{i}"), sku = "tea", price = 3, total = 3 }}
    when Remove {{ cart_id = id("c{i}"), sku = "tea" }}
    then Removed {{ sku = "tea" }}
  }}
""",
    """  scenario "idle {i}" {{
    given CartOpened {{ cart_id = id("c{i}"), owner = "Ada" }}
          Added {{ cart_id = id("c{i}"), sku = "tea", price = 3, total = 3 }}
    when minutes(31) pass
    then Warehouse.Pick {{ sku = "reminder" }}
  }}
""",
]


def model_text(scenarios: int, contexts: int) -> str:
    parts = []
    per = -(-scenarios // contexts)
    made = 0
    for n in range(contexts):
        body = ""
        for _ in range(min(per, scenarios - made)):
            body += KINDS[made % len(KINDS)].format(i=made)
            made += 1
        parts.append(CONTEXT.format(n=n, scenarios=body))
    return "model Bench\n" + "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", type=int, default=1000)
    parser.add_argument("--contexts", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("stormgen")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.storm"
        path.write_text(model_text(args.scenarios, args.contexts), encoding="utf-8")
        walls, cpus = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(
                [str(exe), "test", str(path)], capture_output=True, text=True, check=False
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            walls.append(time.perf_counter() - start)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                sys.exit(f"stormgen test failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        summary = done.stdout.strip().splitlines()[-1]

        from stormgen.lang import parse_model
        from stormgen.model.scope import Scope
        from stormgen.render.python.model_run import run_scenarios

        model = parse_model(path)
        scope = Scope(model)
        start = time.process_time()
        results = run_scenarios(model, scope)
        run_only = time.process_time() - start
        assert all(r.passed for r in results) and len(results) == args.scenarios
    print(
        json.dumps(
            {
                "scenarios": args.scenarios,
                "contexts": args.contexts,
                "summary": summary,
                "command_wall_seconds_best": round(min(walls), 3),
                "command_wall_seconds_median": round(statistics.median(walls), 3),
                "command_cpu_seconds_best": round(min(cpus), 3),
                "command_cpu_seconds_median": round(statistics.median(cpus), 3),
                "run_only_cpu_seconds": round(run_only, 3),
                "load_average": round(os.getloadavg()[0], 1),
                "goal_seconds": 10,
            }
        )
    )


if __name__ == "__main__":
    main()
