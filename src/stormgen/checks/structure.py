"""Rules about the flow of the board: commands, events, policies, views and the map."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from stormgen.checks._context import CheckContext, error, is_optional_or_defaulted, warning
from stormgen.checks._registry import rule
from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.model.nodes import (
    PRIMITIVES,
    Aggregate,
    Command,
    Context,
    Event,
    External,
    Field,
    Hotspot,
    On,
    Policy,
    ProcessOn,
    Relation,
    TypeRef,
    Value,
)

UPSTREAM_PATTERNS = ("OHS", "PL")
DOWNSTREAM_PATTERNS = ("ACL", "CF", "CS")
SYMMETRIC_KINDS = ("partnership", "shared-kernel")
_PATTERN_NAMES = {
    "OHS": "open host service",
    "PL": "published language",
    "ACL": "anticorruption layer",
    "CF": "conformist",
    "CS": "customer of a supplier",
    "partnership": "partnership",
    "shared-kernel": "shared kernel",
}


def _names(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


# ---------------------------------------------------------------- the context map


@rule("E105")
def context_map_patterns(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E105: an unknown context-map pattern, or one on the wrong side of the arrow."""
    for relation in ctx.model.relations:
        sides = (
            (relation.left_patterns, "upstream", UPSTREAM_PATTERNS),
            (relation.right_patterns, "downstream", DOWNSTREAM_PATTERNS),
        )
        for patterns, side, allowed in sides:
            for p in patterns:
                if relation.kind == "<->":
                    if p.name in (*UPSTREAM_PATTERNS, *DOWNSTREAM_PATTERNS, *SYMMETRIC_KINDS):
                        yield error(
                            "E105",
                            f"`{p.name}` beside a context of a symmetric relation: `<->` has "
                            "no upstream or downstream side",
                            p.loc,
                            "write `A <-> B [partnership]` or `A <-> B [shared-kernel]`, or "
                            "use `->` for an upstream/downstream relation",
                        )
                    else:
                        yield _unknown_pattern(p.name, p.loc)
                elif p.name in allowed:
                    continue
                elif p.name in (*UPSTREAM_PATTERNS, *DOWNSTREAM_PATTERNS):
                    other = "downstream" if side == "upstream" else "upstream"
                    yield error(
                        "E105",
                        f"`{p.name}` ({_PATTERN_NAMES[p.name]}) is "
                        f"{'an' if other == 'upstream' else 'a'} {other} pattern, written "
                        f"beside the {side} context",
                        p.loc,
                        f"move it beside the {other} context: `Up [OHS, PL] -> [ACL, CF, CS] Down`",
                    )
                elif p.name in SYMMETRIC_KINDS:
                    yield error(
                        "E105",
                        f"`{p.name}` is the kind of a symmetric relation, not a pattern of one "
                        "side",
                        p.loc,
                        f"write `{relation.left.name} <-> {relation.right.name} [{p.name}]`",
                    )
                else:
                    yield _unknown_pattern(p.name, p.loc)
        for p in relation.symmetric:
            if relation.kind == "<->" and p.name in SYMMETRIC_KINDS:
                continue
            if relation.kind == "->" and p.name in SYMMETRIC_KINDS:
                yield error(
                    "E105",
                    f"`{p.name}` is the kind of a symmetric relation, but the arrow is `->`",
                    p.loc,
                    f"write `{relation.left.name} <-> {relation.right.name} [{p.name}]`",
                )
            elif p.name in (*UPSTREAM_PATTERNS, *DOWNSTREAM_PATTERNS):
                yield error(
                    "E105",
                    f"`{p.name}` ({_PATTERN_NAMES[p.name]}) stands after the relation, where "
                    "only a symmetric kind may",
                    p.loc,
                    "write `Up [OHS, PL] -> [ACL, CF, CS] Down`",
                )
            else:
                yield _unknown_pattern(p.name, p.loc)


def _unknown_pattern(name: str, loc: Location) -> Diagnostic:
    return error(
        "E105",
        f"unknown context-map pattern `{name}`",
        loc,
        "upstream patterns: OHS, PL; downstream: ACL, CF, CS; symmetric relations: "
        "partnership, shared-kernel",
    )


@rule("W505")
def context_map_cycles(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W505: a cycle in the context map through `->` relations."""
    g = nx.DiGraph()
    for relation in ctx.model.relations:
        if relation.kind == "->":
            a, b = relation.left.name, relation.right.name
            # The relation closing a cycle is the later one; keep the latest per edge.
            g.add_edge(a, b, relation=relation)
    for component in nx.strongly_connected_components(g):
        if len(component) == 1:
            (node,) = component
            if not g.has_edge(node, node):
                continue
        sub = g.subgraph(component)
        cycle_edges = nx.find_cycle(sub, source=min(component))
        relations: list[Relation] = [sub.edges[u, v]["relation"] for u, v, *_ in cycle_edges]
        positions = [(r.loc.file, r.loc.line, r.loc.column) for r in relations]
        # Tell the cycle from the relation declared first; report it at the one closing it.
        start = positions.index(min(positions))
        cycle_edges = cycle_edges[start:] + cycle_edges[:start]
        last = relations[positions.index(max(positions))]
        path = [cycle_edges[0][0], *(v for _, v, *_ in cycle_edges)]
        yield warning(
            "W505",
            f"the context map has a cycle of `->` relations: {' -> '.join(path)}",
            last.loc,
            "upstream and downstream should not depend on each other both ways; use "
            "`A <-> B [partnership]` for a mutual relation",
        )


# ---------------------------------------------------------------- aggregates and commands


@rule("E201")
def commands_without_events(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E201: an aggregate's command that emits no event."""
    for _, aggregate, command in ctx.commands():
        if isinstance(aggregate, Aggregate) and not command.emits:
            yield error(
                "E201",
                f"command `{command.name}` emits no event",
                command.loc,
                f"add `emit EVENT` with an event of `{aggregate.name}`: a command that "
                "changes nothing is a query",
            )


@rule("E205")
def aggregates_without_creates(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E205: an aggregate with no `creates` command."""
    for _, aggregate in ctx.aggregates():
        if not any(c.creates for c in aggregate.commands):
            example = aggregate.commands[0].name if aggregate.commands else "Create"
            yield error(
                "E205",
                f"aggregate `{aggregate.name}` has no `creates` command, so no instance can "
                "ever exist",
                aggregate.loc,
                f"mark the command that starts an instance: `command {example} creates {{ ... }}`",
            )


@rule("E108")
def values_containing_themselves(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E108: a value that contains itself, not through `?` or a list: none can be built.

    Reported once per cycle, at the field that closes it (the last one a walk of the
    values in declaration order follows back to a value it is still inside).
    """
    values: list[tuple[Context | None, Value]] = [(None, v) for v in ctx.model.values]
    values += [(c, v) for c in ctx.model.contexts for v in c.values]
    contains: dict[int, list[tuple[Field, Value]]] = {}
    for context, value in values:
        inner: list[tuple[Field, Value]] = []
        for f in value.fields:
            if f.type.optional or f.type.element is not None or f.type.name in PRIMITIVES:
                continue
            r = ctx.scope.resolve_type(context, f.type.name)
            same_scope = r is not None and (
                r.context is None or (context is not None and r.context.name == context.name)
            )
            if r is not None and same_scope and isinstance(r.element, Value):
                inner.append((f, r.element))
        contains[id(value)] = inner
    done: set[int] = set()
    path: list[tuple[Value, Field | None]] = []

    def walk(value: Value) -> Iterator[Diagnostic]:
        on_path = [id(v) for v, _ in path]
        for f, inner in contains.get(id(value), []):
            if id(inner) in on_path:
                start = on_path.index(id(inner))
                steps = [*(g for _, g in path[start + 1 :]), f]
                owners = [v for v, _ in path[start:]]
                shown = " → ".join(
                    f"`{o.name}.{g.name}`" for o, g in zip(owners, steps, strict=True) if g
                )
                yield error(
                    "E108",
                    f"value `{inner.name}` contains itself ({shown}): "
                    "no value of it could ever be built",
                    f.loc,
                    f"make `{f.name}` optional (`{f.type}?`) or a list (`list[{f.type}]`), "
                    "so that the chain can end",
                )
            elif id(inner) not in done:
                path.append((inner, f))
                yield from walk(inner)
                path.pop()
        done.add(id(value))

    for _, value in values:
        if id(value) not in done:
            path.append((value, None))
            yield from walk(value)
            path.pop()


@rule("E301")
def event_fields_without_source(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E301: an event field that an `emit` leaves with no value."""
    for _, aggregate, command in ctx.commands():
        if not isinstance(aggregate, Aggregate):
            continue
        available = {f.name for f in command.fields}
        available.add(aggregate.id_field.name)
        available.update(f.name for f in aggregate.state)
        for emit in command.emits:
            event = ctx.emit_target.get(id(emit))
            if event is None:
                continue
            assigned = {a.target for a in emit.assignments}
            missing = [
                f.name
                for f in event.fields
                if f.name not in assigned
                and f.name not in available
                and not is_optional_or_defaulted(f)
            ]
            if missing:
                n = len(missing)
                yield error(
                    "E301",
                    f"`emit {event.name}` leaves {_plural('field', n)} {_names(missing)} of "
                    f"`{event.name}` without a value: no assignment, no command or state "
                    f"field of that name, no default",
                    emit.loc,
                    f"assign {'it' if n == 1 else 'them'}: `emit {event.name} "
                    f"{{ {missing[0]} = ... }}`, or give the event {_plural('field', n)} "
                    "a default",
                )


# ---------------------------------------------------------------- policies


def _event_fields(event: Event, owner: Aggregate | External | None) -> set[str]:
    names = {f.name for f in event.fields}
    if isinstance(owner, Aggregate):
        names.add(owner.id_field.name)
    return names


@rule("E302")
def policy_commands_unfillable(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E302: a policy cannot fill a command field, or the target aggregate's id."""
    for _, policy in ctx.policies():
        trigger = ctx.when_target.get(id(policy))
        if trigger is None:
            continue
        event = trigger.element
        assert isinstance(event, Event)
        from_event = _event_fields(event, trigger.owner)
        for then in policy.thens:
            target = ctx.then_target.get(id(then))
            if target is None:
                continue
            command = target.element
            assert isinstance(command, Command)
            assigned = {a.target for a in then.assignments}
            missing = [
                f.name
                for f in command.fields
                if f.name not in assigned
                and f.name not in from_event
                and not is_optional_or_defaulted(f)
            ]
            missing_id: str | None = None
            owner = target.owner
            if isinstance(owner, Aggregate):
                id_name = owner.id_field.name
                generated = command.creates and owner.id_field.type.name == "uuid"
                if (
                    id_name not in assigned
                    and id_name not in from_event
                    and trigger.owner is not owner
                    and not generated
                ):
                    missing_id = id_name
                    if id_name in missing:
                        missing.remove(id_name)
            if not missing and missing_id is None:
                continue
            parts = []
            if missing:
                parts.append(f"{_plural('field', len(missing))} {_names(missing)}")
            if missing_id is not None:
                parts.append(f"the target aggregate id `{missing_id}`")
            first = missing[0] if missing else missing_id
            yield error(
                "E302",
                f"`then {then.command.name}` cannot fill {' and '.join(parts)}: "
                f"`{event.name}` has no field of that name"
                + (" and the command field has no default" if missing else ""),
                then.loc,
                f"assign it: `then {then.command.name} {{ {first} = ... }}`",
            )


@rule("E302")
def process_commands_unfillable(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E302: a process's `then` that cannot fill a command field or the target's id
    (from its assignments, the event's fields, the state's fields or the key)."""
    for _, process in ctx.processes():
        state = {f.name for f in process.fields} | {process.key.name}
        for handler in process.handlers:
            sources = set(state)
            trigger = ctx.on_target.get(id(handler))
            if handler.event is not None:
                if trigger is None:
                    continue
                assert isinstance(trigger.element, Event)
                sources |= _event_fields(trigger.element, trigger.owner)
            for then in handler.thens:
                target = ctx.then_target.get(id(then))
                if target is None:
                    continue
                command = target.element
                assert isinstance(command, Command)
                filled = sources | {a.target for a in then.assignments}
                fields = [f for f in command.fields if not is_optional_or_defaulted(f)]
                owner = target.owner
                if isinstance(owner, Aggregate):
                    generated = command.creates and owner.id_field.type.name == "uuid"
                    if not generated and all(f.name != owner.id_field.name for f in fields):
                        fields.insert(0, owner.id_field)
                missing = [f.name for f in fields if f.name not in filled]
                if missing:
                    yield error(
                        "E302",
                        f"`then {then.command.name}` of process `{process.name}` cannot fill "
                        f"{_plural('field', len(missing))} {_names(missing)}: neither the "
                        "event nor the state has a field of that name",
                        then.loc,
                        f"assign it: `then {then.command.name} {{ {missing[0]} = ... }}`",
                    )


def _policy_event_graph(ctx: CheckContext) -> nx.DiGraph:
    """Events linked through policies: event -> policy -> command -> emitted event."""
    g = nx.DiGraph()
    for _, policy in ctx.policies():
        trigger = ctx.when_target.get(id(policy))
        if trigger is None:
            continue
        for then in policy.thens:
            target = ctx.then_target.get(id(then))
            if target is None:
                continue
            command = target.element
            assert isinstance(command, Command)
            for emit in command.emits:
                emitted = ctx.emit_target.get(id(emit))
                if emitted is not None:
                    g.add_edge(id(trigger.element), id(emitted), policy=policy)
    return g


@rule("W504")
def policy_cycles(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W504: a policy cycle, where an event can lead back to itself through policies."""
    g = _policy_event_graph(ctx)
    if g.number_of_edges() == 0:
        return
    names = {id(e): e.name for _, _, e in ctx.events()}
    order = {id(p): i for i, (_, p) in enumerate(ctx.policies())}
    for component in nx.strongly_connected_components(g):
        if len(component) == 1:
            (node,) = component
            if not g.has_edge(node, node):
                continue
        sub = g.subgraph(component)
        edges = nx.find_cycle(sub)
        policies: list[Policy] = [sub.edges[u, v]["policy"] for u, v, *_ in edges]
        # Start the story at the policy declared first.
        start = min(range(len(policies)), key=lambda i: order[id(policies[i])])
        edges = edges[start:] + edges[:start]
        policies = policies[start:] + policies[:start]
        steps = [f"`{names[edges[0][0]]}`"]
        for (_, v, *_), p in zip(edges, policies, strict=True):
            steps.append(f"{p.name} -> `{names[v]}`")
        yield warning(
            "W504",
            f"policy cycle: {' -> '.join(steps)}",
            policies[0].loc,
            "make sure the loop ends (a condition with `if`) or break it",
        )


# ---------------------------------------------------------------- views


def _same_type(
    a: TypeRef, a_ctx: Context | None, b: TypeRef, b_ctx: Context | None, ctx: CheckContext
) -> bool:
    if a.optional != b.optional:
        return False
    if (a.element is None) != (b.element is None):
        return False
    if a.element is not None and b.element is not None:
        return _same_type(a.element, a_ctx, b.element, b_ctx, ctx)
    if a.name in PRIMITIVES or b.name in PRIMITIVES:
        return a.name == b.name
    ra = ctx.scope.resolve_type(a_ctx, a.name)
    rb = ctx.scope.resolve_type(b_ctx, b.name)
    return ra is not None and rb is not None and ra.element is rb.element


@rule("E303")
def view_keys_underivable(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E303: a view's row key or a process's instance key that cannot be derived from an
    `on` event."""
    for context, view in ctx.views():
        for on in view.handlers:
            yield from _underivable_key(
                ctx, context, f"row key of view `{view.name}`", view.key, on
            )
    for context, process in ctx.processes():
        what = f"instance key of process `{process.name}`"
        for handler in process.handlers:
            yield from _underivable_key(ctx, context, what, process.key, handler)


def _underivable_key(
    ctx: CheckContext, context: Context, what: str, key: Field, on: On | ProcessOn
) -> Iterator[Diagnostic]:
    if on.by is not None or on.event is None:
        return  # the expression's type is checked with the expressions (E402)
    source = ctx.on_target.get(id(on))
    if source is None:
        return
    event = source.element
    assert isinstance(event, Event)
    owner = source.owner
    field = next((f for f in event.fields if f.name == key.name), None)
    if field is None and isinstance(owner, Aggregate) and owner.id_field.name == key.name:
        field = owner.id_field
    if field is not None:
        if _same_type(field.type, source.context, key.type, context, ctx):
            return
        yield error(
            "E303",
            f"the {what.replace(' of ', f' `{key.name}: {key.type}` of ', 1)} cannot come "
            f"from `{event.name}`, whose field `{key.name}` is a `{field.type}`",
            on.loc,
            f"pick the {what.split()[0]} with `on {on.event.name} by EXPR`",
        )
        return
    if isinstance(owner, Aggregate):
        if _same_type(owner.id_field.type, source.context, key.type, context, ctx):
            return  # the event's stream id
        why = (
            f"it has no field `{key.name}` and its stream id "
            f"`{owner.id_field.name}` is a `{owner.id_field.type}`"
        )
    else:
        why = f"it has no field `{key.name}`, and an external system's event has no stream id"
    yield error(
        "E303",
        f"the {what.replace(' of ', f' `{key.name}: {key.type}` of ', 1)} cannot be derived "
        f"from `{event.name}`: {why}",
        on.loc,
        f"pick the {what.split()[0]} with `on {on.event.name} by EXPR`",
    )


# ---------------------------------------------------------------- dead and unreachable


def _emitted(ctx: CheckContext) -> set[int]:
    return {id(e) for e in ctx.emit_target.values()}


def _consumed(ctx: CheckContext) -> set[int]:
    found = {id(r.element) for r in ctx.when_target.values()}
    found.update(id(r.element) for r in ctx.on_target.values())
    return found


@rule("W501")
def dead_events(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W501: an aggregate's event that no command emits (a dead fact)."""
    emitted = _emitted(ctx) | ctx.suggested
    for _, owner, event in ctx.events():
        if isinstance(owner, Aggregate) and id(event) not in emitted:
            yield warning(
                "W501",
                f"event `{event.name}` is emitted by no command",
                event.loc,
                f"emit it from a command of `{owner.name}` (`emit {event.name}`), or remove it",
            )


@rule("W502")
def unreachable_commands(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W502: a command that no actor and no policy issues."""
    issued = {id(r.element) for r in ctx.then_target.values()} | ctx.suggested
    for _, _, command in ctx.commands():
        if not command.actors and id(command) not in issued:
            yield warning(
                "W502",
                f"command `{command.name}` is issued by no actor and no policy",
                command.loc,
                f"name who issues it (`command {command.name} by ACTOR`), or add a policy "
                f"with `then {command.name}`",
            )


@rule("W503")
def unconsumed_events(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W503: an event that is not published and that no policy or view consumes."""
    consumed = _consumed(ctx) | ctx.suggested
    emitted = _emitted(ctx)
    for _, owner, event in ctx.events():
        if event.published or id(event) in consumed:
            continue
        if isinstance(owner, Aggregate) and id(event) not in emitted:
            continue  # W501 already: one mistake, one finding
        yield warning(
            "W503",
            f"event `{event.name}` is consumed by no policy or view and is not published",
            event.loc,
            "publish it, or react to it with a policy or a view"
            + (" (it still evolves the state)" if isinstance(owner, Aggregate) else ""),
        )


# ---------------------------------------------------------------- hotspots


def _hotspots(ctx: CheckContext) -> Iterator[Hotspot]:
    for context in ctx.model.contexts:
        yield from context.hotspots
        for aggregate in context.aggregates:
            yield from aggregate.hotspots
            for command in aggregate.commands:
                yield from command.hotspots
            for event in aggregate.events:
                yield from event.hotspots
        for external in context.externals:
            for command in external.commands:
                yield from command.hotspots
            for event in external.events:
                yield from event.hotspots
        for policy in context.policies:
            yield from policy.hotspots
        for view in context.views:
            yield from view.hotspots


@rule("I001")
def open_hotspots(ctx: CheckContext) -> Iterator[Diagnostic]:
    """I001: an open hotspot."""
    for hotspot in _hotspots(ctx):
        yield Diagnostic("I001", Level.INFO, f"open hotspot: {hotspot.text}", hotspot.loc)
