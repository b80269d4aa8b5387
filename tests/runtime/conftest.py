"""Fixtures for the domain-layer tests: applications on every store backend.

PostgreSQL cases run when ``STORMGEN_TEST_POSTGRES`` names a server (a fresh schema per
test, dropped afterwards) and skip with a reason otherwise. The helpers live in
``runtime_support`` (import them from there, not from ``conftest``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_support import Stores, make_stores

from stormgen.runtime import Application


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Every backend in turn."""
    yield from make_stores(request.param, tmp_path)


@pytest.fixture
def sqlite_stores(tmp_path: Path) -> Iterator[Stores]:
    """SQLite files only (for the less central cases)."""
    yield from make_stores("sqlite", tmp_path)


AppFactory = Callable[..., Application]


@pytest.fixture
def pg_stores(tmp_path: Path) -> Iterator[Stores]:
    """PostgreSQL only (what several service processes share)."""
    yield from make_stores("postgres", tmp_path)
