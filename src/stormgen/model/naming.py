"""The one snake_case converter: implicit id fields, generated Python names, hints."""

from __future__ import annotations

import re
from functools import cache

_FIRST_CAP = re.compile(r"(.)([A-Z][a-z]+)")
_ALL_CAP = re.compile(r"([a-z0-9])([A-Z])")
_UNDERSCORES = re.compile(r"_+")


@cache  # asked for the same few names over and over (~19k calls on 800 aggregates)
def snake_case(name: str) -> str:
    """``PlaceOrder`` -> ``place_order``, ``HTTPRequest`` -> ``http_request``,
    ``orderTotal`` -> ``order_total``."""
    s = _FIRST_CAP.sub(r"\1_\2", name)
    s = _ALL_CAP.sub(r"\1_\2", s).lower()
    return _UNDERSCORES.sub("_", s)
