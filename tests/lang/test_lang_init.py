"""`stormgen init NAME` writes a starter model that validates clean, and never overwrites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stormgen.cli import app
from stormgen.lang import parse_model


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_init_writes_a_model_and_a_readme() -> None:
    result = CliRunner().invoke(app, ["init", "MyShop"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path("MyShop").iterdir()) == ["README.md", "my_shop.storm"]
    assert "stormgen validate my_shop.storm" in Path("MyShop/README.md").read_text()
    model = parse_model("MyShop/my_shop.storm")
    assert model.name == "MyShop"
    assert [c.name for c in model.contexts] == ["Sales", "Shipping"]
    assert model.relations and model.actors
    shipping = model.contexts[1]
    assert shipping.externals and shipping.policies and shipping.views
    assert any(cmd.creates for a in shipping.aggregates for cmd in a.commands)
    assert any(e.published for a in model.contexts[0].aggregates for e in a.events)


def test_the_starter_model_validates_without_any_finding() -> None:
    from stormgen.checks import check

    assert CliRunner().invoke(app, ["init", "fresh-start"]).exit_code == 0
    model = parse_model("fresh-start/fresh_start.storm")
    assert model.name == "FreshStart"
    assert check(model) == []


def test_init_accepts_an_existing_empty_folder() -> None:
    Path("empty").mkdir()
    assert CliRunner().invoke(app, ["init", "empty"]).exit_code == 0
    assert Path("empty/empty.storm").is_file()


@pytest.mark.parametrize("existing", ["folder", "file"])
def test_init_refuses_an_existing_non_empty_folder_or_a_file(existing: str) -> None:
    if existing == "folder":
        Path("taken").mkdir()
        Path("taken/notes.txt").write_text("mine")
    else:
        Path("taken").write_text("mine")
    result = subprocess.run(
        [sys.executable, "-m", "stormgen", "init", "taken"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: taken already exists and is not an empty folder; "
        "choose another name or remove it first"
    )
    assert "Traceback" not in result.stderr
    if existing == "folder":
        assert sorted(p.name for p in Path("taken").iterdir()) == ["notes.txt"]
