"""Bearer tokens mapped to actors and external systems (docs/http.md, "Authorization")."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
