"""Names on the HTTP API: kebab-case path segments (docs/http.md, "Routes")."""

from __future__ import annotations

import re

# A hyphen goes before a capital that follows a lower-case letter or a digit, and
# before the last capital of a run of capitals that is followed by a lower-case letter.
_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def kebab(name: str) -> str:
    """Return the path segment for a model name: ``PlaceOrder`` -> ``place-order``."""
    return _BOUNDARY.sub("-", name).replace("_", "-").lower()


def context_name(name: str) -> str:
    """The context of a dotted name: ``Ordering.Order`` -> ``Ordering``."""
    return name.split(".", 1)[0]


def short_name(name: str) -> str:
    """The last part of a dotted name: ``Ordering.Order`` -> ``Order``."""
    return name.rsplit(".", 1)[-1]
