"""`stormgen.load` and the benchmark's synthetic models, end to end."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import pytest

import stormgen
from stormgen.diagnostics import ModelError
from stormgen.model.nodes import Call, Comprehension, Expr
from stormgen.model.typecheck import subexpressions

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


@pytest.mark.parametrize("size", [1, 25])
def test_synthetic_models_validate_without_any_finding(tmp_path: Path, size: int) -> None:
    from stormgen.checks import check

    synth = _synth().synth  # type: ignore[attr-defined]
    path = tmp_path / "synth.storm"
    path.write_text(synth(size))  # 25: three contexts, the cross-context policies are there
    loaded = stormgen.load(path)
    aggregates = [a for c in loaded.model.contexts for a in c.aggregates]
    assert len(aggregates) == size and len(loaded.model.contexts) == (size + 9) // 10
    assert all(len(a.commands) == 5 and len(a.events) == 5 for a in aggregates)
    assert check(loaded.model) == []


def _forms(expressions: Iterable[Expr]) -> set[str]:
    """The language 2 forms used in ``expressions``, by name."""
    found: set[str] = set()
    for top in expressions:
        for e in subexpressions(top):
            if isinstance(e, Comprehension):
                found.add("comprehension if" if e.condition is not None else "comprehension")
            elif isinstance(e, Call) and e.args and isinstance(e.args[0], Comprehension):
                found.add(f"{e.function}(generator)")
            elif isinstance(e, Call) and e.function in ("seconds", "minutes", "days"):
                found.add("duration")
            else:
                found.add(type(e).__name__)
    return found


def test_synthetic_aggregates_use_every_language_2_form(tmp_path: Path) -> None:
    """Each aggregate's commands, views and policies hold the forms the benchmarks measure."""
    path = tmp_path / "synth.storm"
    path.write_text(_synth().synth(12))  # type: ignore[attr-defined]
    model = stormgen.load(path).model
    for context in model.contexts:
        for aggregate in context.aggregates:
            mine = aggregate.name
            commands = [
                *(r.condition for c in aggregate.commands for r in c.requires),
                *(let.value for c in aggregate.commands for let in c.lets),
                *(a.value for c in aggregate.commands for e in c.emits for a in e.assignments),
            ]
            assert {
                "comprehension if",
                "any(generator)",
                "all(generator)",
                "sum(generator)",
                "min(generator)",
                "max(generator)",
                "Conditional",
                "Construction",
                "Lookup",
                "duration",
            } <= _forms(commands), mine
            assert all(c.lets for c in aggregate.commands if c.name.startswith(("Rename", "Count")))
            number = mine.removeprefix("A")
            views = {f"{mine}Summary", f"{mine}Labels"}
            handlers = [o for v in context.views if v.name in views for o in v.handlers]
            assert any(o.condition is not None for o in handlers), mine
            assert any(o.lets for o in handlers), mine
            policies = {p.name: p for p in context.policies}
            reopen = policies[f"ReopenWhenCounted{number}"]
            assert reopen.condition is not None and "Lookup" in _forms([reopen.condition]), mine
            if context.name == "C0":
                fan = policies[f"CountWhenRenamed{number}"].thens[0].fan
                assert fan is not None and fan.condition is not None, mine
