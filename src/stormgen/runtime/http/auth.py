"""Bearer tokens mapped to actors and external systems, and who may call what with them
(docs/http.md, "Authorization").
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from stormgen.runtime.http import errors
from stormgen.runtime.idempotency import ANONYMOUS, ClientKey, caller_of

TOKENS_ENV = "STORMGEN_TOKENS"
TOKENS_FILE_ENV = "STORMGEN_TOKENS_FILE"
#: The principal of tokens that read the raw log (`/events`, the event stream, an
#: instance's history, `/failures`); no actor may have this name (check E106).
OPERATOR = "operator"


class TokenConfigError(ValueError):
    """The token configuration cannot be read."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """Which principal (an actor, an external system or `operator`) each token stands for."""

    principals: Mapping[str, str]

    @property
    def open(self) -> bool:
        """True when no token is configured: open development mode."""
        return not self.principals

    def principal(self, token: str) -> str | None:
        """Return the principal of ``token``, comparing in constant time."""
        found: str | None = None
        for known, principal in self.principals.items():
            # Compare against every token so the timing says nothing about which matched.
            if hmac.compare_digest(known.encode(), token.encode()):
                found = principal
        return found

    def names(self) -> frozenset[str]:
        """Every principal that some token maps to."""
        return frozenset(self.principals.values())


def parse_tokens(text: str, *, source: str = TOKENS_ENV) -> Tokens:
    """Parse ``token=Principal`` pairs separated by commas or new lines.

    Blank lines and lines starting with ``#`` are ignored, so the same syntax serves
    the environment variable and a tokens file.
    """
    principals: dict[str, str] = {}
    items = [part for line in text.splitlines() for part in line.split(",")]
    for number, raw in enumerate(items, start=1):
        item = raw.strip()
        if not item or item.startswith("#"):
            continue
        token, sep, principal = item.partition("=")
        token, principal = token.strip(), principal.strip()
        if not sep or not token or not principal:
            raise TokenConfigError(
                f"{source}: entry {number} is not of the form token=Actor: {item!r}"
            )
        if token in principals:
            raise TokenConfigError(f"{source}: a token appears twice (entry {number})")
        principals[token] = principal
    return Tokens(principals)


def load_tokens(
    tokens: str | Mapping[str, str] | Tokens | None = None,
    tokens_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Tokens:
    """Return the configured tokens: explicit arguments first, then the environment."""
    env = os.environ if environ is None else environ
    if isinstance(tokens, Tokens):
        return tokens
    if isinstance(tokens, Mapping):
        return Tokens(dict(tokens))
    if tokens is not None:
        return parse_tokens(tokens, source="tokens")
    path = tokens_file if tokens_file is not None else env.get(TOKENS_FILE_ENV) or None
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenConfigError(
                f"cannot read the tokens file {os.fspath(path)}: {exc.strerror}"
            ) from None
        return parse_tokens(text, source=os.fspath(path))
    return parse_tokens(env.get(TOKENS_ENV, ""))


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Access:
    """Who may call what: a request's principal (its bearer token's) and the checks on
    it, each a 401 or 403 (docs/http.md, "Authorization").

    ``systems`` names every external system of the application, by full and short
    name: their tokens post their events and read nothing.
    """

    def __init__(self, tokens: Tokens, systems: frozenset[str]) -> None:
        self.tokens = tokens
        self.system_names = systems

    def principal(self, request: Request) -> str | None:
        """The actor or system the request's bearer token stands for (None when open)."""
        if self.tokens.open:
            return None
        header = request.headers.get("authorization")
        if not header:
            raise errors.unauthorized("this service needs an Authorization: Bearer token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized("the Authorization header must be 'Bearer <token>'")
        principal = self.tokens.principal(token.strip())
        if principal is None:
            raise errors.unauthorized("the bearer token is not known to this service")
        return principal

    def command(self, request: Request, name: str, actors: tuple[str, ...]) -> str | None:
        """Return the actor issuing the command ``name``, one of ``actors``, or refuse."""
        principal = self.principal(request)
        if principal is not None and principal not in actors:
            who = " or ".join(actors)
            raise errors.forbidden(f"{principal} may not issue {name}; only {who} may")
        return principal

    def external(self, request: Request, context: str, system: str) -> str | None:
        """Return the system posting its event: only a token mapped to it may."""
        principal = self.principal(request)
        if principal is None:
            return None
        full = f"{context}.{system}"
        if principal in (full, system):
            return principal
        if not self.mapped(context, system):
            raise errors.forbidden(
                f"no token is mapped to {full}, so this service accepts none of its events"
            )
        raise errors.forbidden(f"only {system}'s token may post its events, not {principal}'s")

    def mapped(self, context: str, system: str) -> bool:
        """Whether some token stands for the external system ``context.system``."""
        names = self.tokens.names()
        return f"{context}.{system}" in names or system in names

    def read(self, request: Request) -> None:
        """Views and instances' state: any token but an external system's."""
        principal = self.principal(request)
        if principal is not None and principal in self.system_names:
            raise errors.forbidden(
                f"{principal} is an external system: its token posts its events and reads nothing"
            )

    def log(self, request: Request, what: str) -> None:
        """The raw log (decrypted personal data of everyone): operators only."""
        principal = self.principal(request)
        if principal is not None and principal != OPERATOR:
            raise errors.forbidden(
                f"{what} is for operators: only a token mapped to {OPERATOR!r} may use it"
            )

    def client_key(self, request: Request, key: str, kind: str, body: Any) -> ClientKey:
        """A request's Idempotency-Key, scoped to its caller and its type ``kind``.

        The caller is a hash of the bearer token (checked before: `principal`), or the
        one anonymous caller of an open service; ``body`` is the request's JSON as its
        fingerprint covers it.
        """
        caller = ANONYMOUS
        if not self.tokens.open:
            caller = caller_of(request.headers["authorization"].partition(" ")[2].strip())
        return ClientKey.of(caller, kind, key, body)
