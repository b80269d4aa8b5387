"""Consoles for the CLI: results on stdout, diagnostics and errors on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

Advance = Callable[[int, int], None]
"""``advance(done, total)``: report progress of long work."""


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Advance]:
    """A rich progress bar on a terminal, as ``advance(done, total)``; a no-op otherwise.

    Long work (generating a big model, replays, forks) shows progress to a person, and
    nothing extra when stderr is a pipe, a file or a test.
    """
    if not err_console.is_terminal:
        yield _ignore
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _ignore(done: int, total: int) -> None:
    """Progress nobody watches."""
