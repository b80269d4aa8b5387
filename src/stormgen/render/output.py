"""What renderers return: files keyed by their path in the output folder.

A plain ``str`` is a file stormgen owns (rewritten by every run, compared by
``--check``); a :class:`RenderedFile` with ``overwrite=False`` is a file meant for the
user, written once when missing. The renderers and :mod:`stormgen.render.targets`,
which runs them and writes their files, both depend on this module and not on each
other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """One rendered file; ``overwrite=False`` marks a user-owned file written only once."""

    content: str
    overwrite: bool = True


Rendered = Mapping[str, "str | RenderedFile"]

#: ``progress(done, total)``, called by a renderer as it goes (a progress bar on a terminal).
Progress = Callable[[int, int], None]


def make_folders(root: Path, paths: Iterable[str]) -> None:
    """Create the folders the files at ``paths`` (relative to ``root``) go into, each
    once (not once per file: thousands of files share a few hundred folders)."""
    for folder in sorted({(root / rel).parent for rel in paths}):
        folder.mkdir(parents=True, exist_ok=True)
