"""Helpers for the domain-layer tests: applications on every store backend.

Tests import these from here, never from ``conftest`` by name: when several test folders
run together, ``conftest`` names whichever folder's conftest pytest loaded last. The
tests in ``store/`` can import this module too: the conftest beside it puts this folder
on ``sys.path``.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stormgen.runtime import Application, RetrySettings

PG_ENV = "STORMGEN_TEST_POSTGRES"

#: tiny delays so failure tests run fast
FAST_RETRY = RetrySettings(max_attempts=3, base_delay=0.001, max_delay=0.01, idle_timeout=0.05)


def pg_base_url() -> str:
    """Return the PostgreSQL URL from the environment, or skip the test."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL cases skipped")
    return url


@contextmanager
def collections_counted() -> Iterator[list[int]]:
    """The generations of the cycle collections that start inside the block, with a
    collection due at every allocation it counts (threshold 1)."""
    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    threshold = gc.get_threshold()
    gc.callbacks.append(count)
    gc.set_threshold(1)
    try:
        yield started
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(count)


def with_schema(url: str, schema: str) -> str:
    """Add ``schema=`` to a PostgreSQL URL."""
    return url + ("&" if "?" in url else "?") + f"schema={schema}"


class StoreURLs:
    """Makes URLs of new, empty stores of one backend for a test; drops their schemas."""

    #: tells this suite's stores apart (memory store names, PostgreSQL schemas)
    prefix = "rt"

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.schemas: list[str] = []
        self.count = 0

    def url(self) -> str:
        """A new, empty store's URL."""
        self.count += 1
        if self.kind == "memory":
            return f"memory://{self.prefix}-{uuid.uuid4().hex}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path}/events-{self.count}.db"
        schema = f"stormgen_{self.prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        self.schemas.append(schema)
        return with_schema(pg_base_url(), schema)

    def drop_schemas(self) -> None:
        if self.schemas:
            with psycopg.connect(pg_base_url(), autocommit=True) as conn:
                for schema in self.schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Stores(StoreURLs):
    """Makes store URLs of one backend for a test, opens applications, cleans up."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        super().__init__(kind, tmp_path)
        self.apps: list[Application] = []

    def app(self, url: str | None = None, **definitions: Any) -> Application:
        """An application on a new store (or `url`), closed after the test."""
        definitions.setdefault("retry", FAST_RETRY)
        app = Application.open(url or self.url(), **definitions)
        self.apps.append(app)
        return app

    def cleanup(self) -> None:
        for app in self.apps:
            app.close()
        self.drop_schemas()


def make_stores(kind: str, tmp_path: Path) -> Iterator[Stores]:
    """Yield a `Stores` of one backend (skip PostgreSQL without a server), then clean up."""
    if kind == "postgres" and not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL cases skipped")
    stores = Stores(kind, tmp_path)
    yield stores
    stores.cleanup()


#: The keys of an event's JSON envelope, in the order `RecordedEvent.to_json` gives them.
ENVELOPE_FIELDS = [
    "id",
    "type",
    "version",
    "stream",
    "stream_id",
    "stream_version",
    "position",
    "recorded_at",
    "data",
    "metadata",
]
