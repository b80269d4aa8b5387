"""`stormgen merge` and `stormgen info` on real SQLite files of the generated coffee shop:
a fork, orders on both sides, the conflict report, a merge that prefers one side, bad
input, and a merge killed half-way (a real process, SIGKILL) then run again."""

from __future__ import annotations

import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from e2e_support import MODEL, clean_env
from typer.testing import CliRunner

from stormgen.cli import app as cli
from stormgen.cli.run import Service, load_service
from stormgen.runtime import StoreError, open_store
from stormgen.runtime.store import fork


@pytest.fixture
def run(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(workdir)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


@pytest.fixture
def service(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.chdir(workdir)
    return load_service(MODEL)


def _url(workdir: Path, name: str) -> str:
    return f"sqlite:///{workdir / f'{name}-{uuid.uuid4().hex[:6]}.db'}"


def _place(service: Service, url: str, customer: str) -> str:
    order = importlib.import_module(f"{service.package}.ordering.order")
    shared = importlib.import_module(f"{service.package}.shared")
    order_id = uuid.uuid4()
    with service.open(url) as application:
        application.handle(
            order.PlaceOrder(
                order_id=order_id,
                customer=customer,
                drinks=(shared.Drink(name="Tea", price=Decimal("2.00")),),
                total=Decimal("2.00"),
            ),
            actor="Customer",
        )
    return str(order_id)


def _cancel(service: Service, url: str, order_id: str) -> None:
    order = importlib.import_module(f"{service.package}.ordering.order")
    with service.open(url) as application:
        application.handle(order.Cancel(order_id=uuid.UUID(order_id), reason="changed my mind"))


def _run_policies(service: Service, url: str) -> None:
    with service.open(url) as application:
        application.run_consumers()


def test_merge_two_pasts_of_the_coffee_shop(run: Any, service: Service, workdir: Path) -> None:
    shop, what_if, joined = (_url(workdir, n) for n in ("shop", "what-if", "joined"))
    ada = _place(service, shop, "Ada")
    forked = run("fork", "--store", shop, "--to", what_if)
    assert forked.exit_code == 0, forked.output
    info = run("info", "--store", what_if)
    assert info.exit_code == 0 and f"forked from {shop}" in info.stdout
    assert "at position 1" in info.stdout
    # two futures: on the shop Ada cancels; in the what-if her card is charged
    _cancel(service, shop, ada)
    _run_policies(service, what_if)
    bo = _place(service, what_if, "Bo")

    stopped = run("merge", str(MODEL), "--store", shop, "--with", what_if, "--to", joined)
    assert stopped.exit_code == 1, stopped.output
    assert f"Ordering.Order/{ada}" in stopped.stdout
    assert "Ordering.OrderCancelled" in stopped.stdout and "Ordering.OrderPaid" in stopped.stdout
    assert '"status":"Cancelled"' in stopped.stdout and '"status":"Paid"' in stopped.stdout
    assert "nothing written" in stopped.stdout

    dry = run(
        "merge", str(MODEL), "--store", shop, "--with", what_if, "--to", joined,
        "--prefer", "b", "--dry-run", "--json",
    )  # fmt: skip
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["dry_run"] and not report["written"]
    assert [c["kept"] for c in report["conflicts"]] == ["b"]

    merged = run(
        "merge", str(MODEL), "--store", shop, "--with", what_if, "--to", joined, "--prefer", "b"
    )
    assert merged.exit_code == 0, merged.output
    assert "(disregarded, in $merge)" in merged.stdout
    assert "recorded in $merge as disregarded" in merged.stdout
    assert "rebuilt" in merged.stderr
    events = [json.loads(line) for line in run("events", "--store", joined).stdout.splitlines()]
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events if e["stream"] == "$merge"] == ["$Disregarded", "$Merged"]
    with service.open(joined) as application:
        rows = {r["customer"]: r["status"] for r in application.view_rows("Ordering.OrderHistory")}
        assert rows == {"Ada": "paid", "Bo": "placed"}
        application.run_consumers()  # Bo's policies run once in the merge
        assert application.view_row("Ordering.OrderHistory", bo)["status"] == "paid"
    info = run("info", "--store", joined, "--json")
    origin = json.loads(info.stdout)["origin"][0]
    assert origin["kind"] == "merge" and origin["prefer"] == "b"


def test_merge_refuses_bad_input_with_one_sentence(
    run: Any, service: Service, workdir: Path
) -> None:
    a, b, to = _url(workdir, "a"), _url(workdir, "b"), workdir / "never.db"
    _place(service, a, "Ada")
    _place(service, b, "Bo")
    unrelated = run("merge", str(MODEL), "--store", a, "--with", b, "--to", f"sqlite:///{to}")
    assert unrelated.exit_code == 2
    assert "no common prefix" in unrelated.stderr and len(unrelated.stderr.splitlines()) == 1
    assert not to.exists()

    newer = _url(workdir, "newer")
    run("fork", "--store", a, "--to", newer)
    path = newer.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE stormgen_meta SET value = '99' WHERE key = 'schema_version'")
    too_new = run("merge", str(MODEL), "--store", a, "--with", newer, "--to", f"sqlite:///{to}")
    assert too_new.exit_code == 2
    assert "newer than this stormgen" in too_new.stderr
    assert not to.exists()

    foreign, its_fork = _url(workdir, "foreign"), _url(workdir, "foreign-fork")
    with open_store(foreign) as other:
        other.append("Other.Thing/1", [_event(1)], None)
        fork(other, its_fork).close()
    another = run(
        "merge", str(MODEL), "--store", foreign, "--with", its_fork, "--to", f"sqlite:///{to}"
    )
    assert another.exit_code == 2
    assert "another model" in another.stderr and len(another.stderr.splitlines()) == 1
    assert not to.exists()
    with sqlite3.connect(foreign.removeprefix("sqlite:///")) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert not [t for t in tables if t.startswith("view_")]  # no view made there

    forked = _url(workdir, "forked")
    run("fork", "--store", a, "--to", forked)
    full = run("merge", str(MODEL), "--store", a, "--with", forked, "--to", b)
    assert full.exit_code == 2 and "is not empty: a merge makes a new store" in full.stderr

    prefer = run("merge", str(MODEL), "--store", a, "--with", a, "--to", "x", "--prefer", "c")
    assert prefer.exit_code == 2 and "--prefer must be a or b" in prefer.stderr


_KILLABLE = """
import sys, time
from stormgen.runtime import merge

def slowly(done, total):
    print(done, flush=True)
    time.sleep(0.2)

merge(sys.argv[1], sys.argv[2], sys.argv[3], batch_size=50, progress=slowly)
"""


def test_a_merge_killed_half_way_is_labelled_and_a_rerun_works(run: Any, workdir: Path) -> None:
    _kill_and_rerun(run, workdir, _url(workdir, "c"))


def test_a_merge_into_postgresql_killed_half_way_is_labelled_and_a_rerun_works(
    run: Any, workdir: Path, postgres_url: str
) -> None:
    _kill_and_rerun(run, workdir, postgres_url)


def _kill_and_rerun(run: Any, workdir: Path, to: str) -> None:
    """Two SQLite forks merged into ``to`` by a process killed after three batches."""
    a, b = _url(workdir, "a"), _url(workdir, "b")
    with open_store(a) as store:
        for n in range(400):
            store.append(f"Shop.Thing/{n % 7}", [_event(n)], None)
        fork(store, b).close()
        for n in range(100):
            store.append(f"Shop.Other/{n}", [_event(n)], None)
    with open_store(b) as store:
        for n in range(100):
            store.append(f"Shop.Else/{n}", [_event(n)], None)
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, a, b, to],
        env=clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for _ in range(3):  # three batches are in: the merge is half done
            assert process.stdout.readline().strip()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    with pytest.raises(StoreError, match="unfinished merge"):
        open_store(to)
    events = run("events", "--store", to)
    assert events.exit_code == 1 and "unfinished merge" in events.stderr
    info = run("info", "--store", to)
    assert info.exit_code == 0 and "UNUSABLE" in info.stdout
    again = subprocess.run(
        [sys.executable, "-c", _KILLABLE.replace("time.sleep(0.2)", "pass"), a, b, to],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    with open_store(to) as merged:
        assert merged.last_position() == 400 + 100 + 100 + 1
        positions = [e.position for e in merged.iter_all()]
        assert positions == list(range(1, 602))


def _event(n: int) -> Any:
    from stormgen.runtime import NewEvent

    return NewEvent(type="Shop.ThingHappened", data={"n": n})
