"""Durations on the wire: the canonical ISO 8601 form, the strict rule for what clients
send, and round trips through the codec (events, nested values, lists, optionals)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stormgen.runtime.codec import (
    DURATION_PATTERN,
    dumps,
    from_data,
    loads,
    parse_duration,
    to_data,
    wire_duration_error,
)
from stormgen.runtime.codec_durations import format_duration
from stormgen.runtime.rejections import DecodeError

#: every duration a client may send: up to 999,999 days either way, to the microsecond
WIRE_DURATIONS = st.timedeltas(
    min_value=-dt.timedelta(days=999_999, hours=23, minutes=59, seconds=59, microseconds=999_999),
    max_value=dt.timedelta(days=999_999, hours=23, minutes=59, seconds=59, microseconds=999_999),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Slot:
    length: dt.timedelta
    grace: dt.timedelta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Booked:
    length: dt.timedelta
    at: dt.datetime
    slot: Slot
    breaks: tuple[dt.timedelta, ...] = ()
    grace: dt.timedelta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Flat:
    length: dt.timedelta
    grace: dt.timedelta | None = None
    name: str = "x"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.timedelta(minutes=15), "PT15M"),
        (dt.timedelta(days=3), "P3D"),
        (dt.timedelta(days=1, hours=2), "P1DT2H"),
        (dt.timedelta(days=1, hours=2, minutes=30, seconds=5), "P1DT2H30M5S"),
        (dt.timedelta(0), "PT0S"),
        (dt.timedelta(weeks=2), "P14D"),
        (dt.timedelta(hours=-36), "-P1DT12H"),
        (dt.timedelta(seconds=1, microseconds=500_000), "PT1.5S"),
        (dt.timedelta(microseconds=1), "PT0.000001S"),
        (-dt.timedelta(minutes=5), "-PT5M"),
    ],
)
def test_the_canonical_form(value: dt.timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert to_data(value) == text
    assert parse_duration(text) == value
    assert msgspec.convert(text, dt.timedelta) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("PT90M", dt.timedelta(minutes=90)),
        ("PT36H", dt.timedelta(hours=36)),
        ("P0D", dt.timedelta(0)),
        ("-PT0S", dt.timedelta(0)),
        ("PT0.25S", dt.timedelta(milliseconds=250)),
        ("P2DT3M", dt.timedelta(days=2, minutes=3)),
        ("PT1H5S", dt.timedelta(hours=1, seconds=5)),
    ],
)
def test_other_spellings_a_client_may_send(text: str, value: dt.timedelta) -> None:
    assert wire_duration_error(text) is None
    assert parse_duration(text) == value
    assert msgspec.convert(text, dt.timedelta) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1DT",
        "15M",
        "pt15m",
        "P1W",
        "P1Y",
        "P1M",
        "P1.5D",
        "PT1.5M",
        "PT1,5S",
        "+P1D",
        "P-1D",
        " PT15M",
        "PT15M ",
        "PT1S2M",
        "PT0.0000001S",
        "P1234567D",
        "PT1234567890H",
        "P1DT2H3M4S5",
    ],
)
def test_what_a_client_may_not_send(text: str) -> None:
    why = wire_duration_error(text)
    assert why is not None and "ISO 8601 duration" in why
    with pytest.raises(ValueError, match="ISO 8601 duration"):
        parse_duration(text)
    with pytest.raises(DecodeError, match=r"`length`: a duration is an ISO 8601 duration"):
        from_data(Flat, {"length": text}, strict=True, wire=True)


@pytest.mark.parametrize("value", [15, 1.5, None, ["PT1S"], {"minutes": 15}])
def test_a_duration_is_a_string(value: object) -> None:
    assert wire_duration_error(value) is not None
    with pytest.raises(DecodeError):
        from_data(Flat, {"length": value}, strict=True, wire=True)


@given(WIRE_DURATIONS)
def test_the_canonical_form_round_trips_and_is_what_a_client_may_send(
    value: dt.timedelta,
) -> None:
    text = format_duration(value)
    assert re.fullmatch(DURATION_PATTERN, text)
    assert wire_duration_error(text) is None
    assert parse_duration(text) == value
    assert msgspec.convert(text, dt.timedelta) == value


@given(
    st.booleans(),
    st.integers(0, 999_999),
    st.integers(0, 999_999_999),
    st.integers(0, 999_999_999),
    st.integers(0, 999_999_999),
    st.one_of(st.none(), st.from_regex(r"[0-9]{1,6}", fullmatch=True)),
)
def test_every_spelling_a_client_may_send_reads_alike_here_and_in_msgspec(
    negative: bool, days: int, hours: int, minutes: int, seconds: int, fraction: str | None
) -> None:
    time = f"{hours}H{minutes}M{seconds}" + (f".{fraction}" if fraction else "") + "S"
    text = ("-" if negative else "") + f"P{days}DT{time}"
    assert wire_duration_error(text) is None
    assert parse_duration(text) == msgspec.convert(text, dt.timedelta)


@given(
    WIRE_DURATIONS,
    WIRE_DURATIONS,
    st.lists(WIRE_DURATIONS, max_size=3),
    st.one_of(st.none(), WIRE_DURATIONS),
)
def test_events_round_trip(
    a: dt.timedelta, b: dt.timedelta, breaks: list[dt.timedelta], grace: dt.timedelta | None
) -> None:
    at = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    event = Booked(length=a, at=at, slot=Slot(length=b, grace=grace), breaks=tuple(breaks))
    data = to_data(event)
    assert data["length"] == format_duration(a)
    assert data["slot"]["length"] == format_duration(b)
    assert data["breaks"] == [format_duration(x) for x in breaks]
    raw = dumps(data)
    assert from_data(Booked, loads(raw)) == event
    # what a client sends is read the same way
    assert from_data(Booked, loads(raw), strict=True, wire=True) == event


@given(WIRE_DURATIONS, st.one_of(st.none(), WIRE_DURATIONS))
def test_top_level_fields_round_trip(a: dt.timedelta, grace: dt.timedelta | None) -> None:
    value = Flat(length=a, grace=grace)
    data = to_data(value)
    assert data == {
        "length": format_duration(a),
        "grace": None if grace is None else format_duration(grace),
        "name": "x",
    }
    assert from_data(Flat, data, strict=True, wire=True) == value
