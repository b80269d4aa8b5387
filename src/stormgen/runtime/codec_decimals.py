"""The wire rule for decimals: what a client may send as a decimal, checked before decoding.

:func:`decimal_checker` builds (once per type, cached) a function that walks raw data of
a message type and holds every decimal in it to :data:`DECIMAL_PATTERN` (and every
duration to :data:`~stormgen.runtime.codec_durations.DURATION_PATTERN`), raising a
`DecodeError` naming the field's path; :mod:`stormgen.runtime.codec` calls it for what
clients send (`from_data(..., wire=True)`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from stormgen.runtime.codec_durations import wire_duration_error
from stormgen.runtime.codec_walkers import _hints, walker, wire_names
from stormgen.runtime.rejections import DecodeError

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


def wire_decimal_error(value: Any) -> str | None:
    """Why `value` is not a decimal as the wire allows it (None when it is one)."""
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return None
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{DECIMAL_RULE}, not {shown}"


_Checker = Callable[[Any, str], None]
_CHECKERS: dict[Any, _Checker | None] = {}


def decimal_checker(tp: Any) -> _Checker | None:
    """A function checking every decimal and duration of raw data of type `tp` (None:
    none in it)."""
    if tp is Decimal:
        return _check_decimal
    if tp is dt.timedelta:
        return _check_duration
    return walker(tp, _CHECKERS, _dataclass_checker, _container_checker)


def _container_checker(kind: str, args: tuple[Any, ...]) -> _Checker | None:
    if kind == "items":
        inner = {a for a in args if a is not Ellipsis}
        each = decimal_checker(inner.pop()) if len(inner) == 1 else None
        return _items_checker(each) if each is not None else None
    if kind == "values":
        each = decimal_checker(args[1]) if len(args) == 2 else None
        return _values_checker(each) if each is not None else None
    # `T | None`: None passes, anything else is checked as a T
    present = [a for a in args if a is not type(None)]
    check = decimal_checker(present[0]) if len(present) == 1 else None
    return _optional_checker(check) if check is not None else None


def _rule(wire_error: Callable[[Any], str | None]) -> _Checker:
    """A checker of one scalar: a `DecodeError` naming its path when `wire_error` objects."""

    def check(value: Any, path: str) -> None:
        why = wire_error(value)
        if why is not None:
            raise DecodeError(f"`{path.removeprefix('$.')}`: {why}", path)

    return check


_check_decimal = _rule(wire_decimal_error)
_check_duration = _rule(wire_duration_error)


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
        field_check = decimal_checker(hint)
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
