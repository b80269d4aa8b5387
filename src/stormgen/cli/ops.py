"""Operations on a store (docs/http.md, "Operations CLI"): events, state, replay, fork,
merge, info, forget.

Each command takes ``--store`` (default ``$STORMGEN_STORE``, else the SQLite file
``./.stormgen/events.db``). Commands that need the model's definitions (``state``,
``replay``, ``forget``) take ``MODEL`` (a .storm file or a generated project folder).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stormgen.cli._console import console, err_console, progress_bar
from stormgen.cli.run import StoreOption, fail, load_service

if TYPE_CHECKING:
    from stormgen.runtime import Application, EventStore


ModelArgument = Annotated[
    Path, typer.Argument(help="The .storm model, or a project made by 'stormgen generate'.")
]


def _open_store(url: str | None) -> EventStore:
    from stormgen.runtime import StormgenRuntimeError, open_store
    from stormgen.runtime.errors import InvalidStoreURL

    try:
        return open_store(url)
    except InvalidStoreURL as exc:
        raise fail(str(exc)) from None
    except StormgenRuntimeError as exc:
        raise fail(f"cannot open the store: {exc}", 1) from None


def _open_application(model: Path, store: str | None) -> Application:
    from stormgen.runtime import StormgenRuntimeError
    from stormgen.runtime.errors import InvalidStoreURL

    service = load_service(model)
    try:
        application: Application = service.open(store)
    except InvalidStoreURL as exc:
        raise fail(str(exc)) from None
    except StormgenRuntimeError as exc:
        raise fail(f"cannot open the store: {exc}", 1) from None
    return application


def _aggregate(application: Application, name: str) -> Any:
    if name not in application.aggregates:
        known = ", ".join(sorted(application.aggregates)) or "none"
        hint = "" if "." in name else " (write it as Context.Aggregate)"
        raise fail(f"the model has no aggregate {name!r}{hint}; it has {known}")
    return application.aggregates[name]


def _parse_id(aggregate: Any, ident: str) -> Any:
    from stormgen.runtime import DecodeError

    try:
        return aggregate.parse_id(ident)
    except DecodeError:
        raise fail(f"{ident!r} is not a valid {aggregate.id_field} of {aggregate.name}") from None


def parse_at(store: EventStore, text: str) -> int:
    """A ``--at`` value (a position, or an ISO 8601 time) as a log position."""
    from stormgen.runtime.envelope import parse_time

    if text.isdigit():
        return int(text)
    try:
        when: datetime = parse_time(text)
    except ValueError:
        raise fail(f"--at must be a log position or an ISO 8601 time, not {text!r}") from None
    return store.position_at(when)


def _print_json(data: Any) -> None:
    from stormgen.runtime import dumps

    sys.stdout.write(dumps(data).decode() + "\n")
    sys.stdout.flush()


def events(
    store: StoreOption = None,
    stream: Annotated[
        str | None,
        typer.Option(
            help="Only this stream (Context.Aggregate/ID), or every instance of Context.Aggregate.",
            show_default=False,
        ),
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only events of this type (repeatable).", show_default=False),
    ] = None,
    after: Annotated[int, typer.Option(help="Start after this log position.", min=0)] = 0,
    limit: Annotated[
        int | None, typer.Option(help="Print at most this many events.", min=1)
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events as they come.")
    ] = False,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            help="Tail the bus instead (nats://HOST:PORT): what every relay publishes from "
            "now on, one message's envelope per line (docs/autonomous.md).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the log as JSON lines, one event envelope per line (docs/http.md, "Routes")."""
    from stormgen.runtime.envelope import RecordedEvent
    from stormgen.runtime.subscription import Subscription

    if bus is not None:
        _tail_bus(bus, set(type_ or ()), limit)
        return
    source = _open_store(store)

    def wanted(event: RecordedEvent) -> bool:
        return stream is None or event.stream == stream or event.stream.startswith(stream + "/")

    _note_origin(source)
    printed = 0
    try:
        if follow:
            with Subscription(source, after_position=after, types=type_ or None) as sub:
                for event in sub:
                    if wanted(event):
                        _print_json(event.to_json())
                        printed += 1
                        if limit is not None and printed >= limit:
                            break
            return
        for event in source.iter_all(after, types=type_ or None):
            if wanted(event):
                _print_json(event.to_json())
                printed += 1
                if limit is not None and printed >= limit:
                    break
    except KeyboardInterrupt:  # the way to stop --follow
        pass
    except BrokenPipeError:  # `stormgen events | head`
        sys.stderr.close()
    finally:
        source.close()


def _tail_bus(url: str, types: set[str], limit: int | None) -> None:
    """Print every message the relays publish on the bus from now on (`events --bus`)."""
    import asyncio
    import json

    from stormgen.runtime.bus import BusConfigError, BusSettings

    try:
        settings = BusSettings.parse(url)
    except BusConfigError as exc:
        raise fail(str(exc)) from None

    async def tail() -> None:
        import nats

        async def quiet(exc: Exception) -> None:  # nats-py would print each attempt's traceback
            return None

        try:
            client = await nats.connect(
                servers=list(settings.servers),
                connect_timeout=2,
                reconnect_time_wait=0.2,
                max_reconnect_attempts=1,
                error_cb=quiet,
            )
        except Exception as exc:
            raise fail(f"cannot reach the bus {settings.url}: {exc}", 1) from None
        try:
            subscription = await client.subscribe("stormgen.>")
            await client.flush()
            err_console.print(f"tailing stormgen.> on {settings.url}", markup=False)
            printed = 0
            async for message in subscription.messages:
                try:
                    body = json.loads(message.data)
                except ValueError:
                    body = {
                        "subject": message.subject,
                        "raw": message.data.decode(errors="replace"),
                    }
                if types and (not isinstance(body, dict) or body.get("type") not in types):
                    continue
                _print_json(body)
                printed += 1
                if limit is not None and printed >= limit:
                    break
        finally:
            await client.close()

    try:
        asyncio.run(tail())
    except KeyboardInterrupt:  # the way to stop it
        pass
    except BrokenPipeError:  # `stormgen events --bus URL | head`
        sys.stderr.close()


def state(
    model: ModelArgument,
    aggregate: Annotated[
        str,
        typer.Argument(
            help="Context.Aggregate (e.g. Ordering.Order) or Context.Process (its instance)."
        ),
    ],
    ident: Annotated[str, typer.Argument(metavar="ID", help="The instance's id.")],
    store: StoreOption = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="A log position or an ISO 8601 time: the state then.", show_default=False
        ),
    ] = None,
) -> None:
    """Print an instance's state (now, or as it was at a position or a time) as JSON; for
    a process, its instance: state, whether it ended, its pending timers."""
    from stormgen.runtime import NotFound, to_data

    with _open_application(model, store) as application:
        if aggregate in application.processes:
            _process_state(application, aggregate, ident, at)
            return
        agg = _aggregate(application, aggregate)
        key = _parse_id(agg, ident)
        position = None if at is None else parse_at(application.store, at)
        try:
            loaded = application.state(agg, key, at=position)
        except NotFound as exc:
            # name the point asked for (a time stays a time, not the position it maps to)
            when = None if at is None else f"position {at}" if at.isdigit() else at
            message = exc.message if when is None else f"{agg.name} {ident} did not exist at {when}"
            raise fail(message, 1) from None
        _print_json(
            {
                "id": to_data(key),
                "stream": loaded.stream,
                "stream_version": loaded.version,
                "position": loaded.position,
                "state": to_data(loaded.state),
            }
        )


def _process_state(application: Application, name: str, ident: str, at: str | None) -> None:
    """Print a process instance (state, ended, pending timers), now or at `at`."""
    from stormgen.runtime import DecodeError

    process = application.processes[name]
    try:
        key = process.parse_key(ident)
    except DecodeError:
        raise fail(f"{ident!r} is not a valid {process.key} of {name}") from None
    position = None if at is None else parse_at(application.store, at)
    instance = application.process_instance(process, key, position)
    if instance is None:
        when = "" if at is None else f" at {'position ' + at if at.isdigit() else at}"
        raise fail(f"{name} has no instance {ident}{when}", 1)
    _print_json(instance.to_json())


def replay(
    model: ModelArgument,
    store: StoreOption = None,
    view: Annotated[
        str | None,
        typer.Option(help="Only this view (Context.View, or View).", show_default=False),
    ] = None,
) -> None:
    """Rebuild the views (all, or one) from the log; safe while the service runs."""
    with _open_application(model, store) as application:
        names = list(application.views)
        if view is not None:
            matches = [n for n in names if n == view or n.rsplit(".", 1)[-1] == view]
            if len(matches) != 1:
                known = ", ".join(names) or "none"
                why = "several views are named" if matches else "the model has no view"
                raise fail(f"{why} {view!r}; views: {known}")
            names = matches
        total = 0
        with progress_bar("replaying views", len(names)) as advance:
            for done, name in enumerate(names, 1):
                total += application.replay(name)
                advance(done, len(names))
        plural = "view" if len(names) == 1 else "views"
        progress = application.progress()
        reached = min(progress[name]["position"] for name in names)
        # a service running on the store rebuilds alongside (its consumers see the
        # checkpoint moved back): the events it applied are not counted here
        err_console.print(
            f"replayed {len(names)} {plural} up to position {reached} "
            f"({total} events applied by this command)",
            markup=False,
            highlight=False,
        )


def fork(
    to: Annotated[str, typer.Option("--to", help="The URL of the new (empty) store.")],
    store: StoreOption = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Copy the log up to this position (or ISO 8601 time); default: all of it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Copy the log up to a point into a new store: fork the past."""
    from stormgen.runtime import StormgenRuntimeError
    from stormgen.runtime.store import fork as fork_store

    source = _open_store(store)
    try:
        end = source.last_position() if at is None else parse_at(source, at)
        with progress_bar("forking", end) as advance:
            try:
                target = fork_store(source, to, end, progress=advance)
            except StormgenRuntimeError as exc:
                raise fail(f"cannot fork: {exc}", 1) from None
        copied = target.last_position()
        target.close()
    finally:
        source.close()
    err_console.print(
        f"forked the log up to position {copied} into {to}", markup=False, highlight=False
    )


def forget(
    model: ModelArgument,
    aggregate: Annotated[
        str,
        typer.Argument(
            help="Context.Aggregate (e.g. Ordering.Order) or Context.Process (its instance)."
        ),
    ],
    ident: Annotated[str, typer.Argument(metavar="ID", help="The instance's id.")],
    store: StoreOption = None,
) -> None:
    """Crypto-shred an instance's personal (pii) data; views redact what they copied."""
    from stormgen.runtime import NotFound

    with _open_application(model, store) as application:
        agg = _aggregate(application, aggregate)
        key = _parse_id(agg, ident)
        if not _has_pii(agg):
            console.print(
                f"{agg.name} has no personal (pii) fields: nothing to forget",
                markup=False,
                highlight=False,
            )
            return
        try:
            position = application.forget(agg, key)
        except NotFound as exc:
            raise fail(exc.message, 1) from None
    console.print(
        f"forgot the personal data of {agg.name} {ident} (marker at position {position})",
        markup=False,
        highlight=False,
    )


def _has_pii(aggregate: Any) -> bool:
    """Whether any event of the aggregate has a `pii` field (else there is nothing to shred)."""
    from stormgen.runtime.messages import info

    return any(info(event).pii for event in aggregate.events)


def _note_origin(source: EventStore) -> None:
    """Say on stderr where a forked or merged store came from (stdout stays JSON lines)."""
    from stormgen.runtime.store.url import origin_of

    origins = origin_of(source)
    if origins:
        err_console.print(f"# {_origin_text(origins[0])}", markup=False, highlight=False)


def _origin_text(origin: dict[str, Any]) -> str:
    if origin.get("kind") == "fork":
        return (
            f"forked from {origin.get('url')} (store {origin.get('store_id')}) at position "
            f"{origin.get('position')}, event {origin.get('event_id')}, {origin.get('forked_at')}"
        )
    if origin.get("kind") == "merge":
        a, b = origin.get("a") or {}, origin.get("b") or {}
        prefer = origin.get("prefer")
        how = f", preferring {prefer}" if prefer else ""
        return (
            f"merged from {a.get('url')} (store {a.get('store_id')}) and {b.get('url')} "
            f"(store {b.get('store_id')}), common prefix up to position "
            f"{origin.get('common_prefix')}{how}, {origin.get('merged_at')}"
        )
    return f"origin: {origin}"


def merge(
    model: ModelArgument,
    with_: Annotated[str, typer.Option("--with", help="The URL of the other store (side b).")],
    to: Annotated[str, typer.Option("--to", help="The URL of the new (empty) merged store.")],
    store: StoreOption = None,
    prefer: Annotated[
        str | None,
        typer.Option(
            help="On a stream written on both sides, keep side a's (--store) or b's "
            "(--with) events; the others are kept in the $merge stream as disregarded.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the report; write nothing.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Join two forks of one log into a new store: their common past once, then both sides'
    events in time order. Exit 1 when streams written on both sides stop it."""
    from stormgen.runtime import StormgenRuntimeError, open_store
    from stormgen.runtime.errors import InvalidStoreURL, SchemaTooNew
    from stormgen.runtime.merge import MergeError, check_model

    if prefer not in (None, "a", "b"):
        raise fail(f"--prefer must be a or b, not {prefer!r}")
    service = load_service(model)
    # both stores checked before an application opens on one (it makes the model's view
    # tables): bad input leaves every store as it was
    known = _model_types(service)
    for url in (store, with_):
        try:
            with open_store(url) as side:
                check_model(side, known)
        except (MergeError, InvalidStoreURL, SchemaTooNew) as exc:
            raise fail(f"cannot merge: {exc}") from None
        except StormgenRuntimeError as exc:
            raise fail(f"cannot open the store: {exc}", 1) from None
    try:
        application: Application = service.open(store)
    except (InvalidStoreURL, SchemaTooNew) as exc:
        raise fail(str(exc)) from None
    except StormgenRuntimeError as exc:
        raise fail(f"cannot open the store: {exc}", 1) from None
    with application, progress_bar("merging") as advance:
        try:
            report = application.merge(
                with_,
                to,
                prefer,  # type: ignore[arg-type]
                dry_run=dry_run,
                progress=advance,
            )
        except (MergeError, InvalidStoreURL, SchemaTooNew) as exc:
            raise fail(f"cannot merge: {exc}") from None
        except StormgenRuntimeError as exc:
            raise fail(f"cannot merge: {exc}", 1) from None
    if json_:
        _print_json(report.to_json())
    else:
        for line in report.lines():
            console.print(line, markup=False, highlight=False)
    if report.stopped:
        raise typer.Exit(1)
    if report.written:
        _rebuild_views(service, to)


def _model_types(service: Any) -> Callable[[str], bool]:
    """Whether the service's model defines an event type (without opening a store)."""
    from stormgen.runtime.definitions import Definitions

    found: dict[str, Any] = service.module.definitions(None)
    known = Definitions(
        found.get("aggregates", ()),
        found.get("views", ()),
        found.get("policies", ()),
        found.get("ports"),
        found.get("system_events", {}),
        found.get("messages", ()),
    )
    return known.registry.__contains__


def _rebuild_views(service: Any, url: str) -> None:
    """Replay every view of the merged store (views are derived: none was copied)."""
    with service.open(url) as merged:
        names = list(merged.views)
        with progress_bar("rebuilding views", len(names)) as advance:
            for done, name in enumerate(names, 1):
                merged.replay(name)
                advance(done, len(names))
    err_console.print(f"rebuilt {len(names)} view(s) of {url}", markup=False, highlight=False)


def info(
    store: StoreOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Print what a store is: its identity, size, and where it came from (fork, merge)."""
    from stormgen.runtime import StormgenRuntimeError, open_store
    from stormgen.runtime.errors import InvalidStoreURL
    from stormgen.runtime.store.base import MERGE_IN_PROGRESS, STORE_ID
    from stormgen.runtime.store.url import origin_of

    try:
        source = open_store(store, interrupted_merge=True)
    except InvalidStoreURL as exc:
        raise fail(str(exc)) from None
    except StormgenRuntimeError as exc:
        raise fail(f"cannot open the store: {exc}", 1) from None
    with source:
        data: dict[str, Any] = {
            "url": source.url,
            # read only: a store gets its identity when first forked or merged
            "store_id": source.get_meta(STORE_ID),
            "last_position": source.last_position(),
            "origin": origin_of(source),
            "unfinished_merge": source.get_meta(MERGE_IN_PROGRESS),
        }
    if json_:
        _print_json(data)
        return
    lines = [
        f"store {data['url']}",
        f"identity {data['store_id'] or '(none yet: given when first forked or merged)'}",
        f"last position {data['last_position']}",
    ]
    if data["unfinished_merge"] is not None:
        lines.append(
            f"UNUSABLE: an unfinished merge, begun {data['unfinished_merge']} and interrupted;"
            " merge into it again, or delete it"
        )
    lines.extend(_origin_text(origin) for origin in data["origin"])
    if not data["origin"]:
        lines.append("an original store (no fork, no merge)")
    for line in lines:
        console.print(line, markup=False, highlight=False)
