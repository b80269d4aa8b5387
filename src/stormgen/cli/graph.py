"""``stormgen graph MODEL``: the context map, or with ``--flow`` the event flow."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from stormgen.cli._console import err_console
from stormgen.cli._report import OutputFormat, load_model
from stormgen.diagnostics import Level


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"
    html = "html"


def warn_if_invalid(model_path: Path, model: object) -> None:
    """Say on stderr that a model with errors is drawn without its broken references."""
    from stormgen.checks import check
    from stormgen.model.nodes import Model

    assert isinstance(model, Model)
    errors = sum(1 for d in check(model) if d.level is Level.ERROR)
    if errors:
        err_console.print(
            f"warning: {model_path} has {errors} error{'s' if errors != 1 else ''} "
            "(see 'stormgen validate'); references that do not resolve are not drawn",
            markup=False,
            highlight=False,
        )


def write_output(text: str, output: Path | None) -> None:
    """Write to ``output``, or to stdout when none is given."""
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        err_console.print(
            f"error: cannot write {output}: {exc.strerror or exc}", markup=False, highlight=False
        )
        raise typer.Exit(2) from None


def graph(
    model: Annotated[Path, typer.Argument(help="The .storm file to draw.")],
    format: Annotated[
        GraphFormat,
        typer.Option(
            "--format", "-f", help="mermaid, dot (Graphviz), svg or html (needs Graphviz)."
        ),
    ] = GraphFormat.mermaid,
    context: Annotated[
        str | None,
        typer.Option("--context", "-c", help="Only this context and the neighbours it talks to."),
    ] = None,
    flow: Annotated[
        bool, typer.Option("--flow", help="The event flow instead of the context map.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Draw the context map (contexts and their relations), or the event flow with --flow."""
    from stormgen.render.diagram import context_map, event_flow, to_dot, to_html, to_mermaid, to_svg
    from stormgen.render.targets import with_graph

    parsed = load_model(model, OutputFormat.text)
    warn_if_invalid(model, parsed)
    loaded = with_graph(parsed)
    diagram = (event_flow if flow else context_map)(loaded.graph, context)
    if format is GraphFormat.mermaid:
        text = to_mermaid(diagram)
    elif format is GraphFormat.dot:
        text = to_dot(diagram)
    elif format is GraphFormat.svg:
        text = to_svg(to_dot(diagram))
    else:
        text = to_html(diagram, to_svg(to_dot(diagram)), to_mermaid(diagram))
    write_output(text, output)
