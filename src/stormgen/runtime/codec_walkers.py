"""The codec's per-type walkers: field hints, default fillers and wire-name renamers.

Each is built once per type and cached, and walks decoded values (fillers) or raw
builtins (renamers) at every depth the type allows: nested values, lists, tuples, sets,
dict values and optionals. :mod:`stormgen.runtime.codec` uses them to encode and decode.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypeVar

WIRE_NAME = "name"
"""The dataclass field metadata key holding the field's JSON name (when not its attribute)."""

_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    """The resolved types of a dataclass's fields (no ClassVars), cached."""
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = typing.get_type_hints(cls)
        if dataclasses.is_dataclass(cls):
            resolved = {f.name: resolved[f.name] for f in dataclasses.fields(cls)}
        hints = _HINTS[cls] = resolved
    return hints


Made = TypeVar("Made")


def walker(
    tp: Any,
    cache: dict[Any, Made | None],
    of_dataclass: Callable[[type[Any]], Made | None],
    of_container: Callable[[str, tuple[Any, ...]], Made | None],
) -> Made | None:
    """The walker of type `tp` in `cache`, made on its first use (None: nothing to walk).

    A dataclass's walker comes from `of_dataclass` (which registers it in `cache` before
    looking at the fields, so a recursive value type terminates); `Annotated[T, ...]`
    walks as T; a sequence or set (kind "items"), a mapping ("values") or a union
    ("union") from `of_container` with the type's arguments; anything else walks nothing.
    """
    try:
        return cache[tp]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: walk nothing rather than fail
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return of_dataclass(tp)
    made: Made | None = None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        made = walker(args[0], cache, of_dataclass, of_container)
    elif origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, Sequence | AbstractSet)
    ):
        made = of_container("items", args)
    elif origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        made = of_container("values", args)
    elif origin is typing.Union or origin is types.UnionType:
        made = of_container("union", args)
    cache[tp] = made
    return made


_Filler = Callable[[Any], None]
_FILLERS: dict[Any, _Filler | None] = {}


def fill_defaults(value: Any, hint: Any) -> None:
    """Store the defaults msgspec left on the class into each decoded instance.

    msgspec does not put a dataclass field's plain default into the instance's
    `__dict__` (attribute access finds the class attribute), so `to_builtins` would
    silently drop it on the next encoding; this puts it there, at every depth the
    type `hint` allows (nested values, in lists, tuples, sets, dict values, optionals).
    """
    fill = filler(hint)
    if fill is not None:
        fill(value)


def filler(tp: Any) -> _Filler | None:
    """A function filling missing plain defaults into decoded values of type `tp`, cached.

    None when the type cannot hold a dataclass with plain defaults (nothing to walk).
    """
    return walker(tp, _FILLERS, _dataclass_filler, _container_filler)


def _container_filler(kind: str, args: tuple[Any, ...]) -> _Filler | None:
    if kind == "items":
        return _items_filler([filler(a) for a in args if a is not Ellipsis])
    if kind == "values":
        return _values_filler(filler(args[1])) if len(args) == 2 else None
    return _union_filler([filler(a) for a in args])


def _dataclass_filler(cls: type[Any]) -> _Filler | None:
    # registered before its fields are looked at, so a recursive value type terminates
    plan: list[tuple[str, _Filler]] = []
    defaults = tuple(
        (f.name, f.default) for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    )

    def fill(value: Any) -> None:
        if not isinstance(value, cls):
            return  # another member of a union
        state = getattr(value, "__dict__", None)
        if state is not None:  # slotted classes get every field set by msgspec
            for name, default in defaults:
                if name not in state:
                    state[name] = default
        for name, field_fill in plan:
            field_fill(getattr(value, name))

    _FILLERS[cls] = fill
    for name, hint in _hints(cls).items():
        field_fill = filler(hint)
        if field_fill is not None:
            plan.append((name, field_fill))
    if not defaults and not plan and _FILLERS[cls] is fill:
        # nothing to do; a recursive reference taken meanwhile keeps the (cheap) closure
        _FILLERS[cls] = None
        return None
    return fill


def _items_filler(fills: list[_Filler | None]) -> _Filler | None:
    known = [f for f in fills if f is not None]
    if not known:
        return None
    if len(fills) == 1 or (len(set(known)) == 1 and len(known) == len(fills)):
        each = known[0]

        def fill_items(value: Any) -> None:
            if isinstance(value, list | tuple | set | frozenset):
                for item in value:
                    each(item)

        return fill_items

    # a fixed-shape tuple: one filler per place
    def fill_places(value: Any) -> None:
        if isinstance(value, list | tuple):
            for item, place in zip(value, fills, strict=False):
                if place is not None:
                    place(item)

    return fill_places


def _values_filler(each: _Filler | None) -> _Filler | None:
    if each is None:
        return None

    def fill_values(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                each(item)

    return fill_values


def _union_filler(fills: list[_Filler | None]) -> _Filler | None:
    known = [f for f in fills if f is not None]
    if not known:
        return None
    if len(known) == 1:
        return known[0]  # each filler checks the value's type itself

    def fill_any(value: Any) -> None:
        for fill in known:
            fill(value)

    return fill_any


def wire_names(cls: type[Any]) -> dict[str, str]:
    """A dataclass's fields whose JSON name differs from their attribute: attribute -> name."""
    names = _WIRE_NAMES.get(cls)
    if names is None:
        names = _WIRE_NAMES[cls] = {
            f.name: f.metadata[WIRE_NAME]
            for f in dataclasses.fields(cls)
            if f.metadata.get(WIRE_NAME, f.name) != f.name
        }
    return names


def wire_name(cls: type[Any], attribute: str) -> str:
    """The JSON name of a dataclass field given its attribute name."""
    return wire_names(cls).get(attribute, attribute)


_Renamer = Callable[[Any], Any]
_WIRE_NAMES: dict[Any, dict[str, str]] = {}
_OUT_RENAMERS: dict[Any, _Renamer | None] = {}
IN_RENAMERS: dict[Any, _Renamer | None] = {}
_TREE_ALIASES: dict[Any, dict[str, str]] = {}


def renamer(tp: Any, *, out: bool) -> _Renamer | None:
    """A function renaming the keys of builtins of type `tp`, cached.

    `out=True` turns attribute names into wire names (after encoding), `out=False`
    the reverse (before decoding; a key spelled as the attribute is dropped, so only
    the wire name is accepted). None when the type holds no renamed field anywhere.
    """
    cache = _OUT_RENAMERS if out else IN_RENAMERS
    return walker(
        tp,
        cache,
        lambda cls: _dataclass_renamer(cls, out, cache),
        lambda kind, args: _container_renamer(kind, args, out),
    )


def _container_renamer(kind: str, args: tuple[Any, ...], out: bool) -> _Renamer | None:
    if kind == "items":
        known = [r for a in args if a is not Ellipsis if (r := renamer(a, out=out))]
        # fixed-shape tuples of different renamed values are not used by generated code
        return _items_renamer(known[0]) if known else None
    if kind == "values":
        each = renamer(args[1], out=out) if len(args) == 2 else None
        return _values_renamer(each) if each is not None else None
    known = [r for a in args if (r := renamer(a, out=out))]
    return known[0] if len(known) == 1 else _chain_renamer(known) if known else None


def _dataclass_renamer(
    cls: type[Any], out: bool, cache: dict[Any, _Renamer | None]
) -> _Renamer | None:
    names = wire_names(cls)
    mapping = dict(names) if out else {wire: attr for attr, wire in names.items()}
    drop = frozenset() if out else frozenset(names) - frozenset(names.values())
    # nested renamers by the key as it is before renaming
    plan: dict[str, _Renamer] = {}

    def rename(data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        result: dict[Any, Any] = {}
        for key, value in data.items():
            if key in drop:
                continue
            sub = plan.get(key)
            result[mapping.get(key, key)] = value if sub is None else sub(value)
        return result

    # registered before the fields are looked at, so a recursive value type terminates
    cache[cls] = rename
    for attr, hint in _hints(cls).items():
        sub = renamer(hint, out=out)
        if sub is not None:
            plan[names.get(attr, attr) if not out else attr] = sub
    if not mapping and not plan and cache[cls] is rename:
        cache[cls] = None
        return None
    return rename


def _items_renamer(each: _Renamer) -> _Renamer:
    def rename_items(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [each(item) for item in value]
        return value

    return rename_items


def _values_renamer(each: _Renamer) -> _Renamer:
    def rename_values(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: each(item) for key, item in value.items()}
        return value

    return rename_values


def _chain_renamer(known: list[_Renamer]) -> _Renamer:
    # a union of several renamed value types: each renames only its own keys
    def rename_any(value: Any) -> Any:
        for rename in known:
            value = rename(value)
        return value

    return rename_any


def tree_aliases(tp: Any) -> dict[str, str]:
    """Every attribute -> wire name renamed in a type, at any depth (for error messages)."""
    found = _TREE_ALIASES.get(tp)
    if found is None:
        found = {}
        _collect_aliases(tp, found, set())
        _TREE_ALIASES[tp] = found
    return found


def _collect_aliases(tp: Any, found: dict[str, str], seen: set[Any]) -> None:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp in seen:
            return
        seen.add(tp)
        found.update(wire_names(tp))
        for hint in _hints(tp).values():
            _collect_aliases(hint, found, seen)
        return
    for arg in typing.get_args(tp):
        _collect_aliases(arg, found, seen)
