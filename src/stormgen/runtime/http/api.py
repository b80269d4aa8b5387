"""What the API's routes share: the application's catalogue of commands and external
events, who may call what (bearer tokens), the threads that run blocking work, and the
JSON answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import uuid
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic import Field as PydanticField

from stormgen.runtime import codec
from stormgen.runtime.aggregate import Aggregate
from stormgen.runtime.application import Application
from stormgen.runtime.http import errors
from stormgen.runtime.http.auth import Access, Tokens
from stormgen.runtime.http.limits import Limits
from stormgen.runtime.http.middleware import Handler
from stormgen.runtime.http.naming import context_name, short_name
from stormgen.runtime.http.schemas import ID_TEXT, ModelFactory
from stormgen.runtime.http.stream import Pages
from stormgen.runtime.http.writer import CommandWriter
from stormgen.runtime.messages import Command, Event, info

_ENCODER = msgspec.json.Encoder()
#: Threads running blocking application work for requests (created as needed).
_WORKERS = 32


def new_executor() -> ThreadPoolExecutor:
    """The threads that run requests' blocking work (`Api.executor`)."""
    return ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="stormgen-http")


class JSON(Response):
    """A JSON response encoded by msgspec (fast, and it knows Decimal and UUID)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content)


@dataclasses.dataclass(frozen=True)
class CommandRoute:
    """One command on the API."""

    cls: type[Command]
    aggregate: Aggregate[Any]
    context: str
    name: str
    creates: bool
    actors: tuple[str, ...]
    model: type[BaseModel]


@dataclasses.dataclass(frozen=True)
class ExternalRoute:
    """One external system's event that may come in through the API."""

    cls: type[Event]
    context: str
    system: str
    name: str
    model: type[BaseModel]


class Api:
    """The routes of one application, with the pieces they share (who may call what,
    schemas, the threads for blocking work, the command writer).
    """

    def __init__(
        self,
        application: Application,
        tokens: Tokens,
        contexts: Collection[str] | None,
        limits: Limits | None = None,
    ) -> None:
        self.application = application
        self.tokens = tokens
        self.limits = limits or Limits()
        #: event streams open now (`GET /events/stream`), at most `limits.max_streams`
        self.open_streams = 0
        self.pages = Pages(application, lambda: self.executor)
        # blocking work runs here: a plain executor costs less per call than AnyIO's
        # thread pool (no capacity limiter or cancel scope to enter per request)
        self.executor = new_executor()
        # commands and external events: on one thread, grouped into one transaction
        # per arrival where the store gains by it (`EventStore.group_commit`)
        self.writer = CommandWriter(application) if application.store.group_commit else None
        self.contexts = set(contexts) if contexts else None
        self.factory = ModelFactory(self.limits.max_string_length, self.limits.max_list_items)
        self.models: list[type[BaseModel]] = []
        self.commands: list[CommandRoute] = []
        self.externals: list[ExternalRoute] = []
        # the endpoints whose path holds an instance's id, with its aggregate
        self.instance_endpoints: dict[Handler, Aggregate[Any]] = {}
        self._collect()
        # every external system of the application, by full and short name: their
        # tokens post events and read nothing
        full = set(application.system_events) | set(application.ports)
        self.access = Access(tokens, frozenset(full | {short_name(name) for name in full}))

    def close_stream(self) -> None:
        """An event stream ended: its place is free (`open_streams`)."""
        self.open_streams -= 1

    # -- catalogue -----------------------------------------------------------------------
    def hosts(self, name: str) -> bool:
        """True when this API serves the context of ``name`` (``Context.Element``)."""
        return self.contexts is None or context_name(name) in self.contexts

    def _collect(self) -> None:
        app = self.application
        for agg in app.aggregates.values():
            for cls in agg.commands:
                meta = info(cls)
                actors = meta.by
                if not actors or not self.hosts(agg.name):
                    # internal commands (no `by`) are for policies only, never the API
                    continue
                optional = (agg.id_field,) if meta.creates and agg.id_type is uuid.UUID else ()
                exclude = () if meta.creates else (agg.id_field,)
                text_id = None
                if meta.creates and agg.id_type is str:
                    alias = codec.wire_name(cls, agg.id_field)
                    text_id = {agg.id_field: (ID_TEXT, PydanticField(alias=alias))}
                model = self.factory.model(
                    cls,
                    name=self._model_name(meta.name),
                    optional=optional,
                    exclude=exclude,
                    extra_fields=text_id,
                    description=meta.description or None,
                )
                self.models.append(model)
                self.commands.append(
                    CommandRoute(
                        cls,
                        agg,
                        context_name(agg.name),
                        short_name(meta.name),
                        meta.creates,
                        actors,
                        model,
                    )
                )
        for system, classes in app.system_events.items():
            if not self.hosts(system):
                continue
            for event_cls in classes:
                meta = info(event_cls)
                model = self.factory.model(
                    event_cls,
                    name=self._model_name(meta.name),
                    description=meta.description or None,
                )
                self.models.append(model)
                self.externals.append(
                    ExternalRoute(
                        event_cls,
                        context_name(system),
                        short_name(system),
                        short_name(meta.name),
                        model,
                    )
                )

    def _model_name(self, dotted: str) -> str:
        # `Ordering.PlaceOrder` -> `OrderingPlaceOrder`: unique across contexts
        return self.factory.unique_name(dotted.replace(".", ""))

    def unmapped_systems(self) -> list[str]:
        """The served external systems no token maps to (their events are refused)."""
        if self.tokens.open:
            return []
        found = {
            f"{r.context}.{r.system}"
            for r in self.externals
            if not self.access.mapped(r.context, r.system)
        }
        return sorted(found)


async def call(api: Api, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking application work in a worker thread; domain errors become ApiErrors."""
    loop = asyncio.get_running_loop()
    return await answered(
        loop.run_in_executor(api.executor, functools.partial(function, *args, **kwargs))
    )


async def write(api: Api, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Like `call`, for work that writes: on the command writer, where there is one."""
    if api.writer is None:
        return await call(api, function, *args, **kwargs)
    return await answered(api.writer.run(function, *args, **kwargs))


async def answered(work: Awaitable[Any]) -> Any:
    """The result of ``work``, its domain errors as the API's answers (ApiErrors)."""
    try:
        return await work
    except errors.DOMAIN_ERRORS as exc:
        raise errors.domain_error(exc) from None
