"""What a board note says: its subtitle, its hover text and its detail panel."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from stormgen.model.nodes import (
    Actor,
    Aggregate,
    Command,
    Event,
    External,
    Hotspot,
    Policy,
    Process,
    View,
)
from stormgen.render.text import assignment, expression, field_line, then_tail, timer_due


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


def note_details(graph: Any, nid: str) -> dict[str, Any]:
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
        sections.append(("consumed by processes", linked("consumes", incoming=False)))
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
            thens.append(line + then_tail(t))
        sections.append(("then", thens))
    elif isinstance(element, Process):
        sections.append(("key", [field_line(element.key)]))
        sections.append(("state", _fields(element.fields)))
        handlers = []
        for h in element.handlers:
            line = f"on timer {h.timer}" if h.timer else f"on {h.event.name if h.event else ''}"
            if h.by is not None:
                line += f" by {expression(h.by)}"
            if h.condition is not None:
                line += f" if {expression(h.condition)}"
            if h.starts:
                line += " starts"
            handlers.append(line)
        sections.append(("handlers", handlers))
        sections.append(("consumes", linked("consumes", incoming=True)))
        sections.append(("issues", linked("issues", incoming=False)))
        timers = [f"{n}: {d}" for n, d in _timers(element)]
        sections.append(("timers", timers))
    elif isinstance(element, View):
        sections.append(("key", [field_line(element.key)]))
        sections.append(("columns", _fields(element.fields)))
        handlers = []
        for on in element.handlers:
            line = f"on {on.event.name}"
            if on.by is not None:
                line += f" by {expression(on.by)}"
            if on.condition is not None:
                line += f" if {expression(on.condition)}"
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


def _timers(process: Process) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for h in process.handlers:
        for t in h.timers:
            found.setdefault(t.name, timer_due(t))
    return list(found.items())


def hover_text(detail: dict[str, Any]) -> str:
    """The note's tooltip: name, description and its fields, a line each."""
    lines = [f"{detail['kind']} {detail['name']}"]
    if detail["description"]:
        lines.append(detail["description"])
    for title, items in detail["sections"]:
        if title in ("fields", "state", "columns", "key", "when", "then", "timers"):
            lines.extend(f"  {item}" for item in items[:12])
            if len(items) > 12:
                lines.append(f"  … {len(items) - 12} more")
    return "\n".join(lines)


def subtitle(kind: str, element: Any) -> str:
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
    if isinstance(element, Process):
        return (
            "state: " + ", ".join(f.name for f in element.fields) if element.fields else "process"
        )
    if isinstance(element, Aggregate):
        return f"{len(element.commands)} commands · {len(element.events)} events"
    if isinstance(element, External):
        return "external system"
    return kind


# A hump of a PascalCase name: before an upper-case letter that follows a lower-case
# letter or a digit (`Handling|Event`), before the last capital of an acronym that
# starts a word (`HTTP|Server`), after an underscore.
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=_)(?=.)")


def name_parts(name: str) -> list[str]:
    """A name cut at its word boundaries: a note may break its line only between parts."""
    return [part for part in _HUMP.split(name) if part]


def wrapped_lines(words: list[str], per_line: int, joiner: str = "") -> int:
    """How many lines ``words`` take when wrapped greedily at ``per_line`` characters.

    A word longer than a line takes as many lines as it needs (the page lets it break
    inside only then).
    """
    lines, used = 1, 0
    for word in words:
        extra = len(word) + (len(joiner) if used else 0)
        if used and used + extra > per_line:
            lines, used = lines + 1, len(word)
        else:
            used += extra
        while used > per_line:
            lines, used = lines + 1, used - per_line
    return lines
