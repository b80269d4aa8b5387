"""Reading stored events of any schema version as the current message class.

Upcasting is driven by the class itself: a field renamed with `was` is read from its
old name, a field added with a default takes the default, a dropped field is ignored.
For anything richer, register a function that lifts one version's data to the next.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stormgen.runtime.codec import (
    WIRE_NAME,
    decoder,
    from_data,
    from_data_redacted,
    many_decoder,
)
from stormgen.runtime.messages import Event, Message, info, rename_fields
from stormgen.runtime.rejections import DecodeError, UnknownEventType, UpcastError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Lifts the data of version N of an event type to version N + 1."""


class Registry:
    """The message classes a service knows, by type name, with their upcasters."""

    def __init__(self, classes: Iterable[type[Message]] = ()) -> None:
        self._classes: dict[str, type[Message]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        # type name -> (current version, decoder, list decoder) for event types whose
        # current-version data decodes as stored (no renames to apply): the common
        # case, one C call
        self._direct: dict[
            str, tuple[int, Callable[[Any], Any], Callable[[list[Any]], list[Any]]]
        ] = {}
        for cls in classes:
            self.add(cls)

    def add(self, cls: type[Message]) -> None:
        """Register a message class (idempotent; a different class of the same name fails)."""
        meta = info(cls)
        known = self._classes.get(meta.name)
        if known is not None and known is not cls:
            raise ValueError(f"two classes claim the message name {meta.name!r}")
        # pii and was name fields as the data does: by the model's (wire) names
        names = {
            f.metadata.get(WIRE_NAME, f.name)
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        }
        unknown = (set(meta.pii) | set(meta.renamed)) - names
        if unknown:
            raise ValueError(f"{cls.__qualname__}: pii/was name unknown fields {sorted(unknown)}")
        self._classes[meta.name] = cls
        self._direct.pop(meta.name, None)
        if issubclass(cls, Event) and not meta.renamed:
            self._direct[meta.name] = (meta.version, decoder(cls), many_decoder(cls))

    def add_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        """Register a function lifting `type_name` data from `from_version` to the next."""
        self._upcasters[(type_name, from_version)] = upcaster

    def get(self, type_name: str) -> type[Message] | None:
        """The class registered under `type_name`, if any."""
        return self._classes.get(type_name)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._classes

    def __iter__(self) -> typing.Iterator[type[Message]]:
        return iter(self._classes.values())

    def event_class(self, type_name: str) -> type[Event]:
        """The event class of `type_name`; `UnknownEventType` if there is none."""
        cls = self._classes.get(type_name)
        if cls is None or not issubclass(cls, Event):
            raise UnknownEventType(type_name)
        return cls

    def upcast(self, type_name: str, version: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """Lift stored data of `version` to the current schema's field names."""
        cls = self.event_class(type_name)
        meta = info(cls)
        if version > meta.version:
            raise UnknownEventType(
                f"{type_name} v{version} (this service knows up to v{meta.version})"
            )
        out = dict(data)
        for step in range(version, meta.version):
            lift = self._upcasters.get((type_name, step))
            if lift is not None:
                out = lift(out)
        rename_fields(out, meta.renamed)
        return out

    def decode_many(self, type_name: str, version: int, datas: list[dict[str, Any]]) -> list[Event]:
        """Decode stored data of one type and version, like `decode` on each."""
        direct = self._direct.get(type_name)
        if direct is not None and direct[0] == version:
            try:
                return direct[2](datas)
            except DecodeError:
                pass  # `decode` below words the error for the first bad item
        return [self.decode(type_name, version, data) for data in datas]

    def decode(
        self,
        type_name: str,
        version: int,
        data: Mapping[str, Any],
        redacted: Iterable[str] = (),
    ) -> Event:
        """Decode stored data into the current event class.

        `redacted` names fields whose personal data was forgotten: they read as
        `REDACTED` (str fields) or `None` (other types), whatever their type says.
        """
        direct = self._direct.get(type_name)
        if direct is not None and direct[0] == version and not redacted:
            # stored at the current version: nothing to lift or rename
            try:
                return direct[1](data)  # type: ignore[no-any-return]
            except DecodeError:
                pass  # the general path below words the error
        cls = self.event_class(type_name)
        upcast = self.upcast(type_name, version, data)
        gone = set(redacted)
        try:
            if not gone:
                return from_data(cls, upcast)
            return from_data_redacted(cls, upcast, gone)
        except DecodeError as exc:
            raise UpcastError(
                f"stored {type_name} v{version} does not fit the current schema: {exc.message}"
            ) from None
