"""The model as a networkx graph: stickies are nodes, the arrows of the board are edges.

Node ids are ``"<kind>:<qualified name>"``: ``"context:Ordering"``,
``"aggregate:Ordering.Order"``, ``"command:Ordering.PlaceOrder"``,
``"event:Ordering.PaymentGateway.CardCharged"`` (an external system's message),
``"actor:Customer"`` (top level) or ``"actor:Ordering.Clerk"`` (context-local),
``"hotspot:3"`` (numbered from 1 in source order). Node attributes: ``kind``,
``name``, ``context`` (its name or None), ``element`` (the
:mod:`~stormgen.model.nodes` dataclass), ``loc``, and ``published`` for events.
Every edge has a ``kind``: ``contains``, ``handles``, ``emits``, ``issues``,
``triggers``, ``feeds``, ``reads`` (a view to the command, policy or process whose
lookups ``View[key]`` read it; drawn dashed), ``consumes``, ``timer``, ``publishes`` or
``upstream-of``.
A process (``"process:Ordering.Checkout"``) ``consumes`` the events its handlers take
(an event -> process edge, ``starts`` true for a starting handler, ``acts`` true when
the handler issues commands or sets timers), ``issues`` the
commands of its ``then`` lines, and has a ``timer`` self-loop per timer it sets
(``name`` and ``loc`` of its first ``timer`` line).

References that do not resolve are left out: reporting them is the checks' job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import networkx as nx

from stormgen.model.nodes import (
    Aggregate,
    Command,
    Context,
    Expr,
    Hotspot,
    Lookup,
    Model,
    Policy,
    Process,
    Then,
)
from stormgen.model.scope import (
    ACTOR_KINDS,
    COMMAND_KINDS,
    EVENT_KINDS,
    Resolved,
    Scope,
    context_members,
    top_level_members,
)
from stormgen.model.typecheck import subexpressions

VIEW_KINDS = frozenset({"view"})


def node_id(r: Resolved) -> str:
    """The graph node id of a resolved element."""
    if r.kind == "context":
        return f"context:{r.name}"
    return f"{r.kind}:{r.qualified}"


def _resolve_emit(
    scope: Scope, context: Context, aggregate: Aggregate, name: str
) -> Resolved | None:
    # An aggregate emits only its own events.
    r = scope.resolve(context, name, EVENT_KINDS)
    return r if r is not None and r.owner is aggregate else None


def _process_edges(g: Any, scope: Scope, context: Context, process: Process) -> None:
    """A process's edges: events it consumes, commands it issues, its timers."""
    pid = node_id(Resolved("process", process, context))
    timers: dict[str, Any] = {}
    for handler in process.handlers:
        if handler.event is not None:
            source = scope.resolve(context, handler.event.name, EVENT_KINDS)
            if source is not None:
                # `acts`: the handler issues commands or sets timers (a cause of what the
                # process does), rather than only changing or ending the instance
                acts = bool(handler.thens or handler.timers)
                g.add_edge(
                    node_id(source),
                    pid,
                    kind="consumes",
                    loc=handler.loc,
                    starts=handler.starts,
                    acts=acts,
                )
        for then in handler.thens:
            target = scope.resolve(context, then.command.name, COMMAND_KINDS)
            if target is not None:
                g.add_edge(pid, node_id(target), kind="issues", loc=then.loc)
        for timer in handler.timers:
            timers.setdefault(timer.name, timer.loc)
    for name, loc in timers.items():
        g.add_edge(pid, pid, kind="timer", name=name, loc=loc)


def build_graph(model: Model, scope: Scope | None = None) -> Any:
    """Build the board's :class:`networkx.MultiDiGraph` (see the module docstring)."""
    scope = scope if scope is not None else Scope(model)
    g = nx.MultiDiGraph(name=model.name)

    def add(r: Resolved) -> str:
        nid = node_id(r)
        # Duplicate declarations (E101) keep the first one, as name resolution does.
        if nid not in g:
            attrs: dict[str, Any] = {
                "kind": r.kind,
                "name": r.name,
                "context": r.context.name if r.context is not None else None,
                "element": r.element,
                "loc": getattr(r.element, "loc", None),
            }
            if r.kind == "event":
                attrs["published"] = bool(getattr(r.element, "published", False))
            g.add_node(nid, **attrs)
        return nid

    # Hotspots are numbered in source order once every one is known.
    hotspots: list[tuple[str, Context | None, Hotspot]] = []

    def add_hotspots(owner: str, context: Context | None, found: tuple[Hotspot, ...]) -> None:
        hotspots.extend((owner, context, h) for h in found)

    for r in top_level_members(model):
        add(r)

    for context in model.contexts:
        cid = add(Resolved("context", context, context))
        for r in context_members(context):
            nid = add(r)
            if r.owner is None:
                g.add_edge(cid, nid, kind="contains")
            else:
                owner_kind = "aggregate" if isinstance(r.owner, Aggregate) else "external"
                oid = node_id(Resolved(owner_kind, r.owner, context))
                g.add_edge(oid, nid, kind="contains")
                if r.kind == "command" and isinstance(r.owner, Aggregate):
                    g.add_edge(oid, nid, kind="handles")
            if r.kind == "event" and getattr(r.element, "published", False):
                g.add_edge(cid, nid, kind="publishes")
        add_hotspots(cid, context, context.hotspots)

    def add_reads(reader: str, context: Context, exprs: list[Expr]) -> None:
        """A dashed edge view -> reader per view its lookups ``View[key]`` read (once)."""
        for sub in (s for e in exprs for s in subexpressions(e)):
            if not isinstance(sub, Lookup):
                continue
            view = scope.resolve(context, sub.view.name, VIEW_KINDS)
            if view is None or view.context is not context:
                continue  # E401 or E107, reported by the checks
            vid = node_id(view)
            if not g.has_edge(vid, reader, key="reads"):
                g.add_edge(vid, reader, key="reads", kind="reads", loc=sub.loc)

    # Second pass: every referenced element has its node now.
    for context in model.contexts:
        for aggregate in context.aggregates:
            aid = node_id(Resolved("aggregate", aggregate, context))
            add_hotspots(aid, context, aggregate.hotspots)
            for command in aggregate.commands:
                cmd = node_id(Resolved("command", command, context, aggregate))
                add_hotspots(cmd, context, command.hotspots)
                for emit in command.emits:
                    ev = _resolve_emit(scope, context, aggregate, emit.event.name)
                    if ev is not None:
                        g.add_edge(cmd, node_id(ev), kind="emits", loc=emit.loc)
                for actor_ref in command.actors:
                    actor = scope.resolve(context, actor_ref.name, ACTOR_KINDS)
                    if actor is not None:
                        g.add_edge(node_id(actor), cmd, kind="issues", loc=actor_ref.loc)
                add_reads(cmd, context, command_expressions(command))
            for event in aggregate.events:
                eid = node_id(Resolved("event", event, context, aggregate))
                add_hotspots(eid, context, event.hotspots)
        for external in context.externals:
            for command in external.commands:
                cmd = node_id(Resolved("command", command, context, external))
                add_hotspots(cmd, context, command.hotspots)
            for event in external.events:
                eid = node_id(Resolved("event", event, context, external))
                add_hotspots(eid, context, event.hotspots)
        for policy in context.policies:
            pid = node_id(Resolved("policy", policy, context))
            add_hotspots(pid, context, policy.hotspots)
            trigger = scope.resolve(context, policy.when.name, EVENT_KINDS)
            if trigger is not None:
                g.add_edge(node_id(trigger), pid, kind="triggers", loc=policy.when.loc)
            for then in policy.thens:
                target = scope.resolve(context, then.command.name, COMMAND_KINDS)
                if target is not None:
                    g.add_edge(pid, node_id(target), kind="issues", loc=then.loc)
            add_reads(pid, context, policy_expressions(policy))
        for view in context.views:
            vid = node_id(Resolved("view", view, context))
            add_hotspots(vid, context, view.hotspots)
            for on in view.handlers:
                source = scope.resolve(context, on.event.name, EVENT_KINDS)
                if source is not None:
                    g.add_edge(node_id(source), vid, kind="feeds", loc=on.loc)

        for process in context.processes:
            _process_edges(g, scope, context, process)
            pid = node_id(Resolved("process", process, context))
            add_reads(pid, context, process_expressions(process))
            add_hotspots(pid, context, process.hotspots)

    file_order = {f.path: i for i, f in enumerate(model.files)}
    hotspots.sort(
        key=lambda o: (file_order.get(o[2].loc.file, len(file_order)), o[2].loc.file, o[2].loc)
    )
    for n, (owner, where, h) in enumerate(hotspots, start=1):
        hid = f"hotspot:{n}"
        g.add_node(
            hid,
            kind="hotspot",
            name=h.text,
            context=where.name if where is not None else None,
            element=h,
            loc=h.loc,
        )
        g.add_edge(owner, hid, kind="contains")

    for relation in model.relations:
        left = scope.context(relation.left.name)
        right = scope.context(relation.right.name)
        if left is None or right is None:
            continue
        lid, rid = f"context:{left.name}", f"context:{right.name}"
        if relation.kind == "->":
            g.add_edge(
                lid,
                rid,
                kind="upstream-of",
                relation="->",
                patterns_up=tuple(p.name for p in relation.left_patterns),
                patterns_down=tuple(p.name for p in relation.right_patterns),
                loc=relation.loc,
            )
        else:
            symmetric = tuple(p.name for p in relation.symmetric)
            for a, b in ((lid, rid), (rid, lid)):
                g.add_edge(
                    a,
                    b,
                    kind="upstream-of",
                    relation="<->",
                    patterns_up=symmetric,
                    patterns_down=symmetric,
                    loc=relation.loc,
                )
    return g


__all__ = [
    "build_graph",
    "command_expressions",
    "node_id",
    "policy_expressions",
    "process_expressions",
]


def command_expressions(command: Command) -> list[Expr]:
    """Every expression of a command's lines: its ``require``s, ``let``s and ``emit``s."""
    out = [r.condition for r in command.requires] + [x.value for x in command.lets]
    for emit in command.emits:
        out += [a.value for a in emit.assignments]
        out += [emit.condition] if emit.condition is not None else []
    return out


def policy_expressions(policy: Policy) -> list[Expr]:
    """Every expression of a policy: its ``if`` and each ``then`` line's."""
    out = [policy.condition] if policy.condition is not None else []
    return out + _then_expressions(policy.thens)


def process_expressions(process: Process) -> list[Expr]:
    """Every expression of a process's handlers (but their ``by``, which reads no view):
    each one's ``if``, assignments, ``let``s, ``then``, ``timer`` and ``end`` lines."""
    out: list[Expr] = []
    for handler in process.handlers:
        out += [handler.condition] if handler.condition is not None else []
        out += [a.value for a in handler.assignments] + [x.value for x in handler.lets]
        out += _then_expressions(handler.thens)
        out += [x for timer in handler.timers for x in (timer.after, timer.at) if x is not None]
        out += [end.condition for end in handler.ends if end.condition is not None]
    return out


def _then_expressions(thens: Iterable[Then]) -> list[Expr]:
    """Every expression of ``then`` lines: their fields, their ``if`` and their ``for``."""
    out: list[Expr] = []
    for then in thens:
        out += [a.value for a in then.assignments]
        out += [then.condition] if then.condition is not None else []
        if then.fan is not None:
            out += [then.fan.source]
            out += [then.fan.condition] if then.fan.condition is not None else []
    return out
