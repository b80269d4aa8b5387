"""A process over HTTP: its instances listed (paged) and read (now and `at` a past
position), with their pending timers; the test clock moved forward through
`POST /_test/clock` fires them; the route is refused with tokens configured; a parked
timer is retried through `POST /failures/{process}/timers/{key}/{timer}/retry` (on a
real server); an instance stored before a state field was renamed with `was` shows it
under its new name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient
from http_shop import Cancel, Order, OrderCancelled, OrderPaid, OrderPlaced
from test_idempotency_scopes import ThreadServer

from stormgen.runtime import (
    Application,
    Process,
    RetrySettings,
    Step,
    TestClock,
    on_event,
    on_timer,
)
from stormgen.runtime.http import TokenConfigError, create_app


@dataclass(frozen=True)
class CheckoutState:
    customer: str = ""
    paid: bool = False


class Checkout(Process[CheckoutState]):
    name = "Ordering.Checkout"
    key = "order_id"
    key_type = UUID
    state_type = CheckoutState
    events = (OrderPlaced, OrderPaid, OrderCancelled)
    starts = (OrderPlaced,)
    timers = ("PaymentDue",)

    @on_event(OrderPlaced)
    def placed(self, step: Step[CheckoutState], event: OrderPlaced) -> None:
        step.timer("PaymentDue", after=timedelta(minutes=15))

    @on_event(OrderPaid)
    def paid(self, step: Step[CheckoutState], event: OrderPaid) -> None:
        step.assign(paid=True)
        step.end()

    @on_event(OrderCancelled)
    def cancelled(self, step: Step[CheckoutState], event: OrderCancelled) -> None:
        step.end()

    @on_timer("PaymentDue")
    def payment_due(self, step: Step[CheckoutState]) -> None:
        if not step.state.paid:
            step.issue(Cancel(order_id=step.key, reason="not paid in time"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Application]]:
    app = Application.open(
        f"sqlite:///{tmp_path / 'events.db'}",
        aggregates=[Order()],
        processes=[Checkout()],
        clock=TestClock(),
    )
    with TestClient(create_app(app, tokens="")) as client:
        yield client, app
    app.close()


def _place(http: TestClient) -> str:
    drink = {"name": "Latte", "price": "3.50", "size": "Large"}
    body = {"customer": "Ada", "drinks": [drink], "total": "3.50"}
    response = http.post("/ordering/order/place-order", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _until(http: TestClient, path: str, check: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        response = http.get(path)
        if response.status_code == 200 and check in response.text:
            return dict(response.json())
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


def test_instances_are_listed_read_and_their_timers_fired(
    served: tuple[TestClient, Application],
) -> None:
    http, app = served
    ids = sorted(_place(http) for _ in range(3))
    for order_id in ids:
        _until(http, f"/ordering/processes/checkout/{order_id}", "PaymentDue")
    page = http.get("/ordering/processes/checkout", params={"limit": 2}).json()
    assert [i["key"] for i in page["instances"]] == ids[:2]
    assert page["next_after"] == ids[1]
    rest = http.get("/ordering/processes/checkout", params={"after": ids[1]}).json()
    assert [i["key"] for i in rest["instances"]] == ids[2:] and rest["next_after"] is None

    one = http.get(f"/ordering/processes/checkout/{ids[0]}").json()
    assert one["state"] == {"customer": "Ada", "paid": False} and not one["ended"]
    (timer,) = one["timers"]
    assert timer["name"] == "PaymentDue"
    position = app.store.last_position()

    moved = http.post("/_test/clock", json={"seconds": 15 * 60 + 1})
    assert moved.status_code == 200 and moved.json()["offset_seconds"] == 901
    done = _until(http, f"/ordering/processes/checkout/{ids[0]}", '"ended":true')
    assert done["timers"] == []
    cancelled = _until(http, f"/ordering/order/{ids[0]}", "Cancelled")
    assert cancelled["state"]["status"] == "Cancelled"
    # as it was before the clock moved
    before = http.get(f"/ordering/processes/checkout/{ids[0]}", params={"at": position}).json()
    assert not before["ended"] and before["timers"][0]["name"] == "PaymentDue"


@dataclass(frozen=True)
class GuestState:
    guest: str = ""
    paid: bool = False


class Guests(Checkout):
    """`Checkout` once its `customer: str` became `guest: str was customer`."""

    state_type = GuestState
    was = {"guest": "customer"}


def test_an_instance_stored_before_a_state_field_was_renamed_reads_renamed(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    with (
        Application.open(store, aggregates=[Order()], processes=[Checkout()]) as app,
        TestClient(create_app(app, tokens="")) as http,
    ):
        order_id = _place(http)
        _until(http, f"/ordering/processes/checkout/{order_id}", "PaymentDue")
    with (
        Application.open(store, aggregates=[Order()], processes=[Guests()]) as app,
        TestClient(create_app(app, tokens="")) as http,
    ):
        one = http.get(f"/ordering/processes/checkout/{order_id}").json()
        assert one["state"] == {"guest": "Ada", "paid": False}
        [listed] = http.get("/ordering/processes/checkout").json()["instances"]
        assert listed["state"] == {"guest": "Ada", "paid": False}


def test_bad_requests_are_answered_not_failed(served: tuple[TestClient, Application]) -> None:
    http, _ = served
    assert http.get("/ordering/processes/checkout/not-a-uuid").status_code == 404
    missing = http.get(f"/ordering/processes/checkout/{UUID(int=7)}")
    assert missing.status_code == 404 and "no instance" in missing.text
    assert http.get("/ordering/processes/checkout", params={"after": "x"}).status_code == 422
    assert http.get("/ordering/processes/checkout?after=").status_code == 422
    assert http.post("/_test/clock", json={"seconds": -1}).status_code == 422
    assert http.post("/_test/clock", json={"seconds": "soon"}).status_code == 422
    spec = http.get("/openapi.json").json()
    assert "/ordering/processes/checkout" in spec["paths"]
    assert "/ordering/processes/checkout/{key}" in spec["paths"]
    assert "/_test/clock" in spec["paths"]


def test_the_test_clock_is_refused_with_tokens(tmp_path: Path) -> None:
    app = Application.open("memory://", aggregates=[Order()], clock=TestClock())
    with pytest.raises(TokenConfigError, match="test clock"):
        create_app(app, tokens="t1=Customer")
    app.close()


def test_without_a_test_clock_there_is_no_clock_route(tmp_path: Path) -> None:
    app = Application.open("memory://", aggregates=[Order()])
    with TestClient(create_app(app, tokens="", run_consumers=False)) as http:
        assert http.post("/_test/clock", json={"seconds": 1}).status_code in (404, 405)
    app.close()


class FlakyCheckout(Checkout):
    """Checkout whose timer's handler fails while `failing` is set."""

    failing = True

    @on_timer("PaymentDue")
    def payment_due(self, step: Step[CheckoutState]) -> None:
        if self.failing:
            raise RuntimeError("the payment service is away")
        super().payment_due(step)


def test_a_parked_timer_retried_over_http_fires_once(tmp_path: Path) -> None:
    checkout = FlakyCheckout()
    clock = TestClock()
    app = Application.open(
        f"sqlite:///{tmp_path / 'events.db'}",
        aggregates=[Order()],
        processes=[checkout],
        clock=clock,
        retry=RetrySettings(max_attempts=2, base_delay=0.001, max_delay=0.001),
    )
    server = ThreadServer(create_app(app, tokens="", run_consumers=False))
    with server, httpx.Client(base_url=server.url) as http:
        drink = {"name": "Latte", "price": "3.50", "size": "Large"}
        placed = http.post(
            "/ordering/order/place-order",
            json={"customer": "Ada", "drinks": [drink], "total": "3.50"},
        )
        order_id = placed.json()["id"]
        app.run_consumers()
        clock.advance(timedelta(minutes=16))
        while not app.parked_timers():
            app.fire_timers()
            time.sleep(0.005)  # past the retry delay
        (parked,) = http.get("/failures").json()["parked_timers"]
        assert parked["key"] == order_id and parked["timer"] == "PaymentDue"
        assert parked["process"] == "Ordering.Checkout" and parked["attempts"] == 2
        retry = f"/failures/Ordering.Checkout/timers/{order_id}/PaymentDue/retry"

        # failing again: still parked, one more attempt counted
        again = http.post(retry)
        assert again.status_code == 200 and again.json()["resolved"] is False
        assert http.get("/failures").json()["parked_timers"][0]["attempts"] == 3

        checkout.failing = False
        done = http.post(retry)
        assert done.status_code == 200, done.text
        assert done.json() == {
            "process": "Ordering.Checkout",
            "key": order_id,
            "timer": "PaymentDue",
            "resolved": True,
        }
        assert http.get("/failures").json()["parked_timers"] == []
        assert http.post(retry).status_code == 404
        history = http.get(f"/ordering/order/{order_id}/events").json()
        assert [e["type"] for e in history["events"]].count("Ordering.OrderCancelled") == 1
        failures = http.get("/failures").json()["failures"]
        assert [e["type"] for e in failures] == ["$Failure"] * 3 + ["$FailureResolved"]
        # a fired timer is not fired again, however far the clock goes
        clock.advance(timedelta(days=1))
        assert app.fire_timers() == 0
        unknown = "/failures/Ordering.Nope/timers/x/PaymentDue/retry"
        assert http.post(unknown).status_code == 404
        spec = http.get("/openapi.json").json()
        assert "/failures/{process}/timers/{key}/{timer}/retry" in spec["paths"]
    app.close()
