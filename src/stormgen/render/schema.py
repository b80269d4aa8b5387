"""JSON Schema (2020-12) for the model's types, commands and events.

Shared by the ``jsonschema`` and ``asyncapi`` targets and the docs. The mapping follows
the wire format (docs/runtime.md, "Messages"): decimals travel as strings (with a pattern), uuids,
dates and datetimes as formatted strings, durations as ISO 8601 durations
(``"PT15M"``), enums as their member names, value objects as ``$defs``, ``T?`` as a
union with ``null``, and ``pii`` fields are annotated with ``"x-pii": true``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from stormgen.model.nodes import (
    Aggregate,
    Call,
    Command,
    Context,
    Enum,
    Event,
    Expr,
    External,
    Field,
    ListExpr,
    Literal,
    Model,
    Name,
    TypeRef,
    Unary,
    Value,
)
from stormgen.model.scope import Scope
from stormgen.model.types import DURATION_UNITS
from stormgen.runtime.codec import DECIMAL_PATTERN, DURATION_PATTERN
from stormgen.runtime.codec_durations import format_duration

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_PRIMITIVE_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    # what the API accepts (one pattern with the runtime's request schemas)
    "decimal": {"type": "string", "pattern": DECIMAL_PATTERN},
    "bool": {"type": "boolean"},
    "uuid": {"type": "string", "format": "uuid"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "duration": {"type": "string", "format": "duration", "pattern": DURATION_PATTERN},
}

JsonSchema = dict[str, Any]


def literal_json(expr: Expr | None, type_ref: TypeRef | None = None) -> Any:
    """The JSON value of a default as written (``4.50`` for a decimal is ``"4.50"``)."""
    if expr is None:
        return None
    if isinstance(expr, Literal):
        value = expr.value
        if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
            base = type_ref.name if type_ref is not None and type_ref.element is None else None
            if base == "decimal":
                return str(value)
            if base == "float" or isinstance(value, Decimal):
                return float(value)
            return value
        return value
    if isinstance(expr, Unary) and expr.op == "-":
        inner = literal_json(expr.operand, type_ref)
        if isinstance(inner, str):
            return "-" + inner
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner
        return inner
    if isinstance(expr, Name):
        return expr.parts[-1]  # an enum member: it travels as its name
    if isinstance(expr, ListExpr):
        element = type_ref.element if type_ref is not None else None
        return [literal_json(item, element) for item in expr.items]
    if isinstance(expr, Call) and expr.function in DURATION_UNITS and len(expr.args) == 1:
        count = literal_json(expr.args[0])
        if isinstance(count, int) and not isinstance(count, bool):
            return format_duration(timedelta(**{expr.function: count}))  # "PT15M"
    return None


def expr_text(expr: Expr | None) -> str:
    """An expression written back as source text (for docs and notes)."""
    from stormgen.render.text import expression

    return expression(expr) if expr is not None else ""


class SchemaBuilder:
    """Builds schemas for one model, collecting the value and enum types they use."""

    def __init__(
        self, model: Model, scope: Scope | None = None, ref_prefix: str = "#/$defs/"
    ) -> None:
        self.model = model
        self.scope = scope if scope is not None else Scope(model)
        # Where ``$ref`` points for value and enum types (AsyncAPI: components/schemas).
        self.ref_prefix = ref_prefix

    # ------------------------------------------------------------ types

    def def_name(self, context: Context | None, element: Value | Enum) -> str:
        """A type's key in ``$defs``: its name, qualified by its context if private."""
        return f"{context.name}.{element.name}" if context is not None else element.name

    def type_schema(
        self, context: Context | None, type_ref: TypeRef, defs: JsonSchema
    ) -> JsonSchema:
        """The schema of one type; value and enum types are added to ``defs``."""
        if type_ref.element is not None:
            schema: JsonSchema = {
                "type": "array",
                "items": self.type_schema(context, type_ref.element, defs),
            }
        elif type_ref.name in _PRIMITIVE_SCHEMAS:
            schema = dict(_PRIMITIVE_SCHEMAS[type_ref.name])
        else:
            resolved = self.scope.resolve_type(context, type_ref.name)
            if resolved is None:
                schema = {}  # an unknown type (E102) accepts anything rather than crash
            else:
                element = resolved.element
                assert isinstance(element, Value | Enum)
                key = self.def_name(resolved.context, element)
                if key not in defs:
                    defs[key] = {}  # reserve first: value types may be recursive
                    defs[key] = self._def_schema(resolved.context, element, defs)
                schema = {"$ref": f"{self.ref_prefix}{key}"}
        if type_ref.optional:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema

    def _def_schema(
        self, context: Context | None, element: Value | Enum, defs: JsonSchema
    ) -> JsonSchema:
        if isinstance(element, Enum):
            schema: JsonSchema = {"type": "string", "enum": [m.name for m in element.members]}
        else:
            schema = self.object_schema(context, element.fields, defs, required_all=False)
        schema = {"title": element.name, **schema}
        if element.description:
            schema["description"] = element.description
        return schema

    def field_schema(self, context: Context | None, field: Field, defs: JsonSchema) -> JsonSchema:
        """A field's schema with its description, default and pii annotation."""
        schema = self.type_schema(context, field.type, defs)
        if "$ref" in schema:
            schema = {"allOf": [schema]} if (field.description or field.default) else schema
        if field.description:
            schema["description"] = field.description
        if field.default is not None:
            schema["default"] = literal_json(field.default, field.type)
        if field.pii:
            schema["x-pii"] = True
        return schema

    def object_schema(
        self,
        context: Context | None,
        fields: tuple[Field, ...],
        defs: JsonSchema,
        *,
        required_all: bool,
        leading: tuple[Field, ...] = (),
        optional_names: frozenset[str] = frozenset(),
    ) -> JsonSchema:
        """An object of ``leading`` + ``fields``; closed (no other properties).

        A field is required when ``required_all`` (events carry every field) or when it
        has no default and is not optional; names in ``optional_names`` never are.
        """
        properties: JsonSchema = {}
        required: list[str] = []
        for field in (*leading, *fields):
            if field.name in properties:
                continue
            properties[field.name] = self.field_schema(context, field, defs)
            needed = required_all or (field.default is None and not field.type.optional)
            if needed and field.name not in optional_names:
                required.append(field.name)
        schema: JsonSchema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    # ------------------------------------------------------------ messages

    def command_payload(
        self, context: Context, owner: Aggregate | External, command: Command, defs: JsonSchema
    ) -> JsonSchema:
        """A command's body: its fields plus the target aggregate's id."""
        leading: tuple[Field, ...] = ()
        optional: frozenset[str] = frozenset()
        if isinstance(owner, Aggregate):
            leading = (owner.id_field,)
            # A creating command may leave out a uuid id: the runtime generates one.
            if command.creates and owner.id_field.type.name == "uuid":
                optional = frozenset({owner.id_field.name})
        schema = self.object_schema(
            context,
            command.fields,
            defs,
            required_all=False,
            leading=leading,
            optional_names=optional,
        )
        return self._titled(schema, command.name, command.description)

    def event_payload(
        self, context: Context, owner: Aggregate | External, event: Event, defs: JsonSchema
    ) -> JsonSchema:
        """An event's ``data``: its fields plus its aggregate's id (every event carries it)."""
        leading = (owner.id_field,) if isinstance(owner, Aggregate) else ()
        schema = self.object_schema(context, event.fields, defs, required_all=True, leading=leading)
        return self._titled(schema, event.name, event.description)

    def envelope(
        self,
        context: Context,
        owner: Aggregate | External,
        event: Event,
        data: JsonSchema,
        defs: JsonSchema,
    ) -> JsonSchema:
        """The stored-event envelope (docs/runtime.md) around an event's ``data`` schema."""
        stream = f"{context.name}.{owner.name}"
        properties: JsonSchema = {
            "id": {"type": "string", "format": "uuid"},
            # An external system's event is typed ``Context.System.Event``.
            "type": {
                "const": f"{stream}.{event.name}"
                if isinstance(owner, External)
                else f"{context.name}.{event.name}"
            },
            "version": {"const": event.version},
            "stream": (
                {"type": "string", "pattern": "^" + stream.replace(".", r"\.") + "/"}
                if isinstance(owner, Aggregate)
                else {"const": stream}
            ),
        }
        required = ["id", "type", "version", "stream"]
        if isinstance(owner, Aggregate):
            properties["stream_id"] = self.type_schema(context, owner.id_field.type, defs)
            required.append("stream_id")
        properties["stream_version"] = {"type": "integer", "minimum": 1}
        properties["position"] = {"type": "integer", "minimum": 0}
        properties["recorded_at"] = {"type": "string", "format": "date-time"}
        properties["data"] = data
        properties["metadata"] = {
            "type": "object",
            "properties": {
                "command_id": {"type": ["string", "null"]},
                "correlation_id": {"type": ["string", "null"]},
                "causation_id": {"type": ["string", "null"]},
                "actor": {"type": ["string", "null"]},
            },
        }
        required += ["stream_version", "position", "recorded_at", "data", "metadata"]
        return {
            "title": f"{context.name}.{event.name} envelope",
            "type": "object",
            "properties": properties,
            "required": required,
        }

    @staticmethod
    def _titled(schema: JsonSchema, title: str, description: str | None) -> JsonSchema:
        head: JsonSchema = {"title": title}
        if description:
            head["description"] = description
        return {**head, **schema}
