"""Safe Python names for model names: computed here, never in a template.

Model identifiers are already ``[A-Za-z_][A-Za-z0-9_]*``, so they are valid Python
identifiers except where they collide with a keyword, a name the generated code relies
on, or another generated name. :class:`Namespace` hands out unique names per scope.
"""

from __future__ import annotations

import builtins
import keyword
from enum import StrEnum

from stormgen.model.naming import snake_case as snake_case  # re-exported for the renderers

#: Names a generated module uses for itself (type names in annotations, helpers).
_TYPE_NAMES = frozenset(
    {"str", "int", "float", "bool", "list", "tuple", "dict", "object", "type", "None"}
    | {"date", "datetime", "timedelta", "Decimal", "UUID", "Any", "ClassVar", "Self", "Enum"}
    | {"StrEnum"}
    | {"dataclass", "dataclasses", "field", "replace", "uuid4", "UTC"}
)

#: A field named like a type its class body's annotations use would shadow that type
#: (annotations are resolved in the class namespace first), so it gets a trailing
#: underscore; so does a keyword. Other names (``id``, ``type``, ``self``) are kept.
RESERVED_FIELD_NAMES = frozenset(keyword.kwlist) | frozenset(
    {"str", "int", "float", "bool", "tuple", "date", "datetime", "timedelta", "Decimal", "UUID"}
    | {"field"}
)

#: What generated modules import by their own names: the runtime's, the standard
#: library's and pytest's. A model class named like one (an event `Rejected`) is renamed.
_IMPORTED_NAMES = frozenset(
    {"Aggregate", "Application", "Command", "Delete", "DELETE", "Envelope", "Event"}
    | {"FakePort", "Policy", "Port", "RecordedEvent", "Rejected", "RetrySettings", "UNSET"}
    | {"View", "Collection", "Sequence", "TypeVar", "raises", "argparse", "os", "sys"}
    | {"ServeError", "TokenConfigError", "StormgenRuntimeError", "serve", "info", "id_text"}
)

#: Module-level names in generated modules must not shadow builtins the code calls.
RESERVED_MODULE_NAMES = (
    frozenset(keyword.kwlist)
    | frozenset(dir(builtins))
    | _TYPE_NAMES
    | _IMPORTED_NAMES
    | {"annotations"}
)


def package_name(model_name: str) -> str:
    """The distribution's import package: snake_case, a valid, non-keyword identifier."""
    name = snake_case(model_name).strip("_") or "service"
    if name[0].isdigit():
        name = "service_" + name
    if keyword.iskeyword(name) or name in {"stormgen", "tests", "test"}:
        name += "_service"
    return name


def field_name(name: str) -> str:
    """A dataclass attribute for a model field; the model name stays the wire name."""
    return name + "_" if name in RESERVED_FIELD_NAMES else name


#: Attributes of a ``StrEnum`` (``name``, ``value``, every ``str`` method): a member
#: named like one would shadow it.
_ENUM_ATTRIBUTES = frozenset(dir(StrEnum)) | {"name", "value"}


def member_name(name: str) -> str:
    """An enum member attribute: keywords and ``StrEnum``'s own attributes get a ``_``."""
    if keyword.iskeyword(name) or name in _ENUM_ATTRIBUTES or name.startswith("_"):
        return name + "_"
    return name


class Namespace:
    """Unique names in one Python scope, allocated in a deterministic order."""

    def __init__(self, reserved: frozenset[str] = RESERVED_MODULE_NAMES) -> None:
        self._reserved = reserved
        self._taken: dict[str, object] = {}
        self._given: dict[tuple[str, object], str] = {}

    def claim(self, wanted: str, owner: object) -> str:
        """The name for ``owner``: ``wanted`` if free, else ``wanted_2``, ``wanted_3``...

        Claiming the same ``wanted`` name for the same owner again gives the same name.
        ``owner`` is a small hashable key (an ``id()``, a name, a tuple of those).
        """
        given = self._given.get((wanted, owner))
        if given is not None:
            return given
        name = wanted if wanted not in self._reserved else wanted + "_"
        n = 2
        base = name
        while name in self._taken or name in self._reserved:
            name = f"{base}_{n}"
            n += 1
        self._taken[name] = owner
        self._given[(wanted, owner)] = name
        return name

    def taken(self, name: str) -> bool:
        return name in self._taken or name in self._reserved
