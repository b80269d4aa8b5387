"""Scenarios as generated tests: they run the compiled service, and agree with `stormgen test`.

``scenarios.storm`` has scenarios over every kind of step (a command with lets, list
filters and conditional emits; a policy's fan-out and condition; views with `if` and
`+=`; an external event; a process's handlers and timers as time passes; nothing
happening) and three wrong on purpose. The generated
project is ruff- and mypy-clean, and its pytest run passes and fails exactly the
scenarios `stormgen test` passes and fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from stormgen import load
from stormgen.render.python import ruff_executable
from stormgen.render.python.model_run import run_scenarios
from stormgen.render.python.names import Namespace

from ._helpers import generate, render, run

SCENARIOS = Path(__file__).with_name("scenarios.storm")
PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    "-q",
    "-rA",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
]


def _function(name: str, names: Namespace) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return names.claim(f"test_{slug}", name)


def test_generated_scenario_tests_agree_with_stormgen_test(
    tmp_path: Path, mypy_cache: Path
) -> None:
    results = run_scenarios(load(SCENARIOS).model)
    names = Namespace()
    expected = {_function(r.scenario.name, names): r.passed for r in results}
    assert sorted(n for n, ok in expected.items() if not ok) == [
        "test_wrong_a_wrong_total",
        "test_wrong_pinged_too_soon",
        "test_wrong_the_wrong_guard",
    ]
    assert sum(expected.values()) == 14

    project = generate(SCENARIOS, tmp_path / "scenarios")
    run([ruff_executable(), "check", "--no-cache", "."], project)
    run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(mypy_cache)], project)
    done = subprocess.run(
        [*PYTEST, "tests/test_scenarios.py"],
        cwd=project,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(project / "src"), "PATH": str(Path(sys.executable).parent)},
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the wrong ones fail
    outcomes = dict(
        (m.group(2), m.group(1) == "PASSED")
        for m in re.finditer(r"^(PASSED|FAILED) tests/test_scenarios\.py::(\w+)", done.stdout, re.M)
    )
    assert outcomes == expected
    # pytest's own assertion message shows what the model expected and what ran
    assert "assert Decimal('6') == Decimal('7')" in done.stdout
    assert "assert 'the basket is closed' == 'a basket holds at most 100'" in done.stdout
    assert "assert 0 == 1" in done.stdout  # no timer due yet: no command issued


def test_a_value_that_cannot_be_computed_fails_both_ways(tmp_path: Path) -> None:
    """A scenario value dividing by zero: `stormgen test` fails it, `generate` still
    writes the project, with a test that fails for the same reason."""
    model = tmp_path / "zero.storm"
    model.write_text(
        """
context Shop {
  aggregate Cart {
    command OpenCart creates { amount: decimal  emit CartOpened }
    event CartOpened { amount: decimal }
  }
  scenario "a value that cannot be computed" {
    when OpenCart { cart_id = id("c1"), amount = 1 / 0 }
    then CartOpened
  }
}
""",
        encoding="utf-8",
    )
    (result,) = run_scenarios(load(model).model)
    assert (result.passed, result.error) == (
        False,
        "a value cannot be computed: division by zero",
    )
    test = render(model)["tests/test_scenarios.py"].content
    assert 'fail("a value cannot be computed: division by zero")' in test
