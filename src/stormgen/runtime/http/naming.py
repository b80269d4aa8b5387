"""Names on the HTTP API: kebab-case path segments (docs/http.md, "Routes").

The function lives in :mod:`stormgen.runtime.naming` (no web framework needed), so
the generator's checks compute the same segments as the routes.
"""

from __future__ import annotations

from stormgen.runtime.naming import kebab

__all__ = ["kebab"]
