"""The app's answers to exceptions no handler answered: every one in the API's error
body (docs/http.md), FastAPI's and Starlette's own included.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from stormgen.runtime.errors import StoreError
from stormgen.runtime.http import errors, params
from stormgen.runtime.http.api import Api
from stormgen.runtime.http.errors import ApiError
from stormgen.runtime.rejections import DecodeError


def _names_an_instance(api: Api, request: Request) -> bool:
    """Whether a route-level 405's path holds an id its aggregate could have.

    ``POST /bar/ticket/open-ticket`` reaches the state route of a ticket whose id is
    "open-ticket"; when tickets' ids are uuids, that path names nothing (a 404).
    """
    agg = api.instance_endpoints.get(request.scope.get("endpoint"))  # type: ignore[arg-type]
    if agg is None:
        return True
    try:
        agg.parse_id(params.path_param(request, "id"))
    except DecodeError:
        return False
    return True


def install_error_handlers(app: FastAPI, api: Api) -> None:
    """Answer ApiErrors, invalid requests, Starlette's 404/405 and store failures."""

    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return errors.error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        return errors.invalid(
            f"{field or 'the request'}: {first.get('msg', 'invalid')}", field
        ).response()

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405 and not _names_an_instance(api, request):
            exc = StarletteHTTPException(404)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        return ApiError(exc.status_code, kind, message, headers=exc.headers).response()

    async def on_store_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StoreError)
        return errors.error_response(exc)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StoreError, on_store_error)
