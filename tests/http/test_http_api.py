"""The HTTP API in-process: a real application on a real SQLite file, via Starlette's client."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_shop import open_shop

from stormgen.runtime import Application, RetrySettings
from stormgen.runtime.http import create_app

FAST = RetrySettings(max_attempts=2, base_delay=0.001, max_delay=0.01, idle_timeout=0.05)
TOKENS = "c1=Customer,b1=Barista,g1=PaymentGateway"
CUSTOMER = {"Authorization": "Bearer c1"}
BARISTA = {"Authorization": "Bearer b1"}
GATEWAY = {"Authorization": "Bearer g1"}

ORDER = {
    "customer": "Ada",
    "drinks": [{"name": "Latte", "price": "3.50", "size": "Large"}],
    "total": "3.50",
}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Application]:
    app = open_shop(f"sqlite:///{tmp_path / 'events.db'}", retry=FAST)
    yield app
    app.close()


@pytest.fixture
def client(shop: Application) -> Iterator[TestClient]:
    # consumers are run by the tests themselves (run_consumers) to be deterministic
    with TestClient(create_app(shop, tokens="", run_consumers=False)) as c:
        yield c


@pytest.fixture
def secured(shop: Application) -> Iterator[TestClient]:
    with TestClient(create_app(shop, tokens=TOKENS, run_consumers=False)) as c:
        yield c


def place(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/ordering/order/place-order", json={**ORDER, **overrides})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------- commands and state


def test_create_answers_201_with_id_version_and_events(client: TestClient) -> None:
    body = place(client)
    uuid.UUID(body["id"])
    assert body["stream_version"] == 1
    [event] = body["events"]
    assert event["type"] == "Ordering.OrderPlaced"
    assert event["stream"] == f"Ordering.Order/{body['id']}"
    assert event["data"]["customer"] == "Ada"
    assert event["data"]["total"] == "3.50"


def test_create_with_a_given_id_and_then_exists_is_409(client: TestClient) -> None:
    order_id = str(uuid.uuid4())
    assert place(client, order_id=order_id)["id"] == order_id
    again = client.post("/ordering/order/place-order", json={**ORDER, "order_id": order_id})
    assert again.status_code == 409
    assert again.json()["error"] == "exists"
    assert "already exists" in again.json()["message"]


def test_state_and_history(client: TestClient) -> None:
    order_id = place(client)["id"]
    state = client.get(f"/ordering/order/{order_id}")
    assert state.status_code == 200
    body = state.json()
    assert body["stream_version"] == 1
    assert body["state"]["customer"] == "Ada"
    assert body["state"]["drinks"] == [{"name": "Latte", "price": "3.50", "size": "Large"}]
    assert state.headers["etag"] == '"1"'
    history = client.get(f"/ordering/order/{order_id}/events").json()["events"]
    assert [e["type"] for e in history] == ["Ordering.OrderPlaced"]


def test_command_on_an_instance_and_guard_rejection(client: TestClient) -> None:
    order_id = place(client)["id"]
    ok = client.post(f"/ordering/order/{order_id}/cancel", json={"reason": "changed my mind"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["stream_version"] == 2
    assert "id" not in ok.json()
    again = client.post(f"/ordering/order/{order_id}/cancel", json={"reason": "twice"})
    assert again.status_code == 409
    assert again.json() == {
        "status": 409,
        "error": "rejected",
        "message": "only an unpaid order can be cancelled",
    }


def test_guard_on_create(client: TestClient) -> None:
    response = client.post("/ordering/order/place-order", json={**ORDER, "total": "0"})
    assert response.status_code == 409
    assert response.json()["message"] == "the total must be positive"


def test_unknown_instance_is_404(client: TestClient) -> None:
    missing = uuid.uuid4()
    assert client.get(f"/ordering/order/{missing}").status_code == 404
    assert client.get(f"/ordering/order/{missing}/events").status_code == 404
    cancel = client.post(f"/ordering/order/{missing}/cancel", json={"reason": "x"})
    assert cancel.status_code == 404
    assert cancel.json()["error"] == "not_found"
    # an id that cannot be of the id's type names no instance either
    assert client.get("/ordering/order/not-a-uuid").status_code == 404
    assert client.post("/ordering/order/not-a-uuid/cancel", json={"reason": "x"}).status_code == 404


def test_internal_commands_are_not_on_the_api(client: TestClient) -> None:
    order_id = place(client)["id"]
    # an internal command has no route: its path is the route-level 404, not a 405
    for response in (
        client.post(f"/ordering/order/{order_id}/mark-paid", json={"amount": "3.50"}),
        client.post("/bar/ticket/open-ticket", json={"drinks": []}),
    ):
        assert response.status_code == 404, response.text
        assert response.json() == {"status": 404, "error": "not_found", "message": "no such route"}
    paths = client.get("/openapi.json").json()["paths"]
    assert not any("mark-paid" in p or "open-ticket" in p for p in paths)


def test_a_path_that_is_no_route_is_never_read_as_an_id(client: TestClient) -> None:
    order_id = place(client)["id"]
    for path in (
        f"/ordering/order/{order_id}/fly-away",
        f"/ordering/order/{order_id}/events/more",
        "/ordering/views/order-history/a/b",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["message"] == "no such route", path


def test_every_path_parameter_is_declared(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_awkward_names_become_kebab_paths(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/bar/ticket/{id}/http-request-done" in paths
    assert "/ordering/external/payment-gateway/card-charged" in paths
    assert "/ordering/views/order-history" in paths
    assert "/display/views/pickup/{key}" in paths


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"not json",
        b"[1, 2]",
        b"",
        b'"text"',
        b'{"customer": "Ada",}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"customer": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        rb'{"customer": "\ud800"}',
        b'{"total": NaN}',
    ],
)
def test_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/ordering/order/place-order", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"customer": "Ada", "total": "3.50"}, "drinks", "missing"),
        ({**ORDER, "tip": 1}, "tip", "unknown"),
        ({**ORDER, "total": "lots"}, "total", "invalid"),
        ({**ORDER, "customer": 42}, "customer", "invalid"),
        ({**ORDER, "drinks": "Latte"}, "drinks", "invalid"),
        ({**ORDER, "drinks": [{"name": "Latte"}]}, "drinks[0].price", "missing"),
        ({**ORDER, "drinks": [{**ORDER["drinks"][0], "size": "Huge"}]}, "drinks[0].size", ""),
        ({**ORDER, "drinks": [{**ORDER["drinks"][0], "sugar": 2}]}, "drinks[0].sugar", "unknown"),
        ({**ORDER, "order_id": "not-a-uuid"}, "order_id", "invalid"),
    ],
)
def test_bad_fields_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/ordering/order/place-order", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "invalid"
    assert error["field"] == field
    assert field in error["message"]
    assert words in error["message"]


def test_id_in_body_must_match_the_path(client: TestClient) -> None:
    order_id = place(client)["id"]
    other = str(uuid.uuid4())
    response = client.post(
        f"/ordering/order/{order_id}/cancel", json={"reason": "x", "order_id": other}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "order_id"
    same = client.post(
        f"/ordering/order/{order_id}/cancel", json={"reason": "x", "order_id": order_id}
    )
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/events?after=x", "after"),
        ("/events?limit=0", "limit"),
        ("/ordering/views/order-history?limit=-1", "limit"),
        ("/ordering/views/order-history?customer=Ada", "customer"),
        ("/ordering/views/order-history?colour=red", "colour"),
        ("/ordering/views/daily-sales?orders=many", "orders"),
    ],
)
def test_bad_query_parameters_are_422(client: TestClient, path: str, param: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == param


@pytest.mark.parametrize("at", ["yesterday", "0001-01-01T00:00:00+05:00", "1" + "0" * 30])
def test_bad_at_is_422(client: TestClient, at: str) -> None:
    order_id = place(client)["id"]
    response = client.get(f"/ordering/order/{order_id}", params={"at": at})
    assert response.status_code == 422
    assert response.json()["field"] == "at"


def test_unknown_route_is_404_in_the_same_shape(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# ---------------------------------------------------------------- headers


def test_if_match(client: TestClient) -> None:
    order_id = place(client)["id"]
    stale = client.post(
        f"/ordering/order/{order_id}/cancel", json={"reason": "x"}, headers={"If-Match": "7"}
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "conflict"
    assert stale.json()["actual_version"] == 1
    assert stale.json()["expected_version"] == 7
    fresh = client.post(
        f"/ordering/order/{order_id}/cancel", json={"reason": "x"}, headers={"If-Match": '"1"'}
    )
    assert fresh.status_code == 200
    bad = client.post(
        f"/ordering/order/{order_id}/cancel", json={"reason": "x"}, headers={"If-Match": "one"}
    )
    assert bad.status_code == 400


def test_idempotency_key_writes_once(client: TestClient, shop: Application) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/ordering/order/place-order", json=ORDER, headers=headers)
    second = client.post("/ordering/order/place-order", json=ORDER, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    placed = [e for e in shop.events() if e.type == "Ordering.OrderPlaced"]
    assert len(placed) == 1


# ---------------------------------------------------------------- authorization


def test_tokens_401_and_403(secured: TestClient) -> None:
    assert secured.post("/ordering/order/place-order", json=ORDER).status_code == 401
    unknown = {"Authorization": "Bearer nope"}
    response = secured.post("/ordering/order/place-order", json=ORDER, headers=unknown)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    basic = {"Authorization": "Basic YTpi"}
    assert secured.post("/ordering/order/place-order", json=ORDER, headers=basic).status_code == 401
    wrong = secured.post("/ordering/order/place-order", json=ORDER, headers=BARISTA)
    assert wrong.status_code == 403
    assert "Barista may not issue PlaceOrder" in wrong.json()["message"]
    ok = secured.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER)
    assert ok.status_code == 201
    event = ok.json()["events"][0]
    assert event["metadata"]["actor"] == "Customer"
    # reads need a token too, /health does not
    assert secured.get(f"/ordering/order/{ok.json()['id']}").status_code == 401
    assert secured.get(f"/ordering/order/{ok.json()['id']}", headers=BARISTA).status_code == 200
    assert secured.get("/events").status_code == 401
    assert secured.get("/health").status_code == 200


def test_authorization_comes_before_body_validation(secured: TestClient) -> None:
    response = secured.post("/ordering/order/place-order", content=b"{", headers=BARISTA)
    assert response.status_code == 403


def test_external_events_only_from_the_systems_token(
    secured: TestClient, shop: Application
) -> None:
    order_id = secured.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER).json()[
        "id"
    ]
    body = {"order_id": order_id, "reason": "no funds"}
    path = "/ordering/external/payment-gateway/card-declined"
    assert secured.post(path, json=body, headers=CUSTOMER).status_code == 403
    accepted = secured.post(path, json=body, headers=GATEWAY)
    assert accepted.status_code == 202
    assert accepted.json()["position"] >= 2
    [event] = accepted.json()["events"]
    assert event["stream"] == "Ordering.PaymentGateway"
    assert "stream_id" not in event


def test_external_events_refused_when_no_token_is_mapped_to_the_system(
    shop: Application,
) -> None:
    # issue 17: an external system's events come only from that system; with tokens
    # configured and none mapped to it, its routes are closed (was: any actor's token)
    app = create_app(shop, tokens="c1=Customer,z9=OtherSystem", run_consumers=False)
    with TestClient(app) as c:
        body = {"order_id": str(uuid.uuid4()), "amount": "1.00"}
        path = "/ordering/external/payment-gateway/card-charged"
        refused = c.post(path, json=body, headers=CUSTOMER)
        assert refused.status_code == 403
        assert "no token is mapped to Ordering.PaymentGateway" in refused.json()["message"]
        assert c.post(path, json=body).status_code == 401
        assert app.state.api.unmapped_systems() == ["Ordering.PaymentGateway"]


# ---------------------------------------------------------------- the journey, views, log


def test_journey_through_policies_and_views(client: TestClient, shop: Application) -> None:
    order_id = place(client)["id"]
    shop.run_consumers()  # charge (fake gateway) -> paid -> ticket
    state = client.get(f"/ordering/order/{order_id}").json()
    assert state["state"]["status"] == "Paid"
    row = client.get(f"/ordering/views/order-history/{order_id}").json()
    assert row == {"order_id": order_id, "customer": "Ada", "total": "3.50", "status": "paid"}
    assert client.get(f"/display/views/pickup/{order_id}").json()["ready"] is False
    today = datetime.now(UTC).date().isoformat()
    sales = client.get(f"/ordering/views/daily-sales/{today}").json()
    assert sales == {"day": today, "orders": 1, "revenue": "3.50"}
    # filters are typed by the column: booleans, integers
    waiting = client.get("/display/views/pickup?ready=false").json()["rows"]
    assert [r["ticket_id"] for r in waiting] == [order_id]
    assert client.get("/display/views/pickup?ready=true").json()["rows"] == []
    assert client.get("/ordering/views/daily-sales?orders=1").json()["rows"] == [sales]
    assert client.get("/ordering/views/daily-sales?orders=2").json()["rows"] == []
    brew = client.post(f"/bar/ticket/{order_id}/start-brewing", json={})
    assert brew.status_code == 200
    assert client.post(f"/bar/ticket/{order_id}/start-brewing", json={}).status_code == 409


def test_view_filters_and_paging(client: TestClient, shop: Application) -> None:
    ids = sorted(place(client)["id"] for _ in range(5))
    cancelled = ids[1]
    client.post(f"/ordering/order/{cancelled}/cancel", json={"reason": "x"})
    shop.run_consumers()
    rows = client.get("/ordering/views/order-history?status=cancelled").json()["rows"]
    assert [r["order_id"] for r in rows] == [cancelled]
    first = client.get("/ordering/views/order-history?limit=2").json()
    assert [r["order_id"] for r in first["rows"]] == ids[:2]
    assert first["next_after"] == ids[1]
    rest = client.get(f"/ordering/views/order-history?limit=10&after={first['next_after']}")
    assert [r["order_id"] for r in rest.json()["rows"]] == ids[2:]
    assert rest.json()["next_after"] is None
    assert client.get(f"/ordering/views/order-history/{uuid.uuid4()}").status_code == 404
    assert client.get("/ordering/views/order-history/not-a-key").status_code == 404


def test_time_travel_by_position_and_time(client: TestClient, shop: Application) -> None:
    order_id = place(client)["id"]
    placed_at = shop.store.last_position()
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    client.post(f"/ordering/order/{order_id}/cancel", json={"reason": "x"})
    now = client.get(f"/ordering/order/{order_id}").json()
    assert now["state"]["status"] == "Cancelled"
    then = client.get(f"/ordering/order/{order_id}?at={placed_at}").json()
    assert then["state"]["status"] == "Placed"
    assert then["stream_version"] == 1
    at_time = client.get(f"/ordering/order/{order_id}", params={"at": middle.isoformat()})
    assert at_time.json()["state"]["status"] == "Placed"
    before = (middle - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert client.get(f"/ordering/order/{order_id}", params={"at": before}).status_code == 404


def test_global_log_paging(client: TestClient) -> None:
    for _ in range(3):
        place(client)
    first = client.get("/events?limit=2").json()
    assert [e["position"] for e in first["events"]] == [1, 2]
    rest = client.get(f"/events?after={first['next_after']}").json()
    assert [e["position"] for e in rest["events"]] == [3]
    assert set(rest["events"][0]) >= {
        "id", "type", "version", "stream", "stream_id", "stream_version", "position",
        "recorded_at", "data", "metadata",
    }  # fmt: skip


def test_failures_are_listed_and_can_be_retried(client: TestClient, shop: Application) -> None:
    order_id = place(client)["id"]
    shop.run_consumers()  # paid by the fake gateway
    # a late decline: the policy's Cancel is rejected, so it fails and is parked
    declined = {"order_id": order_id, "reason": "late"}
    path = "/ordering/external/payment-gateway/card-declined"
    assert client.post(path, json=declined).status_code == 202
    shop.run_consumers()
    body = client.get("/failures").json()
    assert body["failures"], body
    assert body["failures"][0]["type"] == "$Failure"
    [parked] = body["parked"]
    assert parked["consumer"] == "Ordering.CancelWhenDeclined"
    assert "only an unpaid order can be cancelled" in parked["error"]
    health = client.get("/health").json()
    assert health["parked"] == 1
    retry = client.post(f"/failures/{parked['consumer']}/{parked['position']}/retry")
    assert retry.status_code == 200
    assert retry.json()["resolved"] is False
    assert client.post("/failures/Nobody/1/retry").status_code == 404
    assert client.post(f"/failures/{parked['consumer']}/x/retry").status_code == 404


def test_health_reports_each_consumers_lag(client: TestClient, shop: Application) -> None:
    place(client)
    before = client.get("/health").json()
    assert before["status"] == "ok"
    assert before["position"] == 1
    assert before["consumers"]["Ordering.OrderHistory"] == {
        "kind": "view", "position": 0, "behind": 1,
    }  # fmt: skip
    assert before["consumers"]["Ordering.ChargeOnOrder"]["kind"] == "policy"
    shop.run_consumers()
    after = client.get("/health").json()
    assert all(c["behind"] == 0 for c in after["consumers"].values())


def test_background_consumers_run_while_serving(shop: Application) -> None:
    with TestClient(create_app(shop, tokens="")) as c:
        order_id = c.post("/ordering/order/place-order", json=ORDER).json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = c.get(f"/display/views/pickup/{order_id}")
            if row.status_code == 200:
                break
            time.sleep(0.05)
        assert row.status_code == 200


def test_one_context_only(shop: Application) -> None:
    with TestClient(create_app(shop, tokens="", contexts=["Bar"], run_consumers=False)) as c:
        paths = c.get("/openapi.json").json()["paths"]
        assert "/bar/ticket/{id}/start-brewing" in paths
        assert not any(p.startswith("/ordering") for p in paths)
        assert c.post("/ordering/order/place-order", json=ORDER).status_code == 404


def test_openapi_has_a_request_schema_per_command(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/ordering/order/place-order"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(schema["required"]) == {"customer", "drinks", "total"}
    assert schema["additionalProperties"] is False
    assert "order_id" in schema["properties"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"If-Match", "Idempotency-Key"}
    cancel = document["paths"]["/ordering/order/{id}/cancel"]["post"]
    ref = cancel["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    cancel_schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(cancel_schema["properties"]) == {"reason"}
    # no description and no docstring: none, not the signature `dataclass` writes as __doc__
    assert "description" not in cancel_schema


@pytest.mark.parametrize("isbn", ["978-3-16-148410-0", "a/b c?d#e%f", "über/../x", "x/events"])
def test_text_ids_travel_url_encoded(client: TestClient, shop: Application, isbn: str) -> None:
    from urllib.parse import quote

    added = client.post("/library/book/add-book", json={"isbn": isbn, "title": "Dune"})
    assert added.status_code == 201, added.text
    assert added.json()["id"] == isbn
    path = quote(isbn, safe="")
    renamed = client.post(f"/library/book/{path}/rename-book", json={"title": "Dune II"})
    assert renamed.status_code == 200, renamed.text
    state = client.get(f"/library/book/{path}").json()
    assert (state["id"], state["state"]["title"]) == (isbn, "Dune II")
    history = client.get(f"/library/book/{path}/events").json()["events"]
    assert [e["stream_id"] for e in history] == [isbn, isbn]
    shop.run_consumers()
    assert client.get(f"/library/views/titles/{path}").json() == {"isbn": isbn, "title": "Dune II"}
    # a text id is required on create (only uuid ids may be left out)
    missing = client.post("/library/book/add-book", json={"title": "Dune"})
    assert missing.status_code == 422
    assert missing.json()["field"] == "isbn"


def test_openapi_declares_bearer_security_when_tokens_are_set(secured: TestClient) -> None:
    document = secured.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for operation in operations.values():
            expected = [] if path == "/health" else [{"bearer": []}]
            assert operation.get("security", []) == expected, path


# ---------------------------------------------------------------- the direct command path


def test_commands_and_their_neighbours_answer_as_routed(client: TestClient) -> None:
    # commands skip FastAPI's inner layers (DirectCommands); every other answer on
    # their paths still comes from the router, in the same shapes
    wrong_method = client.put("/ordering/order/place-order", json=ORDER)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    nowhere = client.post("/nowhere/order/place-order", json=ORDER)
    assert nowhere.status_code == 404
    assert nowhere.json()["error"] == "not_found"
    order_id = place(client)["id"]
    cancelled = client.post(f"/ordering/order/{order_id}/cancel", json={"reason": "x"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.headers["etag"] == f'"{cancelled.json()["stream_version"]}"'
    again = client.post(f"/ordering/order/{order_id}/cancel", json={"reason": "x"})
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "rejected"


def test_a_route_before_a_command_on_its_path_answers_first(shop: Application) -> None:
    # a creating command's route is found by its path at once, but only when no route
    # before it matches a POST there (the router's order decides), also for a route
    # put first after the app has served commands
    app = create_app(shop, tokens="", run_consumers=False)

    async def shadow() -> dict[str, str]:
        return {"answered": "by the earlier route"}

    with TestClient(app) as c:
        assert place(c)["stream_version"] == 1
        app.add_api_route("/ordering/order/place-order", shadow, methods=["POST"])
        app.router.routes.insert(0, app.router.routes.pop())
        shadowed = c.post("/ordering/order/place-order", json=ORDER)
        assert shadowed.status_code == 200, shadowed.text
        assert shadowed.json() == {"answered": "by the earlier route"}
        app.router.routes.append(app.router.routes.pop(0))  # now after the command's
        assert place(c)["stream_version"] == 1


def test_a_created_instance_s_id_is_made_only_when_the_body_has_none(client: TestClient) -> None:
    made = {place(client)["id"] for _ in range(3)}
    assert len(made) == 3 and all(uuid.UUID(i).version == 4 for i in made)
    given = str(uuid.uuid4())
    assert place(client, order_id=given)["id"] == given
    null = place(client, order_id=None)["id"]  # the model takes null for "make one"
    assert uuid.UUID(null).version == 4 and null not in made
    bad = client.post("/ordering/order/place-order", json={**ORDER, "order_id": "x"})
    assert bad.status_code == 422 and bad.json()["field"] == "order_id", bad.text
    wrong = client.post("/ordering/order/place-order", json={**ORDER, "customer": 7})
    assert wrong.status_code == 422 and wrong.json()["field"] == "customer", wrong.text


def test_a_store_failure_during_a_command_is_503(shop: Application) -> None:
    with TestClient(create_app(shop, tokens="", run_consumers=False)) as c:
        shop.store.close()
        response = c.post("/ordering/order/place-order", json=ORDER)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"


def test_health_says_when_the_store_fails(shop: Application) -> None:
    with TestClient(create_app(shop, tokens="", run_consumers=False)) as c:
        healthy = c.get("/health")
        shop.store.close()
        failing = c.get("/health")
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["store"] == {"ok": True}
    assert failing.status_code == 503, failing.text
    assert failing.headers["retry-after"] == "1"
    assert failing.json() == {
        "status": "failing",
        "store": {"ok": False, "error": "failed", "message": "the store failed"},
    }
