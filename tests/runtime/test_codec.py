"""The JSON codec: every field type round-trips, errors name the field."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stormgen.runtime import DecodeError, dumps, from_data, loads, schema_hash, to_data


class Colour(enum.Enum):
    Red = "Red"
    Green = "Green"


@dataclass(frozen=True)
class Inner:
    label: str
    amount: Decimal = Decimal(0)


@dataclass(frozen=True)
class Everything:
    text: str
    number: int
    ratio: float
    money: Decimal
    flag: bool
    ident: uuid.UUID
    day: dt.date
    moment: dt.datetime
    colour: Colour
    inner: Inner
    inners: list[Inner]
    tags: list[str] = field(default_factory=list)
    maybe: int | None = None
    maybe_inner: Inner | None = None


def sample() -> Everything:
    return Everything(
        text='héllo "quoted"',
        number=-42,
        ratio=0.25,
        money=Decimal("7.50"),
        flag=True,
        ident=uuid.UUID("7f1c0000-0000-4000-8000-000000000001"),
        day=dt.date(2026, 11, 27),
        moment=dt.datetime(2026, 11, 27, 13, 5, 0, 123456, tzinfo=dt.UTC),
        colour=Colour.Green,
        inner=Inner("a", Decimal("1.10")),
        inners=[Inner("b"), Inner("c", Decimal("-2"))],
        tags=["x", "y"],
        maybe=3,
        maybe_inner=None,
    )


def test_encoding_follows_the_envelope_rules() -> None:
    data = to_data(sample())
    assert data["money"] == "7.50"
    assert data["ident"] == "7f1c0000-0000-4000-8000-000000000001"
    assert data["day"] == "2026-11-27"
    assert data["moment"] == "2026-11-27T13:05:00.123456Z"
    assert data["colour"] == "Green"
    assert data["inner"] == {"label": "a", "amount": "1.10"}
    assert data["inners"][1] == {"label": "c", "amount": "-2"}
    assert data["maybe_inner"] is None
    # the encoded form is plain JSON
    assert json.loads(json.dumps(data)) == data


def test_every_type_round_trips_through_json() -> None:
    original = sample()
    assert from_data(Everything, loads(dumps(to_data(original)))) == original


def test_datetimes_are_stored_in_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    local = dt.datetime(2026, 1, 1, 12, 0, tzinfo=plus_two)
    encoded = to_data(Everything(**{**sample().__dict__, "moment": local}))
    assert encoded["moment"] == "2026-01-01T10:00:00Z"
    naive = dt.datetime(2026, 1, 1, 12, 0)
    assert to_data(naive) == "2026-01-01T12:00:00Z"
    decoded = from_data(Everything, encoded)
    assert decoded.moment == local and decoded.moment.utcoffset() == dt.timedelta(0)


@dataclass(frozen=True)
class Stamped:
    at: dt.datetime


@dataclass(frozen=True)
class Deep:
    stamps: list[Stamped]
    times: list[dt.datetime]
    maybe: dt.datetime | None = None


def test_datetimes_anywhere_are_stored_in_utc() -> None:
    plus_one = dt.timezone(dt.timedelta(hours=1))
    local = dt.datetime(2026, 3, 1, 9, 30, tzinfo=plus_one)
    naive = dt.datetime(2026, 3, 1, 9, 30)
    data = to_data(Deep(stamps=[Stamped(local)], times=[local, naive], maybe=local))
    assert data == {
        "stamps": [{"at": "2026-03-01T08:30:00Z"}],
        "times": ["2026-03-01T08:30:00Z", "2026-03-01T09:30:00Z"],
        "maybe": "2026-03-01T08:30:00Z",
    }
    assert to_data([local]) == ["2026-03-01T08:30:00Z"]
    assert to_data(Stamped(naive)) == {"at": "2026-03-01T09:30:00Z"}


@dataclass(frozen=True)
class Frozen:
    items: tuple[Inner, ...]
    pair: tuple[int, str] = (1, "a")


def test_tuples_encode_as_lists_and_decode_back() -> None:
    value = Frozen(items=(Inner("a"), Inner("b", Decimal("2.5"))))
    data = to_data(value)
    assert data == {
        "items": [{"label": "a", "amount": "0"}, {"label": "b", "amount": "2.5"}],
        "pair": [1, "a"],
    }
    assert from_data(Frozen, data) == value


def test_missing_fields_take_defaults_and_unknown_fields_are_ignored() -> None:
    data = to_data(sample())
    for name in ("tags", "maybe", "maybe_inner"):
        del data[name]
    data["no_such_field"] = 1
    decoded = from_data(Everything, data)
    assert decoded.tags == [] and decoded.maybe is None
    # defaults filled in on decoding survive the next encoding (msgspec leaves plain
    # defaults on the class, which its encoder would skip)
    assert to_data(decoded)["maybe"] is None
    assert to_data(from_data(Inner, {"label": "x"})) == {"label": "x", "amount": "0"}
    nested = to_data(from_data(Everything, {**data, "inners": [{"label": "n"}]}))
    assert nested["inners"] == [{"label": "n", "amount": "0"}]


@dataclass(frozen=True, kw_only=True)
class Cup:
    name: str
    size: Colour = Colour.Green  # a defaulted field before a required one (kw_only)
    price: Decimal


@dataclass(frozen=True, kw_only=True)
class Tray:
    """Nested values in every container the typed decoder walks."""

    cups: tuple[Cup, ...]
    listed: list[Cup] = field(default_factory=list)
    nested: list[tuple[Cup, ...]] = field(default_factory=list)
    by_name: dict[str, Cup] = field(default_factory=dict)
    single: Cup | None = None
    inner: Inner | None = None


def test_nested_defaults_survive_a_round_trip_in_every_container() -> None:
    cup = {"name": "Espresso", "price": "3.50"}
    full = {"name": "Espresso", "size": "Green", "price": "3.50"}
    data = {
        "cups": [cup, {**cup, "size": "Red"}],
        "listed": [cup],
        "nested": [[cup]],
        "by_name": {"e": cup},
        "single": cup,
        "inner": {"label": "i"},
    }
    decoded = from_data(Tray, data)
    assert decoded.cups[0].size is Colour.Green
    assert to_data(decoded) == {
        "cups": [full, {**full, "size": "Red"}],
        "listed": [full],
        "nested": [[full]],
        "by_name": {"e": full},
        "single": full,
        "inner": {"label": "i", "amount": "0"},
    }
    # a bare container type decodes the same way (redacted events decode field by field)
    assert to_data(from_data(tuple[Cup, ...], [cup])) == [full]
    assert loads(dumps(to_data(from_data(Tray, loads(dumps(data)))))) == to_data(decoded)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"number": "many"}, "$.number"),
        ({"money": "seven"}, "$.money"),
        ({"colour": "Blue"}, "$.colour"),
        ({"inners": [{"label": 5}]}, "$.inners[0].label"),
        ({"ident": "not-a-uuid"}, "$.ident"),
    ],
)
def test_decode_errors_name_the_field(change: dict[str, object], path: str) -> None:
    data = {**to_data(sample()), **change}
    with pytest.raises(DecodeError) as info:
        from_data(Everything, data)
    assert info.value.path == path
    assert path in str(info.value)


def test_a_missing_required_field_is_reported() -> None:
    data = to_data(sample())
    del data["text"]
    with pytest.raises(DecodeError, match="text"):
        from_data(Everything, data)


def test_malformed_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="malformed JSON"):
        loads(b"{not json")


def test_text_converts_to_typed_values_unless_strict() -> None:
    # query strings and URL segments arrive as text
    assert from_data(int, "7") == 7
    assert from_data(bool, "true") is True
    assert from_data(uuid.UUID, "7f1c0000-0000-4000-8000-000000000001").int > 0
    # JSON bodies must use JSON's own types (but decimals and times still as strings)
    with pytest.raises(DecodeError, match="Expected `int`, got `str`"):
        from_data(int, "7", strict=True)
    data = {**to_data(sample()), "number": "7"}
    with pytest.raises(DecodeError) as info:
        from_data(Everything, data, strict=True)
    assert info.value.path == "$.number"
    assert from_data(Everything, to_data(sample()), strict=True) == sample()


ATTACKS = ["1e999999999", "1e999999", " 3.5 ", "1_000", "NaN", "Infinity", "-1E+2", "007"]
TOO_WIDE = ["1234567890123456", "0.12345678901", "+1", ".5", "5.", "1.5\n", "", "١٢"]


@pytest.mark.parametrize("text", [*ATTACKS, *TOO_WIDE, 3.5, 3, True, None])
def test_wire_decimals_outside_the_pattern_are_refused_naming_the_field(text: object) -> None:
    # issue 18: a total of "1e999999999" was accepted and then broke a view for ever
    data = {**to_data(sample()), "inners": [{"label": "x", "amount": text}]}
    with pytest.raises(DecodeError) as info:
        from_data(Everything, data, wire=True)
    assert info.value.path == "$.inners[0].amount"
    assert "`inners[0].amount`: a decimal is a string in plain notation" in info.value.message
    with pytest.raises(DecodeError) as top:
        from_data(Everything, {**to_data(sample()), "money": text}, wire=True)
    assert top.value.path == "$.money"


@pytest.mark.parametrize(
    "text", ["0", "-0", "3.5", "3.50", "-12.0001", "123456789012345.0123456789", "0.0000000001"]
)
def test_wire_decimals_in_the_pattern_decode_exactly(text: str) -> None:
    data = {**to_data(sample()), "money": text, "maybe_inner": {"label": "y", "amount": text}}
    decoded = from_data(Everything, data, wire=True)
    assert decoded.money == Decimal(text)
    assert decoded.maybe_inner == Inner("y", Decimal(text))
    # optional values may be left out or null
    assert from_data(Everything, {**data, "maybe_inner": None}, wire=True).maybe_inner is None


def test_the_widest_wire_decimals_sum_without_overflow_or_rounding() -> None:
    import decimal

    biggest = from_data(Decimal, "999999999999999.9999999999", wire=True)
    context = decimal.getcontext()
    flags = context.copy()
    flags.clear_flags()
    with decimal.localcontext(flags) as local:
        total = sum([biggest] * 1000, Decimal(0))
        assert not local.flags[decimal.Inexact] and not local.flags[decimal.Overflow]
    assert total == Decimal("999999999999999999.9999999")


def test_stored_values_outside_the_pattern_still_read() -> None:
    # events recorded before the rule (or by the model's own arithmetic) are read as
    # they are: the rule is for what clients send, not for the log
    data = {
        **to_data(sample()),
        "money": "1e999999999",
        "inners": [{"label": "z", "amount": " 3.5 "}],
    }
    decoded = from_data(Everything, data)
    assert decoded.money == Decimal("1E+999999999")
    assert decoded.inners[0].amount == Decimal("3.5")
    assert to_data(decoded)["money"] == "1E+999999999"


def test_schema_hash_follows_the_shape() -> None:
    @dataclass
    class A:
        x: int

    @dataclass
    class B:
        x: str

    @dataclass
    class C:
        x: int
        y: int = 0

    hashes = {schema_hash(A), schema_hash(B), schema_hash(C), schema_hash(Everything)}
    assert len(hashes) == 4
    assert schema_hash(Everything) == schema_hash(Everything)


decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4)
inners = st.builds(Inner, label=st.text(), amount=decimals)


@given(
    text=st.text(),
    number=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    money=decimals,
    day=st.dates(),
    moment=st.datetimes(timezones=st.just(dt.UTC)),
    items=st.lists(inners, max_size=3),
    maybe=st.none() | st.integers(min_value=0, max_value=10),
)
def test_round_trip_property(
    text: str,
    number: int,
    ratio: float,
    money: Decimal,
    day: dt.date,
    moment: dt.datetime,
    items: list[Inner],
    maybe: int | None,
) -> None:
    value = Everything(
        text=text,
        number=number,
        ratio=ratio,
        money=money,
        flag=False,
        ident=uuid.uuid4(),
        day=day,
        moment=moment,
        colour=Colour.Red,
        inner=Inner(text),
        inners=items,
        maybe=maybe,
    )
    assert from_data(Everything, loads(dumps(to_data(value)))) == value
