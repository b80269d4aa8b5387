"""What a scenario's names mean: its messages resolved, and the model's reactions.

A scenario (docs/language.md, "Scenarios") stands in a context, where its names
resolve, or at top level, where they are qualified. The checks, ``stormgen test``, the
docs and the python target all read scenarios through these helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stormgen.model.nodes import (
    Aggregate,
    Command,
    Context,
    Event,
    External,
    Model,
    Policy,
    Process,
    ProcessOn,
    RowExpectation,
    Scenario,
    ScenarioMessage,
    Then,
    View,
)
from stormgen.model.scope import COMMAND_KINDS, EVENT_KINDS, Resolved, Scope
from stormgen.model.types import Type, message_fields

MESSAGE_KINDS: frozenset[str] = EVENT_KINDS | COMMAND_KINDS
VIEW_KINDS: frozenset[str] = frozenset({"view"})


def all_scenarios(model: Model) -> Iterator[tuple[Context | None, Scenario]]:
    """Every scenario with the context it stands in (None: top level), in model order."""
    for context in model.contexts:
        for scenario in context.scenarios:
            yield context, scenario
    for scenario in model.scenarios:
        yield None, scenario


@dataclass(frozen=True, slots=True)
class Message:
    """A scenario's event or command, resolved: the element, its context and owner."""

    node: ScenarioMessage
    resolved: Resolved

    @property
    def element(self) -> Event | Command:
        element = self.resolved.element
        assert isinstance(element, Event | Command)
        return element

    @property
    def is_event(self) -> bool:
        return isinstance(self.resolved.element, Event)


def resolve_message(scope: Scope, context: Context | None, node: ScenarioMessage) -> Message | None:
    """The event or command ``node`` names, or None (an unknown name)."""
    found = scope.resolve(context, node.message.name, MESSAGE_KINDS)
    if found is None or not isinstance(found.element, Event | Command):
        return None
    return Message(node, found)


def resolve_view(scope: Scope, context: Context | None, row: RowExpectation) -> View | None:
    """The view a ``then View[key]`` names, or None."""
    found = scope.resolve(context, row.view.name, VIEW_KINDS)
    return found.element if found is not None and isinstance(found.element, View) else None


def fields_of(message: Message, scope: Scope) -> dict[str, Type]:
    """The message's fields by name (its aggregate's id included)."""
    r = message.resolved
    return message_fields(message.element.fields, r.owner, r.context, scope)


def emitted_events(command: Command, scope: Scope) -> list[tuple[Event, bool]]:
    """The events ``command`` may emit, in order, each with whether it always does."""
    context = scope.context_of(command)
    out: list[tuple[Event, bool]] = []
    for emit in command.emits:
        found = scope.resolve(context, emit.event.name, EVENT_KINDS)
        if found is not None and isinstance(found.element, Event):
            out.append((found.element, emit.condition is None))
    return out


def reacting_policies(event: Event, scope: Scope) -> list[tuple[Context, Policy]]:
    """The policies of any context that react to ``event``, in model order."""
    out: list[tuple[Context, Policy]] = []
    for context in scope.model.contexts:
        for policy in context.policies:
            found = scope.resolve(context, policy.when.name, EVENT_KINDS)
            if found is not None and found.element is event:
                out.append((context, policy))
    return out


def reacting_processes(event: Event, scope: Scope) -> list[tuple[Context, Process, ProcessOn]]:
    """The processes of any context with a handler of ``event`` (the first, as the
    runtime dispatches), in model order."""
    out: list[tuple[Context, Process, ProcessOn]] = []
    for context in scope.model.contexts:
        for process in context.processes:
            for handler in process.handlers:
                if handler.event is None:
                    continue
                found = scope.resolve(context, handler.event.name, EVENT_KINDS)
                if found is not None and found.element is event:
                    out.append((context, process, handler))
                    break
    return out


def timer_commands(process: Process, context: Context, scope: Scope) -> list[Command]:
    """The commands the process's timer handlers issue."""
    return [
        c for h in process.handlers if h.timer is not None for c in _thens(h.thens, context, scope)
    ]


def issued_commands(policy: Policy | ProcessOn, context: Context, scope: Scope) -> list[Command]:
    """The commands a policy's (or a process handler's) ``then`` lines issue."""
    return _thens(policy.thens, context, scope)


def _thens(thens: tuple[Then, ...], context: Context, scope: Scope) -> list[Command]:
    out: list[Command] = []
    for then in thens:
        found = scope.resolve(context, then.command.name, COMMAND_KINDS)
        if found is not None and isinstance(found.element, Command):
            out.append(found.element)
    return out


def views_reading(event: Event, scope: Scope) -> list[View]:
    """The views of any context with an ``on`` line for ``event``."""
    out: list[View] = []
    for context in scope.model.contexts:
        for view in context.views:
            for on in view.handlers:
                found = scope.resolve(context, on.event.name, EVENT_KINDS)
                if found is not None and found.element is event:
                    out.append(view)
                    break
    return out


def owner_aggregate(message: Message) -> Aggregate | None:
    """The aggregate that owns the message (None for an external system's)."""
    owner = message.resolved.owner
    return owner if isinstance(owner, Aggregate) else None


def is_external(message: Message) -> bool:
    return isinstance(message.resolved.owner, External)
