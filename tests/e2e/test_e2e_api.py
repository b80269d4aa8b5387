"""The real server's answers: status codes, If-Match races, idempotency, tokens, SSE."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import BARISTA, CUSTOMER, GATEWAY, OPERATOR, Server, wait_for

ORDER = {"customer": "Grace", "drinks": [{"name": "Mocha", "price": "4.20"}], "total": "4.20"}


def place(c: httpx.Client, **overrides: Any) -> str:
    response = c.post("/ordering/order/place-order", json={**ORDER, **overrides}, headers=CUSTOMER)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


def open_ticket(c: httpx.Client) -> str:
    """A paid order's ticket, once the bar has opened it (via the policies)."""
    order_id = place(c)
    wait_for(lambda: c.get(f"/bar/ticket/{order_id}", headers=BARISTA).status_code == 200)
    return order_id


def test_every_status_code(server: Server) -> None:
    with server.client() as c:
        order_id = place(c)
        post = "/ordering/order/place-order"
        # 400 malformed JSON
        bad = c.post(post, content=b'{"customer": ', headers=CUSTOMER)
        assert bad.status_code == 400
        assert bad.json()["error"] == "malformed"
        # 422 missing, unknown, wrong type - each named
        for body, field in [
            ({"customer": "Ada", "total": "1"}, "drinks"),
            ({**ORDER, "coupon": "X"}, "coupon"),
            ({**ORDER, "total": {"amount": 1}}, "total"),
        ]:
            response = c.post(post, json=body, headers=CUSTOMER)
            assert response.status_code == 422, response.text
            assert response.json()["field"] == field
            assert field in response.json()["message"]
        # 404 unknown instance
        missing = uuid.uuid4()
        assert c.get(f"/ordering/order/{missing}", headers=CUSTOMER).status_code == 404
        cancel = c.post(f"/ordering/order/{missing}/cancel", json={"reason": "x"}, headers=CUSTOMER)
        assert cancel.status_code == 404
        # 409: guard, exists, version conflict
        guard = c.post(post, json={**ORDER, "drinks": []}, headers=CUSTOMER)
        assert guard.status_code == 409
        assert guard.json()["message"] == "an order needs at least one drink"
        exists = c.post(post, json={**ORDER, "order_id": order_id}, headers=CUSTOMER)
        assert exists.status_code == 409
        assert exists.json()["error"] == "exists"
        stale = c.post(
            f"/ordering/order/{order_id}/cancel",
            json={"reason": "x"},
            headers={**CUSTOMER, "If-Match": "99"},
        )
        assert stale.status_code == 409
        assert stale.json()["error"] == "conflict"
        # 401 / 403
        assert c.post(post, json=ORDER).status_code == 401
        assert c.post(post, json=ORDER, headers={"Authorization": "Bearer x"}).status_code == 401
        assert c.post(post, json=ORDER, headers=BARISTA).status_code == 403


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b"\xff\xfe",
        b'{"customer": null, "drinks": null, "total": null}',
        b'{"customer": "A", "drinks": [{"name": 1, "price": []}], "total": "1e999999"}',
        b'{"customer": "A", "drinks": [{"name": "x", "price": "NaN"}], "total": "Infinity"}',
        b'{"order_id": 5, "customer": "A", "drinks": [], "total": 1}',
        b'{"customer": "' + b"x" * 100_000 + b'", "drinks": [], "total": 1}',
    ],
)
def test_never_500_for_bad_input(server: Server, raw: bytes) -> None:
    with server.client() as c:
        for path in ("/ordering/order/place-order", f"/ordering/order/{uuid.uuid4()}/cancel"):
            response = c.post(path, content=raw, headers=CUSTOMER)
            assert 400 <= response.status_code < 500, (raw[:80], response.text)
        odd = [
            "/ordering/order/%00",
            "/ordering/order/..%2F..%2Fetc",
            "/ordering/views/order-history?limit=99999999999999999999",
            "/ordering/views/daily-sales/not-a-date",
            "/events?after=-1",
            "/ordering/order/00000000-0000-0000-0000-000000000000?at=99999999999999999999999",
        ]
        for path in odd:
            assert c.get(path, headers=CUSTOMER).status_code < 500, path


def race(a: httpx.Client, b: httpx.Client, path: str, version: int) -> list[httpx.Response]:
    """Send the same command from two clients at the same moment, both with If-Match."""
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def send(client: httpx.Client) -> None:
        barrier.wait()
        headers = {**BARISTA, "If-Match": str(version)}
        answers.append(client.post(path, json={}, headers=headers))

    threads = [threading.Thread(target=send, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_two_clients_race_with_if_match(server: Server) -> None:
    """Both read version 1 and write with If-Match: 1; exactly one wins, nothing is lost."""
    races(server, 5)


def test_two_clients_race_with_if_match_on_postgres(workdir: Path, postgres_url: str) -> None:
    server = Server(workdir, postgres_url).start()
    try:
        races(server, 3)
    finally:
        server.stop()


def races(server: Server, rounds: int) -> None:
    with server.client() as a, server.client() as b:
        for _ in range(rounds):
            ticket = open_ticket(a)
            version = a.get(f"/bar/ticket/{ticket}", headers=BARISTA).json()["stream_version"]
            assert version == 1
            answers = race(a, b, f"/bar/ticket/{ticket}/start-brewing", version)
            assert sorted(r.status_code for r in answers) == [200, 409]
            loser = next(r for r in answers if r.status_code == 409)
            assert loser.json()["error"] == "conflict"
            history = a.get(f"/bar/ticket/{ticket}/events", headers=OPERATOR).json()["events"]
            assert [e["type"] for e in history] == ["Bar.TicketOpened", "Bar.BrewingStarted"]
            assert [e["stream_version"] for e in history] == [1, 2]


def test_retry_with_the_same_idempotency_key_writes_once(server: Server) -> None:
    with server.client() as c:
        key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
        first = c.post("/ordering/order/place-order", json=ORDER, headers={**CUSTOMER, **key})
        second = c.post("/ordering/order/place-order", json=ORDER, headers={**CUSTOMER, **key})
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert first.json()["events"] == second.json()["events"]
        order_id = first.json()["id"]
        history = c.get(f"/ordering/order/{order_id}/events", headers=OPERATOR).json()["events"]
        placed = [e for e in history if e["type"] == "Ordering.OrderPlaced"]
        assert len(placed) == 1


def test_concurrent_commands_each_get_their_own_answer(server: Server) -> None:
    """Requests that arrive together share a transaction (group commit) on SQLite, yet
    each is answered for itself: a repeated Idempotency-Key writes once, a rejection
    or an id that exists fails only its own request, the others are all in the log."""
    key = f"together-{uuid.uuid4()}"
    with server.client() as c:
        existing = place(c)
    jobs: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    for n in range(24):
        kind = ("plain", "same-key", "rejected", "exists")[n % 4]
        if kind == "plain":
            jobs.append((kind, ORDER, {}))
        elif kind == "same-key":
            jobs.append((kind, ORDER, {"Idempotency-Key": key}))
        elif kind == "rejected":
            jobs.append((kind, {**ORDER, "drinks": []}, {}))
        else:
            jobs.append((kind, {**ORDER, "order_id": existing}, {}))
    answers: list[tuple[str, httpx.Response]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(jobs))

    def send(kind: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        with server.client() as c:
            start.wait()
            response = c.post(
                "/ordering/order/place-order", json=body, headers={**CUSTOMER, **headers}
            )
        with lock:
            answers.append((kind, response))

    threads = [threading.Thread(target=send, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_kind: dict[str, list[httpx.Response]] = {}
    for kind, response in answers:
        by_kind.setdefault(kind, []).append(response)
    assert [r.status_code for r in by_kind["plain"]] == [201] * 6
    assert [r.status_code for r in by_kind["same-key"]] == [201] * 6
    assert len({r.json()["id"] for r in by_kind["same-key"]}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in by_kind["same-key"]) == 5
    assert {r.status_code for r in by_kind["rejected"]} == {409}
    assert {r.json()["error"] for r in by_kind["rejected"]} == {"rejected"}
    assert {r.status_code for r in by_kind["exists"]} == {409}
    assert {r.json()["error"] for r in by_kind["exists"]} == {"exists"}
    with server.client() as c:
        for response in by_kind["plain"] + by_kind["same-key"][:1]:
            order_id = response.json()["id"]
            history = c.get(f"/ordering/order/{order_id}/events", headers=OPERATOR).json()
            placed = [e for e in history["events"] if e["type"] == "Ordering.OrderPlaced"]
            assert len(placed) == 1


def test_wrong_actors_token_is_403(server: Server) -> None:
    with server.client() as c:
        ticket = open_ticket(c)
        refused = c.post(f"/bar/ticket/{ticket}/start-brewing", json={}, headers=CUSTOMER)
        assert refused.status_code == 403
        assert "Customer may not issue StartBrewing" in refused.json()["message"]
        history = c.get(f"/bar/ticket/{ticket}/events", headers=OPERATOR).json()["events"]
        assert len(history) == 1
        # an external system's events only from its token
        declined = {"order_id": ticket, "reason": "stolen card"}
        path = "/ordering/external/payment-gateway/card-declined"
        assert c.post(path, json=declined, headers=BARISTA).status_code == 403
        accepted = c.post(path, json=declined, headers=GATEWAY)
        assert accepted.status_code == 202
        assert accepted.json()["position"] > 0


def test_late_decline_becomes_a_failure_that_can_be_retried(server: Server) -> None:
    with server.client() as c:
        order_id = open_ticket(c)  # paid already
        declined = {"order_id": order_id, "reason": "late"}
        path = "/ordering/external/payment-gateway/card-declined"
        accepted = c.post(path, json=declined, headers=GATEWAY)
        assert accepted.status_code == 202
        position = accepted.json()["position"]

        def parked() -> list[dict[str, Any]]:
            # this decline's failure only (an earlier test's late decline parks too)
            body = c.get("/failures", headers=OPERATOR).json()
            return [
                p
                for p in body["parked"]
                if p["consumer"] == "Ordering.CancelWhenDeclined" and p["position"] == position
            ]

        [failure] = wait_for(parked, timeout=30)
        assert "only an unpaid order can be cancelled" in failure["error"]
        retry = c.post(
            f"/failures/{failure['consumer']}/{failure['position']}/retry", headers=OPERATOR
        )
        assert retry.status_code == 200
        assert retry.json()["resolved"] is False


def test_sse_delivers_live_events(server: Server) -> None:
    with server.client() as c:
        start = c.get("/health").json()["position"]
        seen: list[dict[str, Any]] = []
        ready = threading.Event()

        def listen() -> None:
            with (
                httpx.Client(base_url=server.url, timeout=20) as stream_client,
                stream_client.stream(
                    "GET", f"/events/stream?after={start}", headers=OPERATOR
                ) as response,
            ):
                assert response.headers["content-type"].startswith("text/event-stream")
                ready.set()
                event: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(("id:", "event:", "data:")):
                        name, _, value = line.partition(":")
                        event[name] = value.strip()
                    elif line == "" and "data" in event:
                        seen.append(event)
                        event = {}
                        if any(e["event"] == "Bar.TicketOpened" for e in seen):
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(10)
        order_id = place(c)
        listener.join(20)
        assert not listener.is_alive(), f"no TicketOpened came live; saw {seen}"
        placed = next(e for e in seen if e["event"] == "Ordering.OrderPlaced")
        envelope = json.loads(placed["data"])
        assert envelope["stream_id"] == order_id
        assert int(placed["id"]) == envelope["position"] > start
        positions = [int(e["id"]) for e in seen]
        assert positions == sorted(positions)


def test_openapi_schemas_describe_what_the_server_accepts(server: Server) -> None:
    from jsonschema import Draft202012Validator

    with server.client() as c:
        document = c.get("/openapi.json").json()
    commands = {
        path: operation["post"]
        for path, operation in document["paths"].items()
        if "post" in operation and not path.startswith("/failures")
    }
    assert set(commands) == {
        "/ordering/order/place-order",
        "/ordering/order/{id}/cancel",
        "/bar/ticket/{id}/start-brewing",
        "/bar/ticket/{id}/finish-brewing",
        "/bar/ticket/{id}/hand-over",
        "/ordering/external/payment-gateway/card-charged",
        "/ordering/external/payment-gateway/card-declined",
    }

    def validator(path: str) -> Draft202012Validator:
        ref = commands[path]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return Draft202012Validator({"$ref": ref, "components": document["components"]})

    place = validator("/ordering/order/place-order")
    assert place.is_valid(ORDER)
    assert place.is_valid({**ORDER, "order_id": str(uuid.uuid4())})
    assert not place.is_valid({**ORDER, "coupon": "X"})
    assert not place.is_valid({"customer": "Ada", "total": "1"})
    assert validator("/bar/ticket/{id}/start-brewing").is_valid({})
    assert not validator("/ordering/order/{id}/cancel").is_valid({})


def test_sse_resumes_after_last_event_id(server: Server) -> None:
    with server.client() as c:
        place(c)
        last = c.get("/health").json()["position"]
        assert last >= 2
        resume = {**OPERATOR, "Last-Event-ID": str(last - 1)}
        with c.stream("GET", "/events/stream?after=0", headers=resume) as response:
            ids = []
            for line in response.iter_lines():
                if line.startswith("id:"):
                    ids.append(int(line.partition(":")[2]))
                    break
        assert ids == [last]
