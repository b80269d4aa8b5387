"""The ``jsonschema`` target: one JSON Schema (2020-12) per command and event.

Files are ``<Context>/<Command>.command.schema.json`` and
``<Context>/<Event>.event.schema.json`` (an external system's messages:
``<Context>/<System>.<Name>...``). A command's schema is its HTTP body (its fields
plus the target aggregate's id); an event's schema is the ``data`` of its envelope
(its fields plus its aggregate's id). Value and enum types are ``$defs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from stormgen.model.nodes import Aggregate, Command, Context, Event, External, Model
from stormgen.render.schema import JSON_SCHEMA_DIALECT, JsonSchema, SchemaBuilder
from stormgen.render.targets import Progress

if TYPE_CHECKING:
    from stormgen import LoadedModel


def dump_json(document: Any) -> str:
    """Stable, readable JSON text: two-space indent, key order kept, final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def messages(
    model: Model,
) -> Iterator[tuple[Context, Aggregate | External, Command | Event]]:
    """Every command and event of the model with its context and owner, in model order."""
    for context in model.contexts:
        owners: list[Aggregate | External] = [*context.aggregates, *context.externals]
        for owner in owners:
            yield from ((context, owner, c) for c in owner.commands)
            yield from ((context, owner, e) for e in owner.events)


def message_path(context: Context, owner: Aggregate | External, message: Command | Event) -> str:
    """``Ordering/PlaceOrder.command.schema.json`` (external: ``Ordering/Gateway.Charge...``)."""
    kind = "command" if isinstance(message, Command) else "event"
    prefix = f"{owner.name}." if isinstance(owner, External) else ""
    return f"{context.name}/{prefix}{message.name}.{kind}.schema.json"


def message_schema(
    builder: SchemaBuilder,
    model: Model,
    context: Context,
    owner: Aggregate | External,
    message: Command | Event,
) -> JsonSchema:
    """A standalone schema document for one command or event."""
    defs: JsonSchema = {}
    if isinstance(message, Command):
        body = builder.command_payload(context, owner, message, defs)
        kind = "command"
    else:
        body = builder.event_payload(context, owner, message, defs)
        kind = "event"
    qualified = ".".join(
        [context.name, *([owner.name] if isinstance(owner, External) else []), message.name]
    )
    document: JsonSchema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:stormgen:{model.name}:{qualified}:{kind}",
        **body,
    }
    if isinstance(message, Event):
        document["x-version"] = message.version
    if defs:
        document["$defs"] = dict(sorted(defs.items()))
    return document


def render_jsonschemas(loaded: LoadedModel, progress: Progress | None = None) -> dict[str, str]:
    """Render every command and event schema, keyed by relative path."""
    model = loaded.model
    builder = SchemaBuilder(model)
    todo = list(messages(model))
    files: dict[str, str] = {}
    for done, (context, owner, message) in enumerate(todo, 1):
        path = message_path(context, owner, message)
        files[path] = dump_json(message_schema(builder, model, context, owner, message))
        if progress is not None:
            progress(done, len(todo))
    return files
