"""Idempotency keys: whose a key is, and which request it was first used for.

The store keeps keys in two namespaces (`stormgen.runtime.store.base`). A key given as
a plain string is the service's own: the ids policies give their commands, a
program's keys; it is stored as ``internal/<key>``. A `ClientKey` is an API client's
``Idempotency-Key``: stored as ``client/<caller>/<type>/<key>``, where the caller is a
hash of the client's bearer token (`caller_of`) and the type the command's (or
external event's) name. So no client can write an internal key, and a client's key
never reaches another caller's answer or another type's.

A client's key also carries the `fingerprint` of its request (type and body): the
events of the first request record it in their metadata (`FINGERPRINT`), and the
same key with another fingerprint is refused (`KeyReused`) instead of answered with
the first request's result.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from stormgen.runtime.store.base import CLIENT_KEYS, INTERNAL_KEYS

__all__ = [
    "ANONYMOUS",
    "FINGERPRINT",
    "ClientKey",
    "caller_of",
    "fingerprint",
    "fingerprint_of",
    "stored_key",
]

#: The metadata field in which an event records its request's fingerprint (client keys).
FINGERPRINT: Final = "idempotency_fingerprint"
#: The one caller of an open service (no token configured): every request is its.
ANONYMOUS: Final = "anonymous"

# A slow, salted hash: the caller is stored (and shown in events' metadata), so a short
# token must not be found from it by trying candidates. ~8 ms, once per token and process.
_CALLER_SALT = b"stormgen.idempotency.caller"
_CALLER_ROUNDS = 10_000


@functools.lru_cache(maxsize=1024)
def caller_of(token: str) -> str:
    """The caller a bearer token stands for among idempotency keys (never the token)."""
    digest = hashlib.pbkdf2_hmac("sha256", token.encode(), _CALLER_SALT, _CALLER_ROUNDS)
    return digest.hex()[:32]


def fingerprint(kind: str, body: Any) -> str:
    """A request's fingerprint: a hash of its type and its JSON body, keys sorted."""
    text = msgspec.json.encode([kind, body], order="sorted")
    return hashlib.sha256(text).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ClientKey:
    """An API client's idempotency key: its caller, its type, the key, the request's
    fingerprint."""

    caller: str
    kind: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, caller: str, kind: str, key: str, body: Any) -> ClientKey:
        """The key of a request of type ``kind`` with the JSON ``body``."""
        return cls(caller, kind, key, fingerprint(kind, body))

    @property
    def stored(self) -> str:
        """The key as the store keeps it."""
        return f"{CLIENT_KEYS}{self.caller}/{self.kind}/{self.key}"


def stored_key(key: str | ClientKey) -> str:
    """The key as the store keeps it: a plain string is the service's own."""
    return key.stored if isinstance(key, ClientKey) else INTERNAL_KEYS + key


def fingerprint_of(key: str | ClientKey) -> str | None:
    """The request fingerprint a key carries (None for the service's own keys)."""
    return key.fingerprint if isinstance(key, ClientKey) else None
