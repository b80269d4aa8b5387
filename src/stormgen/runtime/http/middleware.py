"""The API's ASGI middleware: bounded request bodies, escaped slashes kept while
routing, and commands handed straight to their handlers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import Response
from starlette.routing import Match

from stormgen.runtime.errors import StoreError
from stormgen.runtime.http import errors
from stormgen.runtime.http.errors import ApiError
from stormgen.runtime.http.limits import Limits
from stormgen.runtime.http.writer import CommandWriter

Handler = Callable[[Request], Awaitable[Response]]


class RequestBodies:
    """Bound each request's body in size and in time, before anything reads it.

    A ``Content-Length`` over ``limits.max_body_bytes`` is a 413 at once (nothing is
    read); a body that grows past it while it streams (chunked) is a 413 as soon as it
    does, so no more than the limit (plus the server's one read) is ever held. A body
    not complete ``limits.body_timeout`` seconds after its headers is a 408. Both
    answers close the connection. The server also closes a connection whose body stops
    arriving when nothing reads it (``serve``: the same timeout).
    """

    def __init__(self, app: Any, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            await errors.too_large(limit).response()(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout
        received = 0
        complete = length == 0
        started = False

        async def bounded_receive() -> Any:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):  # no task per read, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise errors.timed_out(self.limits.body_timeout) from None
            if message["type"] != "http.request":
                complete = True
                return message
            received += len(message.get("body", b""))
            if received > limit:
                raise errors.too_large(limit)
            complete = not message.get("more_body", False)
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracked_send)
        except ApiError as exc:  # raised by a read outside the handlers' own answers
            if started:
                raise
            await exc.response()(scope, receive, send)


def _content_length(scope: Any) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


_KEPT_ESCAPES = re.compile(r"(%2[fF]|%25)")


class EncodedSlashes:
    """Keep ``%2F`` (and ``%25``) escaped while routing, so an id may hold a slash.

    Servers decode the path before routing: ``/library/book/a%2Fb/events`` would
    reach the routes as ``/library/book/a/b/events``, the id split in two. When the
    raw path holds such an escape, this middleware routes on a path where only those
    stay escaped; handlers unescape ids and keys (:func:`params.path_param`).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and (b"%2f" in raw.lower() or b"%25" in raw):
            text = raw.decode("ascii", "replace").split("?", 1)[0]
            parts = _KEPT_ESCAPES.split(text)
            path = "".join(p if _KEPT_ESCAPES.fullmatch(p) else unquote(p) for p in parts)
            scope = {**scope, "path": path}
            scope["stormgen.escaped"] = True
        await self.app(scope, receive, send)


class DirectCommands:
    """Hand a command's POST straight to its handler, past FastAPI's inner layers.

    Routing is the router's own (its routes, in its order, ``Route.matches``); when
    the first full match is a command route, its handler runs here with the same
    error answers as the app's handlers (`errors.error_response`), skipping the
    exception, exit-stack and route wrappers that cost about a tenth of a command's
    CPU. Anything else (other routes, partial matches, 404/405) takes the usual path.

    A command route whose path has no parameter (a command creating an instance) is
    found by its path at once: the routes before it are tried once, when the table is
    made (again whenever the router's routes are not the same ones), and it is taken
    only when none of them matches a POST to that path, as the walk through them would
    find.
    """

    def __init__(
        self,
        app: Any,
        router: Any,
        handlers: Mapping[int, Handler],
        writer: CommandWriter | None = None,
    ) -> None:
        self.app = app
        self.router = router
        self.handlers = handlers
        self.writer = writer
        #: path -> the command route a POST to it reaches first, for the routes in
        #: `_routes` (the router's, when the table was made)
        self._by_path: dict[str, Any] = {}
        self._routes: tuple[Any, ...] = ()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            routes = tuple(self.router.routes)
            if routes != self._routes:  # (the same routes: an identity check each)
                self._index(routes)
            route = None if scope.get("root_path") else self._by_path.get(scope["path"])
            if route is not None:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    await self._handle(route, child, scope, receive, send)
                    return
            for route in routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    if id(route) in self.handlers:
                        await self._handle(route, child, scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    async def _handle(self, route: Any, child: Any, scope: Any, receive: Any, send: Any) -> None:
        handler = self.handlers[id(route)]
        scope["route"] = route
        scope.update(child)
        writer = self.writer
        if writer is None:
            await _respond(handler, Request(scope, receive, send), send)
            return
        writer.request_started()
        try:
            await _respond(handler, Request(scope, receive, send), send)
        finally:
            writer.request_ended()

    def _index(self, routes: tuple[Any, ...]) -> None:
        """Find the command routes a POST reaches by its path alone (`_by_path`)."""
        by_path: dict[str, Any] = {}
        for at, route in enumerate(routes):
            path = getattr(route, "path", None)
            if id(route) not in self.handlers or not isinstance(path, str) or "{" in path:
                continue
            if path in by_path or any(_reaches(other, path) for other in routes[:at]):
                continue  # an earlier route answers a POST to it: the walk decides
            by_path[path] = route
        self._by_path, self._routes = by_path, routes


def _reaches(route: Any, path: str) -> bool:
    """Whether ``route`` fully matches a POST to ``path`` (or might: it cannot say)."""
    scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": []}
    try:
        match, _ = route.matches(scope)
    except Exception:
        return True
    return bool(match is Match.FULL)


async def _respond(handler: Handler, request: Request, send: Any) -> None:
    try:
        response = await handler(request)
    except (ApiError, StoreError) as exc:
        response = errors.error_response(exc)
    await response(request.scope, request.receive, send)
