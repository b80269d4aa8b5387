"""JSON encoding of messages, values and states (docs/runtime.md, "Messages").

Decimals travel as strings, datetimes as ISO 8601 UTC with `Z`, dates as ISO dates,
uuids as strings, enums by value, value objects as nested objects. Decoding is typed
from the dataclass field annotations (msgspec does the work in C).

A dataclass field whose attribute name is not its wire name (a model field `from`
is the attribute `from_`) says so in its metadata: `field(metadata={"name": "from"})`.
msgspec ignores dataclass metadata, so classes holding such a field (at any depth)
get their keys renamed after encoding and before decoding; the others take the plain
msgspec path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from stormgen.runtime.messages import REDACTED
from stormgen.runtime.rejections import DecodeError
from stormgen.runtime.unset import UNSET

T = TypeVar("T")

WIRE_NAME = "name"
"""The dataclass field metadata key holding the field's JSON name (when not its attribute)."""

_UTC = dt.UTC
_ZERO = dt.timedelta(0)
_PATH = re.compile(r" - at `(\$[^`]*)`$")

#: The most digits a decimal may have before its point on the wire (in requests).
DECIMAL_INTEGER_DIGITS = 15
#: The most digits a decimal may have after its point on the wire (in requests).
DECIMAL_FRACTION_DIGITS = 10
#: A decimal on the wire: a JSON string in plain notation (no exponent, no spaces, no
#: underscores, no leading zeros), within the digits above. 25 significant digits at
#: most, so sums of up to 1000 such values stay exact in Python's default decimal
#: context (28 digits) and no arithmetic of a view or policy can overflow it.
DECIMAL_PATTERN = (
    rf"^-?(0|[1-9][0-9]{{0,{DECIMAL_INTEGER_DIGITS - 1}}})"
    rf"(\.[0-9]{{1,{DECIMAL_FRACTION_DIGITS}}})?$"
)
_DECIMAL_TEXT = re.compile(DECIMAL_PATTERN)
DECIMAL_RULE = (
    'a decimal is a string in plain notation ("12.50"): an optional minus, '
    f"at most {DECIMAL_INTEGER_DIGITS} digits before the point and "
    f"{DECIMAL_FRACTION_DIGITS} after it, no exponent, spaces or underscores"
)


def _normalise(value: Any) -> Any:
    """Turn datetimes left in `to_builtins` output into UTC `Z` strings, tuples into lists."""
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
    """Whether a type may hold a datetime or a tuple (msgspec leaves both for us)."""
    if tp is dt.datetime or tp is tuple or typing.get_origin(tp) is tuple:
        return True
    if tp is Any:
        return True
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp in seen:
            return False
        seen.add(tp)
        return any(_needs_pass(h, seen) for h in _hints(tp).values())
    return any(_needs_pass(a, seen) for a in typing.get_args(tp))


_HINTS: dict[Any, dict[str, Any]] = {}
_Plan = tuple[bool, tuple[str, ...], Callable[[Any], Any] | None]
_DATETIME_PASS: dict[Any, _Plan] = {}
_SCHEMA_HASHES: dict[Any, str] = {}


def _hints(cls: Any) -> dict[str, Any]:
    """The resolved types of a dataclass's fields (no ClassVars), cached."""
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = typing.get_type_hints(cls)
        if dataclasses.is_dataclass(cls):
            resolved = {f.name: resolved[f.name] for f in dataclasses.fields(cls)}
        hints = _HINTS[cls] = resolved
    return hints


def _encoding_plan(cls: Any) -> _Plan:
    """How to encode a class: (datetimes only as top-level fields?, those fields, renamer).

    `(True, (), ...)` means no datetime anywhere; `(False, ...)` means some sit deeper
    (in lists or nested values) or the class is not a dataclass. The renamer (None for
    most classes) turns attribute names into wire names; it is kept here so the common
    path looks one thing up per encoding.
    """
    plan = _DATETIME_PASS.get(cls)
    if plan is None:
        if dataclasses.is_dataclass(cls):
            hints = _hints(cls)
            fields = tuple(name for name, h in hints.items() if _needs_pass(h, set()))
            # only datetimes (not tuples) at the top level can be fixed field by field
            top = all(
                hints[name] is dt.datetime
                or set(typing.get_args(hints[name])) <= {dt.datetime, type(None)}
                for name in fields
            )
            plan = (top, fields, _renamer(cls, out=True))
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
    if isinstance(obj, dt.datetime):
        return _normalise(obj)
    cls = type(obj)
    top, fields, rename = _encoding_plan(cls)
    if top:
        data = msgspec.to_builtins(obj, enc_hook=_enc_hook)
        # msgspec writes an aware UTC datetime as the envelope wants (`...Z`); fix the others
        for name in fields:
            value = getattr(obj, name)
            if isinstance(value, dt.datetime) and value.utcoffset() != _ZERO:
                data[name] = _normalise(value)
    else:
        # datetimes deeper inside: let them through raw and normalise on the way out
        data = _normalise(
            msgspec.to_builtins(obj, builtin_types=(dt.datetime,), enc_hook=_enc_hook)
        )
    return data if rename is None else rename(data)


def from_data(cls: type[T], data: Any, *, strict: bool = False, wire: bool = False) -> T:
    """Decode builtins (parsed JSON) into `cls`, typed by its annotations.

    Unknown keys are ignored; missing keys take the field's default. By default text
    is converted where the type asks for it (`"7"` for an int: query strings and path
    segments); `strict=True` refuses that (JSON bodies). Decimals, datetimes, dates and
    uuids are read from strings either way. `wire=True` (what clients send) also holds
    every decimal to `DECIMAL_PATTERN`; stored events are read without it, so a log
    written before the rule still reads. Raises `DecodeError` naming the offending
    field's path (`$.drinks[0].price`).
    """
    if wire:
        check = _decimal_checker(cls)
        if check is not None:
            check(data, "$")
    try:
        rename = _IN_RENAMERS[cls]
    except (KeyError, TypeError):  # first use (or an unhashable annotation)
        rename = _renamer(cls, out=False)
    try:
        value = msgspec.convert(data if rename is None else rename(data), cls, strict=strict)
    except msgspec.ValidationError as exc:
        raise _decode_error(exc, cls if rename is not None else None) from None
    _fill_defaults(value, cls)
    return value


def wire_decimal_error(value: Any) -> str | None:
    """Why `value` is not a decimal as the wire allows it (None when it is one)."""
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return None
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{DECIMAL_RULE}, not {shown}"


_Checker = Callable[[Any, str], None]
_CHECKERS: dict[Any, _Checker | None] = {}


def _decimal_checker(tp: Any) -> _Checker | None:
    """A function checking every decimal of raw data of type `tp` (None: none in it)."""
    try:
        return _CHECKERS[tp]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: check nothing rather than fail
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_checker(tp)
    check: _Checker | None = None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Decimal:
        check = _check_decimal
    elif origin is typing.Annotated:
        check = _decimal_checker(args[0])
    elif origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, Sequence | AbstractSet)
    ):
        inner = {a for a in args if a is not Ellipsis}
        each = _decimal_checker(inner.pop()) if len(inner) == 1 else None
        check = _items_checker(each) if each is not None else None
    elif origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        each = _decimal_checker(args[1]) if len(args) == 2 else None
        check = _values_checker(each) if each is not None else None
    elif origin is typing.Union or origin is types.UnionType:
        # `T | None`: None passes, anything else is checked as a T
        present = [a for a in args if a is not type(None)]
        check = _decimal_checker(present[0]) if len(present) == 1 else None
        check = _optional_checker(check) if check is not None else None
    _CHECKERS[tp] = check
    return check


def _check_decimal(value: Any, path: str) -> None:
    why = wire_decimal_error(value)
    if why is not None:
        raise DecodeError(f"`{path.removeprefix('$.')}`: {why}", path)


def _dataclass_checker(cls: type[Any]) -> _Checker | None:
    plan: list[tuple[str, _Checker]] = []

    def check(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, field_check in plan:
                if key in value:
                    field_check(value[key], f"{path}.{key}")

    # registered before its fields are looked at, so a recursive value type terminates
    _CHECKERS[cls] = check
    names = wire_names(cls)
    for name, hint in _hints(cls).items():
        field_check = _decimal_checker(hint)
        if field_check is not None:
            plan.append((names.get(name, name), field_check))
    if not plan and _CHECKERS[cls] is check:
        _CHECKERS[cls] = None
        return None
    return check


def _items_checker(each: _Checker) -> _Checker:
    def check_items(value: Any, path: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                each(item, f"{path}[{index}]")

    return check_items


def _values_checker(each: _Checker) -> _Checker:
    def check_values(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                each(item, f"{path}.{key}")

    return check_values


def _optional_checker(each: _Checker) -> _Checker:
    def check_optional(value: Any, path: str) -> None:
        if value is not None:
            each(value, path)

    return check_optional


def _decode_error(exc: msgspec.ValidationError, aliased: Any = None) -> DecodeError:
    """The error as a `DecodeError`; with `aliased`, attribute names become wire names."""
    text = str(exc)
    match = _PATH.search(text)
    path = match.group(1) if match else "$"
    message = text[: match.start()] if match else text
    if aliased is not None:
        names = _tree_aliases(aliased)
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
    fill = _filler(cls)
    convert = msgspec.convert
    rename = _renamer(cls, out=False)

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
    fill = _filler(cls)
    convert = msgspec.convert
    many = list[cls]  # type: ignore[valid-type]
    rename = _renamer(cls, out=False)

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


_Filler = Callable[[Any], None]
_FILLERS: dict[Any, _Filler | None] = {}


def _fill_defaults(value: Any, hint: Any) -> None:
    """Store the defaults msgspec left on the class into each decoded instance.

    msgspec does not put a dataclass field's plain default into the instance's
    `__dict__` (attribute access finds the class attribute), so `to_builtins` would
    silently drop it on the next encoding; this puts it there, at every depth the
    type `hint` allows (nested values, in lists, tuples, sets, dict values, optionals).
    """
    fill = _filler(hint)
    if fill is not None:
        fill(value)


def _filler(tp: Any) -> _Filler | None:
    """A function filling missing plain defaults into decoded values of type `tp`, cached.

    None when the type cannot hold a dataclass with plain defaults (nothing to walk).
    """
    try:
        return _FILLERS[tp]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: walk nothing rather than fail
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_filler(tp)
    fill: _Filler | None = None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        fill = _filler(args[0])
    elif origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, Sequence | AbstractSet)
    ):
        fill = _items_filler([_filler(a) for a in args if a is not Ellipsis])
    elif origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        fill = _values_filler(_filler(args[1])) if len(args) == 2 else None
    elif origin is typing.Union or origin is types.UnionType:
        fill = _union_filler([_filler(a) for a in args])
    _FILLERS[tp] = fill
    return fill


def _dataclass_filler(cls: type[Any]) -> _Filler | None:
    # registered before its fields are looked at, so a recursive value type terminates
    plan: list[tuple[str, _Filler]] = []
    defaults = tuple(
        (f.name, f.default) for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    )

    def fill(value: Any) -> None:
        if not isinstance(value, cls):
            return  # another member of a union
        state = getattr(value, "__dict__", None)
        if state is not None:  # slotted classes get every field set by msgspec
            for name, default in defaults:
                if name not in state:
                    state[name] = default
        for name, field_fill in plan:
            field_fill(getattr(value, name))

    _FILLERS[cls] = fill
    for name, hint in _hints(cls).items():
        field_fill = _filler(hint)
        if field_fill is not None:
            plan.append((name, field_fill))
    if not defaults and not plan and _FILLERS[cls] is fill:
        # nothing to do; a recursive reference taken meanwhile keeps the (cheap) closure
        _FILLERS[cls] = None
        return None
    return fill


def _items_filler(fills: list[_Filler | None]) -> _Filler | None:
    known = [f for f in fills if f is not None]
    if not known:
        return None
    if len(fills) == 1 or (len(set(known)) == 1 and len(known) == len(fills)):
        each = known[0]

        def fill_items(value: Any) -> None:
            if isinstance(value, list | tuple | set | frozenset):
                for item in value:
                    each(item)

        return fill_items

    # a fixed-shape tuple: one filler per place
    def fill_places(value: Any) -> None:
        if isinstance(value, list | tuple):
            for item, place in zip(value, fills, strict=False):
                if place is not None:
                    place(item)

    return fill_places


def _values_filler(each: _Filler | None) -> _Filler | None:
    if each is None:
        return None

    def fill_values(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                each(item)

    return fill_values


def _union_filler(fills: list[_Filler | None]) -> _Filler | None:
    known = [f for f in fills if f is not None]
    if not known:
        return None
    if len(known) == 1:
        return known[0]  # each filler checks the value's type itself

    def fill_any(value: Any) -> None:
        for fill in known:
            fill(value)

    return fill_any


def wire_names(cls: type[Any]) -> dict[str, str]:
    """A dataclass's fields whose JSON name differs from their attribute: attribute -> name."""
    names = _WIRE_NAMES.get(cls)
    if names is None:
        names = _WIRE_NAMES[cls] = {
            f.name: f.metadata[WIRE_NAME]
            for f in dataclasses.fields(cls)
            if f.metadata.get(WIRE_NAME, f.name) != f.name
        }
    return names


def wire_name(cls: type[Any], attribute: str) -> str:
    """The JSON name of a dataclass field given its attribute name."""
    return wire_names(cls).get(attribute, attribute)


_Renamer = Callable[[Any], Any]
_WIRE_NAMES: dict[Any, dict[str, str]] = {}
_OUT_RENAMERS: dict[Any, _Renamer | None] = {}
_IN_RENAMERS: dict[Any, _Renamer | None] = {}
_TREE_ALIASES: dict[Any, dict[str, str]] = {}


def _renamer(tp: Any, *, out: bool) -> _Renamer | None:
    """A function renaming the keys of builtins of type `tp`, cached.

    `out=True` turns attribute names into wire names (after encoding), `out=False`
    the reverse (before decoding; a key spelled as the attribute is dropped, so only
    the wire name is accepted). None when the type holds no renamed field anywhere.
    """
    cache = _OUT_RENAMERS if out else _IN_RENAMERS
    try:
        return cache[tp]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: rename nothing rather than fail
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_renamer(tp, out, cache)
    rename: _Renamer | None = None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        rename = _renamer(args[0], out=out)
    elif origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, Sequence | AbstractSet)
    ):
        known = [r for a in args if a is not Ellipsis if (r := _renamer(a, out=out))]
        # fixed-shape tuples of different renamed values are not used by generated code
        rename = _items_renamer(known[0]) if known else None
    elif origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        each = _renamer(args[1], out=out) if len(args) == 2 else None
        rename = _values_renamer(each) if each is not None else None
    elif origin is typing.Union or origin is types.UnionType:
        known = [r for a in args if (r := _renamer(a, out=out))]
        rename = known[0] if len(known) == 1 else _chain_renamer(known) if known else None
    cache[tp] = rename
    return rename


def _dataclass_renamer(
    cls: type[Any], out: bool, cache: dict[Any, _Renamer | None]
) -> _Renamer | None:
    names = wire_names(cls)
    mapping = dict(names) if out else {wire: attr for attr, wire in names.items()}
    drop = frozenset() if out else frozenset(names) - frozenset(names.values())
    # nested renamers by the key as it is before renaming
    plan: dict[str, _Renamer] = {}

    def rename(data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        result: dict[Any, Any] = {}
        for key, value in data.items():
            if key in drop:
                continue
            sub = plan.get(key)
            result[mapping.get(key, key)] = value if sub is None else sub(value)
        return result

    # registered before the fields are looked at, so a recursive value type terminates
    cache[cls] = rename
    for attr, hint in _hints(cls).items():
        sub = _renamer(hint, out=out)
        if sub is not None:
            plan[names.get(attr, attr) if not out else attr] = sub
    if not mapping and not plan and cache[cls] is rename:
        cache[cls] = None
        return None
    return rename


def _items_renamer(each: _Renamer) -> _Renamer:
    def rename_items(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [each(item) for item in value]
        return value

    return rename_items


def _values_renamer(each: _Renamer) -> _Renamer:
    def rename_values(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: each(item) for key, item in value.items()}
        return value

    return rename_values


def _chain_renamer(known: list[_Renamer]) -> _Renamer:
    # a union of several renamed value types: each renames only its own keys
    def rename_any(value: Any) -> Any:
        for rename in known:
            value = rename(value)
        return value

    return rename_any


def _tree_aliases(tp: Any) -> dict[str, str]:
    """Every attribute -> wire name renamed in a type, at any depth (for error messages)."""
    found = _TREE_ALIASES.get(tp)
    if found is None:
        found = {}
        _collect_aliases(tp, found, set())
        _TREE_ALIASES[tp] = found
    return found


def _collect_aliases(tp: Any, found: dict[str, str], seen: set[Any]) -> None:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp in seen:
            return
        seen.add(tp)
        found.update(wire_names(tp))
        for hint in _hints(tp).values():
            _collect_aliases(hint, found, seen)
        return
    for arg in typing.get_args(tp):
        _collect_aliases(arg, found, seen)


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
