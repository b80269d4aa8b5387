"""The HTTP API of a service (docs/http.md): FastAPI routes built from an Application."""

from stormgen.runtime.http.app import create_app
from stormgen.runtime.http.auth import TokenConfigError, Tokens, load_tokens, parse_tokens
from stormgen.runtime.http.naming import kebab
from stormgen.runtime.http.serve import ServeError, serve

__all__ = [
    "ServeError",
    "TokenConfigError",
    "Tokens",
    "create_app",
    "kebab",
    "load_tokens",
    "parse_tokens",
    "serve",
]
