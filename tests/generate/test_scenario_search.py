"""The search for the generated tests' cases (``render/python/scenarios.py``).

A command's guards are tried in order and the first that fails rejects it, as in the
generated code, so a later guard that cannot be known does not hide a rejection; each
sample is tried once; a guard is evaluated once for each combination of the values it
reads (through its ``let``s too).
"""

from __future__ import annotations

import random
from pathlib import Path
from uuid import UUID

from stormgen.lang import parse_model
from stormgen.model import types as t
from stormgen.model.scope import Scope
from stormgen.render.python.scenarios import (
    Candidates,
    ScenarioFinder,
    inputs,
)

from ._helpers import render

MODEL = """\
model Search
actor Clerk
enum Size { Small, Medium, Large }
value Entry { sku: str, qty: int = 1 }
context Desk {
  aggregate Shift {
    state {
      ends: datetime? = none
      entries: list[Entry] = []
    }
    command Plan by Clerk creates {
      size: Size
      urgent: bool
      require urgent or size != Large else "a large shift is urgent"
      emit Planned
    }
    command Extend by Clerk {
      by: int
      sku: str
      let held = sum(e.qty for e in entries if e.sku == sku)
      let late = ends != none and date(ends) < today()
      require ends != none else "the shift is not planned"
      require date(ends) != today() else "not on its last day"
      require held + by <= 100 else "too many"
      require not late else "over"
      emit Extended
    }
    event Planned { size: Size, urgent: bool }
    event Extended { by: int }
  }
}
"""


def _finder(tmp_path: Path) -> tuple[Scope, ScenarioFinder]:
    path = tmp_path / "search.storm"
    path.write_text(MODEL)
    model = parse_model(path)
    scope = Scope(model)
    context = model.contexts[0]
    return scope, ScenarioFinder(scope, context, context.aggregates[0])


def test_a_rejection_is_found_when_a_later_guard_cannot_be_known(tmp_path: Path) -> None:
    """With no end, `date(ends)` cannot be computed; the first guard rejects first."""
    path = tmp_path / "search.storm"
    path.write_text(MODEL)
    tests = render(path)["tests/test_desk_shift.py"].content
    assert '"""The guard: the shift is not planned"""' in tests
    assert 'found no case failing the guard "the shift is not planned"' not in tests


def test_each_sample_is_tried_once(tmp_path: Path) -> None:
    scope, finder = _finder(tmp_path)
    plan = finder.agg.commands[0]
    pools = finder.pools(plan, Candidates(scope, []))
    assert [(source, name, len(pool)) for source, name, pool in pools] == [
        ("message", "size", 3),
        ("message", "urgent", 2),
    ]
    samples = list(finder.samples(pools, random.Random(1)))
    # all six combinations, each once, then the search stops
    assert sorted(samples) == [(a, b) for a in range(3) for b in range(2)]
    assert samples[0] == (0, 0)  # the first values first
    command, state = finder.sample(plan, pools, samples[0])
    assert state == finder.initial_state()
    assert command == {"size": pools[0][2][0], "urgent": True, "shift_id": UUID(int=1)}


def test_what_a_guard_reads_through_its_lets(tmp_path: Path) -> None:
    scope, finder = _finder(tmp_path)
    extend = finder.agg.commands[1]
    env = t.command_env(extend, scope)
    planned, last_day, held, late = (inputs(r.condition, env) for r in extend.requires)
    assert planned == ({("state", "ends")}, False)
    assert last_day == ({("state", "ends")}, True)
    assert held == ({("message", "by"), ("message", "sku"), ("state", "entries")}, False)
    assert late == ({("state", "ends")}, True)  # through `let late`
