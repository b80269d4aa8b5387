"""Fields whose JSON name is not their Python attribute (`from` travels as `from`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from stormgen.runtime import DecodeError, from_data, schema_hash, to_data
from stormgen.runtime.codec import (
    decoder,
    from_data_redacted,
    many_decoder,
    wire_name,
    wire_names,
)


@dataclass(frozen=True, kw_only=True)
class Leg:
    from_: str = field(metadata={"name": "from"})
    class_: str = field(default="economy", metadata={"name": "class"})


@dataclass(frozen=True, kw_only=True)
class Trip:
    field_: Decimal = field(metadata={"name": "field"})
    legs: list[Leg] = field(default_factory=list)
    first: Leg | None = None
    by_code: dict[str, Leg] = field(default_factory=dict)
    at: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Plain:
    name: str
    amount: int = 0


TRIP = Trip(
    field_=Decimal("1.50"),
    legs=[Leg(from_="AMS"), Leg(from_="CDG", class_="first")],
    first=Leg(from_="LHR"),
    by_code={"x": Leg(from_="JFK")},
    at=dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
)
TRIP_DATA = {
    "field": "1.50",
    "legs": [{"from": "AMS", "class": "economy"}, {"from": "CDG", "class": "first"}],
    "first": {"from": "LHR", "class": "economy"},
    "by_code": {"x": {"from": "JFK", "class": "economy"}},
    "at": "2026-01-01T10:00:00Z",
}


def test_wire_names_are_read_from_field_metadata() -> None:
    assert wire_names(Leg) == {"from_": "from", "class_": "class"}
    assert wire_name(Trip, "field_") == "field"
    assert wire_name(Trip, "legs") == "legs"
    assert wire_names(Plain) == {}


def test_encoding_writes_the_wire_names_at_every_depth() -> None:
    assert to_data(TRIP) == TRIP_DATA
    assert to_data(Leg(from_="AMS")) == {"from": "AMS", "class": "economy"}


def test_decoding_reads_the_wire_names_at_every_depth() -> None:
    assert from_data(Trip, TRIP_DATA) == TRIP
    assert decoder(Trip)(TRIP_DATA) == TRIP
    assert many_decoder(Leg)([{"from": "A"}, {"from": "B", "class": "c"}]) == [
        Leg(from_="A"),
        Leg(from_="B", class_="c"),
    ]
    # the defaults survive a second encoding (msgspec leaves them on the class)
    assert to_data(from_data(Leg, {"from": "A"})) == {"from": "A", "class": "economy"}


def test_the_attribute_name_is_not_a_wire_name() -> None:
    with pytest.raises(DecodeError) as caught:
        from_data(Leg, {"from_": "AMS"})
    assert "`from`" in caught.value.message
    assert "from_" not in caught.value.message


def test_decode_errors_name_the_wire_names() -> None:
    with pytest.raises(DecodeError) as caught:
        from_data(Trip, {**TRIP_DATA, "legs": [{"from": 3}]})
    assert caught.value.path == "$.legs[0].from"
    with pytest.raises(DecodeError) as caught:
        decoder(Trip)({"legs": []})
    assert "`field`" in caught.value.message


def test_redacted_decoding_uses_wire_names() -> None:
    leg = from_data_redacted(Leg, {"class": "first"}, {"from"})
    assert leg == Leg(from_="[redacted]", class_="first")
    with pytest.raises(DecodeError) as caught:
        from_data_redacted(Trip, {"field": "x"}, {"legs"})
    assert caught.value.path.startswith("$.field")


def test_plain_classes_are_untouched() -> None:
    assert to_data(Plain("a", 2)) == {"name": "a", "amount": 2}
    assert from_data(Plain, {"name": "a"}) == Plain("a")


def test_the_schema_hash_follows_the_wire_name() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Leg:  # same attributes as the module's Leg, plain wire names
        from_: str
        class_: str = "economy"

    assert schema_hash(Leg) != schema_hash(globals()["Leg"])
