"""The log's routes and the operators' (docs/http.md): `/health`, `/events`, the event
stream, `/failures` and a failure's retry.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from stormgen.runtime import codec
from stormgen.runtime.http import errors, openapi, params
from stormgen.runtime.http.api import JSON, Api, call
from stormgen.runtime.http.errors import ApiError
from stormgen.runtime.http.health import HealthCheck
from stormgen.runtime.http.middleware import Handler
from stormgen.runtime.http.stream import EventStream, last_event_id, sse

#: Seconds a client refused for too many open streams is told to wait.
_STREAM_RETRY_AFTER = 5


def _health_handler(health_check: HealthCheck) -> Handler:
    """`GET /health`: 200 when the store answers, else 503."""

    async def health(_: Request) -> Response:
        body = await health_check()
        if body["status"] == "ok":
            return JSON(body)
        return JSON(body, status_code=503, headers={"Retry-After": "1"})

    return health


def _events_handler(api: Api) -> Handler:
    """`GET /events`: a page of the log (operators)."""

    async def events(request: Request) -> Response:
        api.access.log(request, "the event log")
        after = params.int_param(request, "after", 0) or 0
        limit = params.int_param(request, "limit", 100, minimum=1, maximum=params.MAX_PAGE)
        found = await call(api, api.application.events, after, limit)
        next_after = found[-1].position if found else after
        return JSON({"events": [e.to_json() for e in found], "next_after": next_after})

    return events


def _stream_handler(api: Api) -> Handler:
    """`GET /events/stream`: the log as Server-Sent Events (operators)."""

    async def stream(request: Request) -> Response:
        api.access.log(request, "the event stream")
        after = max(params.int_param(request, "after", 0) or 0, last_event_id(request))
        if api.open_streams >= api.limits.max_streams:
            raise ApiError(
                503,
                "unavailable",
                f"{api.open_streams} event streams are open, the most this service serves "
                "at once; retry later",
                headers={"Retry-After": str(_STREAM_RETRY_AFTER)},
            )
        api.open_streams += 1
        return EventStream(sse(api.pages, request, after), api.close_stream)

    return stream


def _failures_handler(api: Api) -> Handler:
    """`GET /failures`: failure events and parked consumers (operators)."""

    async def failures(request: Request) -> Response:
        api.access.log(request, "the failure list")
        after = params.int_param(request, "after", 0) or 0
        limit = params.int_param(request, "limit", 100, minimum=1, maximum=params.MAX_PAGE)

        def read() -> dict[str, Any]:
            found = api.application.failures(after, limit)
            parked = [
                {
                    "consumer": p.consumer,
                    "position": p.position,
                    "event_id": p.event_id,
                    "error": p.error,
                    "attempts": p.attempts,
                    "parked_at": codec.to_data(p.parked_at),
                }
                for p in api.application.parked()
            ]
            timers = [
                {
                    "process": t.process,
                    "key": t.key,
                    "timer": t.name,
                    "due": codec.to_data(t.due),
                    "attempts": t.attempts,
                }
                for t in api.application.parked_timers()
            ]
            failures = [e.to_json() for e in found]
            return {"failures": failures, "parked": parked, "parked_timers": timers}

        return JSON(await run_in_threadpool(read))

    return failures


def _retry_handler(api: Api) -> Handler:
    """`POST /failures/{consumer}/{position}/retry` (operators)."""

    async def retry(request: Request) -> Response:
        api.access.log(request, "retrying a failure")
        consumer = request.path_params["consumer"]
        position_text = request.path_params["position"]
        if not position_text.isdigit() or int(position_text) > params.MAX_POSITION:
            raise errors.not_found(f"no parked failure of {consumer} at {position_text!r}")
        try:
            ok = await run_in_threadpool(api.application.retry_parked, consumer, int(position_text))
        except KeyError as exc:
            raise errors.not_found(str(exc.args[0]) if exc.args else "no such failure") from None
        return JSON({"consumer": consumer, "position": int(position_text), "resolved": ok})

    return retry


def _timer_retry_handler(api: Api) -> Handler:
    """`POST /failures/{process}/timers/{key}/{timer}/retry` (operators)."""

    async def retry(request: Request) -> Response:
        api.access.log(request, "retrying a parked timer")
        process, key, timer = (request.path_params[n] for n in ("process", "key", "timer"))
        app = api.application
        try:
            ok = await run_in_threadpool(app.retry_parked_timer, process, key, timer)
        except KeyError as exc:
            raise errors.not_found(str(exc.args[0]) if exc.args else "no such timer") from None
        return JSON({"process": process, "key": key, "timer": timer, "resolved": ok})

    return retry


def add_log_routes(app: FastAPI, api: Api) -> None:
    """Add the routes of the log and of its operators to ``app``."""
    health = _health_handler(HealthCheck(api.application))
    events, stream = _events_handler(api), _stream_handler(api)
    failures, retry = _failures_handler(api), _retry_handler(api)
    app.add_api_route(
        "/health",
        health,
        methods=["GET"],
        tags=["operations"],
        openapi_extra=openapi.answers(200, openapi.health_answer(), 503),
    )
    app.add_api_route(
        "/events",
        events,
        methods=["GET"],
        tags=["log"],
        openapi_extra=_page_doc(api, openapi.log_answer()),
    )
    app.add_api_route(
        "/events/stream",
        stream,
        methods=["GET"],
        tags=["log"],
        response_class=StreamingResponse,
        openapi_extra=openapi.secured(
            api.tokens.open,
            openapi.merge(
                openapi.query(after=openapi.after_param()),
                openapi.last_event_id(),
                openapi.answers(
                    200,
                    openapi.sse_event(),
                    400,
                    422,
                    503,
                    description="Server-Sent Events: the log from `after` on, live",
                    media_type="text/event-stream",
                ),
            ),
        ),
    )
    app.add_api_route(
        "/failures",
        failures,
        methods=["GET"],
        tags=["operations"],
        openapi_extra=_page_doc(api, openapi.failures_answer()),
    )
    app.add_api_route(
        "/failures/{consumer}/{position}/retry",
        retry,
        methods=["POST"],
        tags=["operations"],
        openapi_extra=openapi.secured(
            api.tokens.open,
            openapi.merge(
                openapi.path(consumer={"type": "string"}, position=openapi.after_param()),
                openapi.answers(200, openapi.retry_answer(), 404, *openapi.WRITE_ERRORS),
            ),
        ),
    )
    text = {"type": "string"}
    app.add_api_route(
        "/failures/{process}/timers/{key}/{timer}/retry",
        _timer_retry_handler(api),
        methods=["POST"],
        tags=["operations"],
        openapi_extra=openapi.secured(
            api.tokens.open,
            openapi.merge(
                openapi.path(process=text, key=text, timer=text),
                openapi.answers(200, openapi.timer_retry_answer(), 404, *openapi.WRITE_ERRORS),
            ),
        ),
    )


def _page_doc(api: Api, answer: dict[str, Any]) -> dict[str, Any]:
    """A page of the log or of its failures: ``after`` and ``limit``, 422 and 503."""
    return openapi.secured(
        api.tokens.open,
        openapi.merge(
            openapi.query(after=openapi.after_param(), limit=openapi.limit_param(params.MAX_PAGE)),
            openapi.answers(200, answer, 422, 503),
        ),
    )
