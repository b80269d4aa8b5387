"""Name resolution (docs/language.md): which element a name written in a context means.

A :class:`Scope` indexes a whole :class:`~stormgen.model.nodes.Model` once, in
dictionaries, so that every lookup afterwards is O(1) in the size of the model.

Rules:

- A plain name ``Y`` is the element ``Y`` of the current context (aggregates, the
  commands and events inside them, external systems and their messages, policies,
  views, values, enums, actors: one name space per context, so an external system's
  message may also be named without its system), else the top-level
  actor, value or enum ``Y``. A context's own element shadows a top-level one.
- A dotted name ``X.Y`` is the element ``Y`` of the current context's external system
  ``X`` if there is one, else the element ``Y`` of context ``X``.
- ``X.Y.Z`` is the element ``Z`` of the external system ``Y`` of context ``X``.
- Where a name has several declarations (an E101), the first one wins.
- ``kinds`` filters: the first declaration in lookup order whose kind is wanted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stormgen.model.nodes import (
    Actor,
    Aggregate,
    Command,
    Context,
    Enum,
    Event,
    External,
    Model,
    Policy,
    Process,
    Value,
    View,
)

Element = (
    Context
    | Aggregate
    | Command
    | Event
    | External
    | Policy
    | View
    | Process
    | Value
    | Enum
    | Actor
)

ALL_KINDS: frozenset[str] = frozenset(
    {"context", "aggregate", "command", "event", "external", "policy", "view", "process"}
    | {"value", "enum", "actor"}
)
TYPE_KINDS: frozenset[str] = frozenset({"value", "enum"})
EVENT_KINDS: frozenset[str] = frozenset({"event"})
COMMAND_KINDS: frozenset[str] = frozenset({"command"})
ACTOR_KINDS: frozenset[str] = frozenset({"actor"})


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a name means: the element, its kind and where it belongs."""

    kind: str  # one of ALL_KINDS
    element: object  # the nodes.* dataclass
    context: Context | None  # owning context (None for top-level actor/value/enum)
    owner: Aggregate | External | None = None  # for commands and events

    @property
    def name(self) -> str:
        return str(getattr(self.element, "name", ""))

    @property
    def qualified(self) -> str:
        """The element's name qualified by its context and owner external, if any."""
        parts = []
        if self.context is not None and self.kind != "context":
            parts.append(self.context.name)
        if isinstance(self.owner, External):
            parts.append(self.owner.name)
        parts.append(self.name)
        return ".".join(parts)


def context_members(context: Context) -> Iterator[Resolved]:
    """Every named element of one context, in declaration-kind order, with its owner."""
    for actor in context.actors:
        yield Resolved("actor", actor, context)
    for value in context.values:
        yield Resolved("value", value, context)
    for enum in context.enums:
        yield Resolved("enum", enum, context)
    for aggregate in context.aggregates:
        yield Resolved("aggregate", aggregate, context)
        for command in aggregate.commands:
            yield Resolved("command", command, context, aggregate)
        for event in aggregate.events:
            yield Resolved("event", event, context, aggregate)
    for external in context.externals:
        yield Resolved("external", external, context)
        for command in external.commands:
            yield Resolved("command", command, context, external)
        for event in external.events:
            yield Resolved("event", event, context, external)
    for policy in context.policies:
        yield Resolved("policy", policy, context)
    for view in context.views:
        yield Resolved("view", view, context)
    for process in context.processes:
        yield Resolved("process", process, context)


def top_level_members(model: Model) -> Iterator[Resolved]:
    """The model's top-level actors, values and enums (shared by every context)."""
    for actor in model.actors:
        yield Resolved("actor", actor, None)
    for value in model.values:
        yield Resolved("value", value, None)
    for enum in model.enums:
        yield Resolved("enum", enum, None)


def _first(found: list[Resolved] | None, kinds: frozenset[str]) -> Resolved | None:
    if found:
        for r in found:
            if r.kind in kinds:
                return r
    return None


class Scope:
    """Dictionary indexes over a model, built once, answering name lookups in O(1)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        # context name -> declarations in that context (first declaration first)
        self.contexts: dict[str, list[Context]] = {}
        self._members: dict[str, dict[str, list[Resolved]]] = {}
        # (context name, external name) -> the external's own messages by name
        self._external_members: dict[tuple[str, str], dict[str, list[Resolved]]] = {}
        self._top: dict[str, list[Resolved]] = {}
        # id(element) -> Resolved; ids are stable because the scope keeps the model alive
        self._by_id: dict[int, Resolved] = {}
        # (context name, event name) of every published event, for "did you mean"
        self._published: list[tuple[str, str]] = []

        for r in top_level_members(model):
            self._top.setdefault(r.name, []).append(r)
            self._by_id[id(r.element)] = r
        for context in model.contexts:
            self.contexts.setdefault(context.name, []).append(context)
            self._by_id[id(context)] = Resolved("context", context, context)
            # Several declarations of one context (E101) share one name space.
            members = self._members.setdefault(context.name, {})
            for r in context_members(context):
                members.setdefault(r.name, []).append(r)
                self._by_id[id(r.element)] = r
                if isinstance(r.element, Event) and r.element.published:
                    self._published.append((context.name, r.name))
                if isinstance(r.owner, External):
                    ext = self._external_members.setdefault((context.name, r.owner.name), {})
                    ext.setdefault(r.name, []).append(r)

    # ------------------------------------------------------------ lookups

    def context(self, name: str) -> Context | None:
        """The (first) context called ``name``."""
        found = self.contexts.get(name)
        return found[0] if found else None

    def members(self, context: Context) -> dict[str, list[Resolved]]:
        """The name space of one context: name -> its declarations, first first."""
        return self._members.get(context.name, {})

    def top_level(self) -> dict[str, list[Resolved]]:
        """The top-level name space: actors, values and enums by name."""
        return self._top

    def resolve(self, context: Context | None, name: str, kinds: frozenset[str]) -> Resolved | None:
        """The element ``name`` means in ``context`` (None: at top level), if of ``kinds``."""
        parts = name.split(".")
        if len(parts) == 1:
            if context is not None:
                found = _first(self._members.get(context.name, {}).get(name), kinds)
                if found is not None:
                    return found
            found = _first(self._top.get(name), kinds)
            if found is None and "context" in kinds:
                ctx = self.context(name)
                if ctx is not None:
                    return Resolved("context", ctx, ctx)
            return found
        if len(parts) == 2:
            x, y = parts
            if context is not None:
                ext = self._external_members.get((context.name, x))
                if ext is not None:
                    return _first(ext.get(y), kinds)
            if x in self.contexts:
                return _first(self._members.get(x, {}).get(y), kinds)
            return None
        if len(parts) == 3:
            x, y, z = parts
            return _first(self._external_members.get((x, y), {}).get(z), kinds)
        return None

    def resolve_type(self, context: Context | None, type_name: str) -> Resolved | None:
        """The value or enum a (possibly dotted) type name means in ``context``."""
        return self.resolve(context, type_name, TYPE_KINDS)

    def candidates(self, context: Context | None, kinds: frozenset[str]) -> list[str]:
        """Names visible from ``context`` of the given kinds, as they would be written.

        Used for "did you mean": the context's own elements and the top-level ones by
        their plain names, the context's external systems' messages as ``X.Y``, and other
        contexts' published events as ``Context.Event``.
        """
        names: dict[str, None] = {}  # ordered set
        if context is not None:
            for name, found in self._members.get(context.name, {}).items():
                r = _first(found, kinds)
                # External messages are suggested in their canonical form ``X.Y`` only.
                if r is not None and not isinstance(r.owner, External):
                    names[name] = None
            for external in context.externals:
                for name, found in self._external_members.get(
                    (context.name, external.name), {}
                ).items():
                    if _first(found, kinds) is not None:
                        names[f"{external.name}.{name}"] = None
        for name, found in self._top.items():
            if _first(found, kinds) is not None:
                names[name] = None
        if "event" in kinds:
            for context_name, event_name in self._published:
                if context is None or context_name != context.name:
                    names[f"{context_name}.{event_name}"] = None
        if "context" in kinds:
            for name in self.contexts:
                names[name] = None
        return list(names)

    def lookup(self, element: object) -> Resolved | None:
        """The :class:`Resolved` record of an element of this model, if it is one."""
        return self._by_id.get(id(element))

    def context_of(self, element: object) -> Context | None:
        """The context an element is declared in (None for top-level ones)."""
        r = self._by_id.get(id(element))
        return r.context if r is not None else None

    def owner_of(self, element: object) -> Aggregate | External | None:
        """The aggregate or external system owning a command or event."""
        r = self._by_id.get(id(element))
        return r.owner if r is not None else None
