"""User files survive regeneration and their overrides take effect; ``--check`` finds drift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stormgen.cli import app

from ._helpers import ROOT, run

pytestmark = pytest.mark.slow

MODEL = ROOT / "examples" / "coffee_shop.storm"

OVERRIDE = '''"""Our own rules for orders."""

from __future__ import annotations

from stormgen.runtime import Rejected

from coffee_shop.ordering.order import OrderBase, OrderState, PlaceOrder


class Order(OrderBase):
    """Orders, with one more guard than the model has."""

    def check_place_order(self, state: OrderState, command: PlaceOrder) -> None:
        if command.customer == "Mallory":
            raise Rejected("we do not serve Mallory")
        super().check_place_order(state, command)
'''

SCRIPT = """
from decimal import Decimal
from uuid import uuid4

from stormgen.runtime import Rejected

from coffee_shop.app import open_application
from coffee_shop.ordering.order import PlaceOrder
from coffee_shop.shared import Drink

drinks = (Drink(name="tea", price=Decimal("2")),)
with open_application("memory://") as app:
    def order(customer: str) -> PlaceOrder:
        return PlaceOrder(order_id=uuid4(), customer=customer, drinks=drinks, total=Decimal(2))

    assert app.handle(order("Ada")).stream_version == 1
    # the generated data classes are slotted (docs/generated.md)
    assert not hasattr(order("Ada"), "__dict__") and not hasattr(drinks[0], "__dict__")
    try:
        app.handle(order("Mallory"))
    except Rejected as exc:
        print("rejected:", exc.message)
    else:
        print("accepted")
"""


def stormgen(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "stormgen", *args], capture_output=True, text=True, check=False
    )


def test_user_override_survives_regeneration_and_takes_effect(tmp_path: Path) -> None:
    out = tmp_path / "shop"
    first = stormgen("generate", str(MODEL), "-o", str(out))
    assert first.returncode == 0, first.stderr
    user_file = out / "src/coffee_shop/ordering/custom/order.py"
    assert "class Order(OrderBase)" in user_file.read_text()
    user_file.write_text(OVERRIDE)
    owned = out / "src/coffee_shop/ordering/order.py"
    owned.write_text(owned.read_text() + "\n# a stray edit\n")

    second = stormgen("generate", str(MODEL), "-o", str(out))
    assert second.returncode == 0, second.stderr
    assert user_file.read_text() == OVERRIDE  # kept
    assert "a stray edit" not in owned.read_text()  # owned files are rewritten

    output = run([sys.executable, "-c", SCRIPT], out, env={"PYTHONPATH": str(out / "src")})
    assert output.strip() == "rejected: we do not serve Mallory"


USER_TEST = '''"""Our own rule, tested where the README says (stormgen never writes there)."""

from decimal import Decimal
from uuid import UUID

from pytest import raises
from stormgen.runtime import Rejected
from stormgen.runtime.testing import when

from coffee_shop.ordering.custom.order import Order
from coffee_shop.ordering.order import PlaceOrder
from coffee_shop.shared import Drink


def test_mallory_is_not_served() -> None:
    order = PlaceOrder(
        order_id=UUID(int=1),
        customer="Mallory",
        drinks=(Drink(name="tea", price=Decimal("2")),),
        total=Decimal("2"),
    )
    with raises(Rejected, match="we do not serve Mallory"):
        when(Order(), Order().initial_state(), order)
'''


def test_generated_tests_run_the_user_class_and_a_user_test_survives(tmp_path: Path) -> None:
    out = tmp_path / "shop"
    assert stormgen("generate", str(MODEL), "-o", str(out)).returncode == 0
    readme = (out / "README.md").read_text()
    assert "Put your own tests in `tests/custom/`" in readme
    assert "`when(Order(), state, command)`" in readme
    (out / "src/coffee_shop/ordering/custom/order.py").write_text(OVERRIDE)
    (out / "tests/custom").mkdir()
    (out / "tests/custom/test_order_rules.py").write_text(USER_TEST)
    assert stormgen("generate", str(MODEL), "-o", str(out)).returncode == 0  # kept
    tests = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    env = {"PYTHONPATH": str(out / "src")}
    both = ["tests/custom/test_order_rules.py", "tests/test_ordering_order.py"]
    output = run([*tests, *both], out, env)
    assert "passed" in output and "failed" not in output
    # the generated tests exercise the user's class: an override that breaks a case fails it
    (out / "src/coffee_shop/ordering/custom/order.py").write_text(
        OVERRIDE.replace('command.customer == "Mallory"', "True")
    )
    broken = subprocess.run(
        [*tests, "tests/test_ordering_order.py"],
        cwd=out,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert broken.returncode == 1, broken.stdout
    assert "FAILED tests/test_ordering_order.py::test_place_order_accepted" in broken.stdout


def check(out: Path) -> tuple[int, str]:
    """``stormgen generate --check``, in process."""
    result = CliRunner().invoke(app, ["generate", str(MODEL), "-o", str(out), "--check"])
    return result.exit_code, result.output


def test_check_exits_1_on_drift_and_ignores_user_edits(tmp_path: Path) -> None:
    out = tmp_path / "shop"
    assert CliRunner().invoke(app, ["generate", str(MODEL), "-o", str(out)]).exit_code == 0
    assert check(out)[0] == 0

    user_file = out / "src/coffee_shop/ordering/custom/order.py"
    user_file.write_text(OVERRIDE)
    assert check(out)[0] == 0

    owned = out / "src/coffee_shop/ordering/views.py"
    original = owned.read_text()
    owned.write_text(original.replace("placed", "PLACED"))
    status, output = check(out)
    assert status == 1
    assert "src/coffee_shop/ordering/views.py" in output
    assert owned.read_text() != original  # --check writes nothing

    owned.write_text(original)
    user_file.unlink()
    status, output = check(out)
    assert status == 1
    assert "custom/order.py" in output
