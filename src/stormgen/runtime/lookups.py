"""Lookups: a view's current row read by key, from a command's guards, a policy or a
process.

A model's `View[key]` compiles to a method of the aggregate, policy or process that
asks its `lookups` for the row: the application binds every definition it is given to
one `Lookups` over its store (`bind`), and the row comes back decoded to the view's row
class (pii columns opened), or None when the view has no row with that key. A view is
eventually consistent: its row shows the events its consumer has applied so far, which
may lag behind the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from stormgen.runtime import codec
from stormgen.runtime.errors import StormgenRuntimeError


class RowReader(Protocol):
    """Where rows come from: `ViewRows.row` (the row as JSON, or None)."""

    def row(self, view: Any, key: Any) -> dict[str, Any] | None: ...


class Reader(Protocol):
    """A definition that reads views: an aggregate, a policy or a process."""

    lookups: Lookups


class Lookups:
    """Reads the views of one application by name and key (unbound: no application)."""

    def __init__(
        self, reader: RowReader | None = None, views: Mapping[str, Any] | None = None
    ) -> None:
        self.reader = reader
        self.views = views if views is not None else {}

    def bind(self, definitions: Iterable[Reader]) -> None:
        """Make `definitions` read their views through these lookups."""
        for definition in definitions:
            definition.lookups = self

    def row(self, view: str, key: Any) -> Any:
        """The row of the view named `view` (`Context.View`) keyed `key`, as an instance
        of its row class, or None; `StormgenRuntimeError` when no application bound
        these lookups, or it has no such view."""
        if self.reader is None:
            raise StormgenRuntimeError(
                f"reading the view {view} needs an application: open one with this "
                "definition (Application binds its lookups)"
            )
        definition = self.views.get(view)
        if definition is None:
            raise StormgenRuntimeError(f"no view {view!r} in this application")
        doc = self.reader.row(definition, key)
        return None if doc is None else codec.from_data(definition.row_type, doc)


#: What a definition reads through before an application binds it.
UNBOUND = Lookups()


class NoRows(Lookups):
    """Views without a single row: every lookup finds none (given-when-then tests)."""

    def row(self, view: str, key: Any) -> Any:
        """None, whatever the view and key."""
        return None


#: What `stormgen.runtime.testing.when` gives an aggregate no application bound.
NO_ROWS = NoRows()
