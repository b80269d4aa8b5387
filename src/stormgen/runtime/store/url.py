"""Open a store from its URL (docs/runtime.md, "Stores") and fork one store's log into another."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from stormgen.runtime.envelope import JSONDict, format_time
from stormgen.runtime.errors import InvalidStoreURL, StoreError
from stormgen.runtime.store.base import MERGE_IN_PROGRESS, ORIGIN, EventStore

#: The store used when neither ``--store`` nor ``STORMGEN_STORE`` names one.
DEFAULT_STORE_URL = "sqlite:///./.stormgen/events.db"

#: The environment variable naming the store.
STORE_ENV = "STORMGEN_STORE"


def resolve_store_url(url: str | None = None) -> str:
    """Return ``url``, else ``$STORMGEN_STORE``, else :data:`DEFAULT_STORE_URL`."""
    if url:
        return url
    return os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def open_store(url: str | None = None, *, interrupted_merge: bool = False) -> EventStore:
    """Open (creating if needed) the store a URL names.

    ``memory://`` (a new in-process store; ``memory://name`` is shared by name
    within the process), ``sqlite:///relative/or//absolute/path.db``
    (``?synchronous=full|normal``), ``postgresql://user:pass@host:port/db``
    (``?schema=NAME``, ``?pool_max=N``). With no URL, ``$STORMGEN_STORE`` or the
    default ``sqlite:///./.stormgen/events.db``.

    A store an interrupted merge left is refused (`StoreError`) unless
    ``interrupted_merge`` (what a merge into it again asks for).
    """
    store = _open(resolve_store_url(url))
    if not interrupted_merge:
        try:
            started = store.get_meta(MERGE_IN_PROGRESS)
        except BaseException:
            store.close()
            raise
        if started is not None:
            store.close()
            raise StoreError(
                f"{store.url} is an unfinished merge (begun {started}, interrupted): "
                "merge into it again, or delete it"
            )
    return store


def _open(url: str) -> EventStore:
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

_origins = msgspec.json.Decoder(list[dict[str, Any]]).decode


def encode_origin(origins: list[JSONDict]) -> str:
    """The `ORIGIN` record of a list of origins (the nearest first)."""
    return msgspec.json.encode(origins).decode()


def origin_of(store: EventStore) -> list[JSONDict]:
    """Where a store came from (its `ORIGIN` record): the nearest origin first; empty
    for a store that is no fork nor merge."""
    text = store.get_meta(ORIGIN)
    if not text:
        return []
    try:
        return _origins(text)
    except msgspec.DecodeError:
        return [{"kind": "unreadable", "record": text}]


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
        origin: JSONDict = {
            "kind": "fork",
            "store_id": source.identity(),
            "url": source.url,
            "position": position,
            "event_id": None if not position else _event_id(source, position),
            "forked_at": format_time(datetime.now(UTC)),
        }
        with source.reading() as src, dest.transaction() as dst:
            if copy_keys:
                for stream in sorted(streams):
                    key = src.get_key(stream)
                    if key is not None:
                        dst.put_key(stream, key)
            # kept by later forks: the source's own origins follow
            dst.set_meta(ORIGIN, encode_origin([origin, *origin_of(source)]))
    except BaseException:
        if isinstance(target, str):
            dest.close()
        raise
    return dest


def _event_id(store: EventStore, position: int) -> str | None:
    event = store.read_event(position)
    return None if event is None else event.id
