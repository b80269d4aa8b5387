"""The naming heuristics of W506 and W507."""

from __future__ import annotations

import pytest

from stormgen.checks._words import is_imperative, is_past_tense, to_pascal, words
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
