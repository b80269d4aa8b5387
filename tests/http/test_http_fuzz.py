"""Random requests never make the API answer 500 (property-based, in-process)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from http_shop import open_shop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stormgen.runtime.http import create_app

TOKENS = "c1=Customer,b1=Barista,g1=PaymentGateway"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["3.50", "-1", "1e400", "Large", str(uuid.UUID(int=1)), "2026-11-27"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["customer", "drinks", "total", "name", "price", "size", "order_id"])
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.fixed_dictionaries(
        {"customer": json_values, "drinks": json_values, "total": json_values}
    ).map(lambda v: json.dumps(v).encode()),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from(["Bearer c1", "Bearer b1", "Bearer g1", "Bearer", "x"]),
        "If-Match": st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=6
        ),
        "Idempotency-Key": st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=10
        ),
    },
)
segments = st.text(max_size=12).map(lambda t: quote(t, safe=""))
posts = st.sampled_from(
    [
        "/ordering/order/place-order",
        "/ordering/order/{id}/cancel",
        "/bar/ticket/{id}/start-brewing",
        "/ordering/external/payment-gateway/card-declined",
        "/library/book/add-book",
        "/library/book/{id}/rename-book",
        "/failures/{id}/{id}/retry",
    ]
)
gets = st.sampled_from(
    [
        "/ordering/order/{id}",
        "/ordering/order/{id}/events",
        "/ordering/views/order-history",
        "/ordering/views/daily-sales/{id}",
        "/display/views/pickup/{id}",
        "/library/views/titles/{id}",
        "/events",
        "/failures",
        "/health",
    ]
)
queries = st.dictionaries(
    st.sampled_from(["at", "after", "limit", "status", "total", "orders", "day", "ready"])
    | st.text(max_size=5),
    st.text(max_size=12),
    max_size=3,
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    shop = open_shop("memory://")
    with TestClient(
        create_app(shop, tokens=TOKENS, run_consumers=False), raise_server_exceptions=False
    ) as c:
        yield c
    shop.close()


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(path=posts, ident=segments, body=bodies, extra=headers)
def test_random_posts_never_500(
    client: TestClient, path: str, ident: str, body: bytes, extra: dict[str, str]
) -> None:
    response = client.post(path.replace("{id}", ident or "x"), content=body, headers=extra)
    assert response.status_code < 500, response.text
    assert "message" in response.json() or response.status_code < 300


@FUZZ
@given(path=gets, ident=segments, query=queries, extra=headers)
def test_random_reads_never_500(
    client: TestClient, path: str, ident: str, query: dict[str, Any], extra: dict[str, str]
) -> None:
    response = client.get(path.replace("{id}", ident or "x"), params=query, headers=extra)
    assert response.status_code < 500, response.text
