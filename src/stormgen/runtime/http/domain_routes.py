"""The domain's routes (docs/http.md): a command's POST, an instance's state and
history, a view's rows and row, an external system's events; one route each, from the
metadata of the classes the application was given (nothing here knows a model).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from stormgen.runtime import codec
from stormgen.runtime.aggregate import Aggregate
from stormgen.runtime.application import CommandResult
from stormgen.runtime.envelope import new_event_id
from stormgen.runtime.http import errors, openapi, params
from stormgen.runtime.http.api import JSON, Api, CommandRoute, ExternalRoute, call, write
from stormgen.runtime.http.errors import ApiError
from stormgen.runtime.http.middleware import Handler
from stormgen.runtime.http.naming import context_name, kebab, short_name
from stormgen.runtime.messages import info
from stormgen.runtime.processes import Process
from stormgen.runtime.views import View

_ETAG = openapi.etag()


def _command_answer(result: CommandResult, creates: bool) -> Response:
    body: dict[str, Any] = {}
    if creates:
        body["id"] = result.stream_id
    body["stream_version"] = result.stream_version
    body["events"] = [e.to_json() for e in result.events]
    headers = {"ETag": f'"{result.stream_version}"'}
    if result.duplicate:
        headers["Idempotent-Replayed"] = "true"
    return JSON(body, status_code=201 if creates else 200, headers=headers)


def _command_handler(api: Api, route: CommandRoute) -> Handler:
    agg = route.aggregate
    # the id as the body spells it (the model's name)
    id_field = codec.wire_name(route.cls, agg.id_field)
    kind = info(route.cls).name
    # a new instance's uuid the body may leave out: made here before the body is
    # checked, so the model's default (`uuid.uuid4`: a read of the OS's random source
    # per request, which lets the event loop's thread lose the GIL) is never called
    fresh_ids = route.creates and agg.id_type is uuid.UUID

    async def handle(request: Request) -> Response:
        actor = api.access.command(request, route.name, route.actors)
        expected = params.if_match(request)
        key = params.idempotency_key(request)
        data = params.json_body(await params.body(request))
        generated = False
        if route.creates:
            if fresh_ids and id_field not in data:
                data[id_field] = new_event_id()  # a random uuid4, from a pool
                generated = True
            params.validate(route.model, data)
            if data.get(id_field) is None:
                data[id_field] = new_event_id()
                generated = True
        else:
            ident_text = params.path_param(request, "id")
            given = data.pop(id_field, None)
            params.validate(route.model, data)
            ident = params.parse_id(agg, ident_text)
            if given is not None and str(given) != str(codec.to_data(ident)):
                raise errors.invalid(
                    f"the field {id_field!r} does not match the id in the path", id_field
                )
            data[id_field] = codec.to_data(ident)
        command = params.decode(route.cls, data)
        scoped = None
        if key is not None:
            # the request as the client sent it: the command, with the id in the path
            # but not one generated here
            body = codec.to_data(command)
            if generated:
                del body[id_field]
            scoped = api.access.client_key(request, key, kind, body)
        result = await write(
            api,
            api.application.handle,
            command,
            expected_version=expected,
            idempotency_key=scoped,
            actor=actor,
        )
        return _command_answer(result, route.creates)

    return handle


def _state_handler(api: Api, agg: Aggregate[Any]) -> Handler:
    # `GET /ordering/order/place-order` names a command's route, not an instance
    creating = {kebab(r.name) for r in api.commands if r.creates and r.aggregate is agg}

    async def state(request: Request) -> Response:
        api.access.read(request)
        if params.path_param(request, "id") in creating:
            raise ApiError(
                405, "method_not_allowed", "Method Not Allowed", headers={"Allow": "POST"}
            )
        ident = params.parse_id(agg, params.path_param(request, "id"))
        at = params.at(request)
        loaded = await call(api, api.application.state, agg, ident, at=at)
        body = {
            "id": codec.to_data(ident),
            "stream": loaded.stream,
            "stream_version": loaded.version,
            "position": loaded.position,
            "state": codec.to_data(loaded.state),
        }
        return JSON(body, headers={"ETag": f'"{loaded.version}"'})

    return state


def _history_handler(api: Api, agg: Aggregate[Any]) -> Handler:
    async def history(request: Request) -> Response:
        api.access.log(request, "an instance's history")
        ident = params.parse_id(agg, params.path_param(request, "id"))
        envelopes = await call(api, api.application.history, agg, ident)
        return JSON({"events": [e.to_json() for e in envelopes]})

    return history


def _external_handler(api: Api, route: ExternalRoute) -> Handler:
    kind = info(route.cls).name

    async def receive(request: Request) -> Response:
        actor = api.access.external(request, route.context, route.system)
        key = params.idempotency_key(request)
        data = params.json_body(await params.body(request))
        params.validate(route.model, data)
        event = params.decode(route.cls, data)
        scoped = (
            None if key is None else api.access.client_key(request, key, kind, codec.to_data(event))
        )
        envelopes = await write(
            api, api.application.record_external, [event], idempotency_key=scoped, actor=actor
        )
        position = envelopes[-1].position if envelopes else None
        return JSON(
            {"position": position, "events": [e.to_json() for e in envelopes]},
            status_code=202,
        )

    return receive


def _view_rows_handler(api: Api, view: View[Any]) -> Handler:
    async def rows(request: Request) -> Response:
        api.access.read(request)
        limit = params.int_param(request, "limit", 100, minimum=1, maximum=params.MAX_PAGE)
        after = params.one(request, "after")
        if after is not None:
            params.query_value(view.key_type(), after, "the parameter 'after'", "after")
        after = after or None
        where = params.view_filters(view, request)
        found = await call(api, api.application.view_rows, view, where, after=after, limit=limit)
        next_after = None
        if limit is not None and len(found) == limit:
            next_after = api.application.consumers.view_key_text(
                view, found[-1][view.wire(view.key)]
            )
        return JSON({"rows": found, "next_after": next_after})

    return rows


def _view_row_handler(api: Api, view: View[Any]) -> Handler:
    async def row(request: Request) -> Response:
        api.access.read(request)
        key = params.path_param(request, "key")
        if "\x00" in key:  # no row can have it (PostgreSQL keeps no NUL in text)
            raise errors.not_found(f"{view.name} has no row {key!r}")
        try:
            found = await call(api, api.application.view_row, view, key)
        except ApiError as exc:
            if exc.status == 422:  # a key that cannot be of the key's type names no row
                found = None
            else:
                raise
        if found is None:
            raise errors.not_found(f"{view.name} has no row {key!r}")
        return JSON(found)

    return row


def _instances_handler(api: Api, process: Process[Any]) -> Handler:
    async def instances(request: Request) -> Response:
        api.access.read(request)
        limit = params.int_param(request, "limit", 100, minimum=1, maximum=params.MAX_PAGE)
        after = params.one(request, "after")
        if after is not None:  # an empty one too: no key has that text
            params.query_value(process.key_type, after, "the parameter 'after'", "after")
        after = after or None
        app = api.application
        found = await call(api, app.process_instances, process, after=after, limit=limit)
        next_after = found[-1]["key"] if len(found) == limit else None
        return JSON({"instances": found, "next_after": next_after})

    return instances


def _instance_handler(api: Api, process: Process[Any]) -> Handler:
    async def instance(request: Request) -> Response:
        api.access.read(request)
        text = params.path_param(request, "key")
        at = params.at(request)
        try:
            key = params.query_value(process.key_type, text, "the key", "key")
        except ApiError:
            key = None  # a key that cannot be of the key's type names no instance
        found = None
        if key is not None:
            found = await call(api, api.application.process_instance, process, key, at)
        if found is None:
            when = "" if at is None else f" at {at}"
            raise errors.not_found(f"{process.name} has no instance {text!r}{when}")
        return JSON(found.to_json(), headers={"ETag": f'"{found.version}"'})

    return instance


def add_domain_routes(app: FastAPI, api: Api, direct: dict[int, Handler]) -> None:
    """Add the domain's routes to ``app``; ``direct`` gets the command routes' handlers
    (by the route's id) for `DirectCommands`.

    An id or key is one path segment: one holding an encoded slash (`a%2Fb`) stays
    escaped while routing (EncodedSlashes), so a path with more segments than a
    route's (`/{id}/fly-away`) is no route, never an id that holds a slash.
    """
    _add_command_routes(app, api, direct)
    _add_instance_routes(app, api)
    _add_view_routes(app, api)
    _add_process_routes(app, api)
    _add_external_routes(app, api)


def _add_command_routes(app: FastAPI, api: Api, direct: dict[int, Handler]) -> None:
    for route in api.commands:
        ctx, agg = kebab(route.context), kebab(short_name(route.aggregate.name))
        id_schema = openapi.id_schema(route.aggregate.id_type)
        if route.creates:
            path = f"/{ctx}/{agg}/{kebab(route.name)}"
            doc = openapi.answers(
                201,
                openapi.command_answer(id_schema),
                400,
                409,
                422,
                *openapi.WRITE_ERRORS,
                headers=_ETAG,
            )
            status = 201
        else:
            path = f"/{ctx}/{agg}/{{id}}/{kebab(route.name)}"
            doc = openapi.merge(
                openapi.path(id=id_schema),
                openapi.answers(
                    200,
                    openapi.command_answer(None),
                    400,
                    404,
                    409,
                    422,
                    *openapi.WRITE_ERRORS,
                    headers=_ETAG,
                ),
            )
            status = 200
        doc = openapi.merge(
            doc,
            openapi.body(route.model),
            openapi.command_headers(),
            {"x-stormgen-by": [*route.actors]},  # who may issue it: a 403 for other tokens
        )
        handler = _command_handler(api, route)
        app.add_api_route(
            path,
            handler,
            methods=["POST"],
            status_code=status,
            tags=[route.context],
            name=f"{route.context}.{route.name}",
            summary=route.name,
            description=info(route.cls).description or None,
            openapi_extra=openapi.secured(api.tokens.open, doc),
        )
        direct[id(app.router.routes[-1])] = handler  # routes are not hashable


def _add_instance_routes(app: FastAPI, api: Api) -> None:
    seen: set[str] = set()
    for agg_def in api.application.aggregates.values():
        if not api.hosts(agg_def.name) or agg_def.name in seen:
            continue
        seen.add(agg_def.name)
        ctx, agg = kebab(context_name(agg_def.name)), kebab(short_name(agg_def.name))
        history, state = _history_handler(api, agg_def), _state_handler(api, agg_def)
        api.instance_endpoints |= {history: agg_def, state: agg_def}
        id_schema = openapi.id_schema(agg_def.id_type)
        history_doc = openapi.answers(200, openapi.obj(events=openapi.events_list()), 404, 503)
        state_doc = openapi.merge(
            openapi.query(at=openapi.at_param()),
            openapi.answers(200, openapi.state_answer(id_schema), 404, 422, 503, headers=_ETAG),
        )
        id_param = openapi.path(id=id_schema)
        path = f"/{ctx}/{agg}/{{id}}"
        _get(app, api, f"{path}/events", history, agg_def.name, "history", id_param, history_doc)
        _get(app, api, path, state, agg_def.name, "state", id_param, state_doc)


def _get(
    app: FastAPI,
    api: Api,
    path: str,
    handler: Handler,
    element: str,
    what: str,
    *docs: dict[str, Any],
) -> None:
    """Register a read of an element (``Context.Name``): named and tagged after it."""
    app.add_api_route(
        path,
        handler,
        methods=["GET"],
        tags=[context_name(element)],
        name=f"{element}.{what}",
        summary=f"{short_name(element)} {what}",
        openapi_extra=openapi.secured(api.tokens.open, openapi.merge(*docs)),
    )


def _add_view_routes(app: FastAPI, api: Api) -> None:
    for view in api.application.views.values():
        if not api.hosts(view.name):
            continue
        ctx, name = kebab(context_name(view.name)), kebab(short_name(view.name))
        key_schema = openapi.type_schema(view.key_type())
        row_schema = _row_schema(view)
        rows_query = openapi.query(
            limit=openapi.limit_param(params.MAX_PAGE), after=key_schema, **_filter_schemas(view)
        )
        rows_doc = openapi.answers(200, openapi.rows_answer(row_schema), 422, 503)
        key_param = openapi.path(key=openapi.id_schema(view.key_type()))
        row_doc = openapi.answers(200, row_schema, 404, 503)
        path = f"/{ctx}/views/{name}"
        rows, row = _view_rows_handler(api, view), _view_row_handler(api, view)
        _get(app, api, path, rows, view.name, "rows", rows_query, rows_doc)
        _get(app, api, f"{path}/{{key}}", row, view.name, "row", key_param, row_doc)


def _add_process_routes(app: FastAPI, api: Api) -> None:
    for process in api.application.processes.values():
        if not api.hosts(process.name):
            continue
        ctx, name = kebab(context_name(process.name)), kebab(short_name(process.name))
        key_schema = openapi.type_schema(process.key_type)
        instance_schema = openapi.instance_answer(
            key_schema, openapi.record_schema(process.state_type, frozenset())
        )
        list_query = openapi.query(limit=openapi.limit_param(params.MAX_PAGE), after=key_schema)
        list_doc = openapi.answers(200, openapi.instances_answer(instance_schema), 422, 503)
        key_param = openapi.path(key=openapi.id_schema(process.key_type))
        one_doc = openapi.merge(
            openapi.query(at=openapi.at_param()),
            openapi.answers(200, instance_schema, 404, 422, 503, headers=_ETAG),
        )
        path = f"/{ctx}/processes/{name}"
        listed, one = _instances_handler(api, process), _instance_handler(api, process)
        _get(app, api, path, listed, process.name, "instances", list_query, list_doc)
        _get(app, api, f"{path}/{{key}}", one, process.name, "instance", key_param, one_doc)


def _add_external_routes(app: FastAPI, api: Api) -> None:
    for ext in api.externals:
        path = f"/{kebab(ext.context)}/external/{kebab(ext.system)}/{kebab(ext.name)}"
        doc = openapi.merge(
            openapi.body(ext.model),
            openapi.idempotency_header(),
            openapi.answers(202, openapi.external_answer(), 400, 422, *openapi.WRITE_ERRORS),
            {"x-stormgen-system": f"{ext.context}.{ext.system}"},
        )
        app.add_api_route(
            path,
            _external_handler(api, ext),
            methods=["POST"],
            status_code=202,
            tags=[ext.context],
            name=f"{ext.context}.{ext.system}.{ext.name}",
            summary=f"{ext.system}: {ext.name}",
            openapi_extra=openapi.secured(api.tokens.open, doc),
        )


def _row_schema(view: View[Any]) -> dict[str, Any]:
    """A view's row as the API answers it: a forgotten `pii` column that is not text
    reads null (text reads "[redacted]").
    """
    hints = codec._hints(view.row_type)
    redacted = frozenset(n for n in view.pii if codec.redacted_value(hints[n]) is None)
    return openapi.record_schema(view.row_type, redacted)


def _filter_schemas(view: View[Any]) -> dict[str, dict[str, Any]]:
    """The view's filterable columns (one value each), with the schema of their text.

    A column named `limit` or `after` cannot be filtered on: those name the page.
    """
    hints = codec._hints(view.row_type)
    return {
        name: openapi.type_schema(hints[view.attribute(name)])
        for name, kind in view.sql_columns().items()
        if kind != "json" and name not in params.PAGE_PARAMETERS
    }
