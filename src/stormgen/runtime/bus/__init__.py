"""Autonomous contexts: each with its own store, their facts flowing through NATS
JetStream (docs/autonomous.md).

`Bus` links an application to the bus: a `Relay` publishes the published events of
the contexts it hosts (its outbox is its own log) and one `Inbox` per upstream context
appends the events those contexts consume to its own log. Everything else (views,
policies, processes, replay, time travel, fork) works on the local log as without a bus.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from stormgen.runtime.bus import wire
from stormgen.runtime.bus.inbox import Inbox
from stormgen.runtime.bus.link import Link, Say
from stormgen.runtime.bus.relay import RELAY_CHECKPOINT, Relay
from stormgen.runtime.bus.settings import BusConfigError, BusSettings
from stormgen.runtime.messages import info

if TYPE_CHECKING:
    from stormgen.runtime.application import Application

__all__ = ["RELAY_CHECKPOINT", "Bus", "BusConfigError", "BusSettings", "open_bus"]


class Bus:
    """The links of one application to the bus: its relay and its inboxes.

    `contexts` are the contexts the application hosts (None: all of its definitions').
    """

    def __init__(
        self,
        application: Application,
        settings: BusSettings,
        namespace: str,
        contexts: Collection[str] | None = None,
        say: Say | None = None,
    ) -> None:
        self.application = application
        self.settings = settings
        self.names = wire.Names(namespace)
        say = say or _stderr
        defs = application.definitions
        hosted = set(contexts) if contexts else _contexts_of(application)
        self.contexts = sorted(hosted)
        for context in self.contexts:
            wire.check_token(context, "the context")
        published: set[str] = set()
        own: list[str] = []
        for agg in defs.aggregates.values():
            if agg.name.split(".", 1)[0] in hosted:
                own.append(agg.name)
                published.update(info(e).name for e in agg.events if info(e).published)
        consumed: dict[str, set[str]] = {}
        readers: list[Any] = [*defs.views.values(), *defs.policies.values()]
        for reader_of in readers:
            for event in reader_of.events:
                meta = info(event)
                if meta.context not in hosted and meta.aggregate is not None:
                    consumed.setdefault(meta.context, set()).add(meta.name)
        store, reader = application.store, application.reader
        self.relay: Relay | None = None
        if published:
            relayed = sorted({name.split(".", 1)[0] for name in own})
            self.relay = Relay(settings, store, reader, self.names, relayed, published, own, say)
        name = "-".join(self.contexts)
        self.inboxes = [
            Inbox(settings, store, reader, self.names, upstream, name, types, say)
            for upstream, types in sorted(consumed.items())
        ]
        self.say = say

    @property
    def links(self) -> list[Link]:
        """The relay (if the contexts publish anything) and the inboxes."""
        return ([self.relay] if self.relay is not None else []) + list(self.inboxes)

    def start(self) -> None:
        """Start relaying and receiving (each in a thread); the application shows it in
        `/health` meanwhile."""
        self.application.bus = self
        what = []
        if self.relay is not None:
            what.append("publishing to " + ", ".join(self.relay.status()["streams"]))
        what += [f"consuming {i.upstream} as {i.durable}" for i in self.inboxes]
        self.say(
            f"bus {self.settings.url}: " + ("; ".join(what) or "nothing to publish or consume")
        )
        for link in self.links:
            link.start()

    def stop(self) -> None:
        """Stop every link (each finishes the batch in hand)."""
        for link in self.links:
            link._stop.set()
        for link in self.links:
            link.stop()
        if self.application.bus is self:
            self.application.bus = None

    def status(self) -> dict[str, Any]:
        """What `/health` shows: the relay's lag and each inbox's pending messages."""
        out: dict[str, Any] = {"url": self.settings.url}
        if self.relay is not None:
            out["relay"] = self.relay.status()
        out["inbox"] = {i.upstream: i.status() for i in self.inboxes}
        return out


def open_bus(
    application: Application,
    url: str | None,
    namespace: str,
    contexts: Collection[str] | None = None,
    say: Say | None = None,
) -> Bus | None:
    """The bus of a ``--bus`` URL (None: no bus), not started; `BusConfigError` if the
    URL or a ``STORMGEN_BUS_*`` variable is wrong, or nats-py is missing."""
    if not url:
        return None
    settings = BusSettings.parse(url)
    try:
        import nats  # noqa: F401
    except ImportError:  # pragma: no cover - nats-py is a dependency
        raise BusConfigError("--bus needs the nats-py package: pip install nats-py") from None
    return Bus(application, settings, namespace, contexts, say)


def _contexts_of(application: Application) -> set[str]:
    defs = application.definitions
    names = [*defs.aggregates, *defs.views, *defs.policies]
    return {name.split(".", 1)[0] for name in names}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
