"""The OpenAPI document: its pieces (parameters, answers, shared schemas) and its assembly.

The document is the API's contract, checked by schemathesis with all its checks: each
operation declares every status it answers with (errors in the one error body), its
parameters with the types and formats the handlers accept, and its answers' schemas.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
import uuid
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from stormgen.runtime.codec import DECIMAL_PATTERN, DURATION_PATTERN, WIRE_NAME
from stormgen.runtime.http.schemas import NO_NUL

#: Shared schemas; a dot keeps their names apart from the model's (which have none).
ERROR = "stormgen.Error"
EVENT = "stormgen.Event"
_REF = "#/components/schemas/{name}"
_SCHEMA_REF = "#/components/schemas/{model}"
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

#: Positions and stream versions are 64-bit integers in every store.
MAX_POSITION = 2**63 - 1
#: An ``If-Match`` value: a stream version, optionally quoted and weak (``W/"3"``);
#: 18 digits at most, so any value it allows fits a store's 64-bit integers.
IF_MATCH_PATTERN = r'^(W/)?"?[0-9]{1,18}"?$'
#: The most characters of an ``Idempotency-Key``.
MAX_IDEMPOTENCY_KEY = 200
#: Text: anything but a NUL character (no store can keep one everywhere).
_TEXT = {"type": "string", "pattern": NO_NUL}

_ERROR_TEXT = {
    400: "Malformed: the body is not a JSON object, or a header is malformed",
    401: "Unauthorized: no, malformed or unknown bearer token",
    403: "Forbidden: the token's principal may not do this",
    404: "Not found: no such instance, view row or failure",
    409: "Conflict: a `require` failed (`rejected`), the instance exists (`exists`) "
    "or If-Match differs (`conflict`)",
    408: "Timeout: the request's headers or body did not arrive in time",
    413: "Too large: the request body is larger than the service's limit",
    422: "Invalid: a field or parameter is missing, unknown or of the wrong type",
    503: "Unavailable: the event store cannot be reached, or too many event streams are "
    "open; retry after `Retry-After`",
    507: "Insufficient storage: the store's disk is full; nothing was written",
}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    503: {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    507: {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}
#: What every write may answer besides its own errors: a body too slow or too large
#: (the limits), a store that cannot be reached or whose disk is full.
WRITE_ERRORS = (408, 413, 503, 507)


def ref(name: str) -> dict[str, str]:
    """A reference to a schema in ``components.schemas``."""
    return {"$ref": _REF.format(name=name)}


def _integer(minimum: int = 0, maximum: int = MAX_POSITION) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = {**required, **(optional or {})}
    return {"type": "object", "required": list(required), "properties": properties}


def obj(**required: dict[str, Any]) -> dict[str, Any]:
    """An object with these properties, all required."""
    return _obj(required)


def components() -> dict[str, Any]:
    """The shared schemas: the error body and the event envelope (docs/http.md)."""
    error = _obj(
        {"status": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}},
        {
            "field": {"type": "string"},
            "expected_version": {"type": ["integer", "null"]},
            "actual_version": {"type": ["integer", "null"]},
        },
    )
    event = _obj(
        {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "version": {"type": "integer"},
            "stream": {"type": "string"},
            "stream_version": {"type": "integer"},
            "position": {"type": "integer"},
            "recorded_at": {"type": "string", "format": "date-time"},
            "data": {"type": "object"},
            "metadata": {"type": "object"},
        },
        {"stream_id": {"type": "string"}},
    )
    return {ERROR: error, EVENT: event}


def events_list() -> dict[str, Any]:
    """An array of event envelopes."""
    return {"type": "array", "items": ref(EVENT)}


# ---------------------------------------------------------------- types


def id_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of an instance's id: a text id is never empty."""
    schema = type_schema(tp)
    return {**schema, "minLength": 1} if schema == _TEXT else schema


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of a value of type ``tp`` as text in a path or query string."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        present = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(present) != 1:
            return {"type": "string"}
        if present[0] is str:
            return _TEXT  # "null" is a text like any other
        # an optional column: `null` filters on no value
        return {"anyOf": [type_schema(present[0]), {"type": "string", "enum": ["null"]}]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer", "minimum": -MAX_POSITION - 1, "maximum": MAX_POSITION}
    if tp is uuid.UUID:
        return {"type": "string", "format": "uuid"}
    if tp is dt.datetime:
        return {"type": "string", "format": "date-time"}
    if tp is dt.date:
        return {"type": "string", "format": "date"}
    if tp is Decimal:
        return {"type": "string", "pattern": DECIMAL_PATTERN}
    if tp is dt.timedelta:
        return {"type": "string", "format": "duration", "pattern": DURATION_PATTERN}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"type": "string", "enum": [str(m.value) for m in tp]}
    return _TEXT


def value_schema(tp: Any, seen: frozenset[Any] = frozenset()) -> dict[str, Any]:
    """The JSON Schema of a value of type ``tp`` as the API encodes it in an answer."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [value_schema(a, seen) for a in args]}
    if tp is type(None):
        return {"type": "null"}
    simple = _ANSWER_TYPES.get(tp)
    if simple is not None:
        return dict(simple)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if origin in (list, tuple, set, frozenset) and args:
        return {"type": "array", "items": value_schema(args[0], seen)}
    if origin is dict and len(args) == 2:
        return {"type": "object", "additionalProperties": value_schema(args[1], seen)}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type) and tp not in seen:
        return record_schema(tp, seen=seen | {tp})
    return {}


def record_schema(
    cls: type[Any], nullable: frozenset[str] = frozenset(), seen: frozenset[Any] = frozenset()
) -> dict[str, Any]:
    """An encoded dataclass: its fields by their wire names; ``nullable`` ones may be
    null (a forgotten `pii` value that is not text).
    """
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        schema = value_schema(hints[f.name], seen or frozenset({cls}))
        if f.name in nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[f.metadata.get(WIRE_NAME, f.name)] = schema
    return {"type": "object", "properties": properties}


_ANSWER_TYPES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    Decimal: {"type": "string"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    dt.date: {"type": "string", "format": "date"},
    dt.datetime: {"type": "string", "format": "date-time"},
    dt.timedelta: {"type": "string", "format": "duration"},
}


# ---------------------------------------------------------------- parameters


def body(model: type[BaseModel]) -> dict[str, Any]:
    """A required JSON request body of the model's schema."""
    schema = ref(model.__name__)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def path(**schemas: dict[str, Any]) -> dict[str, Any]:
    """Path parameters by name, with their schemas."""
    return {
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": schema}
            for name, schema in schemas.items()
        ]
    }


def query(**schemas: dict[str, Any]) -> dict[str, Any]:
    """Optional query parameters by name, with their schemas."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in schemas.items()
        ]
    }


def after_param() -> dict[str, Any]:
    """The log position to read after (0: from the start)."""
    return _integer()


def limit_param(maximum: int) -> dict[str, Any]:
    """A page size."""
    return _integer(1, maximum)


def at_param() -> dict[str, Any]:
    """A log position or an ISO 8601 time."""
    return {"anyOf": [_integer(), {"type": "string", "format": "date-time"}]}


def command_headers() -> dict[str, Any]:
    """``If-Match`` and ``Idempotency-Key``."""
    return {"parameters": [_if_match(), _idempotency_key()]}


def idempotency_header() -> dict[str, Any]:
    """``Idempotency-Key`` alone."""
    return {"parameters": [_idempotency_key()]}


def _if_match() -> dict[str, Any]:
    schema = {"type": "string", "pattern": IF_MATCH_PATTERN}
    return {"name": "If-Match", "in": "header", "required": False, "schema": schema}


def _idempotency_key() -> dict[str, Any]:
    schema = {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY, "pattern": r"\S"}
    return {"name": "Idempotency-Key", "in": "header", "required": False, "schema": schema}


def last_event_id() -> dict[str, Any]:
    """``Last-Event-ID``: a reconnecting EventSource's last position (else ignored)."""
    param = {"name": "Last-Event-ID", "in": "header", "required": False}
    schema = {"type": "string", "pattern": "^([0-9]{1,19})?$"}  # empty: none
    return {"parameters": [{**param, "schema": schema}]}


def merge(*docs: dict[str, Any]) -> dict[str, Any]:
    """Merge operation docs, joining their parameter lists and answers."""
    merged: dict[str, Any] = {}
    for doc in docs:
        merged |= {
            **doc,
            "parameters": merged.get("parameters", []) + doc.get("parameters", []),
            "responses": {**merged.get("responses", {}), **doc.get("responses", {})},
        }
    return {key: value for key, value in merged.items() if value}


# ---------------------------------------------------------------- answers


def answers(
    status: int,
    schema: dict[str, Any],
    *errors: int,
    description: str = "Success",
    media_type: str = "application/json",
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The operation's answers: one success and the errors it may answer with."""
    success: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": schema}},
    }
    if headers:
        success["headers"] = headers
    return {"responses": {str(status): success, **error_answers(*errors)}}


def error_answers(*statuses: int) -> dict[str, Any]:
    """Error answers, each in the one error body."""
    out: dict[str, Any] = {}
    for status in sorted(set(statuses)):
        answer: dict[str, Any] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": ref(ERROR)}},
        }
        if status in _ERROR_HEADERS:
            answer["headers"] = _ERROR_HEADERS[status]
        out[str(status)] = answer
    return out


def etag() -> dict[str, Any]:
    """The ``ETag`` header of an answer that names a stream version."""
    return {"ETag": {"required": True, "schema": {"type": "string", "pattern": '^"[0-9]+"$'}}}


def command_answer(id_schema: dict[str, Any] | None) -> dict[str, Any]:
    """A command's answer: the new stream version and events (and the id when created)."""
    required: dict[str, Any] = {"id": id_schema} if id_schema is not None else {}
    required |= {"stream_version": {"type": "integer"}, "events": events_list()}
    return _obj(required)


def state_answer(id_schema: dict[str, Any]) -> dict[str, Any]:
    """An instance's state."""
    return _obj(
        {
            "id": id_schema,
            "stream": {"type": "string"},
            "stream_version": {"type": "integer"},
            "position": {"type": "integer"},
            "state": {"type": "object"},
        }
    )


def rows_answer(row: dict[str, Any]) -> dict[str, Any]:
    """A page of view rows; ``next_after`` is the last key as text (null: last page)."""
    return _obj(
        {"rows": {"type": "array", "items": row}, "next_after": {"type": ["string", "null"]}}
    )


def instance_answer(key: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A process instance: its state, whether it ended, its pending timers."""
    timer = _obj({"name": {"type": "string"}, "due": {"type": "string", "format": "date-time"}})
    when = {"type": ["string", "null"], "format": "date-time"}
    return _obj(
        {
            "key": key,
            "state": state,
            "ended": {"type": "boolean"},
            "timers": {"type": "array", "items": timer},
            "version": {"type": "integer"},
            "started_at": when,
            "updated_at": when,
        }
    )


def instances_answer(instance: dict[str, Any]) -> dict[str, Any]:
    """A page of process instances; ``next_after`` is the last key (null: last page)."""
    return _obj(
        {
            "instances": {"type": "array", "items": instance},
            "next_after": {"type": ["string", "null"]},
        }
    )


def log_answer() -> dict[str, Any]:
    """A page of the log."""
    return _obj({"events": events_list(), "next_after": _integer()})


def external_answer() -> dict[str, Any]:
    """An external event's answer: its position and envelope."""
    return _obj({"position": {"type": ["integer", "null"]}, "events": events_list()})


def sse_event() -> dict[str, Any]:
    """One Server-Sent Event: its ``id`` is the position, ``event`` the type, ``data``
    the envelope as JSON (the schema describes each event, as Open API 3.2's
    ``itemSchema`` does).
    """
    return _obj(
        {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": {"type": "string"},
            "data": {"type": "string", "contentMediaType": "application/json"},
        }
    )


def failures_answer() -> dict[str, Any]:
    """The `$Failure` events and the parked events."""
    parked = _obj(
        {
            "consumer": {"type": "string"},
            "position": {"type": "integer"},
            "event_id": {"type": "string"},
            "error": {"type": "string"},
            "attempts": {"type": "integer"},
            "parked_at": {"type": "string", "format": "date-time"},
        }
    )
    timer = _obj(
        {
            "process": {"type": "string"},
            "key": {"type": "string"},
            "timer": {"type": "string"},
            "due": {"type": "string", "format": "date-time"},
            "attempts": {"type": "integer"},
        }
    )
    return _obj(
        {
            "failures": events_list(),
            "parked": {"type": "array", "items": parked},
            "parked_timers": {"type": "array", "items": timer},
        }
    )


def retry_answer() -> dict[str, Any]:
    """A retried failure."""
    return _obj(
        {"consumer": {"type": "string"}, "position": _integer(), "resolved": {"type": "boolean"}}
    )


def timer_retry_answer() -> dict[str, Any]:
    """A retried parked timer."""
    text = {"type": "string"}
    return _obj({"process": text, "key": text, "timer": text, "resolved": {"type": "boolean"}})


def health_answer() -> dict[str, Any]:
    """The service's health: the log's head and each consumer's lag."""
    consumer = _obj({"kind": {"type": "string", "enum": ["view", "policy"]}})
    return _obj(
        {
            "status": {"type": "string"},
            "position": {"type": "integer"},
            "consumers": {"type": "object", "additionalProperties": consumer},
            "parked": {"type": "integer"},
        }
    )


def secured(open_service: bool, extra: dict[str, Any]) -> dict[str, Any]:
    """With tokens (not ``open_service``): the bearer scheme, and 401 and 403 among the
    answers.
    """
    if open_service:
        return extra
    return merge(extra, {"security": _BEARER, "responses": error_answers(401, 403)})


def install(app: FastAPI, models: list[type[BaseModel]], open_service: bool) -> None:
    """Make ``app.openapi()`` the whole document: FastAPI's, with the shared schemas,
    the bodies' ``models`` and, with tokens (not ``open_service``), the bearer scheme.
    """
    original = app.openapi

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = original()
        parts = document.setdefault("components", {})
        schemas = parts.setdefault("schemas", {})
        schemas.update(components())
        if models:
            _, top = models_json_schema(
                [(m, "validation") for m in models], ref_template=_SCHEMA_REF
            )
            schemas.update(top.get("$defs", {}))
        if not open_service:
            parts.setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
