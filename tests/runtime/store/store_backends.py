"""Backends for the store contract suite: each test module imports these fixtures.

PostgreSQL runs when ``STORMGEN_TEST_POSTGRES`` names a server (each test gets a fresh
schema, dropped afterwards); without it the PostgreSQL cases skip with a reason. When
the variable is set and the server is unreachable the cases fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_support import StoreURLs, pg_base_url
from runtime_support import with_schema as with_schema  # re-exported for the tests

from stormgen.runtime.store import EventStore, open_store

BACKENDS = ["memory", "sqlite", "postgres"]

StoreFactory = Callable[[], EventStore]


class Backend(StoreURLs):
    """Makes stores of one backend for one test, and cleans up after it."""

    prefix = "test"

    def __init__(self, kind: str, tmp_path: Path) -> None:
        super().__init__(kind, tmp_path)
        self.stores: list[EventStore] = []

    def new_url(self) -> str:
        """Return the URL of a new, empty store of this backend."""
        return self.url()

    def open(self, url: str | None = None) -> EventStore:
        """Open (and remember to close) a store; a new empty one without a URL."""
        store = open_store(url or self.new_url())
        self.stores.append(store)
        return store

    def cleanup(self) -> None:
        for store in self.stores:
            store.close()
        self.drop_schemas()


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
