"""The ``asyncapi`` target: an AsyncAPI 3.0 document of every context's published events.

One channel per published event (address ``Context.Event``, the envelope's ``type``),
one ``send`` operation per channel (the owning context publishes it), one message per
event whose payload is the stored-event envelope of service.md §4 with the event's
fields as ``data``. Value and enum types are ``components.schemas``. The document is
JSON (``asyncapi.json``), which every AsyncAPI tool reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stormgen.model.nodes import Aggregate, Context, Event, Model
from stormgen.render.jsonschema import dump_json
from stormgen.render.schema import JsonSchema, SchemaBuilder
from stormgen.render.targets import Progress

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


def asyncapi_document(model: Model, progress: Progress | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a JSON-ready dict."""
    builder = SchemaBuilder(model, ref_prefix="#/components/schemas/")
    defs: JsonSchema = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    events = published_events(model)
    for done, (context, aggregate, event) in enumerate(events, 1):
        key = f"{context.name}.{event.name}"
        data = builder.event_payload(context, aggregate, event, defs)
        message: dict[str, Any] = {
            "name": event.name,
            "title": key,
            "contentType": "application/json",
            "payload": builder.envelope(context, aggregate, event, data, defs),
            "tags": [{"name": context.name}],
            "x-version": event.version,
        }
        if event.description:
            message["summary"] = event.description
        messages[key] = message
        channel: dict[str, Any] = {
            "address": key,
            "title": f"{key} (v{event.version})",
            "messages": {event.name: {"$ref": f"#/components/messages/{key}"}},
        }
        if event.description:
            channel["description"] = event.description
        channels[key] = channel
        operations[f"{key}.publish"] = {
            "action": "send",
            "title": f"{context.name} publishes {event.name}",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{event.name}"}],
            "tags": [{"name": context.name}],
        }
        if progress is not None:
            progress(done, len(events))
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
        "info": info,
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }
    if components:
        document["components"] = components
    return document


def render_asyncapi(loaded: LoadedModel, progress: Progress | None = None) -> dict[str, str]:
    """Render ``asyncapi.json``."""
    return {"asyncapi.json": dump_json(asyncapi_document(loaded.model, progress))}
