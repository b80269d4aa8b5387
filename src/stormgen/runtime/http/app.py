"""The HTTP API of a service (docs/http.md), built from an Application's definitions.

`create_app` composes the parts: the routes' shared pieces (`api`), the middleware,
the exception handlers, the log's routes (`log_routes`), the domain's
(`domain_routes`), the home page and the OpenAPI document.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from stormgen.runtime.application import Application
from stormgen.runtime.http import openapi
from stormgen.runtime.http.api import Api, new_executor
from stormgen.runtime.http.auth import Tokens, load_tokens
from stormgen.runtime.http.clock_routes import add_test_clock_route
from stormgen.runtime.http.domain_routes import add_domain_routes
from stormgen.runtime.http.exception_handlers import install_error_handlers
from stormgen.runtime.http.home import add_home_routes, contexts_of
from stormgen.runtime.http.limits import Limits, LimitsError
from stormgen.runtime.http.log_routes import add_log_routes
from stormgen.runtime.http.middleware import DirectCommands, EncodedSlashes, Handler, RequestBodies
from stormgen.runtime.http.writer import CHAIN_BACKLOG, CHAIN_LAG


def create_app(
    application: Application,
    *,
    tokens: str | Mapping[str, str] | Tokens | None = None,
    tokens_file: str | None = None,
    contexts: Collection[str] | None = None,
    run_consumers: bool = True,
    title: str | None = None,
    version: str = "1",
    board: Callable[[], str] | None = None,
    limits: Limits | None = None,
    chain_backlog: int | None = None,
    chain_lag: float | None = None,
) -> FastAPI:
    """Return the FastAPI app serving ``application`` (docs/http.md).

    ``tokens`` (``"t1=Customer,t2=Barista"``, a mapping or :class:`Tokens`) or
    ``tokens_file`` configure bearer authentication; with neither, ``STORMGEN_TOKENS``
    or ``STORMGEN_TOKENS_FILE`` are read, and when nothing is configured the API is
    open (development mode). ``contexts`` limits the routes to those contexts. With
    ``run_consumers`` the views and policies run in background threads while serving.
    ``GET /`` is a home page; ``board`` (renders the model's board, an HTML page) is served
    at ``/board``.
    ``limits`` bound bodies, strings, lists and event streams (default: the
    ``STORMGEN_*`` variables, else :class:`Limits`' defaults; docs/http.md).
    ``chain_lag`` and ``chain_backlog``: how long (seconds) and how many events the
    views, policies and processes may trail the log while the API is under load and its
    commands go first (SQLite's single writer; 0: always in step; default
    ``STORMGEN_CHAIN_LAG`` and ``STORMGEN_CHAIN_BACKLOG``, else
    :data:`~stormgen.runtime.http.writer.CHAIN_LAG` and ``CHAIN_BACKLOG``).
    """
    limits = limits or Limits.from_env()
    backlog = chain_backlog_from_env() if chain_backlog is None else chain_backlog
    lag = chain_lag_from_env() if chain_lag is None else chain_lag
    api = Api(application, load_tokens(tokens, tokens_file), contexts, limits)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_consumers:
            if api.writer is not None and single_writer():
                # the single writer: commands, views, policies
                api.writer.take_passes(backlog, lag)
            application.start()
        try:
            yield
        finally:
            if api.writer is not None:
                await run_in_threadpool(api.writer.stop)
            if run_consumers:
                await run_in_threadpool(application.stop)
            # a new, idle executor (it starts no thread until used) for a next startup
            api.executor.shutdown(wait=False)
            api.executor = new_executor()

    app = FastAPI(
        title=title or "stormgen service",
        version=version,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.api = api
    direct: dict[int, Handler] = {}
    # the last added middleware runs first: slashes are kept escaped before routing
    app.add_middleware(DirectCommands, router=app.router, handlers=direct, writer=api.writer)
    app.add_middleware(EncodedSlashes)
    app.add_middleware(RequestBodies, limits=limits)
    install_error_handlers(app, api)
    add_log_routes(app, api)
    add_domain_routes(app, api, direct)
    add_test_clock_route(app, api)
    contexts_shown = contexts_of(application, api.contexts)
    add_home_routes(app, app.title, contexts_shown, board, api.tokens.open)
    openapi.install(app, api.models, api.tokens.open)
    return app


def chain_backlog_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``STORMGEN_CHAIN_BACKLOG`` (a whole number of events, 0 or more), else
    :data:`~stormgen.runtime.http.writer.CHAIN_BACKLOG`."""
    value = _bound_from_env(environ, "STORMGEN_CHAIN_BACKLOG", int, "a whole number of events")
    return CHAIN_BACKLOG if value is None else int(value)


def chain_lag_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``STORMGEN_CHAIN_LAG`` (seconds, 0 or more), else
    :data:`~stormgen.runtime.http.writer.CHAIN_LAG`."""
    value = _bound_from_env(environ, "STORMGEN_CHAIN_LAG", float, "a number of seconds")
    return CHAIN_LAG if value is None else value


def _bound_from_env(
    environ: Mapping[str, str] | None, name: str, kind: Callable[[str], float], what: str
) -> float | None:
    """The variable `name` read as `kind`, 0 or more and finite (None when unset)."""
    text = (os.environ if environ is None else environ).get(name, "")
    if not text.strip():
        return None
    try:
        value = kind(text)
    except ValueError:
        value = -1
    if not 0 <= value < float("inf"):
        raise LimitsError(f"{name} must be {what}, not {text!r}")
    return value


def single_writer() -> bool:
    """Whether the command writer also runs the passes' transactions (the default; set
    ``STORMGEN_SINGLE_WRITER=off`` to keep them on the consumers' own thread)."""
    value = os.environ.get("STORMGEN_SINGLE_WRITER", "on").strip().lower()
    return value not in ("off", "0", "false", "no")
