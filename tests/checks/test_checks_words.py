"""The naming heuristics of W506 and W507."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.checks._words import is_imperative, is_past_tense, to_pascal, words
from stormgen.lang import parse_model
from stormgen.model.naming import snake_case


@pytest.mark.parametrize(
    "name",
    [
        "OrderPlaced",
        "OrderPaid",
        "TicketHandedOver",
        "DrinksReady",
        "BrewingStarted",
        "CardDeclined",
        "PasswordReset",
        "OrderPrepaid",
        "TermsAgreed",
        "ItemsSent",
    ],
)
def test_past_tense_events(name: str) -> None:
    assert is_past_tense(name)


@pytest.mark.parametrize("name", ["PlaceOrder", "OpenTicket", "FeedCat", "OrderNeed", "Order"])
def test_not_past_tense_events(name: str) -> None:
    assert not is_past_tense(name)


@pytest.mark.parametrize(
    "name",
    [
        "PlaceOrder",
        "MarkPaid",
        "MarkCompleted",
        "StartBrewing",
        "HandOver",
        "Cancel",
        "BringCoffee",
        "ResetPassword",
        "SetPrice",
    ],
)
def test_imperative_commands(name: str) -> None:
    assert is_imperative(name)


@pytest.mark.parametrize("name", ["OrderPlaced", "PlacedOrder", "PlacingOrder", "PaidOrder"])
def test_not_imperative_commands(name: str) -> None:
    assert not is_imperative(name)


def test_case_helpers() -> None:
    assert words("HTTPRequestSent") == ["HTTP", "Request", "Sent"]
    assert to_pascal("order_placed") == "OrderPlaced"
    assert snake_case("orderTotal") == "order_total"
    assert snake_case("OrderTotal") == "order_total"


SAMPLE_NAMES = Path(__file__).with_name("sample_names.txt")


def _sample_names() -> list[tuple[str, str]]:
    names = []
    for line in SAMPLE_NAMES.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            kind, name = text.split()
            names.append((kind, name))
    return names


def test_no_false_positive_on_public_sample_names() -> None:
    names = _sample_names()
    assert len(names) >= 500
    assert {kind for kind, _ in names} == {"event", "command"}
    flagged = [
        f"{kind} {name}"
        for kind, name in names
        if not (is_past_tense(name) if kind == "event" else is_imperative(name))
    ]
    assert flagged == []


def test_the_rule_keeps_reported_names_and_true_positives(tmp_path: Path) -> None:
    source = tmp_path / "shop.storm"
    source.write_text(
        """
context Shop {
  aggregate Stock {
    id sku: str
    command NotifyMisdirected creates { emit ProductWasOutOfStock }
    command OrderCreated { emit CreateOrder }
    event ProductWasOutOfStock
    event CreateOrder
  }
}
""",
        encoding="utf-8",
    )
    messages = sorted(d.message for d in check(parse_model(source)) if d.code == "W506")
    assert messages == [
        "command `OrderCreated` is not named as an imperative",
        "event `CreateOrder` is not named in the past tense",
    ]
