"""A process compiled to Python (tests/generate/processes.storm): one module with its
state class and a method per handler, a `custom/` subclass, wired into `app.py`; the
project passes ruff, mypy --strict and its own tests; and the compiled process runs:
an unpaid order is cancelled when 15 minutes pass on the test clock, a paid one is not,
and the reminder fans out one command per item."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stormgen.runtime import Application, TestClock

from ._helpers import check_project, generate, render

MODEL = Path(__file__).with_name("processes.storm")


@pytest.fixture(scope="module")
def module() -> str:
    return render(MODEL)["src/checkout/shop/checkout.py"].content


def test_handlers_read_like_the_model(module: str) -> None:
    assert "class CheckoutState:\n    order_id: UUID\n    total: Decimal | None = None\n" in module
    assert "    starts = (Placed,)\n" in module
    assert '    timers = ("PaymentDue", "Reminder")\n' in module
    assert 'step.timer("PaymentDue", after=timedelta(minutes=15))' in module
    assert "    @key_for(Paid)\n    def key_of_paid(" in module
    # a false `if` skips the handler (a starting one starts nothing); assignments first
    skip = "\n            step.skip()\n            return\n"
    assert f"        if not (event.total > 0):{skip}" in module
    assert f"        if state.paid:{skip}" in module
    assert "step.assign(reminders=state.reminders + 1)\n        state = step.state\n" in module
    assert 'step.issue(Remind(order_id=state.order_id, note="pay for " + item))' in module
    assert "        if state.reminders >= 0:\n            step.end()\n" in module


def test_the_user_file_and_the_wiring() -> None:
    files = render(MODEL)
    assert "class Checkout(CheckoutBase):" in files["src/checkout/shop/custom/checkout.py"].content
    app = files["src/checkout/app.py"].content
    assert "processes.append(Checkout())" in app and '"processes": processes,' in app


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    project = generate(MODEL, tmp_path_factory.mktemp("gen") / "checkout")
    yield project


def test_the_project_is_clean_and_its_tests_pass(project: Path, mypy_cache: Path) -> None:
    check_project(project, mypy_cache)


@contextmanager
def _imported(project: Path) -> Iterator[tuple[ModuleType, ModuleType]]:
    """The generated project's `app` and order modules, forgotten afterwards."""
    sys.path.insert(0, str(project / "src"))
    try:
        yield (
            importlib.import_module("checkout.app"),
            importlib.import_module("checkout.shop.order"),
        )
    finally:
        sys.path.remove(str(project / "src"))
        for name in [m for m in sys.modules if m == "checkout" or m.startswith("checkout.")]:
            del sys.modules[name]


@pytest.fixture
def service(project: Path) -> Iterator[tuple[ModuleType, ModuleType]]:
    with _imported(project) as modules:
        yield modules


def _open(app_module: ModuleType, clock: TestClock) -> Application:
    definitions: dict[str, Any] = app_module.definitions()
    return Application.open("memory://", clock=clock, **definitions)


def test_the_compiled_process_cancels_an_unpaid_order(
    service: tuple[ModuleType, ModuleType],
) -> None:
    app_module, order = service
    clock = TestClock()
    with _open(app_module, clock) as app:
        unpaid = app.handle(order.Place(total=Decimal(5), items=("latte", "", "scone")))
        paid = app.handle(order.Place(total=Decimal(3), items=("tea",)))
        app.handle(order.Pay(order_id=paid.id))
        app.run_consumers()
        instance = app.process_instance("Shop.Checkout", unpaid.id)
        assert instance is not None and set(instance.timers) == {"PaymentDue", "Reminder"}
        assert instance.state.total == Decimal(5) and instance.state.order_id == unpaid.id
        ended = app.process_instance("Shop.Checkout", paid.id)
        assert ended is not None and ended.ended and ended.state.paid

        clock.advance(timedelta(minutes=10, seconds=1))
        app.run_consumers()
        history = app.history("Shop.Order", unpaid.id)
        reminded = [e.data["note"] for e in history if e.type == "Shop.Reminded"]
        assert reminded == ["pay for latte", "pay for scone"]
        assert app.state("Shop.Order", unpaid.id).state.status == "placed"

        clock.advance(timedelta(minutes=5))
        app.run_consumers()
        assert app.state("Shop.Order", unpaid.id).state.status == "cancelled"
        assert app.state("Shop.Order", paid.id).state.status == "paid"
        done = app.process_instance("Shop.Checkout", unpaid.id)
        assert done is not None and done.ended and done.state.reminders == 1


def test_an_order_of_nothing_starts_no_checkout(
    service: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    # `on Placed if total > 0 starts`: a false condition starts no instance, on a file
    app_module, order = service
    clock = TestClock()
    definitions: dict[str, Any] = app_module.definitions()
    store = f"sqlite:///{tmp_path / 'events.db'}"
    with Application.open(store, clock=clock, **definitions) as app:
        free = app.handle(order.Place(total=Decimal(0), items=("water",)))
        app.handle(order.Pay(order_id=free.id))
        app.run_consumers()
        assert app.process_instance("Shop.Checkout", free.id) is None
        assert app.process_instances("Shop.Checkout") == []
        clock.advance(timedelta(hours=1))
        assert app.fire_timers() == 0
        assert app.state("Shop.Order", free.id).state.status == "paid"


def test_a_state_field_renamed_with_was_reads_the_instances_stored_before(
    project: Path, tmp_path: Path
) -> None:
    # the model changes `reminders: int = 0` to `nudges: int = 0 was reminders`
    renamed = tmp_path / "processes.storm"
    text = MODEL.read_text().replace("reminders", "nudges")
    renamed.write_text(text.replace("nudges: int = 0", "nudges: int = 0 was reminders"))
    after = generate(renamed, tmp_path / "checkout")
    module = (after / "src/checkout/shop/checkout.py").read_text()
    assert '    was = {"nudges": "reminders"}\n' in module
    store = f"sqlite:///{tmp_path / 'events.db'}"
    clock = TestClock()
    with (
        _imported(project) as (app_module, order),
        Application.open(store, clock=clock, **app_module.definitions()) as app,
    ):
        placed = app.handle(order.Place(total=Decimal(5), items=("latte",)))
        app.run_consumers()
        clock.advance(timedelta(minutes=10, seconds=1))
        app.run_consumers()  # the reminder: `reminders` is 1
        position = app.store.last_position()
    with (
        _imported(after) as (app_module, order),
        Application.open(store, clock=clock, **app_module.definitions()) as app,
    ):
        instance = app.process_instance("Shop.Checkout", placed.id)
        assert instance is not None and instance.state.nudges == 1
        [row] = app.process_instances("Shop.Checkout")
        assert row["state"]["nudges"] == 1 and "reminders" not in row["state"]
        # the service goes on with it: the payment deadline ends the instance
        clock.advance(timedelta(minutes=5))
        app.run_consumers()
        done = app.process_instance("Shop.Checkout", placed.id)
        assert done is not None and done.ended and done.state.nudges == 1
        then = app.process_instance("Shop.Checkout", placed.id, position)
        assert then is not None and not then.ended and then.state.nudges == 1


PII_MODEL = """model Greet
actor Clerk
context Shop {
  aggregate Order {
    id order_id: uuid
    command Place by Clerk creates { customer: str  total: decimal  emit Placed }
    event Placed { customer: str pii  total: decimal }
  }
  process Welcome {
    key order_id: uuid
    state {
      customer: str = ""
      note: str = "" pii
      total: decimal = 0
    }
    on Placed starts { note = "hello " + customer }
  }
}
"""


def test_state_fields_holding_personal_data_are_sealed(tmp_path: Path) -> None:
    # marked `pii`, or named like a pii field of an event it consumes (copied from it)
    model = tmp_path / "greet.storm"
    model.write_text(PII_MODEL)
    module = render(model)["src/greet/shop/welcome.py"].content
    assert '    pii = frozenset({"customer", "note"})\n' in module
