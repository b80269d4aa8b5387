"""stormgen: from an Event Storming model to a running event-sourced service.

``stormgen.load(path)`` reads a `.storm` file and its imports into the typed model
and builds its graph; it raises :class:`~stormgen.diagnostics.ModelError` (E001,
E002) when the files cannot be read or parsed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stormgen.model.nodes import Model

__version__ = "0.1.0"
__all__ = ["LoadedModel", "__version__", "load"]


class LoadedModel:
    """A model read from its files, with its graph (a ``networkx`` directed graph).

    Given no graph, it builds one the first time ``graph`` is read: a renderer that
    needs only the model (the python target) does not pay for it.
    """

    __slots__ = ("_graph", "model")

    def __init__(self, model: Model, graph: Any = None) -> None:
        self.model = model
        self._graph = graph

    @property
    def graph(self) -> Any:
        if self._graph is None:
            from stormgen._gc import collector_paused
            from stormgen.model.graph import build_graph

            with collector_paused():
                self._graph = build_graph(self.model)
        return self._graph

    def __repr__(self) -> str:
        return f"LoadedModel(model={self.model.name!r})"


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Read the model at ``path`` (and its imports) and build its graph."""
    # Imported here so that ``import stormgen`` stays cheap (no textX, no networkx).
    from stormgen._gc import collector_paused
    from stormgen.lang import parse_model
    from stormgen.model.graph import build_graph

    model = parse_model(path)
    with collector_paused():
        graph = build_graph(model)
    return LoadedModel(model, graph)
