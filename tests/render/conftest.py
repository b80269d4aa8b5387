"""Shared fixtures of the render tests: the coffee shop, loaded once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stormgen.lang import parse_model
from stormgen.render.targets import ModelWithGraph

ROOT = Path(__file__).resolve().parents[2]
COFFEE_SHOP = ROOT / "examples" / "coffee_shop.storm"


@pytest.fixture(scope="session")
def coffee() -> ModelWithGraph:
    return ModelWithGraph.of(parse_model(COFFEE_SHOP))


@pytest.fixture
def load_text(tmp_path: Path) -> Callable[[str], ModelWithGraph]:
    """Parse a model given as text (written to a temporary file first)."""

    def load(text: str, name: str = "model.storm") -> ModelWithGraph:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return ModelWithGraph.of(parse_model(path))

    return load
