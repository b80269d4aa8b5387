"""Serve an application over HTTP with uvicorn."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

from stormgen.runtime.application import Application
from stormgen.runtime.bus import BusConfigError, open_bus
from stormgen.runtime.http.api import Api
from stormgen.runtime.http.app import create_app
from stormgen.runtime.http.auth import OPERATOR, Tokens, is_loopback, load_tokens
from stormgen.runtime.http.connections import limited_protocol
from stormgen.runtime.http.limits import Limits, LimitsError


class ServeError(Exception):
    """The service cannot start as asked (e.g. an open API on a public address)."""


def serve(
    application: Application,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    tokens: str | Mapping[str, str] | Tokens | None = None,
    tokens_file: str | None = None,
    contexts: Collection[str] | None = None,
    title: str | None = None,
    log_level: str = "info",
    access_log: bool = False,
    announce: Any = None,
    board: Callable[[], str] | None = None,
    limits: Limits | None = None,
    bus: str | None = None,
    namespace: str | None = None,
) -> None:
    """Serve ``application`` until interrupted; views and policies run meanwhile.

    Without configured tokens the API is open (development mode), which is allowed
    only on a loopback host: otherwise :class:`ServeError` is raised before binding.
    ``announce`` (a callable taking one line) receives the start-up notes; by default
    they go to stderr. ``board`` (renders the model's board page) is served at ``/board``.
    they go to stderr. ``limits`` (default: the ``STORMGEN_*`` variables, else
    :class:`Limits`' defaults) bound bodies, strings, lists, event streams,
    connections and how long a request may take to arrive (docs/http.md).
    ``bus`` (``nats://HOST:PORT[,...]``) links the contexts served to the bus, under
    ``namespace`` (the generated package's name): they run autonomously
    (docs/autonomous.md).
    """
    import uvicorn

    say = announce or (lambda line: print(line, file=sys.stderr, flush=True))
    if limits is None:
        try:
            limits = Limits.from_env()
        except LimitsError as exc:
            raise ServeError(str(exc)) from None
    try:
        link = open_bus(application, bus, namespace or "stormgen", contexts, say)
    except (BusConfigError, ValueError) as exc:
        raise ServeError(str(exc)) from None
    configured = load_tokens(tokens, tokens_file)
    if configured.open and not is_loopback(host):
        raise ServeError(
            f"refusing to serve an open API on {host}: configure tokens with "
            "STORMGEN_TOKENS or a tokens file, or serve on 127.0.0.1"
        )
    try:
        app = create_app(
            application,
            tokens=configured,
            contexts=contexts,
            title=title,
            board=board,
            limits=limits,
        )
    except LimitsError as exc:
        raise ServeError(str(exc)) from None
    if configured.open:
        say(
            "open development mode: no tokens are configured, so every request is "
            "accepted (set STORMGEN_TOKENS to require bearer tokens)"
        )
    else:
        say(f"bearer tokens required: {len(configured.principals)} configured")
        for line in _token_notes(app.state.api):
            say(line)
    descriptors = _descriptor_limit()
    if descriptors is not None and limits.max_connections > descriptors - 64:
        say(
            f"warning: up to {limits.max_connections} connections are allowed but the "
            f"process may open only {descriptors} files (ulimit -n); lower "
            "STORMGEN_MAX_CONNECTIONS or raise the limit"
        )
    where = ", ".join(sorted(contexts)) if contexts else "every context"
    say(f"serving {where} on http://{_url_host(host)}:{port} (store {application.store.url})")
    if link is not None:
        link.start()
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            lifespan="on",
            timeout_graceful_shutdown=5,
            http=limited_protocol(limits),
        )
    finally:
        if link is not None:
            link.stop()


def _token_notes(api: Api) -> list[str]:
    """What the configured tokens leave closed, said once at start-up."""
    notes = [
        f"no token is mapped to {system}: its inbound events are refused (403)"
        for system in api.unmapped_systems()
    ]
    actors = {actor for route in api.commands for actor in route.actors}
    for name in sorted(api.tokens.names() - actors - api.access.system_names - {OPERATOR}):
        notes.append(
            f"{name} (a token's principal) issues none of the served commands and is no "
            "external system: it reads views and state as an actor"
        )
    if OPERATOR not in api.tokens.names():
        notes.append(
            f"no token is mapped to {OPERATOR}: the raw log (/events, /events/stream, "
            "instances' /events, /failures) answers 403 to every token"
        )
    return notes


def _descriptor_limit() -> int | None:
    """The process's soft limit on open files, None where it cannot be read."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
