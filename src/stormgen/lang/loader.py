"""Load a `.storm` file and the files it imports into one :class:`~stormgen.model.nodes.Model`."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stormgen._gc import collector_paused
from stormgen.diagnostics import Diagnostic, Level, Location, ModelError
from stormgen.lang import tree
from stormgen.lang.builder import Builder, FileParts
from stormgen.lang.grammar import (
    LineIndex,
    blank_comments,
    deepest_nesting,
    syntax_diagnostic,
)
from stormgen.model import nodes as n

# The parser recurses a few frames per nesting level; this allows a few hundred
# levels of parentheses, far beyond any real model, and deeper input is reported as
# E001 "nesting too deep" instead of crashing.
_RECURSION_LIMIT = 12_000


def model_name_from_path(path: str) -> str:
    """``coffee_shop.storm`` → ``CoffeeShop``; a name that would start with a digit gets ``M``."""
    stem = Path(path).name.split(".")[0]
    name = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+|_", stem) if p)
    if not name:
        return "Model"
    return name if not name[0].isdigit() else "M" + name


@contextmanager
def _parsing() -> Iterator[None]:
    """Pause the garbage collector and allow deep recursion while parsing.

    Parsing allocates millions of small objects and no garbage cycles worth finding:
    the collector alone was a third of the time on large models.
    """
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    try:
        with collector_paused():
            yield
    finally:
        sys.setrecursionlimit(limit)


def _error(code: str, message: str, loc: Location | None) -> Diagnostic:
    return Diagnostic(code, Level.ERROR, message, loc)


def read_source(display: str, imported_at: Location | None) -> str | Diagnostic:
    """The text of a file, or the E001/E002 that says why it cannot be read."""
    what = "imported file" if imported_at else "file"
    try:
        raw = Path(display).read_bytes()
    except FileNotFoundError:
        return _error("E002", f"cannot read {what} {display}: no such file", imported_at)
    except IsADirectoryError:
        return _error("E002", f"cannot read {what} {display}: it is a folder", imported_at)
    except PermissionError:
        return _error("E002", f"cannot read {what} {display}: permission denied", imported_at)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return _error("E002", f"cannot read {what} {display}: {reason}", imported_at)
    nul = raw.find(b"\x00")
    if nul != -1:
        line, col = _byte_linecol(raw, nul)
        return _error(
            "E001",
            f"{display} is a binary file, not a .storm text (NUL byte)",
            Location(display, line, col),
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _byte_linecol(raw, exc.start)
        return _error(
            "E001",
            f"{display} is not valid UTF-8 text (byte 0x{raw[exc.start]:02x})",
            Location(display, line, col),
        )


def _byte_linecol(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    prefix = raw[line_start:offset].decode("utf-8", errors="replace")
    return raw.count(b"\n", 0, offset) + 1, len(prefix) + 1


def parse_text(text: str, display: str) -> FileParts | list[Diagnostic]:
    """Parse one file's text; its parts, or the diagnostics that stop it."""
    from textx.exceptions import TextXError, TextXSyntaxError

    text = blank_comments(text)
    try:
        tx_model = tree.parse(text)
    except TextXSyntaxError as exc:
        return [syntax_diagnostic(text, display, exc, LineIndex.of(text))]
    except RecursionError:
        return [_too_deep(text, display)]
    except TextXError as exc:  # not expected from this grammar; still a located E001
        line, col = int(exc.line or 1), int(exc.col or 1)
        return [_error("E001", f"syntax error: {exc.message}", Location(display, line, col))]
    if tx_model is None:  # a file with nothing in it
        return FileParts()
    builder = Builder(display, LineIndex.of(text).starts)
    try:
        parts = builder.file_parts(tx_model)
    except RecursionError:
        return [_too_deep(text, display)]
    if builder.diagnostics:
        return builder.diagnostics
    return parts


def _too_deep(text: str, display: str) -> Diagnostic:
    line, col = LineIndex.of(text).linecol(deepest_nesting(text))
    return _error("E001", "nesting too deep for the parser", Location(display, line, col))


def parse_model(path: str | os.PathLike[str]) -> n.Model:
    """Read a model: the file at ``path`` and every file it imports, each once.

    Raises :class:`~stormgen.diagnostics.ModelError` with E001 (syntax) and E002
    (unreadable file) diagnostics when the model cannot be read.
    """
    root = os.fspath(path)
    diagnostics: list[Diagnostic] = []
    files: list[n.SourceFile] = []
    parts: list[FileParts] = []
    seen: set[str] = set()
    # Depth-first, in the order the imports are written: each file once, cycles allowed.
    pending: list[tuple[str, Location | None]] = [(root, None)]
    with _parsing():
        while pending:
            display, imported_at = pending.pop()
            key = os.path.realpath(display)
            if key in seen:
                continue
            seen.add(key)
            source = read_source(display, imported_at)
            if isinstance(source, Diagnostic):
                diagnostics.append(source)
                continue
            result = parse_text(source, display)
            if isinstance(result, list):
                diagnostics.extend(result)
                continue
            files.append(n.SourceFile(display, Location(display, 1, 1)))
            parts.append(result)
            base = os.path.dirname(display)
            for target, loc in reversed(result.imports):
                pending.append((os.path.normpath(os.path.join(base, target)), loc))
    if diagnostics:
        raise ModelError(diagnostics)
    return _merge(root, files, parts)


def _merge(root: str, files: list[n.SourceFile], parts: list[FileParts]) -> n.Model:
    head = parts[0]
    declared = head.header_name is not None
    return n.Model(
        name=head.header_name if head.header_name is not None else model_name_from_path(root),
        loc=head.header_loc or Location(root, 1, 1),
        description=head.header_desc,
        files=tuple(files),
        actors=tuple(a for p in parts for a in p.actors),
        values=tuple(v for p in parts for v in p.values),
        enums=tuple(e for p in parts for e in p.enums),
        contexts=tuple(c for p in parts for c in p.contexts),
        maps=tuple(m for p in parts for m in p.maps),
        name_declared=declared,
        scenarios=tuple(s for p in parts for s in p.scenarios),
    )
