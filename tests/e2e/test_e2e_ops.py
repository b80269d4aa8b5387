"""The operations commands (docs/http.md) on a real SQLite store of the coffee shop."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from e2e_support import MODEL, STORMGEN, clean_env
from typer.testing import CliRunner

from stormgen.cli import app as cli
from stormgen.cli.run import load_service


@dataclass
class Shop:
    url: str
    orders: list[str]
    placed_at: int  # the position of the first order's OrderPlaced


@pytest.fixture(scope="module")
def shop(workdir: Path) -> Iterator[Shop]:
    """Two paid orders (policies run), written through the generated application."""
    old = Path.cwd()
    os.chdir(workdir)
    try:
        service = load_service(MODEL)
        order_module = importlib.import_module(f"{service.package}.ordering.order")
        shared = importlib.import_module(f"{service.package}.shared")
        url = f"sqlite:///{workdir / f'ops-{uuid.uuid4().hex[:6]}.db'}"
        orders = []
        with service.open(url) as application:
            for name in ("Ada", "Grace"):
                order_id = uuid.uuid4()
                application.handle(
                    order_module.PlaceOrder(
                        order_id=order_id,
                        customer=name,
                        drinks=(shared.Drink(name="Tea", price=Decimal("2.00")),),
                        total=Decimal("2.00"),
                    ),
                    actor="Customer",
                )
                orders.append(str(order_id))
            application.run_consumers()
            placed_at = next(
                e.position for e in application.events() if e.type == "Ordering.OrderPlaced"
            )
        yield Shop(url, orders, placed_at)
    finally:
        os.chdir(old)


@pytest.fixture
def run(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(workdir)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args))

    return invoke


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_events_filters(run: Any, shop: Shop) -> None:
    every = run("events", "--store", shop.url)
    assert every.exit_code == 0, every.output
    log = lines(every.stdout)
    assert [e["position"] for e in log] == list(range(1, len(log) + 1))
    assert {"id", "type", "stream", "position", "recorded_at", "data"} <= set(log[0])
    placed = lines(run("events", "--store", shop.url, "--type", "Ordering.OrderPlaced").stdout)
    assert [e["stream_id"] for e in placed] == shop.orders
    one = lines(
        run("events", "--store", shop.url, "--stream", f"Ordering.Order/{shop.orders[0]}").stdout
    )
    assert [e["type"] for e in one] == ["Ordering.OrderPlaced", "Ordering.OrderPaid"]
    orders = lines(run("events", "--store", shop.url, "--stream", "Ordering.Order").stdout)
    assert len(orders) == 4
    after = lines(run("events", "--store", shop.url, "--after", "3", "--limit", "2").stdout)
    assert [e["position"] for e in after] == [4, 5]


def test_state_now_and_then(run: Any, shop: Shop) -> None:
    now = run("state", str(MODEL), "Ordering.Order", shop.orders[0], "--store", shop.url)
    assert now.exit_code == 0, now.output
    body = json.loads(now.stdout)
    assert body["state"]["status"] == "Paid"
    assert body["stream_version"] == 2
    then = run(
        "state", str(MODEL), "Ordering.Order", shop.orders[0], "--store", shop.url,
        "--at", str(shop.placed_at),
    )  # fmt: skip
    assert json.loads(then.stdout)["state"]["status"] == "Placed"
    early = run(
        "state", str(MODEL), "Ordering.Order", shop.orders[0], "--store", shop.url,
        "--at", "2000-01-01T00:00:00Z",
    )  # fmt: skip
    assert early.exit_code == 1
    assert "did not exist at 2000-01-01T00:00:00Z" in early.stderr
    assert "position" not in early.stderr


def test_state_of_a_process_instance_now_and_then(run: Any, shop: Shop) -> None:
    process = "Ordering.PaymentDeadline"
    now = run("state", str(MODEL), process, shop.orders[0], "--store", shop.url)
    assert now.exit_code == 0, now.output
    body = json.loads(now.stdout)
    assert body["key"] == shop.orders[0] and body["ended"] and body["timers"] == []
    assert body["state"]["total"] == "2.00"
    stream = f"$process-{process}-{shop.orders[0]}"
    started, timer_set = lines(run("events", "--store", shop.url, "--stream", stream).stdout)[:2]
    assert (started["type"], timer_set["type"]) == ("$ProcessStarted", "$TimerSet")
    then = run(
        "state", str(MODEL), process, shop.orders[0], "--store", shop.url,
        "--at", str(timer_set["position"]),
    )  # fmt: skip
    pending = json.loads(then.stdout)
    assert not pending["ended"] and [t["name"] for t in pending["timers"]] == ["PaymentDue"]
    early = run(
        "state", str(MODEL), process, shop.orders[0], "--store", shop.url,
        "--at", str(shop.placed_at),
    )  # fmt: skip
    assert early.exit_code == 1
    assert f"has no instance {shop.orders[0]} at position {shop.placed_at}" in early.stderr
    bad = run("state", str(MODEL), process, "not-a-uuid", "--store", shop.url)
    assert bad.exit_code == 2 and "is not a valid order_id" in bad.stderr


def test_state_before_the_instance_names_the_position_asked(run: Any, shop: Shop) -> None:
    early = run(
        "state", str(MODEL), "Ordering.Order", shop.orders[1], "--store", shop.url,
        "--at", str(shop.placed_at),
    )  # fmt: skip
    assert early.exit_code == 1
    assert f"did not exist at position {shop.placed_at}" in early.stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("Order", "x"), 2, "write it as Context.Aggregate"),
        (("Ordering.Order", "not-a-uuid"), 2, "is not a valid order_id"),
        (("Ordering.Order", str(uuid.UUID(int=7))), 1, "does not exist"),
    ],
)
def test_state_errors_are_one_sentence(
    run: Any, shop: Shop, args: tuple[str, str], code: int, words: str
) -> None:
    result = run("state", str(MODEL), *args, "--store", shop.url)
    assert result.exit_code == code
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_replay_rebuilds_the_same_rows(run: Any, shop: Shop, workdir: Path) -> None:
    service = load_service(MODEL)
    with service.open(shop.url) as application:
        before = application.view_rows("Ordering.OrderHistory")
    result = run("replay", str(MODEL), "--store", shop.url, "--view", "OrderHistory")
    assert result.exit_code == 0, result.output
    assert "replayed 1 view" in result.stderr
    with service.open(shop.url) as application:
        assert application.view_rows("Ordering.OrderHistory") == before
    everything = run("replay", str(MODEL), "--store", shop.url)
    assert "replayed 3 views" in everything.stderr
    unknown = run("replay", str(MODEL), "--store", shop.url, "--view", "Nope")
    assert unknown.exit_code == 2
    assert "no view 'Nope'" in unknown.stderr


def test_fork_the_past(run: Any, shop: Shop, workdir: Path) -> None:
    target = f"sqlite:///{workdir / f'fork-{uuid.uuid4().hex[:6]}.db'}"
    result = run("fork", "--store", shop.url, "--at", str(shop.placed_at), "--to", target)
    assert result.exit_code == 0, result.output
    assert f"up to position {shop.placed_at}" in result.stderr
    forked = lines(run("events", "--store", target).stdout)
    assert [e["position"] for e in forked] == list(range(1, shop.placed_at + 1))
    again = run("fork", "--store", shop.url, "--to", target)
    assert again.exit_code == 1
    assert "not empty" in again.stderr


def test_forget_redacts_state_and_views(run: Any, shop: Shop) -> None:
    victim = shop.orders[1]
    result = run("forget", str(MODEL), "Ordering.Order", victim, "--store", shop.url)
    assert result.exit_code == 0, result.output
    assert "forgot the personal data" in result.stdout
    state = json.loads(
        run("state", str(MODEL), "Ordering.Order", victim, "--store", shop.url).stdout
    )
    assert state["state"]["customer"] == "[redacted]"
    service = load_service(MODEL)
    with service.open(shop.url) as application:
        assert application.view_row("Ordering.OrderHistory", victim)["customer"] == "[redacted]"
        other = application.view_row("Ordering.OrderHistory", shop.orders[0])
        assert other["customer"] == "Ada"


def test_events_follow_prints_new_events_live(workdir: Path, shop: Shop) -> None:
    service = load_service(MODEL)
    start = len(lines(CliRunner().invoke(cli, ["events", "--store", shop.url]).stdout))
    process = subprocess.Popen(
        [*STORMGEN, "events", "--store", shop.url, "--after", str(start), "--follow"],
        cwd=workdir,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        external = importlib.import_module(f"{service.package}.ordering.payment_gateway")
        with service.open(shop.url) as application:
            application.record_external(
                [external.CardDeclined(order_id=uuid.UUID(shop.orders[0]), reason="test")]
            )
        assert process.stdout is not None
        line = process.stdout.readline()
        event = json.loads(line)
        assert event["type"] == "Ordering.PaymentGateway.CardDeclined"
        assert event["position"] == start + 1
    finally:
        process.terminate()
        process.wait(10)


def test_bad_store_url(run: Any) -> None:
    result = run("events", "--store", "nope://")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown store scheme")


def test_run_refuses_what_it_cannot_serve(run: Any, workdir: Path) -> None:
    (workdir / "notes.txt").write_text("hello")
    (workdir / "empty").mkdir(exist_ok=True)
    broken = workdir / "broken.storm"
    broken.write_text("model Broken\ncontext A {\n  policy P { when Nope then Nada }\n}\n")
    for target, code, words in [
        (workdir / "missing.storm", 2, "no such file or folder"),
        (workdir / "notes.txt", 2, "expected a .storm model or a generated project folder"),
        (workdir / "empty", 2, "is not a generated project"),
        (broken, 1, "the model has errors"),
    ]:
        result = run("run", str(target), "--store", "memory://")
        assert result.exit_code == code, (target, result.output)
        assert words in result.stderr
        assert "Traceback" not in result.stderr
    bad_context = run("run", str(MODEL), "--context", "Kitchen", "--store", "memory://")
    assert bad_context.exit_code == 2
    assert "no context 'Kitchen'" in bad_context.stderr


def test_a_generated_project_folder_is_served_as_is(workdir: Path) -> None:
    project = workdir / ".stormgen" / "build" / "coffee_shop"
    load_service(MODEL)  # makes sure the cache exists
    service = load_service(project)
    assert service.package == "coffee_shop"
    assert service.contexts == ("Ordering", "Bar", "Display")


def test_store_from_the_environment(
    workdir: Path, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    result = CliRunner().invoke(
        cli, ["events", "--type", "Ordering.OrderPlaced"], env={"STORMGEN_STORE": shop.url}
    )
    assert result.exit_code == 0, result.output
    assert [e["stream_id"] for e in lines(result.stdout)] == shop.orders


def test_unreadable_tokens_file_is_one_sentence(run: Any, workdir: Path) -> None:
    result = run(
        "run", str(MODEL), "--store", "memory://", "--tokens-file", str(workdir / "no-tokens")
    )
    assert result.exit_code == 2
    assert "cannot read the tokens file" in result.stderr


def test_build_cache_is_reused_until_the_model_changes(tmp_path: Path) -> None:
    from stormgen.cli.run import build_model

    model = tmp_path / "shop.storm"
    model.write_text(MODEL.read_text())
    build = tmp_path / "build"
    root = build_model(model, build)
    app_file = root / "src" / "coffee_shop" / "app.py"
    stamp = (root / ".stormgen-build").read_text()
    first = app_file.stat().st_mtime_ns
    assert build_model(model, build) == root
    assert app_file.stat().st_mtime_ns == first  # not rewritten
    model.write_text(MODEL.read_text().replace("actor Barista", "actor Barista\nactor Manager"))
    build_model(model, build)
    assert (root / ".stormgen-build").read_text() != stamp
    assert app_file.stat().st_mtime_ns != first


def test_forget_without_pii_writes_nothing(run: Any, shop: Shop) -> None:
    before = lines(run("events", "--store", shop.url).stdout)
    ticket = next(e["stream"].split("/", 1)[1] for e in before if e["type"] == "Bar.TicketOpened")
    result = run("forget", str(MODEL), "Bar.Ticket", ticket, "--store", shop.url)
    assert result.exit_code == 0, result.output
    assert "Bar.Ticket has no personal (pii) fields: nothing to forget" in result.stdout
    assert "forgot" not in result.stdout
    assert lines(run("events", "--store", shop.url).stdout) == before
