"""API errors: one JSON body shape for every status the API answers with on purpose.

Every error body is ``{"status": 409, "error": "rejected", "message": "..."}``, plus
``"field"`` when one field is to blame and ``"expected_version"``/``"actual_version"``
on a version conflict. The application's errors (rejections, a failing store) map
to these here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from stormgen.runtime.errors import StoreError, StoreFull, StoreUnavailable
from stormgen.runtime.rejections import (
    AlreadyExists,
    DecodeError,
    KeyReused,
    NotFound,
    Rejected,
    VersionConflict,
)

log = logging.getLogger("stormgen.http")


class ApiError(Exception):
    """An error answered to the client with its status code and a one-sentence message."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        field: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """Return the JSON body of the error."""
        out: dict[str, Any] = {"status": self.status, "error": self.error, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        out.update(self.extra)
        return out

    def response(self) -> JSONResponse:
        """Return the error as a response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers or None)


def bad_request(message: str) -> ApiError:
    """400: the body is not JSON (or not a JSON object)."""
    return ApiError(400, "malformed", message)


def invalid(message: str, field: str | None = None) -> ApiError:
    """422: a field is missing, unknown or of the wrong type."""
    return ApiError(422, "invalid", message, field=field)


def key_reused(message: str) -> ApiError:
    """422: the Idempotency-Key was used before for a different request."""
    return ApiError(422, "key_reused", message)


def not_found(message: str) -> ApiError:
    """404: no such instance, view row or route."""
    return ApiError(404, "not_found", message)


def rejected(message: str) -> ApiError:
    """409: a guard rejected the command (the ``require`` message)."""
    return ApiError(409, "rejected", message)


def already_exists(message: str) -> ApiError:
    """409: a ``creates`` command names an instance that exists."""
    return ApiError(409, "exists", message)


def version_conflict(message: str, expected: int | None, actual: int | None) -> ApiError:
    """409: ``If-Match`` named a stream version that is no longer current."""
    return ApiError(
        409,
        "conflict",
        message,
        extra={"expected_version": expected, "actual_version": actual},
    )


def unauthorized(message: str) -> ApiError:
    """401: no bearer token, or one that is not configured."""
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    """403: the token's actor may not do this."""
    return ApiError(403, "forbidden", message)


def too_large(limit: int) -> ApiError:
    """413: the request body is larger than the limit; the connection is closed."""
    return ApiError(
        413,
        "too_large",
        f"the request body is larger than {limit} bytes, the most this service accepts",
        extra={"limit": limit},
        headers={"Connection": "close"},
    )


def timed_out(seconds: float) -> ApiError:
    """408: the request body did not arrive in time; the connection is closed."""
    return ApiError(
        408,
        "timeout",
        f"the request body did not arrive within {seconds:g} s",
        headers={"Connection": "close"},
    )


def unavailable(message: str) -> ApiError:
    """503: the store cannot be reached; the client may retry."""
    return ApiError(503, "unavailable", message, headers={"Retry-After": "1"})


def insufficient_storage(message: str) -> ApiError:
    """507: the store's disk is full; nothing was written, retry once space is freed."""
    return ApiError(507, "insufficient_storage", message, headers={"Retry-After": "10"})


#: The errors of the application that `domain_error` answers (ApiErrors as they are).
DOMAIN_ERRORS = (
    ApiError,
    AlreadyExists,
    NotFound,
    Rejected,
    VersionConflict,
    DecodeError,
    KeyReused,
    StoreUnavailable,
)


def domain_error(exc: Exception) -> ApiError:
    """Map an error from the application to the API's answer."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AlreadyExists):
        return already_exists(exc.message)
    if isinstance(exc, NotFound):
        return not_found(exc.message)
    if isinstance(exc, Rejected):
        return rejected(exc.message)
    if isinstance(exc, VersionConflict):
        return version_conflict(
            f"the instance is at version {exc.actual}, not {exc.expected}",
            exc.expected,
            exc.actual,
        )
    if isinstance(exc, DecodeError):
        field = exc.path.removeprefix("$.").removeprefix("$") or None
        return invalid(exc.message, field)
    if isinstance(exc, KeyReused):
        return key_reused(exc.message)
    if isinstance(exc, StoreUnavailable):
        return store_answer(exc)
    raise exc


def store_answer(exc: StoreError) -> ApiError:
    """A store's failure: 507 for a full disk, else 503 (both: retry later)."""
    if isinstance(exc, StoreFull):
        log.error("store full: %s", exc)
        return insufficient_storage(
            "the event store's disk is full: nothing was written; retry once space is freed"
        )
    if isinstance(exc, StoreUnavailable):
        return unavailable(f"the event store is unavailable: {exc}")
    log.error("store error: %s", exc)
    return unavailable(f"the event store failed: {exc}")


def error_response(exc: ApiError | StoreError) -> JSONResponse:
    """The answer to an ApiError or a store's failure (the app's handlers use it too)."""
    if isinstance(exc, ApiError):
        return exc.response()
    return store_answer(exc).response()
