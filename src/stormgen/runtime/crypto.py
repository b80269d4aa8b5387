"""Crypto-shredding: `pii` fields encrypted under a key per stream (AES-GCM).

A `pii` field is stored as `{"$pii": "<base64 nonce+ciphertext>"}`; the key lives in
the store's key table. Forgetting a stream deletes its key, so its personal data can
never be read again while the events, positions and versions stay.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stormgen.runtime import codec
from stormgen.runtime.envelope import SEALED_KEY, random_bytes
from stormgen.runtime.store.base import EventStore
from stormgen.runtime.store.roles import EncryptionKeys

_NONCE = 12
#: A data key's length (AES-256).
_KEY = 32


def new_key() -> bytes:
    """A fresh random data key (AES-256)."""
    return random_bytes(_KEY)


def is_encrypted(value: Any) -> bool:
    """Whether a stored field value is an encrypted token."""
    return isinstance(value, dict) and len(value) == 1 and SEALED_KEY in value


def is_sealed(data: Mapping[str, Any]) -> bool:
    """Whether any field of stored event data is an encrypted token."""
    values = data.values()
    # a C-level scan for dict values first: most events have none, and only those
    # may be tokens (value objects are dicts too)
    return dict in map(type, values) and any(is_encrypted(v) for v in values)


def _aad(stream: str, field: str) -> bytes:
    # binding the ciphertext to its stream and field stops a token being moved elsewhere
    return f"{stream}\x00{field}".encode()


_CIPHERS: dict[bytes, AESGCM] = {}
_CIPHERS_MAX = 1024


def _cipher(key: bytes) -> AESGCM:
    # building an AESGCM object sets up the key schedule (a third of a field's cost):
    # keep one per recent key; a forgotten key is simply never asked for again
    cipher = _CIPHERS.get(key)
    if cipher is None:
        if len(_CIPHERS) >= _CIPHERS_MAX:
            _CIPHERS.clear()
        cipher = _CIPHERS[key] = AESGCM(key)
    return cipher


def encrypt_value(key: bytes, stream: str, field: str, value: Any) -> dict[str, str]:
    """Encrypt one encoded (JSON-ready) field value into a token."""
    nonce = random_bytes(_NONCE)
    sealed = _cipher(key).encrypt(nonce, codec.dumps(value), _aad(stream, field))
    return {SEALED_KEY: base64.b64encode(nonce + sealed).decode()}


def decrypt_value(key: bytes, stream: str, field: str, token: Mapping[str, str]) -> Any:
    """Decrypt a token; raises `InvalidTag` when the key is not the one it was sealed with."""
    raw = base64.b64decode(token[SEALED_KEY])
    plain = _cipher(key).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(stream, field))
    return codec.loads(plain)


class KeyRing:
    """Per-stream data keys, read through a short-lived cache.

    The cache keeps reads of a busy stream cheap; its entries expire after `ttl`
    seconds so a `forget` done by another process is honoured soon after.
    """

    def __init__(self, store: EventStore, ttl: float = 2.0) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def key_for_writing(self, uow: EncryptionKeys, stream: str, *, new: bool = False) -> bytes:
        """The stream's key, created (in the caller's transaction) when it has none.

        `new`: the stream is most likely new (its first events), so its key is tried
        as a fresh one first: one statement instead of a look-up and an insert.
        """
        key = new_key() if new else None
        if key is None or not uow.add_key(stream, key):
            key = uow.get_key(stream)  # (a new stream that had a key after all reads it)
            if key is None:
                key = new_key()
                uow.put_key(stream, key)
        # readers in this process must not keep using a cached "no key" for the stream
        # (a stream forgotten and then written again); a rolled-back key does no harm
        with self._lock:
            self._cache[stream] = (time.monotonic() + self._ttl, key)
        return key

    def key_for_reading(self, stream: str) -> bytes | None:
        """The stream's key, or None when it was never made or was forgotten."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(stream)
            if hit is not None and hit[0] > now:
                return hit[1]
        key = self._store.get_key(stream)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[stream] = (now + self._ttl, key)
        return key

    def evict(self, stream: str) -> None:
        """Drop a stream's cached key (after forgetting it)."""
        with self._lock:
            self._cache.pop(stream, None)

    def encrypt(
        self,
        uow: EncryptionKeys,
        stream: str,
        data: dict[str, Any],
        pii: Collection[str],
        *,
        new: bool = False,
    ) -> dict[str, Any]:
        """Return `data` with its `pii` fields (present and not None) encrypted; `new`
        as for `key_for_writing`."""
        fields = [name for name in pii if data.get(name) is not None]
        if not fields:
            return data
        key = self.key_for_writing(uow, stream, new=new)
        out = dict(data)
        for name in fields:
            out[name] = encrypt_value(key, stream, name, data[name])
        return out

    def decrypt(self, stream: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """Return `data` with tokens decrypted, and the names of fields that stay redacted.

        When no field is sealed (the common case) the result is `data` itself, not a
        copy: treat it as read-only.
        """
        if not is_sealed(data):
            return data, set()  # type: ignore[return-value]
        out = dict(data)
        gone: set[str] = set()
        key: bytes | None = None
        looked = False
        for name, value in data.items():
            if not is_encrypted(value):
                continue
            if not looked:
                key, looked = self.key_for_reading(stream), True
            if key is None:
                gone.add(name)
                continue
            try:
                out[name] = decrypt_value(key, stream, name, value)
            except (InvalidTag, ValueError):
                # sealed under a key that was forgotten (a new key exists since)
                gone.add(name)
        return out, gone
