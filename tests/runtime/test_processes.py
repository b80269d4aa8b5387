"""Processes on every backend: instances as streams, timers fired once by the clock,
every run's effects in one transaction, failures retried and parked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coffee_domain import Drink, MarkPaid, Order, OrderPlaced, OrderStatus, PlaceOrder
from process_domain import Checkout, CheckoutState
from runtime_support import Stores

from stormgen.runtime import FAILURES_STREAM, Application, Rejected, Step, TestClock, on_event
from stormgen.runtime.processes import stream_name


def _app(stores: Stores, clock: TestClock, url: str | None = None) -> Application:
    return stores.app(url, aggregates=[Order()], processes=[Checkout()], clock=clock)


def _place(app: Application) -> PlaceOrder:
    order = PlaceOrder(customer="Ada", drinks=[Drink("latte", Decimal("3.50"))], total=Decimal(7))
    app.handle(order)
    return order


def _types(app: Application, stream: str) -> list[str]:
    return [rec.type for rec in app.store.read_stream(stream)]


def test_an_unpaid_order_is_cancelled_when_its_timer_is_due(stores: Stores) -> None:
    clock = TestClock()
    app = _app(stores, clock)
    order = _place(app)
    app.run_consumers()
    instance = app.process_instance("Ordering.Checkout", order.order_id)
    assert instance is not None and not instance.ended
    placed = app.store.read_stream(f"Ordering.Order/{order.order_id}")[0]
    assert instance.timers == {"PaymentDue": placed.recorded_at + timedelta(minutes=15)}
    before = app.store.last_position()

    clock.advance(timedelta(minutes=14))
    app.run_consumers()
    assert app.state(Order, order.order_id).state.status is OrderStatus.Placed

    clock.advance(timedelta(minutes=1, seconds=1))
    app.run_consumers()
    assert app.state(Order, order.order_id).state.status is OrderStatus.Cancelled
    done = app.process_instance("Ordering.Checkout", order.order_id)
    assert done is not None and done.ended and done.timers == {}
    assert done.state.reminders == 1
    assert _types(app, stream_name("Ordering.Checkout", str(order.order_id))) == [
        "$ProcessStarted",
        "$TimerSet",
        "$TimerFired",
        "$ProcessChanged",
        "$ProcessEnded",
    ]
    # time travel: as it was before the timer fired
    then = app.process_instance("Ordering.Checkout", order.order_id, at=before)
    assert then is not None and not then.ended and "PaymentDue" in then.timers
    # nothing fires twice, however far the clock goes
    clock.advance(timedelta(days=1))
    assert app.fire_timers() == 0


def test_a_paid_order_cancels_its_timer(stores: Stores) -> None:
    clock = TestClock()
    app = _app(stores, clock)
    order = _place(app)
    app.run_consumers()
    app.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    app.run_consumers()
    instance = app.process_instance(Checkout, order.order_id)
    assert instance is not None and instance.ended and instance.state.paid
    with app.store.reading() as uow:
        assert uow.list_timers() == []
    clock.advance(timedelta(hours=1))
    app.run_consumers()
    assert app.state(Order, order.order_id).state.status is OrderStatus.Paid


def test_due_timers_fire_in_due_order(stores: Stores) -> None:
    clock = TestClock()
    app = _app(stores, clock)
    orders = []
    for _ in range(3):
        orders.append(_place(app))
        app.run_consumers()
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(hours=1))
    app.run_consumers()
    fired = [rec.stream for rec in app.store.read_all(0, 1000) if rec.type == "$TimerFired"]
    assert fired == [stream_name(Checkout.name, str(o.order_id)) for o in orders]


class PickyCheckout(Checkout):
    """Checkout whose timer fails for one order only."""

    failing_key: Any = None

    def fire(self, step: Step[Any], timer: str) -> None:
        if step.key == self.failing_key:
            raise RuntimeError("this one cannot be cancelled yet")
        super().fire(step, timer)


def test_a_failing_timer_is_rolled_back_alone_in_its_batch(stores: Stores) -> None:
    clock = TestClock()
    checkout = PickyCheckout()
    app = stores.app(aggregates=[Order()], processes=[checkout], clock=clock)
    orders = [_place(app) for _ in range(5)]
    checkout.failing_key = orders[2].order_id
    app.run_consumers()
    clock.advance(timedelta(minutes=16))
    assert app.consumers.processes.fire_due() == 5  # one batch: run alone, then redone
    cancelled = [app.state(Order, o.order_id).state.status is OrderStatus.Cancelled for o in orders]
    assert cancelled == [True, True, False, True, True]
    fired = [rec.stream for rec in app.store.read_all(0, 1000) if rec.type == "$TimerFired"]
    assert len(fired) == 4
    (failure,) = [rec.data for rec in app.store.read_stream(FAILURES_STREAM)]
    assert failure["key"] == str(orders[2].order_id) and failure["attempt"] == 1
    with app.store.reading() as uow:
        assert [t.key for t in uow.list_timers()] == [str(orders[2].order_id)]


def test_a_rejected_command_leaves_the_run_undone_and_is_retried(stores: Stores) -> None:
    clock = TestClock()
    app = _app(stores, clock)
    order = _place(app)
    app.run_consumers()
    # paid, but the process has not seen it yet when the timer is due: its Cancel is
    # rejected, so the run (its $TimerFired, its state, the timer's removal) is undone
    app.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    clock.advance(timedelta(minutes=16))
    stream = stream_name(Checkout.name, str(order.order_id))
    assert app.consumers.processes.fire_due()  # one attempt
    assert _types(app, stream) == ["$ProcessStarted", "$TimerSet"]
    (failure,) = [rec for rec in app.store.read_stream(FAILURES_STREAM)]
    assert failure.data["kind"] == "timer" and failure.data["attempt"] == 1
    assert "Rejected" in failure.data["error"] and not failure.data["parked"]
    with app.store.reading() as uow:
        (timer,) = uow.list_timers()
    assert timer.attempts == 1 and timer.run_at > timer.due
    # the process then sees the payment: the timer goes with the instance's end
    app.run_consumers()
    instance = app.process_instance(Checkout, order.order_id)
    assert instance is not None and instance.ended and instance.state.paid
    assert app.state(Order, order.order_id).state.status is OrderStatus.Paid


def test_a_failing_timer_is_retried_then_parked(stores: Stores) -> None:
    clock = TestClock()
    checkout = Checkout()
    checkout.failing = True
    app = stores.app(aggregates=[Order()], processes=[checkout], clock=clock)
    order = _place(app)
    app.run_consumers()
    clock.advance(timedelta(minutes=15, seconds=1))
    for _ in range(3):
        assert app.consumers.processes.fire_due()
        clock.advance(timedelta(seconds=10))  # past the backoff
    assert app.fire_timers() == 0
    failures = [rec.data for rec in app.store.read_stream(FAILURES_STREAM)]
    assert [(f["attempt"], f["parked"]) for f in failures] == [(1, False), (2, False), (3, True)]
    with app.store.reading() as uow:
        (timer,) = uow.list_timers()
    assert timer.parked
    instance = app.process_instance(Checkout, order.order_id)
    assert instance is not None and instance.state.reminders == 0 and not instance.ended

    # retried by an operator: a failure keeps it parked, a success fires it once
    assert app.retry_parked_timer("Ordering.Checkout", str(order.order_id), "PaymentDue") is False
    assert [t.attempts for t in app.parked_timers()] == [4]
    checkout.failing = False
    assert app.retry_parked_timer("Ordering.Checkout", str(order.order_id), "PaymentDue")
    assert app.parked_timers() == [] and app.fire_timers() == 0
    with pytest.raises(KeyError, match="no parked timer"):
        app.retry_parked_timer("Ordering.Checkout", str(order.order_id), "PaymentDue")
    assert app.state(Order, order.order_id).state.status is OrderStatus.Cancelled
    app.run_consumers()  # the cancellation ends the instance
    done = app.process_instance(Checkout, order.order_id)
    assert done is not None and done.ended and done.state.reminders == 1
    kinds = [rec.type for rec in app.store.read_stream(FAILURES_STREAM)]
    assert kinds == ["$Failure"] * 4 + ["$FailureResolved"]


def test_the_background_fires_a_timer_due_while_the_service_was_down(
    sqlite_stores: Stores,
) -> None:
    url = sqlite_stores.url()
    clock = TestClock()
    first = _app(sqlite_stores, clock, url)
    order = _place(first)
    first.run_consumers()
    first.close()
    # down for 20 minutes: back up, the timer fires (late, once)
    later = TestClock()
    later.advance(timedelta(minutes=20))
    second = _app(sqlite_stores, later, url)
    second.start()
    deadline = time.monotonic() + 30
    while second.state(Order, order.order_id).state.status is not OrderStatus.Cancelled:
        assert time.monotonic() < deadline, "the timer did not fire"
        time.sleep(0.05)
    second.stop()
    fired = [r for r in second.store.read_all(0, 1000) if r.type == "$TimerFired"]
    assert len(fired) == 1


def test_events_for_no_instance_or_an_ended_one_do_nothing(stores: Stores) -> None:
    clock = TestClock()
    app = _app(stores, clock)
    order = _place(app)
    app.run_consumers()
    app.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    app.run_consumers()
    stream = stream_name(Checkout.name, str(order.order_id))
    version = app.store.stream_version(stream)
    with pytest.raises(Rejected):
        app.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    app.run_consumers()
    assert app.store.stream_version(stream) == version


def test_two_service_processes_never_fire_one_timer_twice(
    tmp_path: Path, pg_stores: Stores
) -> None:
    url = pg_stores.url()
    app = _app(pg_stores, TestClock(), url)
    orders = [_place(app) for _ in range(60)]
    app.run_consumers()
    log = tmp_path / "fired.log"
    here = Path(__file__).parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]),
    }
    workers = [
        subprocess.Popen([sys.executable, str(here / "timer_worker.py"), url, str(log)], env=env)
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(90) == 0
    runs = log.read_text().split("\n")[:-1]
    keys = [line.split()[1] for line in runs]
    assert sorted(keys) == sorted(str(o.order_id) for o in orders)  # each once
    fired = [r for r in app.store.read_all(0, 100_000) if r.type == "$TimerFired"]
    assert len(fired) == len(orders)
    for order in orders:
        assert app.state(Order, order.order_id).state.status is OrderStatus.Cancelled


class _Picky(Checkout):
    """Fails on every payment: a batch with one falls back to event by event."""

    def paid(self, step: Any, event: Any) -> None:
        raise RuntimeError("cannot take payments today")


def test_a_failing_event_is_parked_and_the_others_of_its_batch_run(stores: Stores) -> None:
    app = stores.app(aggregates=[Order()], processes=[_Picky()], clock=TestClock())
    first, second = _place(app), _place(app)
    app.handle(MarkPaid(order_id=first.order_id, amount=Decimal(7)))
    third = _place(app)
    app.run_consumers()
    failures = [rec.data for rec in app.store.read_stream(FAILURES_STREAM)]
    assert [(f["event_type"], f["attempt"], f["parked"]) for f in failures] == [
        ("Ordering.OrderPaid", 1, False),
        ("Ordering.OrderPaid", 2, False),
        ("Ordering.OrderPaid", 3, True),
    ]
    for order in (first, second, third):
        instance = app.process_instance(Checkout.name, order.order_id)
        assert instance is not None and not instance.ended and "PaymentDue" in instance.timers
    assert [p.consumer for p in app.parked()] == [Checkout.name]


def test_a_process_runs_in_the_pass_with_the_chain_it_follows(stores: Stores) -> None:
    from coffee_domain import OrderHistory, definitions

    clock = TestClock()
    app = stores.app(**definitions(processes=[Checkout()], clock=clock))
    orders = [_place(app) for _ in range(3)]
    head_before = app.store.last_position()
    app.consumers.run_pass()
    # one pass: each order placed, charged, paid (the policies' chain), its instance
    # started on the placed event and ended on the paid one appended during the pass,
    # the views up to date; no consumer went off alone
    assert app.consumers.background.recovering == {}
    assert all(p["behind"] == 0 for p in app.progress().values())
    for order in orders:
        instance = app.process_instance(Checkout, order.order_id)
        assert instance is not None and instance.ended and instance.state.paid
    assert sorted(row["status"] for row in app.view_rows(OrderHistory)) == ["paid"] * 3
    with app.store.reading() as uow:
        assert uow.list_timers() == []
    assert app.store.last_position() > head_before
    # nothing left: the next pass appends nothing, no timer fires later
    last = app.store.last_position()
    app.consumers.run_pass()
    clock.advance(timedelta(hours=1))
    assert app.fire_timers() == 0 and app.store.last_position() == last


def test_a_process_failing_in_a_pass_is_rolled_back_alone(stores: Stores) -> None:
    from coffee_domain import OrderHistory, definitions

    app = stores.app(**definitions(processes=[_Picky()], clock=TestClock()))
    orders = [_place(app) for _ in range(2)]
    app.consumers.run_pass()
    # its savepoint went, the others' work committed: the chain and the views
    assert sorted(row["status"] for row in app.view_rows(OrderHistory)) == ["paid"] * 2
    # alone, with retries: each payment parked, the placed events run (timers set)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(app.parked()) < 2:
        time.sleep(0.01)
        app.consumers.run_pass()
    assert [p.consumer for p in app.parked()] == [Checkout.name] * 2
    for order in orders:
        instance = app.process_instance(Checkout.name, order.order_id)
        assert instance is not None and not instance.ended and "PaymentDue" in instance.timers


class _BigOrders(Checkout):
    """`on OrderPlaced if total >= 10 starts`: a smaller order starts no instance."""

    @on_event(OrderPlaced)
    def placed(self, step: Step[CheckoutState], event: OrderPlaced) -> None:
        if not event.total >= 10:
            step.skip()
            return
        super().placed(step, event)


def test_a_start_whose_condition_is_false_starts_nothing(stores: Stores) -> None:
    clock = TestClock()
    app = stores.app(aggregates=[Order()], processes=[_BigOrders()], clock=clock)
    small = _place(app)  # a total of 7
    big = PlaceOrder(customer="Bo", drinks=[Drink("mocha", Decimal(12))], total=Decimal(12))
    app.handle(big)
    app.run_consumers()
    stream = stream_name(Checkout.name, str(small.order_id))
    assert app.process_instance(Checkout.name, small.order_id) is None
    assert app.store.stream_version(stream) == 0
    # the big one started as before: the only instance, the only timer
    assert [i["key"] for i in app.process_instances(Checkout.name)] == [str(big.order_id)]
    with app.store.reading() as uow:
        assert [(t.key, t.name) for t in uow.list_timers()] == [(str(big.order_id), "PaymentDue")]
    # no instance either for the events that follow: the payment ends nothing
    app.handle(MarkPaid(order_id=small.order_id, amount=Decimal(7)))
    app.run_consumers()
    assert app.store.stream_version(stream) == 0
    assert app.state(Order, small.order_id).state.status is OrderStatus.Paid


def test_an_instance_cached_by_one_service_process_is_never_run_stale(stores: Stores) -> None:
    # a process without pii state starts a run from the instance its last run left in
    # the state cache; another service process firing its timer makes that one stale
    url = stores.url()
    here, there = TestClock(), TestClock()
    app = _app(stores, here, url)
    order = _place(app)
    app.run_consumers()  # the instance, started here, is cached here at version 2
    other = _app(stores, there, url)
    there.advance(timedelta(minutes=16))
    assert other.fire_timers() == 1  # changed there (a reminder), a Cancel issued
    app.run_consumers()  # the order's cancellation ends the instance here
    stream = stream_name(Checkout.name, str(order.order_id))
    assert _types(app, stream) == [
        "$ProcessStarted",
        "$TimerSet",
        "$TimerFired",
        "$ProcessChanged",
        "$ProcessEnded",
    ]
    # the run here went on from the log's instance, not the stale cached one
    [row] = app.process_instances(Checkout)
    assert row["ended"] and row["version"] == 5 and row["state"]["reminders"] == 1
    instance = app.process_instance(Checkout, order.order_id)
    assert instance is not None and instance.state.reminders == 1


def test_a_running_instance_is_kept_in_the_state_cache_and_an_ended_one_is_not(
    stores: Stores,
) -> None:
    app = _app(stores, TestClock())
    order = _place(app)
    app.run_consumers()
    stream = stream_name(Checkout.name, str(order.order_id))
    kept = app.state_cache.get(stream)
    assert kept is not None and kept.version == app.store.stream_version(stream) == 2
    app.handle(MarkPaid(order_id=order.order_id, amount=Decimal(7)))
    app.run_consumers()
    assert app.state_cache.get(stream) is None  # ended: it gives its slot back
    instance = app.process_instance(Checkout, order.order_id)
    assert instance is not None and instance.ended
