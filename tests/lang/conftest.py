"""Helpers for the language tests: write `.storm` files and parse them for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stormgen.diagnostics import Diagnostic, ModelError
from stormgen.lang import parse_model
from stormgen.model.nodes import Model


@pytest.fixture
def parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Model]:
    """Parse a text written to ``model.storm`` (paths in locations stay relative)."""
    monkeypatch.chdir(tmp_path)

    def run(text: str, name: str = "model.storm") -> Model:
        Path(name).write_text(text, encoding="utf-8")
        return parse_model(name)

    return run


@pytest.fixture
def errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[Diagnostic]]:
    """The diagnostics of a text that must fail to load."""
    monkeypatch.chdir(tmp_path)

    def run(text: str, name: str = "model.storm") -> list[Diagnostic]:
        Path(name).write_text(text, encoding="utf-8")
        with pytest.raises(ModelError) as info:
            parse_model(name)
        return info.value.diagnostics

    return run
