"""The exported schemas describe what the real runtime sends: a served coffee shop's log
is validated against the AsyncAPI messages and the JSON Schemas stormgen writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from stormgen import LoadedModel
from stormgen.model.nodes import Aggregate, External
from stormgen.render.asyncapi import render_asyncapi
from stormgen.render.jsonschema import render_jsonschemas
from stormgen.render.schema import JSON_SCHEMA_DIALECT, SchemaBuilder

COFFEE_SHOP = Path(__file__).resolve().parents[2] / "examples" / "coffee_shop.storm"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "stormgen", "run", str(COFFEE_SHOP)]
    process = subprocess.Popen(
        [*command, "--store", "memory://", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_the_served_log_matches_the_exported_schemas(server: str, coffee: LoadedModel) -> None:
    schemas = {p: json.loads(t) for p, t in render_jsonschemas(coffee).items()}
    asyncapi = json.loads(render_asyncapi(coffee)["asyncapi.json"])

    body = {
        "customer": "Ada",
        "drinks": [{"name": "Latte", "size": "Large", "price": "4.50"}],
        "total": "4.50",
    }
    validator(schemas["Ordering/PlaceOrder.command.schema.json"]).validate(body)
    placed = httpx.post(f"{server}/ordering/order/place-order", json=body, timeout=10)
    assert placed.status_code == 201, placed.text

    # The fake gateway charges the card; policies pay the order and open a ticket.
    deadline = time.monotonic() + 30
    while True:
        events = httpx.get(f"{server}/events", params={"limit": 100}, timeout=10).json()["events"]
        if any(e["type"] == "Bar.TicketOpened" for e in events):
            break
        assert time.monotonic() < deadline, [e["type"] for e in events]
        time.sleep(0.1)

    builder = SchemaBuilder(coffee.model)
    owners: dict[str, tuple[Any, Aggregate | External, Any]] = {}
    for context in coffee.model.contexts:
        for owner in (*context.aggregates, *context.externals):
            for event in owner.events:
                prefix = (
                    f"{context.name}.{owner.name}" if isinstance(owner, External) else context.name
                )
                owners[f"{prefix}.{event.name}"] = (context, owner, event)
    published = asyncapi["components"]["messages"]
    checked_published = 0
    model_events = [e for e in events if not e["type"].startswith("$")]
    # the runtime's own records ($CommandSent, in the system's stream; a process's
    # decisions, in its instance's stream) are no model events
    runtime_records = {e["type"] for e in events} - {e["type"] for e in model_events}
    assert runtime_records - {"$ProcessStarted", "$TimerSet", "$ProcessEnded"} == {"$CommandSent"}
    for envelope in model_events:
        context, owner, event = owners[envelope["type"]]
        # The event's own schema file describes its data.
        prefix = f"{owner.name}." if isinstance(owner, External) else ""
        path = f"{context.name}/{prefix}{event.name}.event.schema.json"
        validator(schemas[path]).validate(envelope["data"])
        # The envelope as a whole matches the envelope schema.
        defs: dict[str, Any] = {}
        data = builder.event_payload(context, owner, event, defs)
        whole = builder.envelope(context, owner, event, data, defs)
        validator({"$schema": JSON_SCHEMA_DIALECT, **whole, "$defs": defs}).validate(envelope)
        # A published event matches its AsyncAPI message.
        if envelope["type"] in published:
            root = {
                "$schema": JSON_SCHEMA_DIALECT,
                "$ref": f"#/components/messages/{envelope['type']}/payload",
                "components": asyncapi["components"],
            }
            validator(root).validate(envelope)
            checked_published += 1
    types = {e["type"] for e in events}
    assert {"Ordering.OrderPlaced", "Ordering.PaymentGateway.CardCharged"} <= types
    assert {"Ordering.OrderPaid", "Bar.TicketOpened"} <= types
    assert checked_published >= 3
