"""Diagrams of a model: the context map and the event flow, as Mermaid, DOT, SVG and HTML.

Both diagrams are first built as a small neutral :class:`Diagram` (clusters, nodes,
edges) from the model graph (:func:`stormgen.model.graph.build_graph`), then printed
by :func:`to_mermaid` or :func:`to_dot`. In the event flow an aggregate (yellow) or an
external system (pink) is drawn as a box around its commands and events, so that
``command -> event`` inside the box reads as "command -> aggregate -> event".
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from stormgen.diagnostics import StormgenError

#: Sticky-note colours of Event Storming, shared by the diagrams and the board.
COLOURS: dict[str, str] = {
    "event": "#ffa94d",
    "command": "#74c0fc",
    "aggregate": "#ffe066",
    "policy": "#d0bfff",
    "process": "#d0bfff",
    "view": "#b2f2bb",
    "external": "#fcc2d7",
    "actor": "#fff3bf",
    "hotspot": "#ff8787",
    "context": "#f1f3f5",
}

#: Graph edge kinds that make up the event flow, in the direction the arrow is drawn.
FLOW_EDGES = frozenset({"issues", "emits", "triggers", "feeds", "reads", "consumes"})


@dataclass
class Cluster:
    """A box: a context, or an aggregate / external system inside one."""

    id: str
    label: str
    kind: str
    parent: str | None = None
    neighbour: bool = False  # drawn only because the filtered context talks to it


@dataclass
class Node:
    id: str  # the model graph's node id
    label: str
    kind: str
    cluster: str | None = None
    tooltip: str = ""
    neighbour: bool = False


@dataclass
class Edge:
    source: str
    target: str
    kind: str
    label: str = ""
    tail_label: str = ""
    head_label: str = ""
    both: bool = False  # a symmetric relation (<->)
    dashed: bool = False


@dataclass
class Diagram:
    title: str
    fill: bool = False  # a small diagram (the context map): the HTML page scales it up
    clusters: list[Cluster] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


class UnknownContext(StormgenError):
    exit_code = 2


def _check_context(graph: Any, context: str | None) -> None:
    if context is not None and f"context:{context}" not in graph:
        names = [d["name"] for _, d in graph.nodes(data=True) if d["kind"] == "context"]
        raise UnknownContext(
            f"the model has no context named '{context}' (its contexts: {', '.join(names)})"
        )


def _description(data: dict[str, Any]) -> str:
    return str(getattr(data.get("element"), "description", None) or "")


# ---------------------------------------------------------------- building


def context_map(graph: Any, context: str | None = None) -> Diagram:
    """Contexts, the relations of the context map (one edge per relation) and each
    context's external systems (a dashed arrow from the context, saying how many
    commands it sends and events it hears)."""
    _check_context(graph, context)
    diagram = Diagram(title=str(graph.graph.get("name", "model")) + " context map", fill=True)
    relations: list[tuple[str, str, dict[str, Any]]] = []
    seen_symmetric: set[tuple[str, str, object]] = set()
    for u, v, data in graph.edges(data=True):
        if data["kind"] != "upstream-of":
            continue
        if data.get("relation") == "<->":
            # build_graph adds both directions of a symmetric relation: draw it once.
            key = (min(u, v), max(u, v), data.get("loc"))
            if key in seen_symmetric:
                continue
            seen_symmetric.add(key)
        relations.append((u, v, data))
    keep: set[str] | None = None
    if context is not None:
        cid = f"context:{context}"
        relations = [r for r in relations if cid in (r[0], r[1])]
        keep = {cid} | {r[0] for r in relations} | {r[1] for r in relations}
    for nid, data in graph.nodes(data=True):
        if data["kind"] == "context" and (keep is None or nid in keep):
            diagram.nodes.append(
                Node(
                    id=nid,
                    label=data["name"],
                    kind="context",
                    tooltip=_description(data),
                    neighbour=context is not None and data["name"] != context,
                )
            )
    for u, v, data in relations:
        up = ", ".join(data.get("patterns_up", ()))
        down = ", ".join(data.get("patterns_down", ()))
        if data.get("relation") == "<->":
            diagram.edges.append(Edge(u, v, "relation", label=up or "", both=True))
            continue
        label = f"{up or 'U'} → {down or 'D'}"
        diagram.edges.append(
            Edge(
                u,
                v,
                "relation",
                label=label,
                tail_label=f"U {up}".strip(),
                head_label=f"D {down}".strip(),
            )
        )
    for nid, members in _external_messages(graph).items():
        owner = f"context:{graph.nodes[nid]['context']}"
        if keep is not None and owner != f"context:{context}":
            continue
        diagram.nodes.append(
            Node(
                id=nid,
                label=graph.nodes[nid]["name"],
                kind="external",
                tooltip=_description(graph.nodes[nid]),
            )
        )
        kinds = [graph.nodes[m]["kind"] for m in members]
        diagram.edges.append(Edge(owner, nid, "uses", label=_counted(kinds), dashed=True))
    return diagram


def _counted(kinds: list[str]) -> str:
    """``1 command · 2 events``: what a context and an external system exchange."""
    parts = []
    for kind in ("command", "event"):
        n = kinds.count(kind)
        if n:
            parts.append(f"{n} {kind}{'s' if n != 1 else ''}")
    return " · ".join(parts)


def event_flow(graph: Any, context: str | None = None) -> Diagram:
    """Actors, commands, events, policies, processes and views with the arrows between them."""
    _check_context(graph, context)
    diagram = Diagram(title=str(graph.graph.get("name", "model")) + " event flow")
    shown = {"actor", "command", "event", "policy", "process", "view"}
    flow = [(u, v, d) for u, v, d in graph.edges(data=True) if d["kind"] in FLOW_EDGES]
    nodes = {n: d for n, d in graph.nodes(data=True) if d["kind"] in shown}
    if context is None:
        keep = set(nodes)
        flow_kept = flow
    else:
        own = {n for n, d in nodes.items() if d["context"] == context}
        flow_kept = [(u, v, d) for u, v, d in flow if u in own or v in own]
        keep = own | {u for u, _, _ in flow_kept} | {v for _, v, _ in flow_kept}
    owners: dict[str, str] = {}  # command/event node -> aggregate/external node
    for u, v, d in graph.edges(data=True):
        if d["kind"] == "contains" and graph.nodes[u]["kind"] in ("aggregate", "external"):
            owners[v] = u

    clusters: dict[str, Cluster] = {}

    def cluster_for(nid: str) -> str | None:
        data = graph.nodes[nid]
        ctx = data["context"]
        if ctx is None:
            return None
        neighbour = context is not None and ctx != context
        cid = f"context:{ctx}"
        if cid not in clusters:
            clusters[cid] = Cluster(cid, ctx, "context", neighbour=neighbour)
        owner = owners.get(nid)
        if owner is None or neighbour:
            return cid  # a neighbour's message is drawn loose in its context box
        if owner not in clusters:
            odata = graph.nodes[owner]
            clusters[owner] = Cluster(owner, odata["name"], odata["kind"], parent=cid)
        return owner

    for nid, data in nodes.items():
        if nid not in keep:
            continue
        diagram.nodes.append(
            Node(
                id=nid,
                label=data["name"],
                kind=data["kind"],
                cluster=cluster_for(nid),
                tooltip=_description(data),
                neighbour=context is not None
                and data["context"] is not None
                and data["context"] != context,
            )
        )
    # Clusters in model order: contexts first as they appear, then their children.
    diagram.clusters = sorted(clusters.values(), key=lambda c: c.parent is not None)
    # One arrow per pair: a command with several conditional emits of one event (or a
    # policy issuing one command twice) is linked once.
    for u, v, kind in dict.fromkeys((u, v, d["kind"]) for u, v, d in flow_kept):
        cross = graph.nodes[u]["context"] not in (None, graph.nodes[v]["context"])
        # a lookup `View[key]` is dashed: the view may lag behind the events
        diagram.edges.append(Edge(u, v, kind, dashed=cross or kind == "reads"))
    # An external system answers the commands sent to it with its events: a dotted arrow.
    for members in _external_messages(graph).values():
        commands = [m for m in members if m in keep and graph.nodes[m]["kind"] == "command"]
        events = [m for m in members if m in keep and graph.nodes[m]["kind"] == "event"]
        diagram.edges.extend(Edge(c, e, "answers", dashed=True) for c in commands for e in events)
    return diagram


def _external_messages(graph: Any) -> dict[str, list[str]]:
    """External system node -> its command and event nodes, in model order."""
    found: dict[str, list[str]] = {}
    for u, v, d in graph.edges(data=True):
        if d["kind"] == "contains" and graph.nodes[u]["kind"] == "external":
            found.setdefault(u, []).append(v)
    return found


# ---------------------------------------------------------------- Mermaid


def _mermaid_text(text: str) -> str:
    # Mermaid's entity codes keep quotes and angle brackets out of its parser.
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
    )


_MERMAID_SHAPES = {
    "actor": ('(["', '"])'),
    "policy": ('{{"', '"}}'),
    "process": ('{{"', '"}}'),
    "view": ('[("', '")]'),
}


def to_mermaid(diagram: Diagram) -> str:
    """A Mermaid flowchart that renders on GitHub: generated ids, quoted labels."""
    ids: dict[str, str] = {}
    for i, c in enumerate(diagram.clusters):
        ids[c.id] = f"c{i}"
    for i, n in enumerate(diagram.nodes):
        ids[n.id] = f"n{i}"
    lines = ["flowchart LR"]
    children: dict[str | None, list[Cluster]] = {}
    for c in diagram.clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[Node]] = {}
    for n in diagram.nodes:
        members.setdefault(n.cluster, []).append(n)

    def emit(cluster: str | None, indent: str) -> None:
        for n in members.get(cluster, []):
            left, right = _MERMAID_SHAPES.get(n.kind, ('["', '"]'))
            lines.append(f"{indent}{ids[n.id]}{left}{_mermaid_text(n.label)}{right}")
        for c in children.get(cluster, []):
            lines.append(f'{indent}subgraph {ids[c.id]}["{_mermaid_text(c.label)}"]')
            emit(c.id, indent + "  ")
            lines.append(f"{indent}end")

    emit(None, "  ")
    for e in diagram.edges:
        arrow = "<-->" if e.both else ("-.->" if e.dashed else "-->")
        label = f'|"{_mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"  {ids[e.source]} {arrow}{label} {ids[e.target]}")
    by_kind: dict[str, list[str]] = {}
    for n in diagram.nodes:
        by_kind.setdefault("neighbour" if n.neighbour else n.kind, []).append(ids[n.id])
    for kind in sorted(by_kind):
        if kind == "neighbour":
            style = "fill:#ffffff,stroke:#868e96,stroke-dasharray:4 3,color:#495057"
        else:
            style = f"fill:{COLOURS[kind]},stroke:#495057,color:#212529"
        lines.append(f"  classDef {kind} {style}")
        lines.append(f"  class {','.join(by_kind[kind])} {kind}")
    for c in diagram.clusters:
        fill = "#ffffff" if c.neighbour else COLOURS.get(c.kind, "#f1f3f5")
        dash = ",stroke-dasharray:4 3" if c.neighbour else ""
        lines.append(f"  style {ids[c.id]} fill:{fill},stroke:#868e96{dash}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- DOT


def _dot(text: str) -> str:
    """A DOT double-quoted string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attrs(**attrs: str | None) -> str:
    parts = [f"{k}={_dot(v)}" for k, v in attrs.items() if v]
    return f" [{', '.join(parts)}]" if parts else ""


_DOT_SHAPES = {
    "actor": "ellipse",
    "policy": "hexagon",
    "process": "hexagon",
    "view": "cylinder",
    "context": "box",
}


def to_dot(diagram: Diagram) -> str:
    """A Graphviz digraph, left to right, with a cluster per box."""
    ids: dict[str, str] = {}
    for i, c in enumerate(diagram.clusters):
        ids[c.id] = f"cluster_{i}"
    for i, n in enumerate(diagram.nodes):
        ids[n.id] = f"n{i}"
    lines = [
        f"digraph {_dot(diagram.title)} {{",
        '  graph [rankdir="LR", fontname="Helvetica", fontsize="12", newrank="true", '
        'nodesep="0.3", ranksep="0.5"];',
        '  node [shape="box", style="filled,rounded", fontname="Helvetica", fontsize="11", '
        'color="#495057"];',
        '  edge [fontname="Helvetica", fontsize="9", color="#495057"];',
    ]
    children: dict[str | None, list[Cluster]] = {}
    for c in diagram.clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[Node]] = {}
    for n in diagram.nodes:
        members.setdefault(n.cluster, []).append(n)

    def emit(cluster: str | None, indent: str) -> None:
        for n in members.get(cluster, []):
            fill = "#ffffff" if n.neighbour else COLOURS.get(n.kind, "#ffffff")
            style = "filled,rounded,dashed" if n.neighbour else None
            lines.append(
                f"{indent}{ids[n.id]}"
                + _attrs(
                    label=n.label,
                    fillcolor=fill,
                    shape=_DOT_SHAPES.get(n.kind),
                    style=style,
                    tooltip=n.tooltip or n.label,
                    id=n.id,
                )
                + ";"
            )
        for c in children.get(cluster, []):
            fill = "#ffffff" if c.neighbour else COLOURS.get(c.kind, "#f1f3f5")
            style = "rounded,dashed" if c.neighbour else "filled,rounded"
            lines.append(f"{indent}subgraph {ids[c.id]} {{")
            box = _attrs(label=c.label, style=style, fillcolor=fill, color="#868e96")
            lines.append(f"{indent}  graph{box};")
            emit(c.id, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    for e in diagram.edges:
        attrs = _attrs(
            label=e.label if not (e.tail_label or e.head_label) else None,
            taillabel=e.tail_label or None,
            headlabel=e.head_label or None,
            dir="both" if e.both else None,
            style=("dotted" if e.kind == "answers" else "dashed") if e.dashed else None,
            xlabel=e.label if e.both else None,
        )
        lines.append(f"  {ids[e.source]} -> {ids[e.target]}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- SVG and HTML


class GraphvizMissing(StormgenError):
    exit_code = 2


def to_svg(dot_source: str, timeout: float = 120.0) -> str:
    """Lay the DOT source out with Graphviz's ``dot`` and return the SVG text."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(
            "SVG output needs Graphviz's 'dot' program, which is not installed "
            "(install it with 'apt-get install graphviz' or 'brew install graphviz')"
        )
    try:
        done = subprocess.run(
            [dot, "-Tsvg"],
            input=dot_source.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StormgenError(
            f"Graphviz took more than {timeout:.0f} s to lay out the graph"
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise StormgenError(
            f"Graphviz could not lay out the graph: {message[0] if message else 'unknown error'}"
        )
    svg = done.stdout.decode("utf-8")
    # Drop the XML prolog and DOCTYPE so that the SVG can be inlined in HTML.
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def to_html(diagram: Diagram, svg: str, mermaid: str) -> str:
    """A self-contained page: the Graphviz SVG inline, and the Mermaid source below it."""
    from stormgen.render.environment import make_environment

    template = make_environment("graph").get_template("graph.html.jinja")
    return template.render(title=diagram.title, svg=svg, mermaid=mermaid, fill=diagram.fill)
