"""``stormgen board MODEL -o board.html``: the model as an Event Storming board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormgen.cli._console import err_console
from stormgen.cli._report import OutputFormat, load_model
from stormgen.cli.graph import warn_if_invalid, write_output


def board(
    model: Annotated[Path, typer.Argument(help="The .storm file to show.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The HTML file to write [default: MODEL-board.html]."),
    ] = None,
) -> None:
    """Write the model as an Event Storming board: one HTML file that needs no network."""
    from stormgen.render.board import build_board, render_board_page
    from stormgen.render.targets import with_graph

    parsed = load_model(model, OutputFormat.text)
    warn_if_invalid(model, parsed)
    target = output if output is not None else Path(f"{model.stem}-board.html")
    if err_console.is_terminal:
        with err_console.status("laying out the board"):
            built = build_board(with_graph(parsed))
    else:
        built = build_board(with_graph(parsed))
    write_output(render_board_page(built), target)
    err_console.print(
        f"wrote {target} ({len(built.notes)} notes in {len(built.lanes)} lanes)",
        markup=False,
        highlight=False,
    )
