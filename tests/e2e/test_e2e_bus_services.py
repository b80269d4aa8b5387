"""Autonomous services as real processes (`stormgen run --context C --bus URL`, and
`stormgen up`), each on its own SQLite file, over a real NATS server of the module's
own that the tests kill and restart; everything through real HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import MODEL, Server, clean_env, free_port, wait_for
from nats_support import NatsServer

pytestmark = pytest.mark.slow

ORDER = {"customer": "Ada", "drinks": [{"name": "Tea", "price": "2.00"}], "total": "2.00"}


@pytest.fixture
def nats() -> Iterator[NatsServer]:
    server = NatsServer().start()
    yield server
    server.remove()


@pytest.fixture
def services(workdir: Path) -> Iterator[Any]:
    """Start a context's service on a fresh SQLite file, linked to a bus."""
    started: list[Server] = []
    run = uuid.uuid4().hex[:8]

    def start(context: str, bus: str, wait: bool = True, **env: str) -> Server:
        store = f"sqlite:///{workdir / f'svc-{run}-{context}.db'}"
        server = Server(workdir, store, None, "--context", context, "--bus", bus)
        server.env = env
        started.append(server)
        return server.start() if wait else server.launch()

    yield start
    for server in started:
        server.stop()


def place(server: Server, count: int = 1) -> list[str]:
    with server.client() as client:
        ids = []
        for _ in range(count):
            answer = client.post("/ordering/order/place-order", json=ORDER)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        return ids


def pickup(server: Server) -> set[str]:
    with server.client() as client:
        rows = client.get("/display/views/pickup", params={"limit": 1000}).json()["rows"]
        return {row["ticket_id"] for row in rows}


def events(server: Server, kind: str) -> list[dict[str, Any]]:
    with server.client() as client:
        found = client.get("/events", params={"limit": 10_000}).json()["events"]
        return [e for e in found if e["type"] == kind]


def health(server: Server) -> dict[str, Any]:
    with server.client() as client:
        answer: dict[str, Any] = client.get("/health").json()
        return answer


def test_with_the_broker_killed_every_service_keeps_working_and_catches_up(
    nats: NatsServer, services: Any
) -> None:
    ordering, bar = services("Ordering", nats.url), services("Bar", nats.url)
    display = services("Display", nats.url)
    # an order placed on one service reaches the view of another, through a third
    first = place(ordering)
    assert wait_for(lambda: pickup(display) == set(first), timeout=30)
    assert [e["stream_id"] for e in events(bar, "Ordering.OrderPaid")] == first
    assert events(display, "Ordering.OrderPaid") == []
    bus = health(bar)["bus"]
    assert bus["relay"]["streams"] == ["STORMGEN_COFFEE_SHOP_BAR"]
    assert bus["inbox"]["Ordering"]["subjects"][0] == "stormgen.coffee_shop.Ordering.OrderPaid"
    nats.kill()
    # autonomy: commands are accepted and decided while the bus is gone
    later = place(ordering, 5)
    relay = wait_for(lambda: (r := health(ordering)["bus"]["relay"])["connected"] is False and r)
    assert relay["lag"] >= 1 and "error" in relay
    assert health(display)["status"] == "ok"
    nats.start()
    assert wait_for(lambda: pickup(display) == set(first + later), timeout=40)
    # nothing lost, nothing doubled
    paid = [e["stream_id"] for e in events(bar, "Ordering.OrderPaid")]
    assert sorted(paid) == sorted(first + later)
    assert len(events(bar, "Bar.TicketOpened")) == 6
    assert wait_for(lambda: health(ordering)["bus"]["relay"]["lag"] == 0, timeout=10)
    assert "cannot be reached" in ordering.log.read_text()


def test_a_consumer_killed_under_load_catches_up_exactly_once(
    nats: NatsServer, services: Any
) -> None:
    ordering, bar = services("Ordering", nats.url), services("Bar", nats.url)
    ids = place(ordering, 10)
    bar.kill()
    ids += place(ordering, 10)
    bar.start()
    wait_for(lambda: len(events(bar, "Bar.TicketOpened")) >= 20, timeout=40)
    paid = [e["stream_id"] for e in events(bar, "Ordering.OrderPaid")]
    assert sorted(paid) == sorted(ids)
    tickets = [e["stream_id"] for e in events(bar, "Bar.TicketOpened")]
    assert sorted(tickets) == sorted(ids)


def test_a_relay_killed_between_publish_and_checkpoint_doubles_nothing(
    nats: NatsServer, services: Any
) -> None:
    # the fault hook ends the process right after the broker acked the 3rd message
    ordering = services("Ordering", nats.url, wait=False, STORMGEN_BUS_FAULT="exit-after-publish:3")
    ordering.ready()
    bar = services("Bar", nats.url)
    ids = place(ordering, 2)  # OrderPlaced, OrderPaid, OrderPlaced: the 3rd kills it
    assert ordering.process is not None
    assert ordering.process.wait(30) == 70
    ordering.env = {}
    ordering.start()
    ids += place(ordering)
    wait_for(lambda: len(events(bar, "Bar.TicketOpened")) == 3, timeout=40)
    paid = [e["stream_id"] for e in events(bar, "Ordering.OrderPaid")]
    assert sorted(paid) == sorted(ids)


def test_a_service_starts_with_the_broker_down_and_links_up_later(
    workdir: Path, services: Any
) -> None:
    broker = NatsServer()
    try:
        ordering = services("Ordering", broker.url)
        ids = place(ordering)
        assert health(ordering)["bus"]["relay"]["connected"] is False
        assert wait_for(lambda: "cannot be reached" in ordering.log.read_text())
        broker.start()
        bar = services("Bar", broker.url)
        assert wait_for(lambda: len(events(bar, "Bar.TicketOpened")) == 1, timeout=40)
        assert [e["stream_id"] for e in events(bar, "Ordering.OrderPaid")] == ids
    finally:
        broker.remove()


def test_a_wrong_bus_url_is_one_line_on_stderr(workdir: Path) -> None:
    words = "is not HOST:PORT"
    for command in (["run", str(MODEL), "--context", "Bar"], ["up", str(MODEL)]):
        result = subprocess.run(
            [sys.executable, "-m", "stormgen", *command, "--bus", "nats://localhost"],
            cwd=workdir,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr
    nobody = f"nats://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "stormgen", "events", "--bus", nobody],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach the bus {nobody}")
    assert "Traceback" not in result.stderr


def test_up_runs_every_context_as_its_own_service(workdir: Path, nats: NatsServer) -> None:
    base = _free_run_of_ports(3)
    folder = workdir / f"up-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stormgen",
            "up",
            str(MODEL),
            "--bus",
            nats.url,
            "--port",
            str(base),
        ],
        cwd=folder,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = {}
        for line in process.stdout:
            found = re.match(r"^(\w+)\s+(http://\S+)\s+\((\S+)\)$", line.strip())
            if found:
                urls[found.group(1)] = found.group(2)
            if line.startswith("bus "):
                break
        assert list(urls) == ["Ordering", "Bar", "Display"]
        assert sorted(p.name for p in (folder / ".stormgen" / "up").glob("*.db")) == [
            "coffee_shop-bar.db",
            "coffee_shop-display.db",
            "coffee_shop-ordering.db",
        ]
        with httpx.Client(timeout=20) as client:
            placed = client.post(f"{urls['Ordering']}/ordering/order/place-order", json=ORDER)
            order_id = placed.json()["id"]
            row = wait_for(
                lambda: (
                    client.get(f"{urls['Display']}/display/views/pickup/{order_id}").status_code
                    == 200
                ),
                timeout=30,
            )
            assert row
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        for url in urls.values():
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{url}/health", timeout=1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _free_run_of_ports(count: int) -> int:
    import socket

    for _ in range(50):
        base = free_port()
        if base + count >= 65535:
            continue
        ok = True
        for port in range(base, base + count):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise AssertionError("no run of free ports")
