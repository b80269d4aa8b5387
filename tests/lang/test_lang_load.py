"""`stormgen.load` and the benchmark's synthetic models, end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import stormgen
from stormgen.diagnostics import ModelError

ROOT = Path(__file__).resolve().parents[2]


def test_load_gives_the_model_and_its_graph() -> None:
    loaded = stormgen.load(ROOT / "examples" / "library" / "library.storm")
    assert isinstance(loaded, stormgen.LoadedModel)
    assert loaded.model.name == "Library"
    assert {c.name for c in loaded.model.contexts} == {"Catalog", "Members", "Lending", "Notices"}
    assert loaded.graph.number_of_nodes() > 0 and loaded.graph.number_of_edges() > 0


def test_load_raises_model_error_with_the_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.storm"
    bad.write_text("context {}\n")
    with pytest.raises(ModelError) as info:
        stormgen.load(bad)
    assert [(d.code, d.location.line if d.location else None) for d in info.value.diagnostics] == [
        ("E001", 1)
    ]


def _synth() -> object:
    spec = importlib.util.spec_from_file_location("synth", ROOT / "benchmarks" / "synth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_models_validate_without_any_finding(tmp_path: Path) -> None:
    from stormgen.checks import check

    synth = _synth().synth  # type: ignore[attr-defined]
    path = tmp_path / "synth.storm"
    path.write_text(synth(25))  # three contexts: the cross-context policies are there
    loaded = stormgen.load(path)
    aggregates = [a for c in loaded.model.contexts for a in c.aggregates]
    assert len(aggregates) == 25 and len(loaded.model.contexts) == 3
    assert all(len(a.commands) == 5 and len(a.events) == 5 for a in aggregates)
    assert check(loaded.model) == []
