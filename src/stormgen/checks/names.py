"""Rules about names: duplicates (E101), references (E102-E104, E202-E204, E206), naming
(W506, W507) and the reserved names (E106)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from stormgen.checks._context import KIND_WORDS, CheckContext, error, warning
from stormgen.checks._registry import rule
from stormgen.checks._words import PASCAL, SNAKE, is_imperative, is_past_tense, to_pascal
from stormgen.diagnostics import Diagnostic, Location
from stormgen.model.naming import snake_case
from stormgen.model.nodes import Aggregate, Context, External, Field
from stormgen.model.scope import Resolved, context_members, top_level_members

KIND_NOUNS = {
    "context": "context",
    "aggregate": "aggregate",
    "command": "command",
    "event": "event",
    "external": "external system",
    "policy": "policy",
    "view": "view",
    "process": "process",
    "value": "value type",
    "enum": "enum",
    "actor": "actor",
}


def _where(first: Location, later: Location) -> str:
    """Where the first declaration stands, as short as the later one allows."""
    if first.file == later.file:
        return f"line {first.line}"
    return f"{first.file.rsplit('/', 1)[-1]}:{first.line}"


def _describe(r: Resolved) -> str:
    noun = KIND_WORDS[r.kind]
    if isinstance(r.owner, Aggregate):
        return f"{noun} of aggregate `{r.owner.name}`"
    if isinstance(r.owner, External):
        return f"{noun} of external system `{r.owner.name}`"
    return noun


def _duplicates(members: Iterable[Resolved], scope_name: str) -> Iterator[Diagnostic]:
    seen: dict[str, Resolved] = {}
    for r in members:
        first = seen.get(r.name)
        if first is None:
            seen[r.name] = r
            continue
        loc = getattr(r.element, "loc")  # noqa: B009 - every element has one
        first_loc = getattr(first.element, "loc")  # noqa: B009
        yield error(
            "E101",
            f"duplicate name `{r.name}`: {scope_name} already has `{r.name}`, "
            f"{_describe(first)} ({_where(first_loc, loc)})",
            loc,
            f"rename one of them: {scope_name} has one name space for all its elements",
        )


def _duplicate_fields(fields: Iterable[Field], owner: str) -> Iterator[Diagnostic]:
    seen: dict[str, Field] = {}
    for f in fields:
        first = seen.setdefault(f.name, f)
        if first is not f:
            yield error(
                "E101",
                f"duplicate field `{f.name}` in {owner} (first at {_where(first.loc, f.loc)})",
                f.loc,
                "rename or remove one of them",
            )


@rule("E101")
def duplicate_names(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E101: a name declared twice in one scope, reported at the later declaration."""
    model = ctx.model
    yield from _duplicates(top_level_members(model), "the top level")
    first_context: dict[str, Context] = {}
    for context in model.contexts:
        first = first_context.setdefault(context.name, context)
        if first is not context:
            yield error(
                "E101",
                f"duplicate context `{context.name}` (first declared at "
                f"{_where(first.loc, context.loc)})",
                context.loc,
                "a context is declared once; put its members in one `context` block",
            )
            # The later block's members are not compared with the first's: one finding.
            continue
        yield from _duplicates(context_members(context), f"context `{context.name}`")
    for enum in [*model.enums, *(e for c in model.contexts for e in c.enums)]:
        seen: dict[str, Location] = {}
        for member in enum.members:
            first_loc = seen.setdefault(member.name, member.loc)
            if first_loc is not member.loc:
                yield error(
                    "E101",
                    f"duplicate member `{member.name}` in enum `{enum.name}` "
                    f"(first at {_where(first_loc, member.loc)})",
                    member.loc,
                    "remove one of them",
                )
    for value in [*model.values, *(v for c in model.contexts for v in c.values)]:
        yield from _duplicate_fields(value.fields, f"value `{value.name}`")
    for context in model.contexts:
        for aggregate in context.aggregates:
            state = (
                (aggregate.id_field, *aggregate.state)
                if aggregate.id_declared
                else (aggregate.state)
            )
            yield from _duplicate_fields(state, f"the state of `{aggregate.name}`")
            for command in aggregate.commands:
                yield from _duplicate_fields(command.fields, f"command `{command.name}`")
            for event in aggregate.events:
                yield from _duplicate_fields(event.fields, f"event `{event.name}`")
        for external in context.externals:
            for command in external.commands:
                yield from _duplicate_fields(command.fields, f"command `{command.name}`")
            for event in external.events:
                yield from _duplicate_fields(event.fields, f"event `{event.name}`")
        for view in context.views:
            yield from _duplicate_fields((view.key, *view.fields), f"view `{view.name}`")


@rule("E102")
def unknown_names(ctx: CheckContext) -> Iterable[Diagnostic]:
    """E102: a name that means nothing where it stands (with "did you mean")."""
    return ctx.reference_findings.get("E102", [])


@rule("E103")
def other_context_elements(ctx: CheckContext) -> Iterable[Diagnostic]:
    """E103: another context's element used, other than one of its published events."""
    return ctx.reference_findings.get("E103", [])


@rule("E104")
def private_types_published(ctx: CheckContext) -> Iterable[Diagnostic]:
    """E104: a context's private value or enum in one of its published events."""
    return ctx.reference_findings.get("E104", [])


@rule("E202")
def foreign_commands(ctx: CheckContext) -> Iterable[Diagnostic]:
    """E202: a policy issues a command of another context."""
    return ctx.reference_findings.get("E202", [])


@rule("E203")
def consumption_without_relation(ctx: CheckContext) -> Iterable[Diagnostic]:
    """E203: a published event consumed with no context-map relation allowing it."""
    return ctx.reference_findings.get("E203", [])


@rule("E204")
def unpublished_events_consumed(ctx: CheckContext) -> Iterable[Diagnostic]:
    """E204: another context's event consumed that its context does not publish."""
    return ctx.reference_findings.get("E204", [])


@rule("E206")
def non_actors_in_by(ctx: CheckContext) -> Iterable[Diagnostic]:
    """E206: a command's `by` names something that is not an actor."""
    return ctx.reference_findings.get("E206", [])


def kebab(name: str) -> str:
    """The API path segment of a name: the routes' own function (docs/http.md).

    Imported on first use: validating a model needs the runtime (and its imports) only
    when a name comes close to a reserved segment.
    """
    from stormgen.runtime.naming import kebab as route_segment

    return route_segment(name)


RESERVED_SEGMENTS = ("views", "external")
#: The principal name a bearer token maps to for the raw log (the runtime's `OPERATOR`).
OPERATOR = "operator"


@rule("E106")
def reserved_names(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E106: an aggregate whose path segment would be `views` or `external`; an actor
    named `operator` (the principal of the API's operator tokens)."""
    yield from _reserved_actors(ctx)
    for context, aggregate in ctx.aggregates():
        # A segment is the name in lower case with hyphens added: only a name that is a
        # reserved word in lower case can be served at one.
        if aggregate.name.lower() not in RESERVED_SEGMENTS:
            continue
        segment = kebab(aggregate.name)
        if segment in RESERVED_SEGMENTS:
            yield error(
                "E106",
                f"aggregate `{aggregate.name}` would be served at `/{kebab(context.name)}/"
                f"{segment}`, a path the API reserves for "
                f"{'views' if segment == 'views' else 'external systems'}",
                aggregate.loc,
                "rename the aggregate",
            )


def _reserved_actors(ctx: CheckContext) -> Iterator[Diagnostic]:
    model = ctx.model
    members = [*top_level_members(model)]
    for context in model.contexts:
        members += context_members(context)
    for r in members:
        if r.kind == "actor" and r.name == OPERATOR:
            yield error(
                "E106",
                f"actor `{r.name}` has the name the API reserves for operator tokens "
                "(they read the raw event log)",
                getattr(r.element, "loc"),  # noqa: B009 - every element has one
                "rename the actor",
            )


def _element_names(ctx: CheckContext) -> Iterator[tuple[str, str, Location]]:
    """(noun, name, location) of every element that should be PascalCase."""
    model = ctx.model
    for r in top_level_members(model):
        yield KIND_NOUNS[r.kind], r.name, getattr(r.element, "loc")  # noqa: B009
    for context in model.contexts:
        yield "context", context.name, context.loc
        for r in context_members(context):
            yield KIND_NOUNS[r.kind], r.name, getattr(r.element, "loc")  # noqa: B009


@rule("W507")
def naming_case(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W507: elements not PascalCase, fields not snake_case."""
    for noun, name, loc in _element_names(ctx):
        if not PASCAL.fullmatch(name):
            yield warning(
                "W507",
                f"{noun} name `{name}` is not PascalCase",
                loc,
                f"rename it `{to_pascal(name)}`",
            )
    for use in ctx.fields:
        name = use.field.name
        if not SNAKE.fullmatch(name):
            yield warning(
                "W507",
                f"field name `{name}` in {use.owner} is not snake_case",
                use.field.loc,
                f"rename it `{snake_case(name)}`",
            )


@rule("W506")
def naming_tense(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W506: an event not named in the past tense, a command not named as an imperative."""
    for _, _, event in ctx.events():
        # A name W507 already flags is not judged again.
        if PASCAL.fullmatch(event.name) and not is_past_tense(event.name):
            yield warning(
                "W506",
                f"event `{event.name}` is not named in the past tense",
                event.loc,
                "an event is a fact: name it for what happened, e.g. `OrderPlaced`",
            )
    for _, _, command in ctx.commands():
        if PASCAL.fullmatch(command.name) and not is_imperative(command.name):
            yield warning(
                "W506",
                f"command `{command.name}` is not named as an imperative",
                command.loc,
                "a command is a request: name it for what to do, e.g. `PlaceOrder`",
            )
