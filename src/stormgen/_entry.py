"""The ``stormgen`` console script: the command line when the generator is installed.

``pip install stormgen`` installs only what a generated service runs on
(:mod:`stormgen.runtime`); the command line, the language and the generator are the
``generator`` extra (README, "Installing"). Without it ``stormgen`` says so in one
sentence instead of a traceback.
"""

from __future__ import annotations

import sys

#: The top-level modules of the ``generator`` extra (pyproject.toml).
GENERATOR_MODULES = frozenset({"textx", "arpeggio", "jinja2", "typer", "rich", "networkx", "ruff"})


def main() -> None:
    """Run the command line, or explain that the ``generator`` extra is missing."""
    try:
        from stormgen.cli import main as cli_main
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in GENERATOR_MODULES:
            raise
        print(
            f"error: the stormgen command needs the generator ({exc.name} is missing):"
            " pip install 'stormgen[generator]'",
            file=sys.stderr,
        )
        sys.exit(2)
    cli_main()
