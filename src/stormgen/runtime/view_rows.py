"""A view's rows: read as JSON (pii columns opened), written from events (sealed).

A view's pii columns are sealed with the key of the stream whose event wrote them, so
a `forget` redacts them in the view as in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag

from stormgen.runtime import codec
from stormgen.runtime.aggregate import id_text
from stormgen.runtime.crypto import decrypt_value, encrypt_value
from stormgen.runtime.envelope import SEALED_KEY
from stormgen.runtime.messages import Envelope
from stormgen.runtime.reading import EventReader
from stormgen.runtime.rejections import DecodeError
from stormgen.runtime.store.base import EventStore, UnitOfWork
from stormgen.runtime.views import DELETE, View

log = logging.getLogger("stormgen.runtime")

_GONE = object()  # a sealed value whose key was forgotten


class ViewRows:
    """The rows of an application's views, in its store; `reader.keys` seals them."""

    def __init__(self, store: EventStore, reader: EventReader) -> None:
        self.store = store
        self.reader = reader

    def row(self, view: View[Any], key: Any) -> dict[str, Any] | None:
        """One view row as JSON (pii columns decrypted or redacted), or None."""
        doc = self.store.get_row(view.name, self.key_text(view, key))
        return None if doc is None else self.open_doc(view, doc)

    def rows(
        self, view: View[Any], where: Mapping[str, Any], after: str | None, limit: int | None
    ) -> list[dict[str, Any]]:
        """Rows ordered by key (or by the view's `order`, then key), where the columns
        equal `where`'s values (typed or text), after the row keyed `after`, at most
        `limit`; `DecodeError` for an unknown or pii column, and for an `after` naming no
        row of an ordered view (its sort values are where the page starts)."""
        columns = view.sql_columns()
        hints = codec._hints(view.row_type)
        encoded: dict[str, Any] = {}
        for name, value in where.items():
            if name not in columns:
                raise DecodeError(f"view {view.name} has no column {name!r} to filter on", name)
            hint = hints[view.attribute(name)]
            encoded[name] = codec.to_data(codec.from_data(hint, value))
        if not view.order:
            rows = self.store.query_rows(view.name, encoded, after_key=after, limit=limit)
            return [self.open_doc(view, row.doc) for row in rows]
        order = view.sort_terms()
        if after is not None:
            after = self.key_text(view, after)
        try:
            rows = self.store.query_rows(
                view.name, encoded, after_key=after, limit=limit, order=order
            )
        except ValueError as exc:
            if after is None or "to page after" not in str(exc):
                raise
            message = f"view {view.name} has no row {after!r} to page after"
            raise DecodeError(message, "after") from None
        return [self.open_doc(view, row.doc) for row in rows]

    @staticmethod
    def key_text(view: View[Any], key: Any) -> str:
        """A row key as the text the table stores (keys given as text are parsed first)."""
        if isinstance(key, str):
            key = codec.from_data(view.key_type(), key)
        return id_text(key)

    def open_doc(self, view: View[Any], doc: dict[str, Any]) -> dict[str, Any]:
        """A stored row document as JSON, pii columns decrypted (or redacted)."""
        return self._open_doc(view, doc)[0]

    def _open_doc(self, view: View[Any], doc: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        hints = codec._hints(view.row_type)
        # the row class's field order, whatever order the database kept
        wires = codec.wire_names(view.row_type)
        columns = [wires.get(name, name) for name in hints]
        out = {column: doc[column] for column in columns if column in doc}
        gone: set[str] = set()
        for name in view.pii:
            column = wires.get(name, name)
            token = doc.get(column)
            if isinstance(token, dict) and SEALED_KEY in token:
                value = self._open_token(view, column, token)
                if value is _GONE:
                    gone.add(column)
                    value = codec.redacted_value(hints[name])
                out[column] = value
        return out, gone

    def _open_token(self, view: View[Any], column: str, token: dict[str, Any]) -> Any:
        stream = str(token.get("stream", ""))
        key = self.reader.keys.key_for_reading(stream)
        if key is not None:
            try:
                return decrypt_value(key, stream, f"{view.name}.{column}", token)
            except (InvalidTag, ValueError):
                log.debug("view %s column %s sealed under a forgotten key", view.name, column)
        return _GONE

    def _seal_row(
        self,
        uow: UnitOfWork,
        view: View[Any],
        row: Any,
        old_doc: dict[str, Any] | None,
        old_plain: dict[str, Any] | None,
        stream: str,
    ) -> dict[str, Any]:
        doc: dict[str, Any] = codec.to_data(row)
        for attribute in view.pii:
            name = view.wire(attribute)
            value = doc.get(name)
            if value is None:
                continue
            if old_doc is not None and old_plain is not None and old_plain.get(name) == value:
                # unchanged: keep the token sealed under the stream it was copied from
                doc[name] = old_doc[name]
                continue
            key = self.reader.keys.key_for_writing(uow, stream)
            token = encrypt_value(key, stream, f"{view.name}.{name}", value)
            doc[name] = {**token, "stream": stream}
        return doc

    def apply(self, uow: UnitOfWork, view: View[Any], env: Envelope) -> None:
        """Apply an event to the row it concerns (new, updated or deleted), in `uow`."""
        assert env.event is not None
        key = view.key_of(env.event, env)
        if key is None:
            return
        key_text = id_text(key)
        old_doc = uow.get_row(view.name, key_text)
        if old_doc is None:
            old_plain = None
            row = view.new_row(key)
        else:
            old_plain, gone = self._open_doc(view, old_doc)
            row = codec.from_data_redacted(view.row_type, old_plain, gone)
        new = view.update(row, env.event, env)
        if new is DELETE:
            uow.delete_row(view.name, key_text)
            return
        uow.upsert_row(
            view.name, key_text, self._seal_row(uow, view, new, old_doc, old_plain, env.stream)
        )
