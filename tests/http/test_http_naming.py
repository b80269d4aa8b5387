"""Path segments are kebab-case names (docs/http.md, "Routes")."""

from __future__ import annotations

import pytest

from stormgen.runtime.http import kebab


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("PlaceOrder", "place-order"),
        ("HTTPRequest", "http-request"),
        ("A0x0Done1", "a0x0-done1"),
        ("Ordering", "ordering"),
        ("PaymentGateway", "payment-gateway"),
        ("OrderHistory", "order-history"),
        ("DailySales", "daily-sales"),
        ("HandOver", "hand-over"),
        ("getHTTPResponseCode", "get-http-response-code"),
        ("Order2Go", "order2-go"),
        ("ABC", "abc"),
        ("X", "x"),
        ("already_snake", "already-snake"),
    ],
)
def test_kebab(name: str, segment: str) -> None:
    assert kebab(name) == segment
