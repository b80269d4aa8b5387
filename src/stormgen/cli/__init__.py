"""The ``stormgen`` command line: one module per command group, combined here.

Each command is a thin wrapper over library functions. The tool's own errors
(:class:`~stormgen.diagnostics.StormgenError`) are caught once, in :func:`main`, and
printed as one sentence on stderr; no traceback ever reaches the user.
"""

from __future__ import annotations

import gc
import sys

import typer

from stormgen.cli._console import err_console
from stormgen.diagnostics import StormgenError

app = typer.Typer(
    name="stormgen",
    help="Turn an Event Storming model (.storm) into a running event-sourced service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Each module adds its commands to ``app`` when imported.
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register()


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
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show(file=sys.stderr)
            sys.exit(2)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        err_console.print(
            f"internal error: {type(exc).__name__}: {exc} (please report this)", markup=False
        )
        sys.exit(3)
