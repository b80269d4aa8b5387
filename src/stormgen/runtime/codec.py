"""JSON encoding of messages, values and states (docs/runtime.md, "Messages").

Decimals travel as strings, datetimes as ISO 8601 UTC with `Z`, dates as ISO dates,
durations as ISO 8601 durations (`"PT15M"`, :mod:`stormgen.runtime.codec_durations`),
uuids as strings, enums by value, value objects as nested objects. Decoding is typed
from the dataclass field annotations (msgspec does the work in C).

A dataclass field whose attribute name is not its wire name (a model field `from`
is the attribute `from_`) says so in its metadata: `field(metadata={"name": "from"})`.
msgspec ignores dataclass metadata, so classes holding such a field (at any depth)
get their keys renamed after encoding and before decoding; the others take the plain
msgspec path.

The walkers over types live beside it: the wire rule for decimals in
:mod:`stormgen.runtime.codec_decimals`, the default fillers and wire-name renamers in
:mod:`stormgen.runtime.codec_walkers`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import msgspec

from stormgen.runtime.codec_decimals import DECIMAL_FRACTION_DIGITS as DECIMAL_FRACTION_DIGITS
from stormgen.runtime.codec_decimals import DECIMAL_INTEGER_DIGITS as DECIMAL_INTEGER_DIGITS
from stormgen.runtime.codec_decimals import DECIMAL_PATTERN as DECIMAL_PATTERN
from stormgen.runtime.codec_decimals import DECIMAL_RULE as DECIMAL_RULE
from stormgen.runtime.codec_decimals import decimal_checker
from stormgen.runtime.codec_decimals import wire_decimal_error as wire_decimal_error
from stormgen.runtime.codec_durations import DURATION_PATTERN as DURATION_PATTERN
from stormgen.runtime.codec_durations import DURATION_RULE as DURATION_RULE
from stormgen.runtime.codec_durations import format_duration
from stormgen.runtime.codec_durations import parse_duration as parse_duration
from stormgen.runtime.codec_durations import wire_duration_error as wire_duration_error
from stormgen.runtime.codec_walkers import IN_RENAMERS, fill_defaults, filler, renamer, tree_aliases
from stormgen.runtime.codec_walkers import WIRE_NAME as WIRE_NAME
from stormgen.runtime.codec_walkers import _hints as _hints
from stormgen.runtime.codec_walkers import wire_name as wire_name
from stormgen.runtime.codec_walkers import wire_names as wire_names
from stormgen.runtime.messages import REDACTED
from stormgen.runtime.rejections import DecodeError
from stormgen.runtime.unset import UNSET

T = TypeVar("T")

_UTC = dt.UTC
_TIMES = (dt.datetime, dt.timedelta)
_TIMES_OR_NONE = {dt.datetime, dt.timedelta, type(None)}
_ZERO = dt.timedelta(0)
_PATH = re.compile(r" - at `(\$[^`]*)`$")


def _normalise(value: Any) -> Any:
    """Turn datetimes left in `to_builtins` output into UTC `Z` strings, durations into
    ISO 8601 durations, tuples into lists."""
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def _needs_pass(tp: Any, seen: set[Any]) -> bool:
    """Whether a type may hold a datetime, a duration or a tuple (msgspec leaves them for us)."""
    if tp in _TIMES or tp is tuple or typing.get_origin(tp) is tuple:
        return True
    if tp is Any:
        return True
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp in seen:
            return False
        seen.add(tp)
        return any(_needs_pass(h, seen) for h in _hints(tp).values())
    return any(_needs_pass(a, seen) for a in typing.get_args(tp))


_Plan = tuple[bool, tuple[str, ...], Callable[[Any], Any] | None]
_DATETIME_PASS: dict[Any, _Plan] = {}
_SCHEMA_HASHES: dict[Any, str] = {}


def _encoding_plan(cls: Any) -> _Plan:
    """How to encode a class: (datetimes and durations only as top-level fields?, those
    fields, renamer).

    `(True, (), ...)` means no datetime or duration anywhere; `(False, ...)` means some sit deeper
    (in lists or nested values) or the class is not a dataclass. The renamer (None for
    most classes) turns attribute names into wire names; it is kept here so the common
    path looks one thing up per encoding.
    """
    plan = _DATETIME_PASS.get(cls)
    if plan is None:
        if dataclasses.is_dataclass(cls):
            hints = _hints(cls)
            fields = tuple(name for name, h in hints.items() if _needs_pass(h, set()))
            # only datetimes and durations (not tuples) at the top level can be fixed
            # field by field
            top = all(
                hints[name] in _TIMES or set(typing.get_args(hints[name])) <= _TIMES_OR_NONE
                for name in fields
            )
            plan = (top, fields, renamer(cls, out=True))
        else:
            # a bare value or container: its element types are unknown
            plan = (False, (), None)
        _DATETIME_PASS[cls] = plan
    return plan


def _enc_hook(value: Any) -> Any:
    if value is UNSET:
        return None
    # msgspec's contract for an ``enc_hook``: NotImplementedError means "unsupported type"
    # and becomes its ordinary encoding error
    raise NotImplementedError(f"cannot encode {type(value).__qualname__} as JSON")


def to_data(obj: Any) -> Any:
    """Encode a dataclass instance (or any supported value) into JSON-ready builtins."""
    if isinstance(obj, _TIMES):
        return _normalise(obj)
    cls = type(obj)
    top, fields, rename = _DATETIME_PASS.get(cls) or _encoding_plan(cls)
    if top:
        data = msgspec.to_builtins(obj, enc_hook=_enc_hook)
        # msgspec writes an aware UTC datetime as the envelope wants (`...Z`); fix the
        # others, and write durations in their canonical form (msgspec's is `"PT900S"`)
        for name in fields:
            value = getattr(obj, name)
            if isinstance(value, dt.timedelta):
                data[name] = format_duration(value)
            elif isinstance(value, dt.datetime) and value.utcoffset() != _ZERO:
                data[name] = _normalise(value)
    else:
        # datetimes or durations deeper inside: let them through raw and normalise them
        data = _normalise(msgspec.to_builtins(obj, builtin_types=_TIMES, enc_hook=_enc_hook))
    return data if rename is None else rename(data)


def from_data(cls: type[T], data: Any, *, strict: bool = False, wire: bool = False) -> T:
    """Decode builtins (parsed JSON) into `cls`, typed by its annotations.

    Unknown keys are ignored; missing keys take the field's default. By default text
    is converted where the type asks for it (`"7"` for an int: query strings and path
    segments); `strict=True` refuses that (JSON bodies). Decimals, datetimes, dates,
    durations and uuids are read from strings either way. `wire=True` (what clients send)
    also holds every decimal to `DECIMAL_PATTERN` and every duration to
    `DURATION_PATTERN`; stored events are read without it, so a log
    written before the rule still reads. Raises `DecodeError` naming the offending
    field's path (`$.drinks[0].price`).
    """
    if wire:
        check = decimal_checker(cls)
        if check is not None:
            check(data, "$")
    try:
        rename = IN_RENAMERS[cls]
    except (KeyError, TypeError):  # first use (or an unhashable annotation)
        rename = renamer(cls, out=False)
    try:
        value = msgspec.convert(data if rename is None else rename(data), cls, strict=strict)
    except msgspec.ValidationError as exc:
        raise _decode_error(exc, cls if rename is not None else None) from None
    fill_defaults(value, cls)
    return value


def _decode_error(exc: msgspec.ValidationError, aliased: Any = None) -> DecodeError:
    """The error as a `DecodeError`; with `aliased`, attribute names become wire names."""
    text = str(exc)
    match = _PATH.search(text)
    path = match.group(1) if match else "$"
    message = text[: match.start()] if match else text
    if aliased is not None:
        names = tree_aliases(aliased)
        message = re.sub(r"`(\w+)`", lambda m: f"`{names.get(m.group(1), m.group(1))}`", message)
        path = re.sub(r"\.(\w+)", lambda m: "." + names.get(m.group(1), m.group(1)), path)
    return DecodeError(f"{message} at `{path}`" if match else message, path)


_DECODERS: dict[Any, Callable[[Any], Any]] = {}


def decoder(cls: type[T]) -> Callable[[Any], T]:
    """A function decoding builtins into `cls` exactly like `from_data(cls, data)`, cached.

    The type's default-filling plan is looked up once, not per call: hot paths
    (loading events) decode many values of a few classes.
    """
    try:
        return _DECODERS[cls]
    except KeyError:
        pass
    fill = filler(cls)
    convert = msgspec.convert
    rename = renamer(cls, out=False)

    if rename is not None:
        # a class with wire names: rename keys first (only these classes pay for it)
        def decode(data: Any) -> Any:
            try:
                value = convert(rename(data), cls)
            except msgspec.ValidationError as exc:
                raise _decode_error(exc, cls) from None
            if fill is not None:
                fill(value)
            return value

    elif fill is None:

        def decode(data: Any) -> Any:
            try:
                return convert(data, cls)
            except msgspec.ValidationError as exc:
                raise _decode_error(exc) from None

    else:

        def decode(data: Any) -> Any:
            try:
                value = convert(data, cls)
            except msgspec.ValidationError as exc:
                raise _decode_error(exc) from None
            fill(value)
            return value

    _DECODERS[cls] = decode
    return decode


_MANY_DECODERS: dict[Any, Callable[[list[Any]], list[Any]]] = {}


def many_decoder(cls: type[T]) -> Callable[[list[Any]], list[T]]:
    """A function decoding a list of builtins into `cls` values in one msgspec call, cached.

    Each value comes out as `decoder(cls)` would make it; a `DecodeError` names the
    item (`$[3].price`).
    """
    try:
        return _MANY_DECODERS[cls]
    except KeyError:
        pass
    fill = filler(cls)
    convert = msgspec.convert
    many = list[cls]  # type: ignore[valid-type]
    rename = renamer(cls, out=False)

    def decode_many(items: list[Any]) -> list[Any]:
        try:
            if rename is None:
                values: list[Any] = convert(items, many)
            else:
                values = convert([rename(item) for item in items], many)
        except msgspec.ValidationError as exc:
            raise _decode_error(exc, None if rename is None else cls) from None
        if fill is not None:
            for value in values:
                fill(value)
        return values

    _MANY_DECODERS[cls] = decode_many
    return decode_many


def redacted_value(hint: Any) -> Any:
    """What a forgotten field of type `hint` reads as: `REDACTED` for text, else None."""
    if hint is str or str in typing.get_args(hint):
        return REDACTED
    return None


def from_data_redacted(cls: type[T], data: Mapping[str, Any], gone: Collection[str]) -> T:
    """Decode like `from_data`, with the fields named in `gone` set to their redacted value.

    The redacted value may not fit the field's type (None for a `date`), so those
    fields bypass the typed decoding.
    """
    if not gone:
        return from_data(cls, data)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = field.name
        wire = field.metadata.get(WIRE_NAME, name)
        if wire in gone or name in gone:
            kwargs[name] = redacted_value(hints[name])
        elif wire in data:
            try:
                kwargs[name] = from_data(hints[name], data[wire])
            except DecodeError as exc:
                path = "$." + wire + exc.path[1:]
                raise DecodeError(f"{exc.message.split(' at `')[0]} at `{path}`", path) from None
        elif field.default is not dataclasses.MISSING:
            kwargs[name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            kwargs[name] = field.default_factory()
        else:
            raise DecodeError(f"Object missing required field `{wire}`", "$")
    return cls(**kwargs)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


def dumps(data: Any) -> bytes:
    """Serialise builtins (the output of `to_data`) as compact JSON."""
    return _ENCODER.encode(data)


def loads(raw: bytes | str) -> Any:
    """Parse JSON into builtins."""
    try:
        return _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from None


def _describe(tp: Any, seen: set[Any]) -> str:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp in seen:
            return tp.__qualname__
        seen.add(tp)
        wire = wire_names(tp)
        parts = [f"{wire.get(name, name)}:{_describe(h, seen)}" for name, h in _hints(tp).items()]
        return f"{tp.__qualname__}{{{','.join(parts)}}}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f"{tp.__qualname__}({','.join(str(m.value) for m in tp)})"
    args = typing.get_args(tp)
    if args:
        origin = typing.get_origin(tp)
        name = "union" if origin is types.UnionType else getattr(origin, "__name__", str(origin))
        return f"{name}[{','.join(_describe(a, seen) for a in args)}]"
    return getattr(tp, "__qualname__", repr(tp))


def schema_hash(cls: type[Any]) -> str:
    """A short hash of a dataclass's shape (names and types, recursively).

    Snapshots store it: a snapshot whose hash differs from the current state class's
    is ignored (rebuilt from events) instead of being misread.
    """
    known = _SCHEMA_HASHES.get(cls)
    if known is None:
        extra = getattr(cls, "__schema_salt__", "")
        text = _describe(cls, set()) + f"|{extra}"
        known = _SCHEMA_HASHES[cls] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return known
