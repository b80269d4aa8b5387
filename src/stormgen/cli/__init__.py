"""The ``stormgen`` command line: one module per command group, registered here.

Each command is a thin wrapper over library functions. The tool's own errors
(:class:`~stormgen.diagnostics.StormgenError`) are caught once, in :func:`main`, and
printed as one sentence on stderr; no traceback ever reaches the user.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from stormgen.cli import board, diff, generate, graph, init, ops, run, scenarios, up, validate
from stormgen.cli._console import err_console
from stormgen.diagnostics import StormgenError

#: The commands in the order a user meets them: a model, its checks and pictures, the
#: service, the operations on its store, then comparing a changed model with the old.
COMMANDS: tuple[Callable[..., Any], ...] = (
    init.init,
    validate.validate,
    scenarios.test,
    graph.graph,
    board.board,
    generate.generate,
    run.run,
    up.up,
    ops.events,
    ops.state,
    ops.replay,
    ops.fork,
    ops.merge,
    ops.info,
    ops.forget,
    diff.diff,
)
COMMAND_ORDER = tuple(command.__name__ for command in COMMANDS)


# Recent typer carries its own copy of click (`typer._click`), older typer is click's:
# `typer.Exit` and `typer.Abort` are the ones raised either way, and the base of the
# usage errors is found above `typer.BadParameter` (click's `ClickException`, or the copy).
_CLICK_ERRORS: tuple[type[BaseException], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


class _Commands(TyperGroup):
    """Lists the commands in `COMMAND_ORDER` (any other after them, as registered)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    name="stormgen",
    cls=_Commands,
    help="Turn an Event Storming model (.storm) into a running event-sourced service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from stormgen import __version__

        print(f"stormgen {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print stormgen's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Turn an Event Storming model (.storm) into a running event-sourced service."""


for _command in COMMANDS:
    app.command()(_command)


def main() -> None:
    """Entry point of the console script."""
    try:
        _main()
    finally:
        # The process ends here. Python's shutdown runs the cyclic collector over every
        # object still alive (a loaded model is millions), more than once: ~3 s of CPU
        # after `generate` of a large model. Frozen objects are skipped; reference
        # counting and atexit handlers still run as usual.
        gc.freeze()


def _main() -> None:
    try:
        # Without standalone mode click returns a `typer.Exit`'s code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except StormgenError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors and anything unforeseen
        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, _CLICK_ERRORS):
            shown: Any = exc
            shown.show(file=sys.stderr)
            sys.exit(2)
        if isinstance(exc, typer.Abort):
            sys.exit(1)
        err_console.print(
            f"internal error: {type(exc).__name__}: {exc} (please report this)", markup=False
        )
        sys.exit(3)
