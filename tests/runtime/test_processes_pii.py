"""Personal data in a process's state is sealed like any pii: under the key of the
stream it came from, so forgetting that stream leaves it unreadable in the process's
stream and in its instances' rows, on every backend (read raw from the store)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import psycopg
from coffee_domain import Drink, MarkPaid, Order, OrderPaid, OrderPlaced, PlaceOrder
from runtime_support import Stores, pg_base_url

from stormgen.runtime import Application, Process, Step, TestClock, on_event, on_timer
from stormgen.runtime.messages import REDACTED
from stormgen.runtime.processes import stream_name


@dataclass(frozen=True, slots=True)
class GreetingState:
    customer: str = ""
    total: Decimal = Decimal(0)
    greeted: int = 0


class Greeting(Process[GreetingState]):
    """Copies the customer's name (pii in `OrderPlaced`) into its state and changes it."""

    name = "Ordering.Greeting"
    key = "order_id"
    key_type = UUID
    state_type = GreetingState
    events = (OrderPlaced, OrderPaid)
    starts = (OrderPlaced,)
    timers = ("Hello",)
    pii = frozenset({"customer"})

    @on_event(OrderPlaced)
    def placed(self, step: Step[GreetingState], event: OrderPlaced) -> None:
        step.timer("Hello", after=timedelta(minutes=1))

    @on_event(OrderPaid)
    def paid(self, step: Step[GreetingState], event: OrderPaid) -> None:
        step.assign(customer=f"{step.state.customer} Lovelace")

    @on_timer("Hello")
    def hello(self, step: Step[GreetingState]) -> None:
        step.assign(customer=step.state.customer.upper(), greeted=step.state.greeted + 1)


def _stored_text(stores: Stores, app: Application, url: str) -> str:
    """Everything the store holds, as text, read past the runtime (raw rows)."""
    if stores.kind == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return "\n".join(db.iterdump())
    if stores.kind == "postgres":
        schema = url.rsplit("schema=", 1)[1]
        lines = []
        with psycopg.connect(pg_base_url(), autocommit=True) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
            for (table,) in tables:
                query = f'SELECT row_to_json(t)::text FROM "{schema}"."{table}" t'
                lines += [row[0] for row in conn.execute(query).fetchall()]  # type: ignore[arg-type]
        return "\n".join(lines)
    # memory: the store's records and rows as they are kept (the runtime never decrypts there)
    events = [rec.data for rec in app.store.read_all(0)]
    rows = [row.doc for row in app.store.query_rows("Ordering.Greeting")]
    return json.dumps([events, rows])


def _placed(stores: Stores, clock: TestClock) -> tuple[Application, str, PlaceOrder]:
    """An application on a new store, with Ada's order placed and its process started."""
    url = stores.url()
    app = stores.app(url, aggregates=[Order()], processes=[Greeting()], clock=clock)
    order = PlaceOrder(customer="Ada", drinks=[Drink("latte", Decimal("3.50"))], total=Decimal(7))
    app.handle(order)
    app.run_consumers()
    return app, url, order


def test_forgetting_the_subject_makes_the_process_state_unreadable(stores: Stores) -> None:
    clock = TestClock()
    app, url, order = _placed(stores, clock)
    app.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    app.run_consumers()
    clock.advance(timedelta(minutes=2))
    app.run_consumers()

    # readable through the runtime, sealed in the store
    instance = app.process_instance(Greeting, order.order_id)
    assert instance is not None and instance.state.customer == "ADA LOVELACE"
    assert instance.state.greeted == 1
    listed = app.process_instances(Greeting)
    assert [doc["state"]["customer"] for doc in listed] == ["ADA LOVELACE"]
    stream = stream_name("Ordering.Greeting", str(order.order_id))
    types = [rec.type for rec in app.store.read_stream(stream)]
    changed, fired = "$ProcessChanged", "$TimerFired"
    assert types == ["$ProcessStarted", "$TimerSet", changed, fired, changed]
    raw = _stored_text(stores, app, url)
    assert "Lovelace" not in raw and "LOVELACE" not in raw
    assert '"$pii"' in raw

    app.forget(Order, order.order_id)
    gone = app.process_instance(Greeting, order.order_id)
    assert gone is not None and gone.state.customer == REDACTED
    assert gone.state.greeted == 1 and gone.state.total == Decimal(7)
    assert [doc["state"]["customer"] for doc in app.process_instances(Greeting)] == [REDACTED]
    # another process (a fresh application) on the same store reads it redacted too
    if stores.kind != "memory":
        again = stores.app(url, aggregates=[Order()], processes=[Greeting()], clock=clock)
        seen = again.process_instance(Greeting, order.order_id)
        assert seen is not None and seen.state.customer == REDACTED


def test_a_forgotten_field_stays_redacted_and_a_new_value_is_sealed_again(
    stores: Stores,
) -> None:
    clock = TestClock()
    app, url, order = _placed(stores, clock)
    app.forget(Order, order.order_id)
    # the order's stream gets a new key; the process copies its (redacted) name on
    app.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    app.run_consumers()
    instance = app.process_instance(Greeting, order.order_id)
    assert instance is not None and instance.state.customer == f"{REDACTED} Lovelace"
    assert "Lovelace" not in _stored_text(stores, app, url)
