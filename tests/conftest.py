"""Fixtures and hooks of the whole suite."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the modules marked `slow` are handed out first.

    Workers take a module at a time in the order collected (``--dist loadfile
    --no-loadscope-reorder``): a module of minutes started last would run alone at
    the end while the other workers sit idle.
    """
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
