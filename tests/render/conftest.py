"""Shared fixtures of the render tests: the coffee shop, loaded once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stormgen import LoadedModel
from stormgen.lang import parse_model
from stormgen.render.targets import with_graph

ROOT = Path(__file__).resolve().parents[2]
COFFEE_SHOP = ROOT / "examples" / "coffee_shop.storm"


@pytest.fixture(scope="session")
def coffee() -> LoadedModel:
    return with_graph(parse_model(COFFEE_SHOP))


@pytest.fixture
def load_text(tmp_path: Path) -> Callable[[str], LoadedModel]:
    """Parse a model given as text (written to a temporary file first)."""

    def load(text: str, name: str = "model.storm") -> LoadedModel:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return with_graph(parse_model(path))

    return load
