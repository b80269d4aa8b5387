"""The test-only clock route (docs/http.md, "Test clock"): moving a served service's
clock forward, so an end-to-end test can let 15 minutes pass without waiting.

It exists only when the application runs on a `TestClock` (`STORMGEN_TEST_CLOCK=1`,
or `serve --test-clock` in a generated service) and is refused when tokens are
configured: a service that authenticates its clients is not a test service.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import Response

from stormgen.runtime.clock import TestClock
from stormgen.runtime.envelope import format_time
from stormgen.runtime.http import errors, openapi, params
from stormgen.runtime.http.api import JSON, Api
from stormgen.runtime.http.auth import TokenConfigError

PATH = "/_test/clock"
#: the longest jump one request may ask for (a typo of a unit, not a test, beyond it)
MAX_ADVANCE = timedelta(days=3650)


def add_test_clock_route(app: FastAPI, api: Api) -> None:
    """Add ``GET`` and ``POST /_test/clock`` when the application runs on a test clock."""
    clock = api.application.clock
    if not isinstance(clock, TestClock):
        return
    if not api.tokens.open:
        raise TokenConfigError(
            "the test clock is refused with tokens configured: serve a test service open, "
            "on 127.0.0.1, or unset STORMGEN_TEST_CLOCK"
        )

    def answer() -> Response:
        return JSON(
            {"now": format_time(clock.now()), "offset_seconds": clock.offset.total_seconds()}
        )

    async def read(request: Request) -> Response:
        return answer()

    async def advance(request: Request) -> Response:
        data = params.json_body(await request.body())
        seconds = data.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise errors.invalid("'seconds' must be a number of seconds to move forward", "seconds")
        if not 0 <= seconds <= MAX_ADVANCE.total_seconds():
            raise errors.invalid(
                f"'seconds' must be between 0 and {int(MAX_ADVANCE.total_seconds())}", "seconds"
            )
        clock.advance(timedelta(seconds=seconds))
        return answer()

    now = openapi.obj(
        now={"type": "string", "format": "date-time"}, offset_seconds={"type": "number"}
    )
    doc = openapi.answers(200, now)
    app.add_api_route(PATH, read, methods=["GET"], tags=["testing"], openapi_extra=doc)
    body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": openapi.obj(seconds={"type": "number", "minimum": 0})
                }
            },
        }
    }
    advance_doc = openapi.merge(body, openapi.answers(200, now, 422))
    app.add_api_route(PATH, advance, methods=["POST"], tags=["testing"], openapi_extra=advance_doc)
