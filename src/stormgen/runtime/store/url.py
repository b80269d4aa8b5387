"""Open a store from its URL (docs/runtime.md, "Stores") and fork one store's log into another."""

from __future__ import annotations

import os
from collections.abc import Callable

from stormgen.runtime.errors import InvalidStoreURL, StoreError
from stormgen.runtime.store.base import EventStore

#: The store used when neither ``--store`` nor ``STORMGEN_STORE`` names one.
DEFAULT_STORE_URL = "sqlite:///./.stormgen/events.db"

#: The environment variable naming the store.
STORE_ENV = "STORMGEN_STORE"


def resolve_store_url(url: str | None = None) -> str:
    """Return ``url``, else ``$STORMGEN_STORE``, else :data:`DEFAULT_STORE_URL`."""
    if url:
        return url
    return os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def open_store(url: str | None = None) -> EventStore:
    """Open (creating if needed) the store a URL names.

    ``memory://`` (a new in-process store; ``memory://name`` is shared by name
    within the process), ``sqlite:///relative/or//absolute/path.db``
    (``?synchronous=full|normal``), ``postgresql://user:pass@host:port/db``
    (``?schema=NAME``, ``?pool_max=N``). With no URL, ``$STORMGEN_STORE`` or the
    default ``sqlite:///./.stormgen/events.db``.
    """
    url = resolve_store_url(url)
    scheme, sep, _rest = url.partition("://")
    if not sep:
        raise InvalidStoreURL(
            f"store URL {url!r} has no scheme; use memory://, sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        )
    scheme = scheme.lower()
    if scheme == "memory":
        from stormgen.runtime.store.memory import open_memory_store

        return open_memory_store(url)
    if scheme == "sqlite":
        from stormgen.runtime.store.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if scheme in ("postgresql", "postgres"):
        from stormgen.runtime.store.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise InvalidStoreURL(
        f"unknown store scheme {scheme!r} in {url!r}; use memory://, sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB"
    )


ForkProgress = Callable[[int, int], None]


def fork(
    source: EventStore,
    target: EventStore | str,
    up_to_position: int | None = None,
    *,
    batch_size: int = 1000,
    copy_keys: bool = True,
    progress: ForkProgress | None = None,
) -> EventStore:
    """Copy the log up to a position into another store (any backend); return it.

    Positions, ids, stream versions and times are preserved. The target must be empty
    (a fresh fork). Encryption keys of the copied streams are copied too (a stream
    forgotten in the source stays forgotten); views, checkpoints and snapshots are not
    copied: they are derived and get rebuilt. ``progress(position, end)`` is called
    after each batch with the last copied position. A target given as a URL is opened
    here and returned open.
    """
    dest = open_store(target) if isinstance(target, str) else target
    try:
        if dest.last_position() != 0:
            raise StoreError(f"cannot fork into {dest.url}: the target store is not empty")
        last = source.last_position()
        end = last if up_to_position is None else min(up_to_position, last)
        streams: set[str] = set()
        position = 0
        while position < end:
            batch = source.read_all(position, batch_size, None, end)
            if not batch:
                break
            dest.import_events(batch)
            if copy_keys:
                streams.update(e.stream for e in batch)
            position = batch[-1].position
            if progress is not None:
                progress(position, end)
        if copy_keys and streams:
            with source.transaction() as src, dest.transaction() as dst:
                for stream in sorted(streams):
                    key = src.get_key(stream)
                    if key is not None:
                        dst.put_key(stream, key)
    except BaseException:
        if isinstance(target, str):
            dest.close()
        raise
    return dest
