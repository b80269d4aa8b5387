"""The jsonschema and asyncapi targets, checked by jsonschema and the official AsyncAPI schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from stormgen import LoadedModel
from stormgen.render.asyncapi import render_asyncapi
from stormgen.render.jsonschema import render_jsonschemas

DATA = Path(__file__).resolve().parents[1] / "data"
ORDER_ID = "7f1c2a0e-3b7e-4c52-9d3b-1f6f3c1f0a11"
DRINK = {"name": "Flat white", "size": "Large", "price": "4.50"}


def schemas(loaded: LoadedModel) -> dict[str, dict[str, Any]]:
    return {path: json.loads(text) for path, text in render_jsonschemas(loaded).items()}


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_one_valid_2020_12_schema_per_command_and_event(coffee: LoadedModel) -> None:
    found = schemas(coffee)
    model = coffee.model
    expected = set()
    for context in model.contexts:
        for aggregate in context.aggregates:
            expected |= {f"{context.name}/{c.name}.command.schema.json" for c in aggregate.commands}
            expected |= {f"{context.name}/{e.name}.event.schema.json" for e in aggregate.events}
        for external in context.externals:
            prefix = f"{context.name}/{external.name}."
            expected |= {f"{prefix}{c.name}.command.schema.json" for c in external.commands}
            expected |= {f"{prefix}{e.name}.event.schema.json" for e in external.events}
    assert set(found) == expected
    for schema in found.values():
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_command_schema_accepts_a_good_body_and_names_what_is_wrong(
    coffee: LoadedModel,
) -> None:
    place = schemas(coffee)["Ordering/PlaceOrder.command.schema.json"]
    v = validator(place)
    good = {"customer": "Ada", "drinks": [DRINK], "total": "4.50"}
    v.validate(good)  # a creating command may leave out its uuid id
    v.validate({**good, "order_id": ORDER_ID})
    v.validate({**good, "total": "-123456789012345.0123456789"})  # the widest allowed
    bad_cases = [
        ({**good, "total": 4.5}, "total"),  # decimals travel as strings
        ({**good, "total": "4,50"}, "total"),
        # issue 18: what the API refuses is outside the published pattern too
        ({**good, "total": "1e999999999"}, "total"),
        ({**good, "total": " 3.5 "}, "total"),
        ({**good, "total": "1_000"}, "total"),
        ({**good, "total": "1234567890123456"}, "total"),  # 16 integer digits
        ({**good, "drinks": [{**DRINK, "price": "0.12345678901"}]}, "price"),  # 11 after
        ({**good, "order_id": "not-a-uuid"}, "order_id"),
        ({**good, "drinks": [{**DRINK, "size": "Huge"}]}, "size"),  # enum member
        ({**good, "surprise": 1}, "surprise"),  # closed objects
        ({"drinks": [DRINK], "total": "1"}, "customer"),
    ]
    for body, culprit in bad_cases:
        with pytest.raises(ValidationError) as info:
            v.validate(body)
        assert culprit in str(info.value.message) + "/".join(map(str, info.value.path))
    assert place["properties"]["customer"]["x-pii"] is True
    assert place["$defs"]["Size"] == {
        "title": "Size",
        "type": "string",
        "enum": ["Small", "Medium", "Large"],
    }
    # A non-creating command must name its instance.
    cancel = validator(schemas(coffee)["Ordering/Cancel.command.schema.json"])
    with pytest.raises(ValidationError):
        cancel.validate({"reason": "changed my mind"})
    cancel.validate({"reason": "changed my mind", "order_id": ORDER_ID})


def test_event_schema_is_the_data_with_the_aggregate_id(coffee: LoadedModel) -> None:
    paid = validator(schemas(coffee)["Ordering/OrderPaid.event.schema.json"])
    paid.validate({"order_id": ORDER_ID, "amount": "4.50", "drinks": [DRINK]})
    with pytest.raises(ValidationError):
        paid.validate({"amount": "4.50", "drinks": [DRINK]})
    charged = schemas(coffee)["Ordering/PaymentGateway.CardCharged.event.schema.json"]
    assert set(charged["properties"]) == {"order_id", "amount"}


TYPES_MODEL = """
model Types
enum Level { Low, High }
context Shop {
  value Slot "A time slot" { day: date, at: datetime, note: str? = none }
  aggregate Item {
    id sku: str
    state { level: Level = Low }
    command Make creates {
      level: Level = High "how loud"
      slot: Slot?
      tags: list[str] = []
      offset: int = -3
      ratio: float = 0.5
      emit Made
    }
    event Made { level: Level, slot: Slot?, tags: list[str], offset: int, ratio: float }
  }
}
"""


def test_types_optionals_defaults_and_private_values(
    load_text: Callable[[str], LoadedModel],
) -> None:
    found = schemas(load_text(TYPES_MODEL))
    make = found["Shop/Make.command.schema.json"]
    Draft202012Validator.check_schema(make)
    props = make["properties"]
    assert make["required"] == ["sku"]  # a str id cannot be generated
    assert props["level"]["default"] == "High"
    assert props["level"]["description"] == "how loud"
    assert props["offset"]["default"] == -3
    assert props["ratio"]["default"] == 0.5
    assert props["tags"]["default"] == []
    assert props["slot"] == {"anyOf": [{"$ref": "#/$defs/Shop.Slot"}, {"type": "null"}]}
    slot = make["$defs"]["Shop.Slot"]
    assert slot["properties"]["day"] == {"type": "string", "format": "date"}
    assert slot["properties"]["at"] == {"type": "string", "format": "date-time"}
    v = validator(make)
    v.validate({"sku": "X1", "slot": None})
    v.validate({"sku": "X1", "slot": {"day": "2026-11-27", "at": "2026-11-27T10:00:00Z"}})
    with pytest.raises(ValidationError):
        v.validate({"sku": "X1", "slot": {"day": "27/11/2026", "at": "2026-11-27T10:00:00Z"}})
    made = validator(found["Shop/Made.event.schema.json"])
    made.validate(
        {"sku": "X1", "level": "Low", "slot": None, "tags": ["a"], "offset": 1, "ratio": 1.5}
    )


def test_asyncapi_document_is_valid_asyncapi_3(coffee: LoadedModel) -> None:
    official = json.loads((DATA / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8"))
    document = json.loads(render_asyncapi(coffee)["asyncapi.json"])
    errors = [e.message for e in Draft7Validator(official).iter_errors(document)]
    assert errors == []
    # And the official schema does reject a broken document (it is really checking).
    broken = json.loads(json.dumps(document))
    next(iter(broken["operations"].values()))["action"] = "shout"
    assert list(Draft7Validator(official).iter_errors(broken))

    published = {
        f"{c.name}.{e.name}"
        for c in coffee.model.contexts
        for a in c.aggregates
        for e in a.events
        if e.published
    }
    # and each publishing context's forgotten instances (docs/autonomous.md)
    published |= {f"{name.split('.')[0]}.$Forgotten" for name in published}
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == published
    assert set(document["components"]["messages"]) == published
    sends = {k for k, op in document["operations"].items() if op["action"] == "send"}
    assert sends == {f"{key}.publish" for key in published}
    # a process says what it consumes: a receive operation on each event's channel
    receives = {k for k, op in document["operations"].items() if op["action"] == "receive"}
    assert receives == {
        f"Ordering.{name}.Ordering.PaymentDeadline.receive"
        for name in ("OrderPlaced", "OrderPaid", "OrderCancelled")
    }
    assert document["servers"]["bus"]["protocol"] == "nats"
    channel = document["channels"]["Ordering.OrderPlaced"]
    assert channel["address"] == "stormgen.coffee_shop.Ordering.OrderPlaced"


def test_asyncapi_payload_is_the_envelope(coffee: LoadedModel) -> None:
    document = json.loads(render_asyncapi(coffee)["asyncapi.json"])
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/messages/Ordering.OrderPlaced/payload",
        "components": document["components"],
    }
    v = validator(root)
    envelope = {
        "id": "5b0d0c8e-1111-4c52-9d3b-1f6f3c1f0a11",
        "type": "Ordering.OrderPlaced",
        "version": 1,
        "stream": f"Ordering.Order/{ORDER_ID}",
        "stream_id": ORDER_ID,
        "stream_version": 1,
        "position": 42,
        "recorded_at": "2026-11-27T13:05:00.123456Z",
        "data": {"order_id": ORDER_ID, "customer": "Ada", "drinks": [DRINK], "total": "7.50"},
        "metadata": {
            "command_id": "c",
            "correlation_id": "c",
            "causation_id": "c",
            "actor": "Customer",
        },
    }
    v.validate(envelope)
    for change in ({"type": "Bar.TicketOpened"}, {"stream": "Bar.Ticket/1"}, {"data": {}}):
        with pytest.raises(ValidationError):
            v.validate({**envelope, **change})


def test_durations_are_iso_8601_strings_in_schemas_and_asyncapi() -> None:
    from stormgen import load

    durations = load(Path(__file__).resolve().parents[1] / "generate" / "durations.storm")
    plan = schemas(durations)["Desk/Plan.command.schema.json"]
    length = plan["properties"]["length"]
    assert length["type"] == "string" and length["format"] == "duration"
    assert length["default"] == "PT8H"  # `hours(8)` as it travels
    v = validator(plan)
    good = {"starts": "2026-03-01T08:00:00Z"}
    for text in ("PT9H", "P1DT2H30M", "-PT5M", "PT0.5S"):
        v.validate({**good, "length": text})
    for bad in ("9 hours", "P1Y", "P2W", 32400):
        with pytest.raises(ValidationError):
            v.validate({**good, "length": bad})
    document = json.loads(render_asyncapi(durations)["asyncapi.json"])
    text = json.dumps(document)
    assert '"format": "duration"' in text
