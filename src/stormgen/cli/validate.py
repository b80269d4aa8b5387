"""``stormgen validate MODEL``: report every finding of the checks (docs/language.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormgen.checks import check
from stormgen.cli._report import OutputFormat, load_model, print_diagnostics
from stormgen.diagnostics import Level


def validate(
    model: Annotated[Path, typer.Argument(help="The .storm file to check.")],
    format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for tools.")
    ] = OutputFormat.text,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on any finding, warnings and hotspots too.")
    ] = False,
) -> None:
    """Check a model: exit 0 when clean or warnings only, 1 on errors, 2 if unreadable."""
    diagnostics = check(load_model(model, format))
    print_diagnostics(diagnostics, format)
    if any(d.level is Level.ERROR for d in diagnostics) or (strict and diagnostics):
        raise typer.Exit(1)
