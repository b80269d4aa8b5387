"""What every rule shares: the model, its :class:`Scope`, and each reference resolved once.

Resolving a reference can go wrong in several ways (unknown name, wrong kind, another
context's private element, an unpublished event...). Each reference is classified here,
once, into at most one finding, so that one mistake gives one finding; the rules then
report the findings of their own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.model.hints import closest, did_you_mean
from stormgen.model.nodes import (
    PRIMITIVES,
    Aggregate,
    Command,
    Context,
    Emit,
    Event,
    External,
    Field,
    Model,
    Policy,
    Process,
    Ref,
    Then,
    TypeRef,
    View,
)
from stormgen.model.scope import (
    ACTOR_KINDS,
    ALL_KINDS,
    COMMAND_KINDS,
    EVENT_KINDS,
    TYPE_KINDS,
    Resolved,
    Scope,
)

KIND_WORDS = {
    "context": "a context",
    "aggregate": "an aggregate",
    "command": "a command",
    "event": "an event",
    "external": "an external system",
    "policy": "a policy",
    "view": "a view",
    "process": "a process",
    "value": "a value type",
    "enum": "an enum",
    "actor": "an actor",
}


def error(code: str, message: str, loc: Location | None, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Level.ERROR, message, loc, help)


def warning(code: str, message: str, loc: Location | None, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Level.WARNING, message, loc, help)


@dataclass(frozen=True, slots=True)
class FieldUse:
    """A field declaration with the context its type is resolved in."""

    field: Field
    context: Context | None
    owner: str  # e.g. "event `OrderPlaced`", for messages
    published: bool = False  # the field of a published event (E104)


class CheckContext:
    """The model, its scope and every reference resolved once; shared by all rules.

    It stays one class: the classification of references (most of its length) is what
    fills the findings, suggestions and targets the rules read, in one pass over the
    model, so that one mistake gives one finding.
    """

    def __init__(self, model: Model, scope: Scope | None = None) -> None:
        self.model = model
        self.scope = scope if scope is not None else Scope(model)
        # Findings of the reference classification, by code.
        self.reference_findings: dict[str, list[Diagnostic]] = {}
        # id() of the elements an unknown name was probably meant for: the warnings about
        # unused elements (W501-W503) leave them out, one mistake giving one finding.
        self.suggested: set[int] = set()
        # id(statement) -> what it refers to, for the statements that resolved cleanly
        # enough to be checked further (even if another rule reports them).
        self.emit_target: dict[int, Event] = {}
        self.then_target: dict[int, Resolved] = {}
        self.when_target: dict[int, Resolved] = {}
        self.on_target: dict[int, Resolved] = {}
        self.consumption = self._consumption_pairs()
        self.fields: list[FieldUse] = list(self._fields())
        self._classify()

    # ------------------------------------------------------------ iteration helpers

    def aggregates(self) -> Iterator[tuple[Context, Aggregate]]:
        for context in self.model.contexts:
            for aggregate in context.aggregates:
                yield context, aggregate

    def commands(self) -> Iterator[tuple[Context, Aggregate | External, Command]]:
        for context in self.model.contexts:
            for aggregate in context.aggregates:
                for command in aggregate.commands:
                    yield context, aggregate, command
            for external in context.externals:
                for command in external.commands:
                    yield context, external, command

    def events(self) -> Iterator[tuple[Context, Aggregate | External, Event]]:
        for context in self.model.contexts:
            for aggregate in context.aggregates:
                for event in aggregate.events:
                    yield context, aggregate, event
            for external in context.externals:
                for event in external.events:
                    yield context, external, event

    def policies(self) -> Iterator[tuple[Context, Policy]]:
        for context in self.model.contexts:
            for policy in context.policies:
                yield context, policy

    def views(self) -> Iterator[tuple[Context, View]]:
        for context in self.model.contexts:
            for view in context.views:
                yield context, view

    def processes(self) -> Iterator[tuple[Context, Process]]:
        for context in self.model.contexts:
            for process in context.processes:
                yield context, process

    def _fields(self) -> Iterator[FieldUse]:
        for value in self.model.values:
            for f in value.fields:
                yield FieldUse(f, None, f"value `{value.name}`")
        for context in self.model.contexts:
            for value in context.values:
                for f in value.fields:
                    yield FieldUse(f, context, f"value `{value.name}`")
            for aggregate in context.aggregates:
                if aggregate.id_declared:
                    yield FieldUse(aggregate.id_field, context, f"aggregate `{aggregate.name}`")
                for f in aggregate.state:
                    yield FieldUse(f, context, f"the state of `{aggregate.name}`")
                for command in aggregate.commands:
                    for f in command.fields:
                        yield FieldUse(f, context, f"command `{command.name}`")
                for event in aggregate.events:
                    for f in event.fields:
                        yield FieldUse(f, context, f"event `{event.name}`", event.published)
            for external in context.externals:
                for command in external.commands:
                    for f in command.fields:
                        yield FieldUse(f, context, f"command `{command.name}`")
                for event in external.events:
                    for f in event.fields:
                        yield FieldUse(f, context, f"event `{event.name}`")
            for view in context.views:
                yield FieldUse(view.key, context, f"view `{view.name}`")
                for f in view.fields:
                    yield FieldUse(f, context, f"view `{view.name}`")
            for process in context.processes:
                yield FieldUse(process.key, context, f"process `{process.name}`")
                for f in process.fields:
                    yield FieldUse(f, context, f"the state of `{process.name}`")

    # ------------------------------------------------------------ the context map

    def _consumption_pairs(self) -> set[tuple[str, str]]:
        """(upstream, downstream) context names: downstream may consume upstream's events."""
        pairs: set[tuple[str, str]] = set()
        for relation in self.model.relations:
            left, right = relation.left.name, relation.right.name
            pairs.add((left, right))
            if relation.kind == "<->":
                pairs.add((right, left))
        return pairs

    # ------------------------------------------------------------ classification

    def _add(self, d: Diagnostic) -> None:
        self.reference_findings.setdefault(d.code, []).append(d)

    def _suggest(self, context: Context | None, ref: Ref, kinds: frozenset[str]) -> str | None:
        """The "did you mean" help for ``ref``; remembers what it was probably meant for."""
        close = closest(ref.name, self.scope.candidates(context, kinds))
        for name in close[:1]:
            meant = self.scope.resolve(context, name, kinds)
            if meant is not None:
                self.suggested.add(id(meant.element))
        return did_you_mean(ref.name, close)

    def _unknown(self, context: Context | None, ref: Ref, kinds: frozenset[str], what: str) -> None:
        """E102 for a name that resolves to nothing, or to something of another kind."""
        other = self.scope.resolve(context, ref.name, ALL_KINDS)
        help = self._suggest(context, ref, kinds)
        if other is not None:
            message = f"`{ref.name}` is {KIND_WORDS[other.kind]}, not {what}"
        else:
            message = f"unknown {what.split(' ', 1)[1]} `{ref.name}`"
        self._add(error("E102", message, ref.loc, help))

    def _classify(self) -> None:
        for context, aggregate in self.aggregates():
            own_events = {e.name: e for e in reversed(aggregate.events)}
            for command in aggregate.commands:
                for emit in command.emits:
                    self._classify_emit(context, aggregate, own_events, emit)
                for actor in command.actors:
                    self._classify_actor(context, actor)
        for context, policy in self.policies():
            target = self._classify_consumed(context, policy.when)
            if target is not None:
                self.when_target[id(policy)] = target
            for then in policy.thens:
                self._classify_then(context, f"policy `{policy.name}`", then)
        for context, process in self.processes():
            for handler in process.handlers:
                if handler.event is not None:
                    target = self._classify_consumed(context, handler.event)
                    if target is not None:
                        self.on_target[id(handler)] = target
                for then in handler.thens:
                    self._classify_then(context, f"process `{process.name}`", then)
        for context, view in self.views():
            for on in view.handlers:
                target = self._classify_consumed(context, on.event)
                if target is not None:
                    self.on_target[id(on)] = target
        for use in self.fields:
            self._classify_type(use, use.field.type)
        for relation in self.model.relations:
            for ref in (relation.left, relation.right):
                if ref.name not in self.scope.contexts:
                    self._add(
                        error(
                            "E102",
                            f"unknown context `{ref.name}`",
                            ref.loc,
                            did_you_mean(ref.name, list(self.scope.contexts)),
                        )
                    )

    def _classify_emit(
        self, context: Context, aggregate: Aggregate, own: dict[str, Event], emit: Emit
    ) -> None:
        event = own.get(emit.event.name)
        if event is not None:
            self.emit_target[id(emit)] = event
            return
        other = self.scope.resolve(context, emit.event.name, ALL_KINDS)
        close = closest(emit.event.name, list(own))
        if close:
            self.suggested.add(id(own[close[0]]))
        help = did_you_mean(emit.event.name, close)
        if other is not None and other.kind == "event":
            owner = other.owner.name if other.owner is not None else "?"
            self._add(
                error(
                    "E102",
                    f"`{emit.event.name}` is an event of `{owner}`, not of aggregate "
                    f"`{aggregate.name}`: an aggregate emits only its own events",
                    emit.event.loc,
                    help or f"declare the event in aggregate `{aggregate.name}`",
                )
            )
        elif other is not None:
            self._add(
                error(
                    "E102",
                    f"`{emit.event.name}` is {KIND_WORDS[other.kind]}, not an event",
                    emit.event.loc,
                    help,
                )
            )
        else:
            self._add(
                error(
                    "E102",
                    f"unknown event `{emit.event.name}` in aggregate `{aggregate.name}`",
                    emit.event.loc,
                    help,
                )
            )

    def _classify_actor(self, context: Context, ref: Ref) -> None:
        r = self.scope.resolve(context, ref.name, ACTOR_KINDS)
        if r is None:
            other = self.scope.resolve(context, ref.name, ALL_KINDS)
            if other is None:
                self._unknown(context, ref, ACTOR_KINDS, "an actor")
            else:
                self._add(
                    error(
                        "E206",
                        f"`{ref.name}` in `by` is {KIND_WORDS[other.kind]}, not an actor",
                        ref.loc,
                        "only actors issue commands from the outside; declare one with "
                        "`actor NAME` or remove it from `by`",
                    )
                )
            return
        if r.context is not None and r.context.name != context.name:
            self._add(
                error(
                    "E103",
                    f"actor `{ref.name}` belongs to context `{r.context.name}`: another "
                    f"context may use only its published events",
                    ref.loc,
                    "declare the actor at top level to share it between contexts",
                )
            )

    def _classify_consumed(self, context: Context, ref: Ref) -> Resolved | None:
        """A `when` or `on` event: own context's, own external's, or published upstream."""
        r = self.scope.resolve(context, ref.name, EVENT_KINDS)
        if r is None:
            other = self.scope.resolve(context, ref.name, ALL_KINDS)
            if (
                other is not None
                and other.context is not None
                and other.context.name != context.name
            ):
                self._add(
                    error(
                        "E103",
                        f"`{ref.name}` is {KIND_WORDS[other.kind]} of context "
                        f"`{other.context.name}`: another context may use only its "
                        "published events",
                        ref.loc,
                        did_you_mean(ref.name, self.scope.candidates(context, EVENT_KINDS)),
                    )
                )
            else:
                self._unknown(context, ref, EVENT_KINDS, "an event")
            return None
        assert r.context is not None  # events always belong to a context
        if r.context.name == context.name:
            return r
        upstream = r.context.name
        event = r.element
        assert isinstance(event, Event)
        if not event.published:
            if isinstance(r.owner, External):
                help = (
                    f"an external system's events stay in its context; let a policy in "
                    f"`{upstream}` react to it and emit a published event"
                )
            else:
                help = f"mark it `published event {event.name}` in context `{upstream}`"
            self._add(
                error(
                    "E204",
                    f"`{ref.name}` is not published by context `{upstream}`",
                    ref.loc,
                    help,
                )
            )
            return r
        if (upstream, context.name) not in self.consumption:
            self._add(
                error(
                    "E203",
                    f"context `{context.name}` consumes `{ref.name}`, but no context-map "
                    f"relation lets it consume events of `{upstream}`",
                    ref.loc,
                    f"add `{upstream} -> {context.name}` to the `map`",
                )
            )
        return r

    def _classify_then(self, context: Context, issuer: str, then: Then) -> None:
        ref = then.command
        r = self.scope.resolve(context, ref.name, COMMAND_KINDS)
        if r is None:
            self._unknown(context, ref, COMMAND_KINDS, "a command")
            return
        assert r.context is not None
        if r.context.name != context.name:
            self._add(
                error(
                    "E202",
                    f"{issuer} issues `{ref.name}`, a command of context `{r.context.name}`",
                    ref.loc,
                    f"a {issuer.split()[0]} issues commands of its own context only: let "
                    f"`{r.context.name}` "
                    "react to a published event instead",
                )
            )
            return
        self.then_target[id(then)] = r

    def _classify_type(self, use: FieldUse, t: TypeRef) -> None:
        if t.element is not None:
            self._classify_type(use, t.element)
            return
        if t.name in PRIMITIVES:
            return
        context = use.context
        r = self.scope.resolve_type(context, t.name)
        if r is None:
            other = self.scope.resolve(context, t.name, ALL_KINDS)
            candidates = [*PRIMITIVES, *self.scope.candidates(context, TYPE_KINDS)]
            if other is not None and other.kind not in TYPE_KINDS:
                msg = f"`{t.name}` is {KIND_WORDS[other.kind]}, not a type"
            else:
                msg = f"unknown type `{t.name}`"
            self._add(error("E102", msg, t.loc, did_you_mean(t.name, candidates)))
            return
        if r.context is None:
            return
        if context is None or r.context.name != context.name:
            where = f"context `{context.name}`" if context is not None else "the top level"
            noun = "enum" if r.kind == "enum" else "value"
            self._add(
                error(
                    "E103",
                    f"{noun} `{t.name}` is private to context `{r.context.name}` "
                    f"and cannot be used in {where}",
                    t.loc,
                    "declare it at top level to share it between contexts",
                )
            )
            return
        if use.published:
            self._add(
                error(
                    "E104",
                    f"published {use.owner} uses `{t.name}`, a private "
                    f"{'enum' if r.kind == 'enum' else 'value'} of context `{r.context.name}`",
                    t.loc,
                    f"move `{t.name}` to the top level (the shared published language), or "
                    "do not publish the event",
                )
            )

    # ------------------------------------------------------------ shared facts

    @staticmethod
    def event_has_field(event: Event, owner: Aggregate | External, name: str) -> bool:
        """Whether ``event`` has a field ``name``, counting its aggregate's implicit id."""
        if isinstance(owner, Aggregate) and owner.id_field.name == name:
            return True
        return any(f.name == name for f in event.fields)


def is_optional_or_defaulted(f: Field) -> bool:
    """Whether a field has a value when nothing fills it: a default, or `none` for `T?`."""
    return f.default is not None or f.type.optional


__all__ = [
    "KIND_WORDS",
    "CheckContext",
    "FieldUse",
    "did_you_mean",
    "error",
    "is_optional_or_defaulted",
    "warning",
]
