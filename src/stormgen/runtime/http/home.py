"""The service's own pages: a home page at ``/`` and the model's board at ``/board``.

The home page is one small HTML file (``home.html`` beside this module): the service's
name and contexts, links to the API's documentation and the board, the store's health
with each view's and policy's lag (polled from ``/health``), and a live tail of the
log (``/events/stream``, read with ``fetch`` so that a bearer token can be sent).
Neither page holds data of the domain, so neither needs a token, like ``/docs``.
"""

from __future__ import annotations

import functools
import html
import json
import threading
from collections.abc import Callable
from importlib import resources
from string import Template

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from stormgen.runtime.application import Application


def contexts_of(application: Application, hosted: set[str] | None) -> list[str]:
    """The contexts the application defines, in definition order (only ``hosted`` ones)."""
    names = [*application.aggregates, *application.views, *application.policies]
    seen: dict[str, None] = {}
    for name in names:
        context = name.split(".", 1)[0]
        if hosted is None or context in hosted:
            seen.setdefault(context)
    return list(seen)


def render_home(title: str, contexts: list[str], has_board: bool, open_api: bool) -> str:
    """The home page's HTML: static text, the names escaped, the rest filled in by script."""
    page = resources.files(__package__).joinpath("home.html").read_text(encoding="utf-8")
    settings = {"contexts": contexts, "board": has_board, "open": open_api}
    return Template(page).substitute(
        title=html.escape(title),
        # inside <script>: "</" could close the element, so it is escaped too
        settings=json.dumps(settings).replace("</", "<\\/"),
    )


def add_home_routes(
    app: FastAPI,
    title: str,
    contexts: list[str],
    board: Callable[[], str] | None,
    open_api: bool,
) -> None:
    """``GET /`` (the home page) and, when the service has its model's board, ``/board``.

    ``board`` renders the board page; it is called once, on the first request for it
    (a big model's board takes a while to lay out, and most runs never ask for it).
    """
    home = render_home(title, contexts, board is not None, open_api)

    async def home_page() -> HTMLResponse:
        return HTMLResponse(home)

    app.add_api_route("/", home_page, methods=["GET"], include_in_schema=False)
    if board is not None:
        rendered = functools.cache(board)
        lock = threading.Lock()

        def render_once() -> str:
            with lock:
                return rendered()

        async def board_page() -> HTMLResponse:
            return HTMLResponse(await run_in_threadpool(render_once))

        app.add_api_route("/board", board_page, methods=["GET"], include_in_schema=False)
