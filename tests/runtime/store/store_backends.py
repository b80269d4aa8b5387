"""Backends for the store contract suite: each test module imports these fixtures.

PostgreSQL runs when ``STORMGEN_TEST_POSTGRES`` names a server (each test gets a fresh
schema, dropped afterwards); without it the PostgreSQL cases skip with a reason. When
the variable is set and the server is unreachable the cases fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from stormgen.runtime.store import EventStore, open_store

PG_ENV = "STORMGEN_TEST_POSTGRES"
BACKENDS = ["memory", "sqlite", "postgres"]

StoreFactory = Callable[[], EventStore]


def pg_base_url() -> str:
    """Return the PostgreSQL URL from the environment, or skip the test."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL store tests skipped")
    return url


def with_schema(url: str, schema: str) -> str:
    """Add ``schema=`` to a PostgreSQL URL."""
    return url + ("&" if "?" in url else "?") + f"schema={schema}"


class Backend:
    """Makes store URLs of one backend for one test, and cleans up after it."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.schemas: list[str] = []
        self.stores: list[EventStore] = []
        self.count = 0

    def new_url(self) -> str:
        """Return the URL of a new, empty store of this backend."""
        self.count += 1
        if self.kind == "memory":
            return f"memory://test-{uuid.uuid4().hex}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path}/events-{self.count}.db"
        schema = f"stormgen_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        self.schemas.append(schema)
        return with_schema(pg_base_url(), schema)

    def open(self, url: str | None = None) -> EventStore:
        """Open (and remember to close) a store; a new empty one without a URL."""
        store = open_store(url or self.new_url())
        self.stores.append(store)
        return store

    def cleanup(self) -> None:
        for store in self.stores:
            store.close()
        if self.schemas:
            with psycopg.connect(pg_base_url(), autocommit=True) as conn:
                for schema in self.schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    b = make_backend(kind, tmp_path)
    yield b
    b.cleanup()


@pytest.fixture(params=BACKENDS, name="backend")
def backend_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn."""
    yield from _backend(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"], name="db_backend")
def db_backend_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The backends that persist to a database shared between processes."""
    yield from _backend(request.param, tmp_path)


@pytest.fixture(name="store")
def store_fixture(backend: Backend) -> EventStore:
    """A fresh, empty store of each backend."""
    return backend.open()


def make_backend(kind: str, tmp_path: Path) -> Backend:
    """A backend helper outside the parametrized fixtures (for cross-backend tests)."""
    if kind == "postgres":
        pg_base_url()
    return Backend(kind, tmp_path)
