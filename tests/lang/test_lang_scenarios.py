"""The syntax of scenarios: given / when / then, read into the model's nodes."""

from __future__ import annotations

from stormgen.lang.builder import FileParts
from stormgen.lang.loader import parse_text
from stormgen.model.nodes import Call, Literal, Passing, RowExpectation, ScenarioMessage

MODEL = """
context Shop {
  scenario "every form" {
    given CartOpened { cart_id = id("c1"), owner = "Ada" } ItemAdded { count = 2 }
    given CartClosed
    when AddItem { cart_id = id("c1") count = 3 }
    then ItemAdded { count = 3 } Mailer.SendReceipt Carts[id("c1")] { items = 5 } Other[1]
  }
  scenario "rejected with a message" { when AddItem then rejected "the cart is closed" }
}
scenario "at top level" { when Shop.Close then rejected }
scenario "time passes" { when minutes(16) pass then Shop.Carts[id("c1")] }
"""


def parts() -> FileParts:
    result = parse_text(MODEL, "shop.storm")
    assert isinstance(result, FileParts), [str(d) for d in result]
    return result


def test_given_when_then_in_a_context() -> None:
    (context,) = parts().contexts
    every, rejected = context.scenarios
    assert every.name == "every form"
    assert [g.message.name for g in every.given] == ["CartOpened", "ItemAdded", "CartClosed"]
    assert [a.target for a in every.given[0].assignments] == ["cart_id", "owner"]
    first = every.given[0].assignments[0].value
    assert isinstance(first, Call) and first.function == "id"
    assert isinstance(every.when, ScenarioMessage) and every.when.message.name == "AddItem"
    assert [a.target for a in every.when.assignments] == ["cart_id", "count"]  # commas optional
    kinds = [type(item).__name__ for item in every.then]
    assert kinds == ["ScenarioMessage", "ScenarioMessage", "RowExpectation", "RowExpectation"]
    row = every.then[2]
    assert isinstance(row, RowExpectation) and row.view.name == "Carts"
    assert [a.target for a in row.assignments] == ["items"]
    other = every.then[3]
    assert isinstance(other, RowExpectation) and isinstance(other.key, Literal)
    assert (every.rejected, every.message) == (False, None)
    assert (rejected.rejected, rejected.message) == (True, "the cart is closed")
    assert (every.loc.line, every.loc.column) == (3, 3)


def test_scenarios_at_top_level_and_time_passing() -> None:
    top, passing = parts().scenarios
    assert isinstance(top.when, ScenarioMessage) and top.when.message.name == "Shop.Close"
    assert (top.rejected, top.message) == (True, None)
    assert isinstance(passing.when, Passing)
    duration = passing.when.duration
    assert isinstance(duration, Call) and duration.function == "minutes"
    (row,) = passing.then
    assert isinstance(row, RowExpectation) and row.view.name == "Shop.Carts"


def test_a_scenario_needs_a_when_and_a_then() -> None:
    for text in (
        'scenario "no when" { then rejected }',
        'scenario "no then" { when Shop.Close }',
        'scenario "two whens" { when Shop.Close when Shop.Open then rejected }',
        "scenario unquoted { when Shop.Close then rejected }",
    ):
        result = parse_text(text, "bad.storm")
        assert isinstance(result, list), text
        assert [d.code for d in result] == ["E001"], text
