"""The API's limits against a real uvicorn server and real sockets (issue 18: 3, 7, 8).

Each test starts the hand-written shop under `serve` in a subprocess with small limits
set through the environment, then talks to it with httpx or raw sockets.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from http_shop import Drink, PlaceOrder, assert_serve_refuses, open_shop
from thread_server import free_port

from stormgen.runtime.http import create_app
from stormgen.runtime.http.limits import Limits, LimitsError

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SERVER = HERE / "limits_server.py"
PLACE = "/ordering/order/place-order"


class Server:
    """`serve` in a subprocess on a free port, with ``STORMGEN_*`` limits from ``env``."""

    def __init__(self, store: str, **env: str) -> None:
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
        environ.update(env)
        environ["PYTHONPATH"] = os.pathsep.join([str(HERE), environ.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), store, str(self.port)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the server did not start: {self.stderr()}") from None
                time.sleep(0.05)

    def rss_kib(self) -> int:
        """The server process's resident memory (VmRSS), in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(row for row in status.splitlines() if row.startswith("VmRSS:"))
        return int(line.split()[1])

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock

    def stderr(self) -> str:
        return self.process.stderr.read() if self.process.stderr else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def order_body(customer: str = "Ada", drinks: int = 1) -> dict[str, Any]:
    drink = {"name": "Latte", "price": "3.50"}
    return {"customer": customer, "drinks": [drink] * drinks, "total": "3.50"}


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def json_body(response: bytes) -> dict[str, Any]:
    _, _, body = response.partition(b"\r\n\r\n")
    parsed: dict[str, Any] = json.loads(body)
    return parsed


# ------------------------------------------------------------------ 3: request bodies


def test_a_body_over_the_limit_is_refused_by_its_content_length_before_it_is_sent(
    store: str, servers: list[Server]
) -> None:
    server = Server(store, STORMGEN_MAX_BODY_BYTES="65536")
    servers.append(server)
    with server.connect() as sock:
        # announce 100 MB, send 1 KB: the answer comes without the rest
        sock.sendall(
            b"POST " + PLACE.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n" + b" " * 1024
        )
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 413 ")
    body = json_body(response)
    assert body["status"] == 413 and body["error"] == "too_large"
    assert "65536" in body["message"]
    # the server is still there and answers a small command
    placed = httpx.post(server.url + PLACE, json=order_body(), timeout=10)
    assert placed.status_code == 201


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(
    store: str, servers: list[Server]
) -> None:
    server = Server(store, STORMGEN_MAX_BODY_BYTES="65536")
    servers.append(server)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 16 MB if it were all read
            sent += 16384
            yield b" " * 16384

    with httpx.Client(timeout=10) as client:
        try:
            response = client.post(server.url + PLACE, content=chunks())
        except httpx.HTTPError:  # the server may close before the client stops sending
            response = None
    if response is not None:
        assert response.status_code == 413
        assert response.json()["error"] == "too_large"
    assert sent < 16 * 1024 * 1024
    # what was stored: nothing
    events = httpx.get(server.url + "/events", timeout=10).json()["events"]
    assert events == []


def test_a_chunked_body_over_the_limit_gets_the_json_413(store: str, servers: list[Server]) -> None:
    server = Server(store, STORMGEN_MAX_BODY_BYTES="1000")
    servers.append(server)
    with server.connect() as sock:
        chunk = b" " * 600
        sock.sendall(
            b"POST " + PLACE.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n"
            % (len(chunk), chunk)
            * 2
        )
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert json_body(response)["error"] == "too_large"


def test_strings_and_lists_are_bounded_and_published() -> None:
    application = open_shop()
    declined = "/ordering/external/payment-gateway/card-declined"
    order_id = "7f1c0b5e-0000-4000-8000-000000000000"
    try:
        with TestClient(create_app(application, run_consumers=False)) as client:
            long_name = client.post(PLACE, json=order_body(customer="x" * 10_001))
            many = client.post(PLACE, json=order_body(drinks=1001))
            fits = client.post(PLACE, json=order_body(customer="x" * 10_000, drinks=1000))
            external = client.post(declined, json={"order_id": order_id, "reason": "x" * 10_001})
            schemas = client.get("/openapi.json").json()["components"]["schemas"]
    finally:
        application.close()
    assert external.status_code == 422, external.text
    assert external.json()["field"] == "reason"
    assert long_name.status_code == 422, long_name.text
    assert long_name.json()["field"] == "customer"
    assert "10000" in long_name.json()["message"]
    assert many.status_code == 422, many.text
    assert many.json()["field"] == "drinks"
    assert fits.status_code == 201, fits.text
    place = schemas["OrderingPlaceOrder"]["properties"]
    assert place["customer"]["maxLength"] == 10_000
    assert place["drinks"]["maxItems"] == 1_000
    drink = schemas["Drink"]["properties"]
    assert drink["name"]["maxLength"] == 10_000


def test_limits_are_read_from_the_environment_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = Limits.from_env({"STORMGEN_MAX_BODY_BYTES": "2048", "STORMGEN_BODY_TIMEOUT": "2.5"})
    assert limits.max_body_bytes == 2048 and limits.body_timeout == 2.5
    assert limits.max_list_items == Limits().max_list_items
    with pytest.raises(LimitsError, match="STORMGEN_MAX_STREAMS must be a whole number"):
        Limits.from_env({"STORMGEN_MAX_STREAMS": "many"})
    with pytest.raises(LimitsError, match="STORMGEN_HEADER_TIMEOUT must be greater than 0"):
        Limits.from_env({"STORMGEN_HEADER_TIMEOUT": "0"})
    assert_serve_refuses(
        monkeypatch,
        "STORMGEN_MAX_BODY_BYTES",
        "1MB",
        "STORMGEN_MAX_BODY_BYTES must be a whole number",
    )


# ------------------------------------------------------------------ 3: the event stream


def _big_log(store: str, size: int) -> None:
    """A log holding one event of about ``size`` bytes (written before limits applied)."""
    application = open_shop(store)
    try:
        big = Drink("x" * size, Decimal("1"))
        application.handle(PlaceOrder(order_id=None, customer="Ada", drinks=[big], total=1))
        application.run_consumers()
    finally:
        application.close()


def settled_rss_kib(server: Server) -> int:
    """The server's RSS once it has not moved by more than 1 MiB for half a second."""
    last, since = server.rss_kib(), time.monotonic()
    deadline = since + 15
    while time.monotonic() - since < 0.5 and time.monotonic() < deadline:
        time.sleep(0.05)
        now = server.rss_kib()
        if abs(now - last) > 1024:
            last, since = now, time.monotonic()
    return last


def _open_stream(server: Server, after: int = 0) -> socket.socket:
    """A stream that reads its headers and first bytes, then reads nothing more."""
    sock = server.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /events/stream?after=%d HTTP/1.1\r\nHost: x\r\n\r\n" % after)
    received = b""
    while b"id: " not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
    return sock


def test_stream_memory_does_not_grow_with_connections_over_a_big_event(
    store: str, servers: list[Server]
) -> None:
    _big_log(store, 5_000_000)
    server = Server(store, STORMGEN_MAX_STREAMS="50")
    servers.append(server)
    baseline = server.rss_kib()
    streams = [_open_stream(server) for _ in range(20)]
    try:
        grown_mib = (settled_rss_kib(server) - baseline) / 1024
    finally:
        for sock in streams:
            sock.close()
    # one copy of the event's frame is shared by every stream (~5 MB), each stream
    # holds a bounded slice of it: before the fix each held its own copies (~300 MB)
    assert grown_mib < 60, f"the server grew by {grown_mib:.0f} MiB for 20 streams"


def test_streams_past_the_cap_get_503_with_retry_after(store: str, servers: list[Server]) -> None:
    server = Server(store, STORMGEN_MAX_STREAMS="2")
    servers.append(server)
    with httpx.Client(timeout=10) as client:
        with (
            client.stream("GET", server.url + "/events/stream") as first,
            client.stream("GET", server.url + "/events/stream") as second,
        ):
            assert first.status_code == second.status_code == 200
            third = client.get(server.url + "/events/stream")
            assert third.status_code == 503
            assert third.headers["Retry-After"].isdigit()
            assert third.json()["error"] == "unavailable"
            assert "2" in third.json()["message"]
        # a closed stream frees its place
        deadline = time.monotonic() + 30
        while True:
            with client.stream("GET", server.url + "/events/stream") as again:
                if again.status_code == 200 or time.monotonic() > deadline:
                    assert again.status_code == 200
                    break
            time.sleep(0.05)


def test_the_log_page_is_capped(store: str, servers: list[Server]) -> None:
    server = Server(store)
    servers.append(server)
    response = httpx.get(server.url + "/events?limit=10001", timeout=10)
    assert response.status_code == 422
    assert response.json()["field"] == "limit"


# ------------------------------------------------------------------ 7: Last-Event-ID


@pytest.mark.parametrize("last_id", ["9" * 30, str(2**63), "-1", "x1"])
def test_a_last_event_id_out_of_range_is_400_before_streaming(
    store: str, servers: list[Server], last_id: str
) -> None:
    if not servers:
        servers.append(Server(store))
    server = servers[0]
    response = httpx.get(
        server.url + "/events/stream", headers={"Last-Event-ID": last_id}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed"
    assert "Last-Event-ID" in response.json()["message"]


def test_a_huge_after_is_422_before_streaming(store: str, servers: list[Server]) -> None:
    server = Server(store)
    servers.append(server)
    response = httpx.get(server.url + "/events/stream?after=" + "9" * 30, timeout=10)
    assert response.status_code == 422
    assert response.json()["field"] == "after"


# ------------------------------------------------------------------ 8: slow clients


def test_partial_headers_and_bodies_are_timed_out(store: str, servers: list[Server]) -> None:
    server = Server(store, STORMGEN_HEADER_TIMEOUT="1", STORMGEN_BODY_TIMEOUT="1")
    servers.append(server)
    partial_headers = [server.connect() for _ in range(20)]
    for sock in partial_headers:
        sock.sendall(b"POST " + PLACE.encode() + b" HTTP/1.1\r\nHost: x\r\n")
    partial_bodies = [server.connect() for _ in range(20)]
    for sock in partial_bodies:
        sock.sendall(
            b"POST " + PLACE.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
    silent = server.connect()  # connects and sends nothing
    answers = [read_until_closed(sock) for sock in [*partial_headers, *partial_bodies, silent]]
    for sock in [*partial_headers, *partial_bodies, silent]:
        sock.close()
    # every connection was closed by the server (recv would time out after 10 s)
    for answer in answers[:20] + answers[40:]:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    for answer in answers[20:40]:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert json_body(answer)["error"] == "timeout"
    # and the server still answers
    assert httpx.post(server.url + PLACE, json=order_body(), timeout=10).status_code == 201


def test_a_body_trickled_after_an_early_answer_is_timed_out(
    store: str, servers: list[Server]
) -> None:
    tokens = "c1=Customer"
    server = Server(store, STORMGEN_TOKENS=tokens, STORMGEN_BODY_TIMEOUT="1")
    servers.append(server)
    with server.connect() as sock:
        # no token: 401 at once, while the body is still coming
        sock.sendall(
            b"POST " + PLACE.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
        )
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 401 ")
        for _ in range(4):
            sock.sendall(b" ")
            time.sleep(0.5)
        rest = read_until_closed(sock)
    assert b"HTTP/1.1 2" not in rest


def test_an_answer_comes_in_one_piece(store: str, servers: list[Server]) -> None:
    # its head and body in one write: the first read has the whole answer
    server = Server(store)
    servers.append(server)
    body = json.dumps(order_body()).encode()
    request = (
        f"POST {PLACE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with server.connect() as sock:
        for _ in range(3):  # each answer on a kept-alive connection alike
            sock.sendall(request)
            head, _, rest = sock.recv(65536).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 201 "), head
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            assert length is not None and len(rest) == int(length.group(1)), (head, rest)
            assert json.loads(rest)["stream_version"] == 1


def test_connections_past_the_cap_are_closed(store: str, servers: list[Server]) -> None:
    server = Server(store, STORMGEN_MAX_CONNECTIONS="5")
    servers.append(server)
    held = [server.connect() for _ in range(5)]
    for sock in held:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers not finished
    try:
        with server.connect() as extra:
            answer = read_until_closed(extra)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503 "), answer[:200]
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 30
    while True:  # the held ones are gone: room again
        try:
            if httpx.get(server.url + "/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
