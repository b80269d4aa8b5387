"""`stormgen.runtime.scenarios` on the generated coffee shop (the golden record).

`ScenarioRun` plays one step of the real compiled service in memory: given events
evolve aggregates and views only, the `when` runs the aggregate's code and the
policies' `react`, and a command is refused before its guards as the service does.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stormgen.runtime import AlreadyExists, NotFound
from stormgen.runtime.scenarios import SCENARIO_IDS, STARTED_AT, ScenarioRun, stable_id

SRC = Path(__file__).resolve().parents[1] / "golden" / "coffee_shop" / "src"


@pytest.fixture(scope="module")
def shop() -> Iterator[dict[str, Any]]:
    sys.path.insert(0, str(SRC))
    try:
        import coffee_shop.app as app
        import coffee_shop.ordering.order as order
        import coffee_shop.ordering.payment_gateway as gateway
        import coffee_shop.shared as shared

        modules: dict[str, ModuleType] = {
            "app": app,
            "order": order,
            "gateway": gateway,
            "shared": shared,
        }
        yield modules
    finally:
        sys.path.remove(str(SRC))


def placed(shop: dict[str, Any], ident: uuid.UUID) -> Any:
    drink = shop["shared"].Drink(name="latte", price=Decimal("3.50"))
    return shop["order"].OrderPlaced(
        order_id=ident, customer="Ada", drinks=(drink,), total=Decimal("3.50")
    )


def test_stable_ids() -> None:
    assert uuid.uuid5(uuid.NAMESPACE_URL, "https://stormgen.dev/scenario-ids") == SCENARIO_IDS
    assert stable_id("o1") == uuid.uuid5(SCENARIO_IDS, "o1")
    assert stable_id("o1") != stable_id("o2")
    assert stable_id("o1", str) == "o1"


def test_given_events_evolve_but_issue_nothing(shop: dict[str, Any]) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    run.given(placed(shop, order_id))  # ChargeOnOrder does not react to a given event
    outcome = run.when(shop["gateway"].CardCharged(order_id=order_id, amount=Decimal("3.50")))
    assert outcome.events == [] and outcome.rejected is None
    assert [type(c).__name__ for c in outcome.commands] == ["MarkPaid"]
    assert outcome.issued(shop["order"].MarkPaid, order_id=order_id, amount=Decimal("3.50"))
    assert not outcome.issued(shop["order"].MarkPaid, amount=Decimal("4"))
    row = run.row("Ordering.OrderHistory", order_id)
    assert (row.customer, row.status) == ("Ada", "placed")
    assert run.row("Ordering.OrderHistory", stable_id("nobody")) is None


def test_when_a_command_records_events_and_collects_the_policies_commands(
    shop: dict[str, Any],
) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    run.given(placed(shop, order_id))
    outcome = run.when(shop["order"].MarkPaid(order_id=order_id, amount=Decimal("3.50")))
    assert [type(e).__name__ for e in outcome.events] == ["OrderPaid"]
    assert [type(c).__name__ for c in outcome.commands] == ["OpenTicket"]  # not handled
    assert run.row("Ordering.OrderHistory", order_id).status == "paid"
    assert run.row("Ordering.DailySales", STARTED_AT.date()).orders == 1
    again = run.when(shop["order"].MarkPaid(order_id=order_id, amount=Decimal("3.50")))
    assert again.rejected == "only a placed order can be paid"
    assert again.events == [] and again.commands == []


def test_commands_refused_before_their_guards(shop: dict[str, Any]) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    order_id = stable_id("o1")
    with pytest.raises(NotFound, match="does not exist"):
        run.when(shop["order"].Cancel(order_id=order_id, reason="why not"))
    run.given(placed(shop, order_id))
    with pytest.raises(AlreadyExists, match="already exists"):
        run.when(
            shop["order"].PlaceOrder(
                order_id=order_id, customer="Bo", drinks=(), total=Decimal("1")
            )
        )


def test_time_passes(shop: dict[str, Any]) -> None:
    run = ScenarioRun(**shop["app"].definitions())
    outcome = run.passes(timedelta(minutes=16))
    assert (outcome.events, outcome.rejected, outcome.commands) == ([], None, [])
    assert run.now == STARTED_AT + timedelta(minutes=16)
