"""The language front end: `.storm` text → the typed model of :mod:`stormgen.model.nodes`.

``parse_model(path)`` reads a file and its imports with the textX grammar in
``grammar/*.tx`` and returns a :class:`~stormgen.model.nodes.Model`, or raises
:class:`~stormgen.diagnostics.ModelError` carrying E001/E002 diagnostics.
"""

from __future__ import annotations

from stormgen.lang.loader import model_name_from_path, parse_model

#: The codes loading a model reports: a syntax error, a file that cannot be read. (The
#: checks report the others: ``stormgen.checks.codes()``.)
CODES: tuple[str, ...] = ("E001", "E002")

__all__ = ["CODES", "model_name_from_path", "parse_model"]
