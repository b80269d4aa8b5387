"""Request models built at startup from message classes' dataclass fields.

Pydantic validates request bodies (``extra="forbid"``, so unknown fields are
refused) and its JSON Schemas go into the OpenAPI document. Models are built with
``pydantic.create_model`` from type hints; no code is generated as text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from stormgen.runtime.codec import (
    DECIMAL_PATTERN,
    DECIMAL_RULE,
    DURATION_PATTERN,
    DURATION_RULE,
    WIRE_NAME,
    wire_decimal_error,
    wire_duration_error,
)

_FORBID = ConfigDict(extra="forbid")
_SCALARS: tuple[Any, ...] = (str, int, float, bool, uuid.UUID, dt.date, dt.datetime)

#: Text holds no NUL character: PostgreSQL stores none (in `text` or `jsonb`).
NO_NUL = r"^[^\x00]*$"
#: JSON's own scalars are taken only as themselves: `"7"` is no int, `1` no bool (the
#: runtime decodes bodies strictly too), as their JSON Schema types say.
_STRICT: dict[Any, Any] = {
    str: Annotated[str, Strict(), StringConstraints(pattern=NO_NUL)],
    **{tp: Annotated[tp, Strict()] for tp in (int, float, bool)},
}
#: A text id given in a body: an empty one could never be named in a path.
ID_TEXT = Annotated[str, Strict(), StringConstraints(min_length=1, pattern=NO_NUL)]


def _wire_text(kind: str, wire_error: Callable[[Any], str | None], schema: dict[str, Any]) -> Any:
    """A string type for requests held to a wire rule (`wire_error` says why not)."""

    def check(value: Any) -> Any:
        why = wire_error(value)
        if why is not None:
            raise PydanticCustomError(kind, why)
        return value

    return Annotated[str, BeforeValidator(check), WithJsonSchema(schema)]


#: A decimal in a request: a string in plain notation within the wire's digits.
WireDecimal = _wire_text(
    "decimal",
    wire_decimal_error,
    {"type": "string", "pattern": DECIMAL_PATTERN, "description": DECIMAL_RULE},
)
#: A duration in a request: an ISO 8601 duration string (`"PT15M"`), strictly.
WireDuration = _wire_text(
    "duration",
    wire_duration_error,
    {
        "type": "string",
        "format": "duration",
        "pattern": DURATION_PATTERN,
        "description": DURATION_RULE,
    },
)


class ModelFactory:
    """Builds (and caches) pydantic models for dataclasses, nested values included.

    Strings are bounded to ``max_string_length`` characters, lists and maps to
    ``max_list_items`` (``maxLength``, ``maxItems``, ``maxProperties`` in the schemas).
    """

    def __init__(self, max_string_length: int = 10_000, max_list_items: int = 1_000) -> None:
        self._values: dict[type[Any], type[BaseModel]] = {}
        self._used_names: set[str] = set()
        self._string = PydanticField(max_length=max_string_length)
        self._items = PydanticField(max_length=max_list_items)

    def unique_name(self, name: str) -> str:
        """Return ``name``, or ``name2``, ``name3``... when it is taken."""
        # Two contexts may both declare a value or command of the same name.
        candidate, n = name, 2
        while candidate in self._used_names:
            candidate, n = f"{name}{n}", n + 1
        self._used_names.add(candidate)
        return candidate

    def translate(self, tp: Any) -> Any:
        """Return the pydantic-side type for a dataclass field annotation."""
        if tp is str:
            return Annotated[str, Strict(), StringConstraints(pattern=NO_NUL), self._string]
        if isinstance(tp, type) and tp in _STRICT:
            return _STRICT[tp]
        if tp is Any or tp in _SCALARS:
            return tp
        if tp is Decimal:
            return WireDecimal
        if tp is dt.timedelta:
            return WireDuration
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return tp
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.value_model(tp)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (types.UnionType, typing.Union):
            translated = tuple(self.translate(a) for a in args)
            return typing.Union[translated]  # noqa: UP007 (a runtime-built union)
        if origin in (list, tuple, set, frozenset) and args:
            # JSON has arrays only: `tuple[Drink, ...]` and `list[Drink]` read alike
            items: Any = list[self.translate(args[0])]  # type: ignore[misc]
            return Annotated[items, self._items]
        if origin is dict and len(args) == 2:
            entries: Any = dict[self.translate(args[0]), self.translate(args[1])]  # type: ignore[misc]
            return Annotated[entries, self._items]
        if origin is typing.Literal:
            return tp
        return tp

    def value_model(self, cls: type[Any]) -> type[BaseModel]:
        """Return the model of a value (a nested dataclass)."""
        found = self._values.get(cls)
        if found is None:
            found = self.model(cls, name=self.unique_name(cls.__name__))
            self._values[cls] = found
        return found

    def model(
        self,
        cls: type[Any],
        *,
        name: str,
        optional: Iterable[str] = (),
        exclude: Iterable[str] = (),
        extra_fields: dict[str, tuple[Any, Any]] | None = None,
        description: str | None = None,
    ) -> type[BaseModel]:
        """Return a model with the dataclass's fields; ``optional`` ones may be left out."""
        hints = typing.get_type_hints(cls)
        optional, exclude = set(optional), set(exclude)
        definitions: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in exclude or not f.init:
                continue
            tp = self.translate(hints[f.name])
            # bodies and the OpenAPI document use the model's name (`from`, not `from_`)
            alias = f.metadata.get(WIRE_NAME)
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
                if alias is not None:
                    default = PydanticField(default=f.default, alias=alias)
                definitions[f.name] = (tp, default)
            elif f.default_factory is not dataclasses.MISSING:
                definitions[f.name] = (
                    tp,
                    PydanticField(default_factory=f.default_factory, alias=alias),
                )
            elif f.name in optional:
                definitions[f.name] = (tp | None, PydanticField(default=None, alias=alias))
            else:
                definitions[f.name] = (tp, PydanticField(alias=alias))
        definitions.update(extra_fields or {})
        model: type[BaseModel] = create_model(
            name, __config__=_FORBID, __doc__=description or written_doc(cls), **definitions
        )
        return model


def written_doc(cls: type[Any]) -> str | None:
    """A class's own docstring; None for the signature `dataclass` writes when it has none."""
    doc = cls.__doc__
    if doc is None or doc.startswith(cls.__name__ + "("):
        return None
    return doc


def first_error(exc: ValidationError) -> tuple[str, str | None]:
    """Return one sentence about the first problem in ``exc`` and the field it names."""
    errors = exc.errors(include_url=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return "the request body is invalid", None
    error = errors[0]
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = _dotted(loc)
    kind = error.get("type", "")
    if kind == "missing":
        text = f"the field {field!r} is missing"
    elif kind == "extra_forbidden":
        text = f"the field {field!r} is unknown"
    elif kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NO_NUL:
        text = f"the field {field!r} must not contain a NUL character"
    elif field:
        text = f"the field {field!r} is invalid: {error.get('msg', 'invalid value')}"
    else:
        text = str(error.get("msg", "the request body is invalid"))
    more = len(errors) - 1
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    return text, field or None


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
