"""Printing diagnostics for ``validate`` and ``diff``: gcc-style text or a JSON list."""

from __future__ import annotations

import json
from collections import Counter
from enum import StrEnum
from pathlib import Path

import typer
from rich.text import Text

from stormgen.cli._console import console, err_console
from stormgen.diagnostics import Diagnostic, Level, ModelError, StormgenError
from stormgen.model.nodes import Model

_STYLES = {Level.ERROR: "bold red", Level.WARNING: "bold yellow", Level.INFO: "bold cyan"}


class OutputFormat(StrEnum):
    """How ``validate`` and ``diff`` print their findings."""

    text = "text"
    json = "json"


class _Sources:
    """Source lines of the files findings point into, each file read once."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str] | None] = {}

    def line(self, file: str, number: int) -> str | None:
        if file not in self._lines:
            try:
                self._lines[file] = Path(file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                self._lines[file] = None
        lines = self._lines[file]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(diagnostics: list[Diagnostic]) -> str:
    """``1 error, 2 warnings, 3 infos`` (or ``no findings``)."""
    if not diagnostics:
        return "no findings"
    counts = Counter(d.level for d in diagnostics)
    return ", ".join(
        [
            _plural(counts[Level.ERROR], "error"),
            _plural(counts[Level.WARNING], "warning"),
            _plural(counts[Level.INFO], "info"),
        ]
    )


def render_text(diagnostics: list[Diagnostic], *, show_summary: bool = True) -> list[Text]:
    """Each finding as ``file:line:col: level[CODE]: message``, its source line with a
    caret under the column, and ``help:`` when a fix is known."""
    sources = _Sources()
    out: list[Text] = []
    for d in diagnostics:
        loc = d.location
        head = Text()
        if loc is not None:
            head.append(f"{loc.file}:{loc.line}:{loc.column}: ", style="bold")
        head.append(f"{d.level.value}[{d.code}]", style=_STYLES[d.level])
        head.append(f": {d.message}")
        out.append(head)
        source = sources.line(loc.file, loc.line) if loc is not None else None
        if loc is not None and source is not None:
            gutter = str(loc.line)
            out.append(Text(f" {gutter} | {source}"))
            # Keep tabs so the caret lines up under tab-indented source.
            pad = "".join(c if c == "\t" else " " for c in source[: loc.column - 1])
            caret = Text(f" {' ' * len(gutter)} | {pad}")
            caret.append("^", style=_STYLES[d.level])
            out.append(caret)
        if d.help:
            h = Text(" help: ", style="bold")
            h.append(d.help)
            out.append(h)
        out.append(Text(""))
    if show_summary:
        out.append(Text(summary(diagnostics), style="bold"))
    return out


def print_diagnostics(
    diagnostics: list[Diagnostic], fmt: OutputFormat, *, summary_line: str | None = None
) -> None:
    """Print findings on stdout (they are the command's result) in the chosen format."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False))
        return
    for line in render_text(diagnostics, show_summary=summary_line is None):
        console.print(line, markup=False, highlight=False)
    if summary_line is not None:
        console.print(Text(summary_line, style="bold"), markup=False, highlight=False)


def load_model(path: Path, fmt: OutputFormat) -> Model:
    """Parse ``path``; on failure print why and exit 2 (a missing file: one sentence on
    stderr; a syntax or import error: its E001/E002 findings, as any other finding)."""
    from stormgen.lang import parse_model

    if not path.exists():
        err_console.print(f"error: {path}: no such file", markup=False, highlight=False)
        raise typer.Exit(2)
    if not path.is_file():
        err_console.print(f"error: {path}: not a file", markup=False, highlight=False)
        raise typer.Exit(2)
    try:
        return parse_model(path)
    except ModelError as exc:
        print_diagnostics(exc.diagnostics, fmt)
        raise typer.Exit(2) from None
    except StormgenError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None
