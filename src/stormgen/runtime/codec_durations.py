"""Durations on the wire: ISO 8601 durations such as ``"PT15M"``, ``"P3D"``, ``"P1DT2H"``.

A `datetime.timedelta` is written in one canonical form: an optional ``-`` for a
negative duration, ``P``, whole days (``D``, 24 hours each), then ``T`` and hours,
minutes and seconds (a fraction of a second to the microsecond), each part left out
when it is zero; no duration at all is ``"PT0S"``.

What a client may send (:data:`DURATION_PATTERN`) is the same shape, parts in any
size (``"PT90M"``, ``"PT36H"``): no years or months (their length varies), no weeks
(write ``"P14D"``), no fractions but of seconds, upper-case letters only, at most
6 digits of days and 9 of the other parts (so no sum of them overflows). msgspec reads
these strings as this module does (a test holds them to agreeing), so stored events
are decoded by msgspec directly.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec

_SECONDS = r"[0-9]{1,9}(\.[0-9]{1,6})?S"
_TIME = rf"T([0-9]{{1,9}}H([0-9]{{1,9}}M)?({_SECONDS})?|[0-9]{{1,9}}M({_SECONDS})?|{_SECONDS})"
#: A duration as a client may send it (a JSON Schema pattern: no look-arounds).
DURATION_PATTERN = rf"^-?P([0-9]{{1,6}}D({_TIME})?|{_TIME})$"
DURATION_RULE = (
    'a duration is an ISO 8601 duration string such as "PT15M", "P3D" or "P1DT2H30M" '
    '(a leading "-" for a negative one): days, hours, minutes and seconds, no years, '
    "months or weeks, at most 6 digits of days and 9 of each other part"
)
_SHAPE = re.compile(DURATION_PATTERN)
_PARTS = re.compile(
    r"(?P<sign>-?)P(?:(?P<days>[0-9]+)D)?(?:T(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?"
    r"(?:(?P<seconds>[0-9]+)(?:\.(?P<fraction>[0-9]+))?S)?)?"
)
_ZERO = dt.timedelta(0)
_MICROSECOND = dt.timedelta(microseconds=1)


def format_duration(value: dt.timedelta) -> str:
    """``value`` in the canonical form: ``"PT15M"``, ``"-P1DT12H"``, ``"PT0S"``."""
    if not value:
        return "PT0S"
    sign = "-" if value < _ZERO else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if value.microseconds:
        time += f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S"
    elif seconds:
        time += f"{seconds}S"
    days = f"{value.days}D" if value.days else ""
    return f"{sign}P{days}" + (f"T{time}" if time else "")


def wire_duration_error(value: Any) -> str | None:
    """Why ``value`` is not a duration as the wire allows it (None when it is one)."""
    if isinstance(value, str) and _SHAPE.fullmatch(value):
        return None
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{DURATION_RULE}, not {shown}"


def duration_microseconds(value: str | dt.timedelta) -> int:
    """A duration (or its ISO 8601 text, as the codec writes it) in whole microseconds:
    how a view column of type duration is stored, so that it orders as a number."""
    if isinstance(value, str):
        value = msgspec.convert(value, dt.timedelta)
    return value // _MICROSECOND


def parse_duration(text: str) -> dt.timedelta:
    """The duration ``text`` (as :data:`DURATION_PATTERN` allows); ValueError otherwise."""
    why = wire_duration_error(text)
    parts = _PARTS.fullmatch(text) if why is None else None
    if parts is None:
        raise ValueError(why)
    fraction = parts["fraction"] or ""
    value = dt.timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=int(parts["seconds"] or 0),
        microseconds=int(fraction.ljust(6, "0")) if fraction else 0,
    )
    return -value if parts["sign"] else value
