"""The model as an Event Storming board: one self-contained HTML file.

Everything is computed here, in Python: a strip of the model's actors on top, then a
swimlane per context; inside it a track (row) of actors, of incoming events from other
contexts, one per aggregate (its yellow note heads the row), one per external system,
one of policies, one of read models and one of open questions. Columns are causal order:
a longest-path layering of the lane's flow graph (command -> event -> policy -> command,
event -> view, an external command -> that system's events), with cycles broken at the
edge that closes them. An aggregate's row is a timeline: its commands follow one another
(creating commands first, then causal order, then the model's order), each with the
events it emits in the next column, level with it; an event emitted by two commands is
drawn again (a copy) beside the earlier one. Two commands that fall in one column take
two bands of the row. Arrows link a command to its events, an event to the policies it
triggers and a policy to the commands it issues. The causal chain of every event (its
ancestors and descendants across contexts) is precomputed as lists of note indices; the
page's small script only looks them up. The template prints; it decides nothing. Here
the notes are put in cells (track, band, column); their coordinates, heights and arrow
paths come from :mod:`stormgen.render.board_geometry`, their texts from
:mod:`stormgen.render.board_notes`.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from stormgen.model.nodes import (
    Context,
    Name,
)
from stormgen.render.board_geometry import (
    CAST_H,
    COL_GAP,
    HEADER_W,
    LANE_GAP,
    NOTE_W,
    PAD,
    Bands,
    Board,
    Cells,
    Lane,
    note_height,
    place_lane,
)
from stormgen.render.board_geometry import Note as Note
from stormgen.render.board_notes import (
    hover_text,
    name_parts,
    note_details,
    subtitle,
)
from stormgen.render.layout import causal_chains, guard_equalities, longest_path_layers
from stormgen.render.text import timer_due

if TYPE_CHECKING:
    from stormgen import LoadedModel

KINDS = (
    "actor",
    "aggregate",
    "command",
    "event",
    "policy",
    "process",
    "view",
    "external",
    "hotspot",
)


class _BoardBuilder:
    """Builds a :class:`Board`: indexes the graph once, then lays out lane after lane.

    It stays one class: every step (hints, timelines, lanes, rows, chains) reads the same
    indexes of the graph (nodes, edges by kind, owners, causal edges by context) that
    ``__init__`` builds once; the coordinates are :mod:`~stormgen.render.board_geometry`'s.
    """

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
        # events" (the fake adapter does exactly that), so chains run through it. One edge
        # per pair, however many conditional emits link them.
        causal: dict[tuple[str, str], None] = {
            (u, v): None
            for u, v, d in graph.edges(data=True)
            if d["kind"] in ("emits", "triggers", "feeds", "issues")
            or (d["kind"] == "consumes" and d.get("acts"))
        }
        self.hotspot_owner: dict[str, str] = {}
        self.owner_of: dict[str, str] = {}  # command/event -> aggregate/external
        for nid, data in self.nodes.items():
            contained = [t for k, t in self.out_edges[nid] if k == "contains"]
            if data["kind"] == "external":
                cmds = [m for m in contained if self.nodes[m]["kind"] == "command"]
                evts = [m for m in contained if self.nodes[m]["kind"] == "event"]
                causal.update(((c, e), None) for c in cmds for e in evts)
            for t in contained:
                if self.nodes[t]["kind"] == "hotspot":
                    self.hotspot_owner[t] = nid
                elif data["kind"] in ("aggregate", "external"):
                    self.owner_of[t] = nid
        self.causal: list[tuple[str, str]] = list(causal)
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

    def emitted(self, command: str) -> list[str]:
        """The events a command emits, once each, in the order of its emits."""
        return list(dict.fromkeys(t for k, t in self.out_edges[command] if k == "emits"))

    def timeline(self, owners: list[str], layer: dict[str, int]) -> list[tuple[str, str]]:
        """Layout-only edges making each aggregate's commands follow one another.

        The commands are taken in the order the lane's layering gave them (ties in the
        model's order), and each comes after the events of the one before it.
        """
        edges: list[tuple[str, str]] = []
        for owner in owners:
            commands = [
                t
                for k, t in self.out_edges[owner]
                if k == "contains" and self.nodes[t]["kind"] == "command"
            ]
            commands.sort(key=lambda c: layer[c])  # stable: the model's order breaks ties
            for before, after in itertools.pairwise(commands):
                edges.extend((e, after) for e in self.emitted(before) or [before])
        return edges

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
        n.parts = [n.name] if n.kind == "hotspot" else name_parts(n.name)
        n.h = note_height(n)
        if n.ghost:
            n.sub = f"from {data['context']}"
        self.notes.append(n)
        return n

    def timer_notes(self, process: str) -> list[Note]:
        """A clock note per timer a process sets: its name and when it is due."""
        element = self.nodes[process]["element"]
        notes = []
        for name in element.timer_names:
            due = next(timer_due(t) for h in element.handlers for t in h.timers if t.name == name)
            n = Note(
                index=len(self.notes),
                ref=process,
                kind="timer",
                name=name,
                sub=f"timer · {due}",
                title=f"timer {name}: {due}",
                copy=True,  # the process drawn again, as its clock
            )
            n.parts = name_parts(n.name)
            n.h = note_height(n)
            self.notes.append(n)
            notes.append(n)
        return notes

    # ------------------------------------------------------------ lanes

    def cast_lane(self, actors: list[str]) -> Cells:
        """The model's own actors in one row, each saying where it issues commands."""
        cells = Cells()
        row = cells.track("Actors")
        for col, nid in enumerate(actors):
            where = list(
                dict.fromkeys(
                    self.nodes[t]["context"]
                    for k, t in self.out_edges[nid]
                    if k == "issues" and self.nodes[t]["context"] is not None
                )
            )
            item = self.note(nid)
            item.sub = "in " + ", ".join(where) if where else "no command yet"
            item.h = max(item.h, CAST_H)
            row[0, col].append(item)
        self.max_col = max(self.max_col, len(actors) - 1)
        return cells

    def context_lane(self, ctx: str) -> Cells:
        nodes, cells = self.nodes, Cells()
        members = self.by_context[ctx]
        member_set = set(members)
        flow_nodes = [
            n
            for n in members
            if nodes[n]["kind"] in ("command", "event", "policy", "process", "view")
        ]
        flow_set = set(flow_nodes)
        # Another context's events consumed here are drawn again, dashed, as the lane's inputs.
        ghosts: dict[str, None] = {}
        for n in flow_nodes:
            for k, src in self.in_edges[n]:
                if k in ("triggers", "feeds", "consumes") and src not in member_set:
                    ghosts[src] = None
        lane_edges = [
            (u, v)
            for u, v in self.causal_into[ctx]
            if (u in flow_set or u in ghosts) and v in flow_set
        ]
        laid = [*ghosts, *flow_nodes]
        hints = self.hints(ctx)
        aggregates = [n for n in members if nodes[n]["kind"] == "aggregate"]
        first = longest_path_layers(laid, lane_edges, hints)
        layer = longest_path_layers(laid, lane_edges, hints + self.timeline(aggregates, first))
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
                row[0, col].append(self.note(a, copy=nodes[a]["context"] is None))
        shown: dict[str, Note] = {}  # the note an arrow from or to an element goes to
        if ghosts:
            row = cells.track("From other contexts")
            for gid in ghosts:
                shown[gid] = self.note(gid, ghost=True)
                row[0, layer[gid]].append(shown[gid])

        placed: dict[str, Note] = {}
        cell_of: dict[str, tuple[str, tuple[int, int]]] = {}
        header_track: dict[str, str] = {}
        for owner_kind in ("aggregate", "external"):
            for n in members:
                if nodes[n]["kind"] != owner_kind:
                    continue
                label = f"{owner_kind}:{n}"
                header_track[n] = label
                cells.track(label, self.note(n))
                self.owner_row(cells, label, n, layer, placed, cell_of)
        tracks = (("policy", "Policies"), ("process", "Processes"), ("view", "Read models"))
        for kind, label in tracks:
            items = [n for n in flow_nodes if nodes[n]["kind"] == kind]
            if items:
                row = cells.track(label)
                for n in items:
                    placed[n] = self.note(n)
                    row[0, layer[n]].append(placed[n])
                    cell_of[n] = (label, (0, layer[n]))
                    if kind == "process":
                        # its timers: a clock note each, right under it
                        row[0, layer[n]].extend(self.timer_notes(n))
        shown.update(placed)
        for n in flow_nodes:
            if nodes[n]["kind"] not in ("policy", "process"):
                continue
            for k, src in self.in_edges[n]:
                if k in ("triggers", "consumes") and src in shown:
                    cells.links.append(("triggers", shown[src], shown[n]))
            for k, t in self.out_edges[n]:
                if k == "issues" and t in shown:
                    cells.links.append(("issues", shown[n], shown[t]))
        # A lookup `View[key]`: a dashed arrow from the view to what reads it.
        for n in flow_nodes:
            for k, src in self.in_edges[n]:
                if k == "reads" and src in shown and n in shown:
                    cells.links.append(("reads", shown[src], shown[n]))

        # Hotspots go right under what they question; the context's own get their row.
        loose: list[Note] = []
        for h in self.by_context[ctx]:
            if nodes[h]["kind"] != "hotspot":
                continue
            owner = self.hotspot_owner.get(h, "")
            hotspot = self.note(h)
            if owner in placed:
                label, cell = cell_of[owner]
                stack = cells.rows[label][cell]
                stack.insert(stack.index(placed[owner]) + 1, hotspot)
            elif owner in header_track:
                cells.rows[header_track[owner]][0, -1].append(hotspot)
            else:
                loose.append(hotspot)
        if loose:
            row = cells.track("Open questions")
            for col, hotspot in enumerate(loose):
                row[0, col].append(hotspot)
            self.max_col = max(self.max_col, len(loose) - 1)
        return cells

    def owner_row(
        self,
        cells: Cells,
        label: str,
        owner: str,
        layer: dict[str, int],
        placed: dict[str, Note],
        cell_of: dict[str, tuple[str, tuple[int, int]]],
    ) -> None:
        """An aggregate's (or external system's) row: each command, then what it emits."""
        nodes, row, bands = self.nodes, cells.rows[label], Bands()
        external = nodes[owner]["kind"] == "external"
        contained = [t for k, t in self.out_edges[owner] if k == "contains"]
        commands = sorted(
            (t for t in contained if nodes[t]["kind"] == "command"), key=lambda c: layer[c]
        )
        events = [t for t in contained if nodes[t]["kind"] == "event"]

        def put(ref: str, cell: tuple[int, int], *, copy: bool = False) -> Note:
            item = self.note(ref, external_message=external, copy=copy)
            row[cell].append(item)
            if not copy:
                placed[ref], cell_of[ref] = item, (label, cell)
            return item

        for command in commands:
            col = layer[command]
            if external:  # it answers with its events: those in the next column
                answers = [e for e in events if e not in placed and layer[e] == col + 1]
            else:
                answers = [e for e in self.emitted(command) if e in events]
            band = bands.take(col, col + 1 if answers else col)
            source = put(command, (band, col))
            for e in answers:
                # The event stands after its last emitter; beside any other, a copy.
                copy = e in placed or layer[e] != col + 1
                target = put(e, (band, col + 1), copy=copy)
                cells.links.append(("answers" if external else "emits", source, target))
        for e in events:
            if e not in placed:
                put(e, (bands.take(layer[e], layer[e]), layer[e]))

    # ------------------------------------------------------------ the whole board

    def build(self) -> Board:
        nodes = self.nodes
        cast_actors = [n for n in self.by_context[None] if nodes[n]["kind"] == "actor"]
        lanes: list[Lane] = []
        y = PAD
        cast: Lane | None = None
        if cast_actors:
            cast = Lane("Actors", "who issues the commands, drawn again beside them", y=y)
            y = place_lane(cast, self.cast_lane(cast_actors)) + LANE_GAP
        for context in self.lane_order():
            lane = Lane(context.name, context.description or "", y=y)
            y = place_lane(lane, self.context_lane(context.name)) + LANE_GAP
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
            cast=cast,
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
