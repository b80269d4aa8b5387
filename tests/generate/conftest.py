"""Fixtures of the python target's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every generated project: stormgen is analysed once."""
    return tmp_path_factory.mktemp("mypy-cache")
