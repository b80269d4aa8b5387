"""A request's parts as the handlers take them: its JSON body, headers, query and path.

Each reader answers a client's mistake with the API's error (400, 404 or 422 naming the
parameter or field), never with a server error.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

import msgspec
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from stormgen.runtime import codec
from stormgen.runtime.aggregate import Aggregate
from stormgen.runtime.envelope import parse_time
from stormgen.runtime.http import errors, openapi
from stormgen.runtime.http.naming import short_name
from stormgen.runtime.http.schemas import first_error
from stormgen.runtime.messages import Message
from stormgen.runtime.rejections import DecodeError
from stormgen.runtime.views import View

_DECODER = msgspec.json.Decoder()
#: Positions are 64-bit integers in every store.
MAX_POSITION = 2**63 - 1
#: A whole number in a query string (ASCII digits only: `int()` takes "٣", "1_0", " 7").
_INTEGER = re.compile(r"-?[0-9]+")
_IF_MATCH = re.compile(openapi.IF_MATCH_PATTERN)
#: A view's query parameters that are no filter.
PAGE_PARAMETERS = ("limit", "after")
#: The most rows or events one page may ask for.
MAX_PAGE = 10_000


async def body(request: Request) -> bytes:
    """The request's whole body, read from its ``receive`` (what ``Request.body`` does,
    without the async generator it reads through)."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def json_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object (400 when it is empty, not JSON or not an object)."""
    if not raw.strip():
        raise errors.bad_request("the request body is empty; send a JSON object")
    try:
        data = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise errors.bad_request("the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return data


def validate(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Check a body against its published model (422 naming the first field at fault)."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        message, field = first_error(exc)
        raise errors.invalid(message, field) from None


def decode(cls: type[Message], data: dict[str, Any]) -> Any:
    """The message a checked body stands for (422 naming the field it cannot take)."""
    try:
        # strict: a JSON body's numbers and booleans are taken only as themselves
        return codec.from_data(cls, data, strict=True, wire=True)
    except DecodeError as exc:
        field = exc.path.removeprefix("$.").removeprefix("$") or None
        raise errors.invalid(exc.message, field) from None


def if_match(request: Request) -> int | None:
    """The stream version in ``If-Match`` (None without one; 400 when it is none)."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    text = header.strip()
    if not _IF_MATCH.fullmatch(text):
        raise errors.bad_request(
            f'If-Match must be a stream version ("3", W/"3" or 3), not {header!r}'
        )
    return int(text.removeprefix("W/").strip('"'))


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header (None without one; 400 when empty or too long)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > openapi.MAX_IDEMPOTENCY_KEY:
        raise errors.bad_request(
            f"Idempotency-Key must be 1 to {openapi.MAX_IDEMPOTENCY_KEY} characters"
        )
    return key


def parse_id(agg: Aggregate[Any], text: str) -> Any:
    """An instance's id from a path (404 when no instance could have it)."""
    if "\x00" in text:  # no instance can have it (PostgreSQL keeps no NUL in text)
        raise errors.not_found(f"{agg.name} {text!r} does not exist")
    try:
        return agg.parse_id(text)
    except DecodeError:
        raise errors.not_found(f"{agg.name} {text!r} does not exist") from None


def one(request: Request, name: str) -> str | None:
    """A query parameter given at most once (422 when repeated), or None."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise errors.invalid(f"the parameter {name!r} is given more than once", name)
    return values[0] if values else None


def int_param(
    request: Request,
    name: str,
    default: int | None,
    minimum: int = 0,
    maximum: int = MAX_POSITION,
) -> int | None:
    """A whole-number parameter within its bounds (``default`` when absent; else 422)."""
    text = one(request, name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise errors.invalid(f"the parameter {name!r} must be a whole number", name)
    value = int(text)
    if not minimum <= value <= maximum:
        raise errors.invalid(
            f"the parameter {name!r} must be between {minimum} and {maximum}", name
        )
    return value


def at(request: Request) -> int | datetime | None:
    """The ``at`` parameter: a log position or an ISO 8601 time (422 when neither)."""
    text = one(request, "at")
    if text is None:
        return None
    if _INTEGER.fullmatch(text) and not text.startswith("-"):
        if int(text) > MAX_POSITION:
            raise errors.invalid(f"the parameter 'at' must be at most {MAX_POSITION}", "at")
        return int(text)
    try:
        return parse_time(text)
    except (ValueError, OverflowError):  # OverflowError: year 1 moved to UTC
        raise errors.invalid(
            "the parameter 'at' must be a log position or an ISO 8601 time", "at"
        ) from None


def path_param(request: Request, name: str) -> str:
    """A path parameter (an id or a key), unescaped when the middleware kept escapes."""
    value: str = request.path_params[name]
    return unquote(value) if request.scope.get("stormgen.escaped") else value


def view_filters(view: View[Any], request: Request) -> dict[str, str]:
    """A view's filters from the query: column -> value (422 for one that is no filter)."""
    where: dict[str, str] = {}
    columns = view.sql_columns()
    for name, value in request.query_params.multi_items():
        if name in PAGE_PARAMETERS:
            continue
        one(request, name)
        attribute = view.attribute(name)
        if name not in columns:
            fields = {f.name for f in dataclasses.fields(view.row_type)}
            why = "holds personal data" if attribute in view.pii else "is not a column"
            if attribute not in fields or view.wire(attribute) != name:
                why = "is not a column"
            elif attribute == view.key:
                why = "is the key (use the /{key} route)"
            raise errors.invalid(
                f"cannot filter {short_name(view.name)} on {name!r}: it {why}", name
            )
        if columns[name] == "json":
            raise errors.invalid(
                f"cannot filter {short_name(view.name)} on {name!r}: it holds a list or a value",
                name,
            )
        query_value(codec._hints(view.row_type)[attribute], value, f"the filter {name!r}", name)
        where[name] = value
    return where


def query_value(hint: Any, text: str, what: str, name: str) -> Any:
    """Parse a query string's value of type ``hint`` as the OpenAPI document publishes
    it (422 if not): ``true``/``false``, ASCII digits within 64 bits, and ISO texts
    for times, dates and uuids (no numbers read as times).
    """
    if "\x00" in text:
        raise errors.invalid(f"{what} must not contain a NUL character", name)
    present = [a for a in typing.get_args(hint) if a is not type(None)]
    base = present[0] if len(present) == 1 else hint
    if base is not hint and base is not str and text == "null":
        return None  # an optional column's filter on no value
    if base is bool:
        if text not in ("true", "false"):
            raise errors.invalid(f"{what} must be true or false", name)
        return text == "true"
    if base is int:
        if not (_INTEGER.fullmatch(text) and -MAX_POSITION - 1 <= int(text) <= MAX_POSITION):
            raise errors.invalid(f"{what} must be a whole number that fits 64 bits", name)
        return int(text)
    if base is timedelta:
        why = codec.wire_duration_error(text)
        if why is not None:
            raise errors.invalid(f"{what} does not fit the column: {why}", name)
    try:
        return codec.from_data(hint, text, strict=True)
    except DecodeError as exc:
        raise errors.invalid(f"{what} does not fit the column: {exc.message}", name) from None
