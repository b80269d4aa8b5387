"""`stormgen test MODEL`: every scenario run on the model itself, as a real process.

Passing and failing scenarios, the expected/actual lines of a failure, the JSON
report, a command refused before its guards, and a model that does not validate.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("stormgen")

SHOP = """
context Shop {
  enum CartStatus { Open, Closed }
  aggregate Cart {
    state { status: CartStatus = Open, items: int = 0 }
    command OpenCart creates { owner: str  emit CartOpened }
    command AddItem { count: int
      require status == Open else "the cart is closed"
      require count > 0 else "add at least one item"
      emit ItemAdded { total = items + count }
    }
    command Close { emit CartClosed }
    event CartOpened { owner: str }
    event ItemAdded { count: int, total: int  apply { items = total } }
    event CartClosed { apply { status = Closed } }
  }
  external Mailer { command SendReceipt { cart_id: uuid, items: int } }
  policy Receipt { when CartClosed then Mailer.SendReceipt { items = 0 } }
  view Carts { key cart_id: uuid  owner: str?  items: int = 0
    on CartOpened
    on ItemAdded { items = total }
  }
"""


def write(tmp_path: Path, scenarios: str) -> Path:
    path = tmp_path / "shop.storm"
    path.write_text(SHOP + scenarios + "}\n", encoding="utf-8")
    return path


def at(model: Path, needle: str, nth: int = 0) -> str:
    """``file:line:col`` of the ``nth`` occurrence of ``needle`` in the model."""
    lines = model.read_text(encoding="utf-8").splitlines()
    found = [(i, line.index(needle)) for i, line in enumerate(lines, 1) if needle in line]
    line, column = found[nth]
    return f"{model}:{line}:{column + 1}"


def stormgen_test(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), "the stormgen console script is installed next to this Python"
    settings = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
    settings["COLUMNS"] = "200"
    return subprocess.run(
        [str(SCRIPT), "test", *args],
        capture_output=True,
        text=True,
        env=settings,
        timeout=120,
        check=False,
    )


PASSING = """
  scenario "items are added" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
          ItemAdded { cart_id = id("c1"), count = 2, total = 2 }
    when AddItem { cart_id = id("c1"), count = 3 }
    then ItemAdded { count = 3, total = 5 }
         Carts[id("c1")] { owner = "Ada", items = 5 }
  }
  scenario "a closed cart takes no item" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" } CartClosed { cart_id = id("c1") }
    when AddItem { cart_id = id("c1"), count = 1 }
    then rejected "the cart is closed"
  }
  scenario "closing sends a receipt" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
    when Close { cart_id = id("c1") }
    then CartClosed Mailer.SendReceipt { cart_id = id("c1"), items = 0 }
  }
"""


def test_every_scenario_passes(tmp_path: Path) -> None:
    model = write(tmp_path, PASSING)
    result = stormgen_test(str(model))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "PASS " + at(model, 'scenario "items') + ': Shop: "items are added"',
        "PASS " + at(model, 'scenario "a closed') + ': Shop: "a closed cart takes no item"',
        "PASS " + at(model, 'scenario "closing') + ': Shop: "closing sends a receipt"',
        "3 scenarios: 3 passed, 0 failed",
    ]


def test_a_failure_shows_expected_and_actual_per_field(tmp_path: Path) -> None:
    model = write(
        tmp_path,
        """
  scenario "a wrong total" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
    when AddItem { cart_id = id("c1"), count = 3 }
    then ItemAdded { count = 3, total = 4 }
         Carts[id("c1")] { owner = "Bo", items = 3 }
  }
  scenario "a wrong guard" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" } CartClosed { cart_id = id("c1") }
    when AddItem { cart_id = id("c1"), count = 0 }
    then rejected "add at least one item"
  }
""",
    )
    result = stormgen_test(str(model))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "FAIL " + at(model, 'scenario "a wrong total') + ': Shop: "a wrong total"',
        "  " + at(model, "total = 4") + ": ItemAdded.total",
        "    expected: 4",
        "    actual:   3",
        "  " + at(model, 'owner = "Bo"') + ': Carts[id("c1")].owner',
        '    expected: "Bo"',
        '    actual:   "Ada"',
        "FAIL " + at(model, 'scenario "a wrong guard') + ': Shop: "a wrong guard"',
        "  " + at(model, "AddItem", 2) + ": rejected",
        '    expected: rejected "add at least one item"',
        '    actual:   rejected "the cart is closed"',
        "2 scenarios: 0 passed, 2 failed",
    ]


def test_the_json_report(tmp_path: Path) -> None:
    model = write(
        tmp_path,
        PASSING
        + """
  scenario "accepted, not rejected" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
    when AddItem { cart_id = id("c1"), count = 1 }
    then rejected
  }
""",
    )
    result = stormgen_test(str(model), "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert (report["valid"], report["passed"], report["failed"]) == (True, 3, 1)
    assert [s["passed"] for s in report["scenarios"]] == [True, True, True, False]
    failed = report["scenarios"][3]
    assert failed["name"] == "accepted, not rejected"
    assert failed["context"] == "Shop"
    assert failed["location"] == at(model, 'scenario "accepted')
    assert failed["differences"] == [
        {
            "location": at(model, "AddItem", 3),
            "what": "rejected",
            "expected": "rejected",
            "actual": "accepted, recording ItemAdded",
        }
    ]


def test_a_command_refused_before_its_guards_fails_with_the_reason(tmp_path: Path) -> None:
    model = write(
        tmp_path,
        """
  scenario "no such cart" {
    when AddItem { cart_id = id("c9"), count = 1 }
    then ItemAdded
  }
  scenario "opened twice" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
    when OpenCart { cart_id = id("c1"), owner = "Bo" }
    then CartOpened
  }
""",
    )
    result = stormgen_test(str(model))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "FAIL " + at(model, 'scenario "no such') + ': Shop: "no such cart"',
        '  the command is refused: Shop.Cart id("c9") does not exist (no `given` event created it)',
        "FAIL " + at(model, 'scenario "opened') + ': Shop: "opened twice"',
        '  the command is refused: Shop.Cart id("c1") already exists',
        "2 scenarios: 0 passed, 2 failed",
    ]


def test_a_model_that_does_not_validate_exits_2_with_its_errors(tmp_path: Path) -> None:
    model = write(
        tmp_path,
        """
  scenario "a wrong event" {
    when OpenCart { cart_id = id("c1"), owner = "Ada" }
    then CartClosed
  }
""",
    )
    result = stormgen_test(str(model))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "error[E405]: this `then` can never hold: command OpenCart never emits" in result.stderr
    assert f"error: {model} does not validate: its scenarios cannot run" in result.stderr
    assert "Traceback" not in result.stderr
    as_json = stormgen_test(str(model), "--format", "json")
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["valid"] is False
    assert [d["code"] for d in report["diagnostics"]] == ["E405"]


@pytest.mark.parametrize("name", ["missing.storm", ""])
def test_a_missing_model_exits_2(tmp_path: Path, name: str) -> None:
    result = stormgen_test(str(tmp_path / name))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_the_examples_scenarios_pass() -> None:
    result = stormgen_test(str(ROOT / "examples" / "coffee_shop.storm"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "11 scenarios: 11 passed, 0 failed"


def test_the_reference_examples_scenarios_pass(tmp_path: Path) -> None:
    """The clean ```storm examples of the docs (the reference, docs/language.md) with
    scenarios pass them."""
    pages = [ROOT / "docs" / "language.md", *sorted((ROOT / "docs" / "reference").glob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    blocks = [
        b
        for b in re.findall(r"^```storm\n(.*?)^```", text, re.S | re.M)
        if b.startswith("# validate: clean") and "scenario " in b
    ]
    assert blocks
    for number, block in enumerate(blocks):
        model = tmp_path / f"example_{number}.storm"
        model.write_text(block, encoding="utf-8")
        result = stormgen_test(str(model))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 failed" in result.stdout.splitlines()[-1]


PROCESS = """
  process Abandoned {
    key cart_id: uuid
    state { items: int = 0 }
    on CartOpened starts { timer Idle after minutes(30) }
    on ItemAdded {
      items = total
      timer Idle after minutes(30)
    }
    on CartClosed { end }
    on timer Idle if items > 0 {
      then Mailer.SendReceipt { items = items }
      then Close
      end
    }
  }
"""


def test_process_scenarios_pass_and_fail_on_what_the_timers_issue(tmp_path: Path) -> None:
    """The `given` events start and evolve a process instance (its timer counts from
    the scenario's start); `DURATION pass` fires what falls due; an empty `then` says
    that nothing happens; an ended instance ignores time."""
    model = write(
        tmp_path,
        PROCESS
        + """
  scenario "an idle cart with items is closed" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
          ItemAdded { cart_id = id("c1"), count = 2, total = 2 }
    when minutes(31) pass
    then Close { cart_id = id("c1") }
         Mailer.SendReceipt { cart_id = id("c1"), items = 2 }
  }
  scenario "an empty idle cart is left alone" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
    when hours(1) pass
    then
  }
  scenario "a closed cart is not reminded" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
          ItemAdded { cart_id = id("c1"), count = 2, total = 2 }
          CartClosed { cart_id = id("c1") }
    when hours(1) pass
    then
  }
  scenario "closing ends the process, issuing nothing" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
    when Close { cart_id = id("c1") }
    then CartClosed Mailer.SendReceipt { cart_id = id("c1"), items = 0 }
  }
  scenario "WRONG: the receipt's count" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
          ItemAdded { cart_id = id("c1"), count = 2, total = 2 }
    when minutes(31) pass
    then Close { cart_id = id("c1") }
         Mailer.SendReceipt { cart_id = id("c1"), items = 3 }
  }
  scenario "WRONG: too early" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
          ItemAdded { cart_id = id("c1"), count = 2, total = 2 }
    when minutes(29) pass
    then Close { cart_id = id("c1") }
  }
  scenario "WRONG: nothing happens" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
          ItemAdded { cart_id = id("c1"), count = 2, total = 2 }
    when hours(1) pass
    then
  }
""",
    )
    result = stormgen_test(str(model))
    assert result.returncode == 1, result.stdout + result.stderr
    name = 'scenario "'
    assert result.stdout.splitlines() == [
        "PASS " + at(model, name + "an idle") + ': Shop: "an idle cart with items is closed"',
        "PASS " + at(model, name + "an empty") + ': Shop: "an empty idle cart is left alone"',
        "PASS " + at(model, name + "a closed") + ': Shop: "a closed cart is not reminded"',
        "PASS "
        + at(model, name + "closing")
        + ': Shop: "closing ends the process, issuing nothing"',
        "FAIL " + at(model, name + "WRONG: the") + ': Shop: "WRONG: the receipt\'s count"',
        "  " + at(model, "items = 3") + ": SendReceipt.items",
        "    expected: 3",
        "    actual:   2",
        "FAIL " + at(model, name + "WRONG: too") + ': Shop: "WRONG: too early"',
        "  " + at(model, "Close { cart_id", 3) + ": Close",
        "    expected: issued",
        "    actual:   no command issued",
        "FAIL " + at(model, name + "WRONG: nothing") + ': Shop: "WRONG: nothing happens"',
        "  " + at(model, name + "WRONG: nothing") + ": nothing",
        "    expected: nothing",
        "    actual:   SendReceipt, Close",
        "7 scenarios: 4 passed, 3 failed",
    ]
    report = json.loads(stormgen_test("--format", "json", str(model)).stdout)
    assert (report["passed"], report["failed"]) == (4, 3)


def test_a_then_no_timer_can_issue_does_not_validate(tmp_path: Path) -> None:
    """E405 after time passes: a command no timer of a started process issues."""
    model = write(
        tmp_path,
        PROCESS
        + """
  scenario "an idle cart takes an item" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" }
    when hours(1) pass
    then AddItem { cart_id = id("c1"), count = 1 }
  }
""",
    )
    result = stormgen_test(str(model))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "E405" in result.stderr
    assert "no timer of a process the `given` events start issues AddItem" in result.stderr
