"""Fixtures of the store contract suite: a fresh store of every backend for each test.

PostgreSQL runs when ``STORMGEN_TEST_POSTGRES`` names a server (each test gets a fresh
schema, dropped afterwards); without it the PostgreSQL cases skip with a reason. When
the variable is set and the server is unreachable the cases fail. The helpers the
tests use by name (`Backend`, `make_backend`) live in ``store_backends``: import them
from there, never from ``conftest``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from runtime_support import pg_base_url
from store_backends import BACKENDS, DB_BACKENDS, Backend, make_backend

from stormgen.runtime.store import EventStore


def _backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    b = make_backend(kind, tmp_path)
    yield b
    b.cleanup()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn."""
    yield from _backend(request.param, tmp_path)


@pytest.fixture(params=DB_BACKENDS)
def db_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The backends that persist to a database shared between processes."""
    yield from _backend(request.param, tmp_path)


@pytest.fixture
def store(backend: Backend) -> EventStore:
    """A fresh, empty store of each backend."""
    return backend.open()


@pytest.fixture
def schema() -> Iterator[str]:
    """The name of a PostgreSQL schema for one test, dropped afterwards (a skip without
    ``STORMGEN_TEST_POSTGRES``)."""
    base = pg_base_url()
    name = f"stormgen_test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
