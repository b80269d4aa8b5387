"""The registry of ``stormgen generate`` targets and the interface renderers implement.

A *renderer* is a function ``render(loaded) -> Mapping[str, str | RenderedFile]``:
it receives the loaded model (:class:`stormgen.LoadedModel`: ``.model`` and
``.graph``) and returns every file it produces, keyed by a POSIX path relative to the
output folder. A plain ``str`` value is a file stormgen owns: rewritten by every run
and compared by ``--check``. A :class:`RenderedFile` with ``overwrite=False`` is a
file meant for the user (a handler override, an adapter): written once when missing,
never overwritten, and not compared by ``--check`` (only its absence is drift).
Renderers never touch the disk and return the same bytes for the same model (no
timestamps), so generating twice gives identical trees.

A renderer may also accept a keyword argument ``progress``: a callable
``progress(done, total)`` it calls as it goes, which the CLI turns into a progress
bar on a terminal.

The ``python`` target is provided by :mod:`stormgen.render.python`, when that package
exists and defines ``render_project`` with the renderer signature above; it is looked
up lazily so that the other targets work without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stormgen import LoadedModel
from stormgen.diagnostics import StormgenError
from stormgen.model.nodes import Model


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """One rendered file; ``overwrite=False`` marks a user-owned file written only once."""

    content: str
    overwrite: bool = True


Rendered = Mapping[str, "str | RenderedFile"]
Progress = Callable[[int, int], None]


def with_graph(model: Model) -> LoadedModel:
    """A parsed model with its graph, as :func:`stormgen.load` returns it."""
    from stormgen.model.graph import build_graph

    return LoadedModel(model, build_graph(model))


class Renderer(Protocol):
    def __call__(self, loaded: LoadedModel, /) -> Rendered: ...


class TargetUnavailable(StormgenError):
    """A known target whose implementation is not installed."""

    exit_code = 2


def _render_python(loaded: LoadedModel, /, **kwargs: Any) -> Rendered:
    # Only a missing package means "not available": an import error inside it is a bug
    # and must surface as one.
    found = importlib.util.find_spec("stormgen.render.python") is not None
    module = importlib.import_module("stormgen.render.python") if found else None
    render = getattr(module, "render_project", None)
    if render is None:
        raise TargetUnavailable(
            "the python target is not available yet in this version of stormgen"
        )
    result: Rendered = render(loaded, **_accepted(render, kwargs))
    return result


def _render_docs(loaded: LoadedModel, /, **kwargs: Any) -> Rendered:
    from stormgen.render.docs import render_docs

    return render_docs(loaded, **kwargs)


def _render_asyncapi(loaded: LoadedModel, /, **kwargs: Any) -> Rendered:
    from stormgen.render.asyncapi import render_asyncapi

    return render_asyncapi(loaded, **kwargs)


def _render_jsonschema(loaded: LoadedModel, /, **kwargs: Any) -> Rendered:
    from stormgen.render.jsonschema import render_jsonschemas

    return render_jsonschemas(loaded, **kwargs)


#: Target name -> renderer; ``python`` is the default target of ``stormgen generate``.
TARGETS: dict[str, Callable[..., Rendered]] = {
    "python": _render_python,
    "docs": _render_docs,
    "asyncapi": _render_asyncapi,
    "jsonschema": _render_jsonschema,
}


def _accepted(function: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``function`` accepts (renderers may ignore ``progress``)."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def render_target(target: str, loaded: LoadedModel, progress: Progress | None = None) -> Rendered:
    """Run one target's renderer; an unknown target is a :class:`StormgenError`."""
    renderer = TARGETS.get(target)
    if renderer is None:
        raise StormgenError(
            f"unknown target '{target}' (choose one of: {', '.join(sorted(TARGETS))})"
        )
    kwargs: dict[str, Any] = {"progress": progress} if progress is not None else {}
    return renderer(loaded, **kwargs)


def normalize(rendered: Rendered) -> dict[str, RenderedFile]:
    """Every value as a :class:`RenderedFile`, keys sorted, paths checked to stay inside."""
    files: dict[str, RenderedFile] = {}
    for path in sorted(rendered):
        rel = Path(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise StormgenError(f"a renderer produced a path outside the output folder: {path}")
        value = rendered[path]
        files[path] = value if isinstance(value, RenderedFile) else RenderedFile(value)
    return files


@dataclass(frozen=True, slots=True)
class Plan:
    """What writing a rendered tree into a folder would change."""

    write: tuple[str, ...]  # files missing or differing (would be (re)written)
    unchanged: tuple[str, ...]
    kept: tuple[str, ...]  # user-owned files that exist and are left alone


def plan(files: Mapping[str, RenderedFile], out_dir: Path) -> Plan:
    """Compare rendered files with the folder's contents, without writing anything."""
    write: list[str] = []
    unchanged: list[str] = []
    kept: list[str] = []
    for rel, rendered in files.items():
        target = out_dir / rel
        if not target.is_file():
            write.append(rel)
        elif not rendered.overwrite:
            kept.append(rel)
        elif target.read_bytes() == rendered.content.encode("utf-8"):
            unchanged.append(rel)
        else:
            write.append(rel)
    return Plan(tuple(write), tuple(unchanged), tuple(kept))


def write_files(
    files: Mapping[str, RenderedFile],
    out_dir: Path,
    paths: tuple[str, ...],
    progress: Progress | None = None,
) -> None:
    """Write ``paths`` (from :func:`plan`) under ``out_dir``, creating folders."""
    total = len(paths)
    for done, rel in enumerate(paths, 1):
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # newline="" keeps "\n" on every platform: generated trees are byte-identical.
        with target.open("w", encoding="utf-8", newline="") as fh:
            fh.write(files[rel].content)
        if progress is not None:
            progress(done, total)
