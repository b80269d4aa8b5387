"""The ``asyncapi`` target: an AsyncAPI 3.0 document of every context's published events.

One channel per published event, its address the NATS subject the context's relay
publishes it on (``stormgen.<package>.<Context>.<Event>``, docs/autonomous.md), and one
per context for its forgotten instances (``...<Context>.$Forgotten``); one ``send``
operation per channel (the owning context publishes it), one message per event whose
payload is the stored-event envelope (docs/runtime.md, "Stores") with the event's
fields as ``data`` and whose headers are the relay's. The server is the NATS JetStream
bus of ``--bus``. Value and enum types are ``components.schemas``. The document is
JSON (``asyncapi.json``), which every AsyncAPI tool reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stormgen.model.nodes import Aggregate, Context, Event, Model, Process
from stormgen.render.jsonschema import dump_json
from stormgen.render.output import Progress
from stormgen.render.python.names import package_name
from stormgen.render.schema import JsonSchema, SchemaBuilder

if TYPE_CHECKING:
    from stormgen import LoadedModel

ASYNCAPI_VERSION = "3.0.0"
#: The document's own version: fixed, so that generating twice is byte-identical.
DOCUMENT_VERSION = "1.0.0"


def published_events(model: Model) -> list[tuple[Context, Aggregate, Event]]:
    """Every published event with its context and aggregate, in model order."""
    return [
        (context, aggregate, event)
        for context in model.contexts
        for aggregate in context.aggregates
        for event in aggregate.events
        if event.published
    ]


def _processes_consuming(model: Model, context: Context, event: Event) -> list[tuple[str, Process]]:
    """The processes (``Context.Process``) with a handler of a published event."""
    found = []
    for other in model.contexts:
        for process in other.processes:
            for handler in process.handlers:
                if handler.event is None:
                    continue
                name = handler.event.name
                own = other.name == context.name and name == event.name
                if own or name == f"{context.name}.{event.name}":
                    found.append((f"{other.name}.{process.name}", process))
                    break
    return found


def asyncapi_document(model: Model, progress: Progress | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a JSON-ready dict."""
    builder = SchemaBuilder(model, ref_prefix="#/components/schemas/")
    defs: JsonSchema = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    events = published_events(model)
    bus = Bus(package_name(model.name))
    for done, (context, aggregate, event) in enumerate(events, 1):
        key = f"{context.name}.{event.name}"
        data = builder.event_payload(context, aggregate, event, defs)
        message: dict[str, Any] = {
            "name": event.name,
            "title": key,
            "contentType": "application/json",
            "headers": HEADERS,
            "payload": builder.envelope(context, aggregate, event, data, defs),
            "tags": [{"name": context.name}],
            "x-version": event.version,
        }
        if event.description:
            message["summary"] = event.description
        messages[key] = message
        channel: dict[str, Any] = {
            "address": bus.subject(key),
            "title": f"{key} (v{event.version})",
            "servers": [{"$ref": "#/servers/bus"}],
            "messages": {event.name: {"$ref": f"#/components/messages/{key}"}},
            "x-nats-stream": bus.stream(context.name),
        }
        if event.description:
            channel["description"] = event.description
        channels[key] = channel
        operations[f"{key}.publish"] = _send(context.name, event.name, key)
        for consumer, process in _processes_consuming(model, context, event):
            operations[f"{key}.{consumer}.receive"] = {
                "action": "receive",
                "title": f"the process {consumer} consumes {event.name}",
                "channel": {"$ref": f"#/channels/{key}"},
                "messages": [{"$ref": f"#/channels/{key}/messages/{event.name}"}],
                "tags": [{"name": consumer.split(".", 1)[0]}],
                **({"description": process.description} if process.description else {}),
            }
        if progress is not None:
            progress(done, len(events))
    for context in dict.fromkeys(context for context, _, _ in events):
        key = f"{context.name}.{FORGOTTEN}"
        messages[key] = {
            "name": FORGOTTEN,
            "title": key,
            "summary": "An instance of the context was forgotten: drop its pii key",
            "contentType": "application/json",
            "headers": HEADERS,
            "payload": FORGOTTEN_PAYLOAD,
            "tags": [{"name": context.name}],
        }
        channels[key] = {
            "address": bus.subject(key),
            "title": f"{context.name} forgets an instance",
            "servers": [{"$ref": "#/servers/bus"}],
            "messages": {FORGOTTEN: {"$ref": f"#/components/messages/{key}"}},
            "x-nats-stream": bus.stream(context.name),
        }
        operations[f"{key}.publish"] = _send(context.name, FORGOTTEN, key)
    info: dict[str, Any] = {"title": model.name, "version": DOCUMENT_VERSION}
    if model.description:
        info["description"] = model.description
    tags = [
        {"name": c.name, **({"description": c.description} if c.description else {})}
        for c in model.contexts
    ]
    if tags:
        info["tags"] = tags
    components: dict[str, Any] = {}
    if defs:
        components["schemas"] = dict(sorted(defs.items()))
    if messages:
        components["messages"] = messages
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "x-generated": f"@generated by stormgen from the model {model.name}; DO NOT EDIT",
        "info": info,
        "defaultContentType": "application/json",
        "servers": {"bus": SERVER} if channels else {},
        "channels": channels,
        "operations": operations,
    }
    if components:
        document["components"] = components
    return document


class Bus:
    """The relay's names (docs/autonomous.md) under a namespace: the package's name."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def subject(self, type_name: str) -> str:
        """The subject of an event type (``Context.Event``) or of ``Context.$Forgotten``."""
        return f"stormgen.{self.namespace}.{type_name}"

    def stream(self, context: str) -> str:
        """The JetStream stream of a context."""
        return f"STORMGEN_{self.namespace}_{context}".upper()


def _send(context: str, name: str, key: str) -> dict[str, Any]:
    return {
        "action": "send",
        "title": f"{context} publishes {name}",
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}],
        "tags": [{"name": context}],
    }


FORGOTTEN = "$Forgotten"

#: The bus every service of the model shares (``--bus``).
SERVER: dict[str, Any] = {
    "host": "127.0.0.1:4222",
    "protocol": "nats",
    "description": "The NATS JetStream server(s) given with --bus (or STORMGEN_BUS); "
    "each context publishes on a stream of its own (x-nats-stream)",
}

#: The headers the relay sets on every message.
HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["Nats-Msg-Id", "Stormgen-Stream", "Stormgen-Type", "Stormgen-Version"],
    "properties": {
        "Nats-Msg-Id": {"type": "string", "description": "the event's id (duplicates dropped)"},
        "Stormgen-Aggregate-Id": {"type": "string", "description": "the instance's id"},
        "Stormgen-Stream": {"type": "string", "description": "the instance's stream"},
        "Stormgen-Type": {"type": "string", "description": "the event's type name"},
        "Stormgen-Version": {"type": "string", "description": "the event's schema version"},
    },
}

#: The payload of a `$Forgotten` message: the marker's envelope naming the stream.
FORGOTTEN_PAYLOAD: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "data"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": FORGOTTEN},
        "recorded_at": {"type": "string", "format": "date-time"},
        "data": {
            "type": "object",
            "required": ["stream"],
            "properties": {"stream": {"type": "string"}},
        },
    },
}


def render_asyncapi(loaded: LoadedModel, progress: Progress | None = None) -> dict[str, str]:
    """Render ``asyncapi.json``."""
    return {"asyncapi.json": dump_json(asyncapi_document(loaded.model, progress))}
