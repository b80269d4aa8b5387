"""``stormgen test MODEL``: run the model's scenarios on the model (docs/language.md).

Nothing is generated: each scenario's ``given``/``when`` is played on the model's own
meaning and its ``then`` compared field by field. Exit 0 when every scenario passes,
1 when one fails, 2 when the model cannot be read or does not validate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from stormgen.cli._console import console, err_console
from stormgen.cli._report import OutputFormat, load_model, render_text
from stormgen.diagnostics import Level


def test(
    model: Annotated[Path, typer.Argument(help="The .storm file whose scenarios to run.")],
    format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for tools.")
    ] = OutputFormat.text,
) -> None:
    """Run every scenario of a model: exit 0 if all pass, 1 if one fails, 2 if invalid."""
    from stormgen.checks import check
    from stormgen.model.scope import Scope
    from stormgen.render.python.model_run import run_scenarios

    loaded = load_model(model, format)
    scope = Scope(loaded)
    errors = [d for d in check(loaded, scope) if d.level is Level.ERROR]
    if errors:
        if format is OutputFormat.json:
            report = {"valid": False, "diagnostics": [d.to_json() for d in errors]}
            typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            for line in render_text(errors):
                err_console.print(line, markup=False, highlight=False)
            err_console.print(
                f"error: {model} does not validate: its scenarios cannot run",
                markup=False,
                highlight=False,
            )
        raise typer.Exit(2)
    results = run_scenarios(loaded, scope)
    failed = sum(1 for r in results if not r.passed)
    if format is OutputFormat.json:
        report = {
            "valid": True,
            "passed": len(results) - failed,
            "failed": failed,
            "scenarios": [r.to_json() for r in results],
        }
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for r in results:
            loc = r.scenario.loc
            line = Text()
            line.append(
                "PASS " if r.passed else "FAIL ", style="bold green" if r.passed else "bold red"
            )
            line.append(f"{loc.file}:{loc.line}:{loc.column}: ", style="bold")
            where = f"{r.context}: " if r.context else ""
            line.append(f'{where}"{r.scenario.name}"')
            console.print(line, markup=False, highlight=False)
            if r.error is not None:
                console.print(f"  {r.error}", markup=False, highlight=False)
            for d in r.differences:
                console.print(
                    f"  {d.loc.file}:{d.loc.line}:{d.loc.column}: {d.what}\n"
                    f"    expected: {d.expected}\n"
                    f"    actual:   {d.actual}",
                    markup=False,
                    highlight=False,
                )
        total = f"{len(results)} scenario{'' if len(results) == 1 else 's'}"
        summary = f"{total}: {len(results) - failed} passed, {failed} failed"
        console.print(Text(summary, style="bold"), markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)
