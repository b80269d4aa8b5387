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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stormgen.model.nodes import (
    Context,
    Name,
)
from stormgen.render.board_notes import hover_text, note_details, subtitle
from stormgen.render.diagram import COLOURS
from stormgen.render.layout import causal_chains, guard_equalities, longest_path_layers

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
                    for field_name, member in guard_equalities(require.condition):
                        hints.extend((e, cid) for e in sets.get((field_name, member), ()))
        return hints

    def note(self, ref: str, **extra: Any) -> Note:
        data = self.nodes[ref]
        if ref not in self.details:
            self.details[ref] = note_details(self.graph, ref)
        n = Note(
            index=len(self.notes),
            ref=ref,
            kind=data["kind"],
            name=data["name"],
            sub=subtitle(data["kind"], data["element"]),
            title=hover_text(self.details[ref]),
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
        layer = longest_path_layers([*ghosts, *flow_nodes], lane_edges, self.hints(ctx))
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
        chains = causal_chains(self.graph, self.causal, event_ids)
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
