"""Steering the fake adapters: `--fake SYSTEM=EVENT` and `$STORMGEN_FAKES` walk the sad path."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from e2e_support import CUSTOMER, MODEL, Server, clean_env, wait_for
from typer.testing import CliRunner

from stormgen.cli import app as cli

ORDER = {"customer": "Grace", "drinks": [{"name": "Mocha", "price": "4.20"}], "total": "4.20"}


def _order_status(c: httpx.Client) -> str:
    placed = c.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER)
    assert placed.status_code == 201, placed.text
    order = f"/ordering/order/{placed.json()['id']}"

    def settled() -> str | None:
        status: str = c.get(order, headers=CUSTOMER).json()["state"]["status"]
        return None if status == "Placed" else status

    status: str = wait_for(settled)
    return status


class ModuleServer(Server):
    """The generated package's own `python -m PACKAGE serve`, with the environment given."""

    def __init__(self, workdir: Path, store: str, env: dict[str, str], *args: str) -> None:
        super().__init__(workdir, store, None, *args)
        self.env = env

    def command(self) -> list[str]:
        src = self.workdir / ".stormgen" / "build" / "coffee_shop" / "src"
        settings = [f"{k}={v}" for k, v in self.env.items()]
        python = [sys.executable, "-m", "coffee_shop", "serve"]
        options = ["--port", str(self.port), "--store", self.store, *self.args]
        return ["env", f"PYTHONPATH={src}", *settings, *python, *options]


def test_run_fake_answers_with_the_chosen_event(workdir: Path) -> None:
    db = workdir / f"fake-{uuid.uuid4().hex[:6]}.db"
    server = Server(workdir, f"sqlite:///{db}", None, "--fake", "PaymentGateway=CardDeclined")
    server.start()
    try:
        with server.client() as c:
            assert _order_status(c) == "Cancelled"
    finally:
        server.stop()
    said = "fake adapters: Ordering.PaymentGateway answers CardDeclined"
    assert said in server.log.read_text()


def test_default_fake_answers_with_the_first_event(workdir: Path) -> None:
    server = Server(workdir, "memory://", None).start()
    try:
        with server.client() as c:
            assert _order_status(c) == "Paid"
    finally:
        server.stop()
    assert "fake adapters: Ordering.PaymentGateway answers CardCharged" in server.log.read_text()


def test_module_serve_takes_the_fake_from_the_environment(workdir: Path) -> None:
    Server(workdir, "memory://", None).start().stop()  # the build cache
    env = {"STORMGEN_FAKES": "Ordering.PaymentGateway=Ordering.PaymentGateway.CardDeclined"}
    server = ModuleServer(workdir, "memory://", env).start()
    try:
        with server.client() as c:
            assert _order_status(c) == "Cancelled"
    finally:
        server.stop()


def test_module_serve_refuses_an_unknown_event(workdir: Path) -> None:
    Server(workdir, "memory://", None).start().stop()  # the build cache
    src = workdir / ".stormgen" / "build" / "coffee_shop" / "src"
    serve = [sys.executable, "-m", "coffee_shop", "serve", "--store", "memory://"]
    result = subprocess.run(
        [*serve, "--fake", "PaymentGateway=CardStolen"],
        cwd=workdir,
        env=clean_env(PYTHONPATH=str(src)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: Ordering.PaymentGateway declares no event 'CardStolen' "
        "(it declares CardCharged, CardDeclined)"
    )


def test_run_refuses_unknown_systems_and_events(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    runner = CliRunner()
    for choice, words in [
        ("Bank=CardDeclined", "no external system 'Bank' has a fake adapter here"),
        ("PaymentGateway=CardStolen", "declares no event 'CardStolen'"),
        ("PaymentGateway", "a fake's answer is written SYSTEM=EVENT, not 'PaymentGateway'"),
    ]:
        result = runner.invoke(cli, ["run", str(MODEL), "--store", "memory://", "--fake", choice])
        assert result.exit_code == 2, result.output
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_run_help_says_what_a_fake_answers() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200)
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "--fake" in text
    assert "answers every command with the first event the system declares" in text
