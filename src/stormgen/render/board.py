"""The model as an Event Storming board: one self-contained HTML file.

Everything is computed here, in Python: a swimlane per context; inside it a track
(row) of actors, of incoming events from other contexts, one per aggregate (its yellow
note heads the row, its commands and events follow), one per external system, one of
policies, one of read models and one of open questions. Columns are causal order: a
longest-path layering of the lane's flow graph (command -> event -> policy -> command,
event -> view, an external command -> that system's events), with cycles broken at the
edge that closes them. The causal chain of every event (its ancestors and descendants
across contexts) is precomputed as lists of note indices; the page's small script only
looks them up. The template prints; it decides nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stormgen.model.nodes import (
    Actor,
    Aggregate,
    Binary,
    Command,
    Context,
    Event,
    Expr,
    External,
    Hotspot,
    Name,
    Policy,
    View,
)
from stormgen.render.diagram import COLOURS
from stormgen.render.text import assignment, expression, field_line

if TYPE_CHECKING:
    from stormgen import LoadedModel

# Geometry, in CSS pixels.
NOTE_W = 150
NOTE_H = 62
SMALL_H = 34  # actors and hotspots
COL_GAP = 26
ROW_GAP = 10
HEADER_W = 190  # the track headers' column
PAD = 16
LANE_TITLE_H = 34
LANE_GAP = 18
LANE_X = 8
TRACK_PAD = 8

KINDS = ("actor", "aggregate", "command", "event", "policy", "view", "external", "hotspot")


@dataclass
class Note:
    """One sticky on the board; ``ref`` is the model graph node it shows."""

    index: int
    ref: str
    kind: str
    name: str
    sub: str
    title: str
    x: int = 0
    y: int = 0
    w: int = NOTE_W
    h: int = NOTE_H
    lane_y: int = 0  # the top of its lane: the page positions notes inside their lane
    copy: bool = False  # a shared actor drawn again in another lane
    ghost: bool = False  # another context's event, drawn where it is consumed
    external_message: bool = False  # a command or event of an external system

    @property
    def left(self) -> int:
        """CSS ``left`` inside the lane (which stands at ``LANE_X`` with a 1px border)."""
        return self.x - LANE_X - 1

    @property
    def top(self) -> int:
        return self.y - self.lane_y - 1


@dataclass
class Track:
    label: str
    y: int = 0
    h: int = 0
    top: int = 0  # inside the lane


@dataclass
class Lane:
    name: str
    description: str
    y: int = 0
    h: int = 0
    tracks: list[Track] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


@dataclass
class Board:
    """What the template prints: geometry, notes, and the JSON blob for the script."""

    title: str
    description: str
    width: int
    height: int
    lanes: list[Lane]
    notes: list[Note]
    data_json: str
    counts: dict[str, int]
    colours: dict[str, str] = field(default_factory=lambda: dict(COLOURS))
    lane_title_height: int = LANE_TITLE_H

    @property
    def lane_width(self) -> int:
        return self.width - 2 * LANE_X


# ---------------------------------------------------------------- details


def _fields(fields: Iterable[Any]) -> list[str]:
    lines = []
    for f in fields:
        line = field_line(f)
        if f.description:
            line += f"  — {f.description}"
        lines.append(line)
    return lines


def _hotspot_lines(hotspots: tuple[Hotspot, ...]) -> list[str]:
    return [h.text for h in hotspots]


def _details(graph: Any, nid: str) -> dict[str, Any]:
    """The panel shown when a note is clicked: titled sections of plain lines."""
    data = graph.nodes[nid]
    kind, element = data["kind"], data["element"]
    qualified = nid.split(":", 1)[1]
    sections: list[tuple[str, list[str]]] = []

    def linked(edge_kind: str, *, incoming: bool) -> list[str]:
        edges = graph.in_edges(nid, data=True) if incoming else graph.out_edges(nid, data=True)
        found = []
        for u, v, d in edges:
            if d["kind"] == edge_kind:
                other = u if incoming else v
                found.append(other.split(":", 1)[1])
        return list(dict.fromkeys(found))

    if isinstance(element, Aggregate):
        sections.append(("identity", [field_line(element.id_field)]))
        if element.snapshot_every:
            sections.append(("snapshots", [f"every {element.snapshot_every} events"]))
        sections.append(("state", _fields(element.state)))
        sections.append(("commands", [c.name for c in element.commands]))
        sections.append(("events", [e.name for e in element.events]))
    elif isinstance(element, External):
        sections.append(("commands (sent to it)", [c.name for c in element.commands]))
        sections.append(("events (coming from it)", [e.name for e in element.events]))
    elif isinstance(element, Command):
        by = [a.name for a in element.actors]
        flags = ["creates a new instance"] if element.creates else []
        flags.append("issued by " + ", ".join(by) if by else "internal: issued by policies")
        sections.append(("command", flags))
        sections.append(("fields", _fields(element.fields)))
        sections.append(
            (
                "requires",
                [f'{expression(r.condition)} else "{r.message}"' for r in element.requires],
            )
        )
        emits = []
        for e in element.emits:
            line = e.event.name
            if e.assignments:
                line += " { " + ", ".join(assignment(a) for a in e.assignments) + " }"
            if e.condition is not None:
                line += f" if {expression(e.condition)}"
            emits.append(line)
        sections.append(("emits", emits))
        sections.append(
            ("issued by policies", [p for p in linked("issues", incoming=True) if "." in p])
        )
    elif isinstance(element, Event):
        head = [f"version {element.version}", "published" if element.published else "private"]
        sections.append(("event", head))
        sections.append(("fields", _fields(element.fields)))
        sections.append(("apply", [assignment(a) for a in element.apply]))
        sections.append(("emitted by", linked("emits", incoming=True)))
        sections.append(("triggers policies", linked("triggers", incoming=False)))
        sections.append(("feeds views", linked("feeds", incoming=False)))
    elif isinstance(element, Policy):
        when = element.when.name
        if element.condition is not None:
            when += f" if {expression(element.condition)}"
        sections.append(("when", [when]))
        thens = []
        for t in element.thens:
            line = t.command.name
            if t.assignments:
                line += " { " + ", ".join(assignment(a) for a in t.assignments) + " }"
            thens.append(line)
        sections.append(("then", thens))
    elif isinstance(element, View):
        sections.append(("key", [field_line(element.key)]))
        sections.append(("columns", _fields(element.fields)))
        handlers = []
        for on in element.handlers:
            line = f"on {on.event.name}"
            if on.by is not None:
                line += f" by {expression(on.by)}"
            if on.delete:
                line += " delete"
            elif on.assignments:
                line += " { " + ", ".join(assignment(a) for a in on.assignments) + " }"
            handlers.append(line)
        sections.append(("updated", handlers))
    elif isinstance(element, Actor):
        sections.append(("issues", linked("issues", incoming=False)))
    elif isinstance(element, Hotspot):
        owner = next(
            (u for u, _, d in graph.in_edges(nid, data=True) if d["kind"] == "contains"), None
        )
        qualified = "open question"
        if owner is not None:
            sections.append(("on", [owner.split(":", 1)[1]]))
    hotspots = getattr(element, "hotspots", ())
    if hotspots:
        sections.append(("open questions", _hotspot_lines(hotspots)))
    description = (
        element.text if isinstance(element, Hotspot) else getattr(element, "description", None)
    )
    loc = data.get("loc")
    return {
        "kind": kind,
        "name": qualified,
        "description": description or "",
        "where": str(loc) if loc is not None else "",
        "sections": [[title, lines] for title, lines in sections if lines],
    }


def _hover(detail: dict[str, Any]) -> str:
    """The note's tooltip: name, description and its fields, a line each."""
    lines = [f"{detail['kind']} {detail['name']}"]
    if detail["description"]:
        lines.append(detail["description"])
    for title, items in detail["sections"]:
        if title in ("fields", "state", "columns", "key", "when", "then"):
            lines.extend(f"  {item}" for item in items[:12])
            if len(items) > 12:
                lines.append(f"  … {len(items) - 12} more")
    return "\n".join(lines)


def _subtitle(kind: str, element: Any) -> str:
    if isinstance(element, Command):
        parts = ["creates"] if element.creates else []
        parts.append(
            "by " + ", ".join(a.name for a in element.actors) if element.actors else "internal"
        )
        return " · ".join(parts)
    if isinstance(element, Event):
        parts = ["published"] if element.published else []
        if element.version != 1:
            parts.append(f"v{element.version}")
        return " · ".join(parts) or "event"
    if isinstance(element, Policy):
        return f"when {element.when.name}"
    if isinstance(element, View):
        return f"key {element.key.name}"
    if isinstance(element, Aggregate):
        return f"{len(element.commands)} commands · {len(element.events)} events"
    if isinstance(element, External):
        return "external system"
    return kind


# ---------------------------------------------------------------- layering


def _reaches(dag: dict[str, list[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for child in dag.get(node, ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return False


def _layers(
    nodes: list[str],
    edges: list[tuple[str, str]],
    hints: Sequence[tuple[str, str]] = (),
) -> dict[str, int]:
    """Longest-path layers of a directed graph, its cycles broken where DFS closes them.

    ``hints`` are edges that only order the layout ("this command comes after that
    event"); each is kept only if it closes no cycle with the edges kept before it.
    """
    succ: dict[str, list[str]] = defaultdict(list)
    for u, v in edges:
        succ[u].append(v)
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    kept: list[tuple[str, str]] = []
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, i = stack[-1]
            children = succ.get(node, [])
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                s = state.get(child)
                if s == 1:
                    continue  # a back edge: it closes a cycle, leave it out of the layering
                kept.append((node, child))
                if s is None:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[node] = 2
                stack.pop()
    dag: dict[str, list[str]] = defaultdict(list)
    for u, v in kept:
        dag[u].append(v)
    for u, v in hints:
        if u != v and u in state and v in state and not _reaches(dag, v, u):
            dag[u].append(v)
    indegree: dict[str, int] = {n: 0 for n in nodes}
    for children in dag.values():
        for v in children:
            indegree[v] += 1
    layer = {n: 0 for n in nodes}
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for child in dag.get(node, []):
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return layer


def _equalities(expr: Expr) -> list[tuple[str, str]]:
    """``(field, Member)`` for each ``field == Member`` joined by ``and`` in a guard."""
    if isinstance(expr, Binary):
        if expr.op == "and":
            return _equalities(expr.left) + _equalities(expr.right)
        if expr.op == "==":
            for a, b in ((expr.left, expr.right), (expr.right, expr.left)):
                if isinstance(a, Name) and isinstance(b, Name) and len(a.parts) in (1, 2):
                    if len(a.parts) == 2 and a.parts[0] != "state":
                        continue
                    return [(a.parts[-1], b.parts[-1])]
    return []


# ---------------------------------------------------------------- chains


def _chains(
    graph: Any, causal: list[tuple[str, str]], events: list[str]
) -> dict[str, frozenset[str]]:
    """For each event, every node upstream and downstream of it (bitsets over SCCs)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(n for n in graph.nodes)
    g.add_edges_from(causal)
    condensed = nx.condensation(g)
    members: dict[int, list[str]] = {c: list(d["members"]) for c, d in condensed.nodes(data=True)}
    mapping: dict[str, int] = condensed.graph["mapping"]
    order = list(nx.topological_sort(condensed))
    down: dict[int, int] = {}
    for c in reversed(order):
        bits = 1 << c
        for s in condensed.successors(c):
            bits |= down[s]
        down[c] = bits
    up: dict[int, int] = {}
    for c in order:
        bits = 1 << c
        for p in condensed.predecessors(c):
            bits |= up[p]
        up[c] = bits
    cache: dict[int, frozenset[str]] = {}
    chains: dict[str, frozenset[str]] = {}
    for e in events:
        c = mapping[e]
        if c not in cache:
            # The set bits' positions, found by C code rather than a Python bit loop.
            binary = format(down[c] | up[c], "b")[::-1]
            found: list[str] = []
            i = binary.find("1")
            while i != -1:
                found.extend(members[i])
                i = binary.find("1", i + 1)
            cache[c] = frozenset(found)
        chains[e] = cache[c]
    return chains


# ---------------------------------------------------------------- the board


class _Cells:
    """The tracks of one lane: track label -> column -> stacked notes (column -1: header)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[int, list[Note]]] = {}
        self.headers: dict[str, Note | None] = {}

    def track(self, label: str, header: Note | None = None) -> dict[int, list[Note]]:
        if label not in self.rows:
            self.rows[label] = defaultdict(list)
            self.headers[label] = header
        return self.rows[label]


class _BoardBuilder:
    """Builds a :class:`Board`: indexes the graph once, then lays out lane after lane."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.model, self.graph = loaded.model, loaded.graph
        graph = self.graph
        self.nodes: dict[str, dict[str, Any]] = dict(graph.nodes(data=True))
        self.out_edges: dict[str, list[tuple[str, str]]] = defaultdict(list)  # (kind, target)
        self.in_edges: dict[str, list[tuple[str, str]]] = defaultdict(list)  # (kind, source)
        for u, v, d in graph.edges(data=True):
            self.out_edges[u].append((d["kind"], v))
            self.in_edges[v].append((d["kind"], u))
        # Causal edges: the flow, plus "an external system answers its commands with its
        # events" (the fake adapter does exactly that), so chains run through it.
        self.causal: list[tuple[str, str]] = [
            (u, v)
            for u, v, d in graph.edges(data=True)
            if d["kind"] in ("emits", "triggers", "feeds", "issues")
        ]
        self.hotspot_owner: dict[str, str] = {}
        self.owner_of: dict[str, str] = {}  # command/event -> aggregate/external
        for nid, data in self.nodes.items():
            contained = [t for k, t in self.out_edges[nid] if k == "contains"]
            if data["kind"] == "external":
                cmds = [m for m in contained if self.nodes[m]["kind"] == "command"]
                evts = [m for m in contained if self.nodes[m]["kind"] == "event"]
                self.causal.extend((c, e) for c in cmds for e in evts)
            for t in contained:
                if self.nodes[t]["kind"] == "hotspot":
                    self.hotspot_owner[t] = nid
                elif data["kind"] in ("aggregate", "external"):
                    self.owner_of[t] = nid
        # Causal edges by the context of their target: each lane looks at its own only.
        self.causal_into: dict[str | None, list[tuple[str, str]]] = defaultdict(list)
        for u, v in self.causal:
            self.causal_into[self.nodes[v]["context"]].append((u, v))
        self.by_context: dict[str | None, list[str]] = defaultdict(list)
        for nid, data in self.nodes.items():
            self.by_context[data["context"]].append(nid)
        self.notes: list[Note] = []
        self.details: dict[str, dict[str, Any]] = {}
        self.max_col = 0

    def hints(self, ctx: str) -> list[tuple[str, str]]:
        """Layout-only edges of a lane, the order a modeller would put the stickies in.

        An instance exists before anything else happens to it: the events of an
        aggregate's ``creates`` commands come before its other commands. And a command
        guarded by ``require field == Member`` comes after the events whose ``apply``
        sets ``field = Member``.
        """
        context = self.model.context(ctx)
        if context is None:
            return []
        hints: list[tuple[str, str]] = []
        for aggregate in context.aggregates:
            creating: list[str] = []
            sets: dict[tuple[str, str], list[str]] = defaultdict(list)
            for event in aggregate.events:
                for a in event.apply:
                    if a.op == "=" and isinstance(a.value, Name):
                        sets[(a.target, a.value.parts[-1])].append(f"event:{ctx}.{event.name}")
            for command in aggregate.commands:
                if command.creates:
                    creating.extend(f"event:{ctx}.{e.event.name}" for e in command.emits)
            for command in aggregate.commands:
                cid = f"command:{ctx}.{command.name}"
                if not command.creates:
                    hints.extend((e, cid) for e in creating)
                for require in command.requires:
                    for field_name, member in _equalities(require.condition):
                        hints.extend((e, cid) for e in sets.get((field_name, member), ()))
        return hints

    def note(self, ref: str, **extra: Any) -> Note:
        data = self.nodes[ref]
        if ref not in self.details:
            self.details[ref] = _details(self.graph, ref)
        n = Note(
            index=len(self.notes),
            ref=ref,
            kind=data["kind"],
            name=data["name"],
            sub=_subtitle(data["kind"], data["element"]),
            title=_hover(self.details[ref]),
            **extra,
        )
        if n.kind in ("actor", "hotspot"):
            n.h = SMALL_H
        if n.ghost:
            n.sub = f"from {data['context']}"
        self.notes.append(n)
        return n

    # ------------------------------------------------------------ lanes

    def shared_lane(self, actors: list[str]) -> _Cells:
        cells = _Cells()
        row = cells.track("Actors")
        for col, nid in enumerate(actors):
            row[col].append(self.note(nid))
        self.max_col = max(self.max_col, len(actors) - 1)
        return cells

    def context_lane(self, ctx: str) -> _Cells:
        nodes, cells = self.nodes, _Cells()
        members = self.by_context[ctx]
        member_set = set(members)
        flow_nodes = [
            n for n in members if nodes[n]["kind"] in ("command", "event", "policy", "view")
        ]
        flow_set = set(flow_nodes)
        # Another context's events consumed here are drawn again, dashed, as the lane's inputs.
        ghosts: dict[str, None] = {}
        for n in flow_nodes:
            for k, src in self.in_edges[n]:
                if k in ("triggers", "feeds") and src not in member_set:
                    ghosts[src] = None
        lane_edges = [
            (u, v)
            for u, v in self.causal_into[ctx]
            if (u in flow_set or u in ghosts) and v in flow_set
        ]
        layer = _layers([*ghosts, *flow_nodes], lane_edges, self.hints(ctx))
        if layer:
            self.max_col = max(self.max_col, max(layer.values()))

        # An actor stands in the column of the first command it issues here.
        actors: dict[str, int] = {}
        for n in flow_nodes:
            for k, src in self.in_edges[n]:
                if k == "issues" and nodes[src]["kind"] == "actor":
                    actors[src] = min(actors.get(src, layer[n]), layer[n])
        for n in members:
            if nodes[n]["kind"] == "actor":
                actors.setdefault(n, 0)
        if actors:
            row = cells.track("Actors")
            for a, col in actors.items():
                row[col].append(self.note(a, copy=nodes[a]["context"] is None))
        if ghosts:
            row = cells.track("From other contexts")
            for gid in ghosts:
                row[layer[gid]].append(self.note(gid, ghost=True))

        placed: dict[str, Note] = {}
        cell_of: dict[str, tuple[str, int]] = {}
        header_track: dict[str, str] = {}
        for owner_kind in ("aggregate", "external"):
            for n in members:
                if nodes[n]["kind"] != owner_kind:
                    continue
                label = f"{owner_kind}:{n}"
                header_track[n] = label
                row = cells.track(label, self.note(n))
                for k, t in self.out_edges[n]:
                    if k == "contains" and nodes[t]["kind"] in ("command", "event"):
                        placed[t] = self.note(t, external_message=owner_kind == "external")
                        row[layer[t]].append(placed[t])
                        cell_of[t] = (label, layer[t])
        for kind, label in (("policy", "Policies"), ("view", "Read models")):
            items = [n for n in flow_nodes if nodes[n]["kind"] == kind]
            if items:
                row = cells.track(label)
                for n in items:
                    placed[n] = self.note(n)
                    row[layer[n]].append(placed[n])
                    cell_of[n] = (label, layer[n])

        # Hotspots go right under what they question; the context's own get their row.
        loose: list[Note] = []
        for h in self.by_context[ctx]:
            if nodes[h]["kind"] != "hotspot":
                continue
            owner = self.hotspot_owner.get(h, "")
            hotspot = self.note(h)
            if owner in placed:
                label, col = cell_of[owner]
                stack = cells.rows[label][col]
                stack.insert(stack.index(placed[owner]) + 1, hotspot)
            elif owner in header_track:
                cells.rows[header_track[owner]][-1].append(hotspot)
            else:
                loose.append(hotspot)
        if loose:
            row = cells.track("Open questions")
            for col, hotspot in enumerate(loose):
                row[col].append(hotspot)
            self.max_col = max(self.max_col, len(loose) - 1)
        return cells

    @staticmethod
    def place(lane: Lane, cells: _Cells) -> int:
        """Give every note of a lane its coordinates; return the lane's bottom edge."""
        ty = lane.y + LANE_TITLE_H
        for label, row in cells.rows.items():
            head = cells.headers[label]
            if head is not None:
                row[-1].insert(0, head)
            height = 0
            for col, stack in row.items():
                sy = ty + TRACK_PAD
                for item in stack:
                    if col < 0:
                        item.x, item.w = PAD + 8, HEADER_W - 16
                    else:
                        item.x = PAD + HEADER_W + col * (NOTE_W + COL_GAP)
                    item.y, item.lane_y = sy, lane.y
                    lane.notes.append(item)
                    sy += item.h + ROW_GAP
                height = max(height, sy - ty - ROW_GAP + TRACK_PAD)
            height = max(height, SMALL_H + 2 * TRACK_PAD)
            lane.tracks.append(
                Track(label="" if head is not None else label, y=ty, h=height, top=ty - lane.y - 1)
            )
            ty += height
        lane.h = ty - lane.y
        lane.notes.sort(key=lambda n: n.index)
        return ty

    # ------------------------------------------------------------ the whole board

    def build(self) -> Board:
        nodes = self.nodes
        issuing = {u for u, _ in self.causal if nodes[u]["kind"] == "actor"}
        shared = [
            n for n in self.by_context[None] if nodes[n]["kind"] == "actor" and n not in issuing
        ]
        lanes: list[Lane] = []
        y = PAD
        if shared:
            lane = Lane("Shared", "actors of the whole model that issue no command", y=y)
            y = self.place(lane, self.shared_lane(shared)) + LANE_GAP
            lanes.append(lane)
        for context in self.lane_order():
            lane = Lane(context.name, context.description or "", y=y)
            y = self.place(lane, self.context_lane(context.name)) + LANE_GAP
            lanes.append(lane)

        chain_list, event_chain = self.chains()
        counts = {kind: sum(1 for d in nodes.values() if d["kind"] == kind) for kind in KINDS}
        blob = {
            "details": self.details,
            "chains": chain_list,
            "eventChain": event_chain,
        }
        return Board(
            title=self.model.name,
            description=self.model.description or "",
            width=PAD * 2 + HEADER_W + (self.max_col + 1) * (NOTE_W + COL_GAP),
            height=y + PAD,
            lanes=lanes,
            notes=self.notes,
            data_json=_script_json(blob),
            counts=counts,
        )

    def lane_order(self) -> list[Context]:
        """Contexts upstream first (the context map's ``->``), else in model order."""
        import networkx as nx

        contexts: dict[str, Context] = {}
        for context in self.model.contexts:
            # A context declared twice (E101) is one lane, of its first declaration.
            if context.name not in contexts and f"context:{context.name}" in self.nodes:
                contexts[context.name] = context
        position = {name: i for i, name in enumerate(contexts)}
        upstream = nx.DiGraph()
        upstream.add_nodes_from(contexts)
        for u, v, d in self.graph.edges(data=True):
            if d["kind"] == "upstream-of" and d.get("relation") == "->":
                upstream.add_edge(self.nodes[u]["name"], self.nodes[v]["name"])
        try:
            names = list(nx.lexicographical_topological_sort(upstream, key=position.__getitem__))
        except nx.NetworkXUnfeasible:  # a cycle in the map (W505): keep the model's order
            names = list(contexts)
        return [contexts[name] for name in names]

    def chains(self) -> tuple[list[list[int]], dict[str, int]]:
        """Each event's causal chain as note indices; equal chains are stored once."""
        notes_of: dict[str, list[int]] = defaultdict(list)
        for item in self.notes:
            notes_of[item.ref].append(item.index)
        event_ids = [n for n, d in self.nodes.items() if d["kind"] == "event"]
        chains = _chains(self.graph, self.causal, event_ids)
        chain_list: list[list[int]] = []
        chain_index: dict[frozenset[str], int] = {}
        event_chain: dict[str, int] = {}
        by_owner: dict[str, list[str]] = defaultdict(list)
        for h, o in self.hotspot_owner.items():
            by_owner[o].append(h)
        for e in event_ids:
            found = chains[e]
            # The aggregates of the chain's commands and the chain's hotspots light up too.
            extra = {self.owner_of[m] for m in found if m in self.owner_of}
            members = set(found) | extra
            members.update(h for m in list(members) for h in by_owner.get(m, ()))
            key = frozenset(members)
            if key not in chain_index:
                chain_index[key] = len(chain_list)
                chain_list.append(sorted(i for m in key for i in notes_of.get(m, ())))
            event_chain[e] = chain_index[key]
        return chain_list, event_chain


def build_board(loaded: LoadedModel) -> Board:
    """Lay the whole model out as a board (see the module docstring)."""
    return _BoardBuilder(loaded).build()


def _script_json(data: Any) -> str:
    """JSON safe to inline in a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_board_page(board: Board) -> str:
    """A built board as one HTML page (inline CSS and JS, no network)."""
    from stormgen.render.environment import make_environment

    template = make_environment("board").get_template("board.html.jinja")
    return template.render(board=board)


def render_board(loaded: LoadedModel) -> str:
    """The model's board as one HTML page (inline CSS and JS, no network)."""
    return render_board_page(build_board(loaded))
