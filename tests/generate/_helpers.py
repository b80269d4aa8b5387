"""Helpers of the python target's tests: generate a model into a folder, run tools on it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from stormgen import load
from stormgen.checks import check
from stormgen.lang import parse_model
from stormgen.render.output import RenderedFile
from stormgen.render.python import render_project, ruff_executable
from stormgen.render.targets import normalize, plan, write_files

ROOT = Path(__file__).resolve().parents[2]
#: Every example model: ``examples/x.storm``, and ``examples/x/x.storm`` for a model
#: split over several files (the root file imports the others).
EXAMPLES = sorted(
    [*(ROOT / "examples").glob("*.storm"), *(ROOT / "examples").glob("*/*.storm")],
    key=lambda p: p.as_posix(),
)
EXAMPLES = [p for p in EXAMPLES if p.parent.name in ("examples", p.stem)]
TRICKY = Path(__file__).with_name("tricky.storm")
#: Every construct of the language (docs/reference/) that changes generated code.
FEATURES = Path(__file__).with_name("features.storm")
#: The same names in several contexts.
CLASHES = Path(__file__).with_name("clashes.storm")


def errors(folder: Path, text: str) -> list[tuple[str, str, int, int]]:
    """The errors `validate` finds in a model's text: code, message, line and column."""
    path = folder / "broken.storm"
    path.write_text(text)
    return [
        (d.code, d.message, d.location.line, d.location.column)
        for d in check(parse_model(path))
        if d.code.startswith("E")
    ]


def render(model: Path) -> dict[str, RenderedFile]:
    """The python target's files for a model, as the CLI would write them."""
    return normalize(render_project(load(model)))


def generate(model: Path, out: Path) -> Path:
    """Write (or update) the generated project for ``model`` in ``out``, like the CLI."""
    files = render(model)
    write_files(files, out, plan(files, out).write)
    return out


def run(args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """Run a tool in ``cwd``; fail the test with its output when it fails."""
    merged = {**os.environ, **(env or {})}
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=merged, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def check_project(project: Path, mypy_cache: Path) -> None:
    """ruff, mypy --strict and the project's own tests, each in a subprocess."""
    ruff = ruff_executable()
    run([ruff, "check", "--no-cache", "."], project)
    run([ruff, "format", "--check", "--no-cache", "."], project)
    run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(mypy_cache)], project)
    run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        project,
        env={"PYTHONPATH": str(project / "src")},
    )
