"""Names on the HTTP API: kebab-case path segments (docs/http.md, "Routes").

The function lives in :mod:`stormgen.runtime.naming` (no web framework needed), so
the generator's checks compute the same segments as the routes.
"""

from __future__ import annotations

from stormgen.runtime.naming import kebab

__all__ = ["context_name", "kebab", "short_name"]


def context_name(name: str) -> str:
    """The context of a dotted name: ``Ordering.Order`` -> ``Ordering``."""
    return name.split(".", 1)[0]


def short_name(name: str) -> str:
    """The last part of a dotted name: ``Ordering.Order`` -> ``Order``."""
    return name.rsplit(".", 1)[-1]
