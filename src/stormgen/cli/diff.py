"""``stormgen diff OLD NEW``: breaking changes between two models' event schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormgen.cli._report import OutputFormat, load_model, print_diagnostics
from stormgen.model.diff import diff_models


def diff(
    old: Annotated[Path, typer.Argument(help="The model as it was (what stored events follow).")],
    new: Annotated[Path, typer.Argument(help="The model as it is now.")],
    format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for tools.")
    ] = OutputFormat.text,
) -> None:
    """Report breaking event-schema changes (B-codes): exit 1 if any, 2 if unreadable."""
    changes = diff_models(load_model(old, format), load_model(new, format))
    n = len(changes)
    summary = "no breaking changes" if n == 0 else f"{n} breaking change{'s' if n > 1 else ''}"
    print_diagnostics(changes, format, summary_line=summary)
    if changes:
        raise typer.Exit(1)
