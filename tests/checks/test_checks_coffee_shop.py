"""The spec's coffee shop through the scope and every rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.lang import parse_model
from stormgen.model.nodes import Aggregate, External, Model
from stormgen.model.scope import (
    ACTOR_KINDS,
    ALL_KINDS,
    COMMAND_KINDS,
    EVENT_KINDS,
    Scope,
)

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "coffee_shop.storm"


@pytest.fixture(scope="module")
def model() -> Model:
    return parse_model(EXAMPLE)


def test_coffee_shop_findings(model: Model) -> None:
    found = [(d.code, d.location.line if d.location else None, d.message) for d in check(model)]
    # The hotspots, and one warning the spec's own example earns: BrewingStarted is
    # neither published nor consumed (it only evolves the ticket's state).
    assert found == [
        ("I001", 51, "open hotspot: Can a paid order be refunded?"),
        (
            "W503",
            223,
            "event `BrewingStarted` is consumed by no policy or view and is not published",
        ),
        ("I001", 233, "open hotspot: What if the bar is out of an ingredient?"),
    ]


def test_plain_names_resolve_in_the_current_context(model: Model) -> None:
    scope = Scope(model)
    ordering, bar = scope.context("Ordering"), scope.context("Bar")
    r = scope.resolve(ordering, "OrderPlaced", EVENT_KINDS)
    assert r is not None and r.kind == "event" and r.context is ordering
    assert isinstance(r.owner, Aggregate) and r.owner.name == "Order"
    # Bar has no OrderPlaced of its own: another context's event needs its context's name.
    assert scope.resolve(bar, "OrderPlaced", EVENT_KINDS) is None
    paid = scope.resolve(bar, "Ordering.OrderPaid", EVENT_KINDS)
    assert paid is not None and paid.context is ordering and paid.qualified == "Ordering.OrderPaid"


def test_dotted_names_prefer_the_context_external(model: Model) -> None:
    scope = Scope(model)
    ordering = scope.context("Ordering")
    r = scope.resolve(ordering, "PaymentGateway.ChargeCard", COMMAND_KINDS)
    assert r is not None and isinstance(r.owner, External)
    assert r.qualified == "Ordering.PaymentGateway.ChargeCard"
    assert scope.resolve(None, "Ordering.PaymentGateway.CardCharged", EVENT_KINDS) is not None
    assert scope.owner_of(r.element) is r.owner
    assert scope.context_of(r.element) is ordering


def test_top_level_and_kinds(model: Model) -> None:
    scope = Scope(model)
    bar = scope.context("Bar")
    barista = scope.resolve(bar, "Barista", ACTOR_KINDS)
    assert barista is not None and barista.context is None
    assert scope.resolve(bar, "Barista", EVENT_KINDS) is None
    drink = scope.resolve_type(bar, "Drink")
    assert drink is not None and drink.kind == "value"
    status = scope.resolve_type(bar, "TicketStatus")
    assert status is not None and status.kind == "enum" and status.context is bar
    assert scope.resolve_type(bar, "OrderStatus") is None
    assert scope.resolve(None, "Ordering", ALL_KINDS) is not None


def test_candidates(model: Model) -> None:
    scope = Scope(model)
    bar = scope.context("Bar")
    events = scope.candidates(bar, EVENT_KINDS)
    assert "TicketOpened" in events and "Ordering.OrderPaid" in events
    assert "OrderPaid" not in events  # only qualified from another context
    ordering = scope.context("Ordering")
    assert "PaymentGateway.CardCharged" in scope.candidates(ordering, EVENT_KINDS)
    assert "Customer" in scope.candidates(ordering, ACTOR_KINDS)
