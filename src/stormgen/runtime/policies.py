"""Policies ("whenever EVENT then COMMAND") and ports to external systems.

A policy either overrides `react`, or names its `events` and gives `commands` (and
`applies`, its condition): `react` then checks the event's class and the condition.
A fake port answers a command with the method marked `@on_command` for its class.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from abc import ABC
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from stormgen.runtime import codec
from stormgen.runtime.dispatch import handlers
from stormgen.runtime.messages import Command, Envelope, Event, field_names

#: Namespace of the deterministic ids of the commands policies issue.
POLICY_NAMESPACE = uuid.UUID("6f1d3c1e-5a0b-4d7c-9a51-3e6a2b8f0c47")


class Policy(ABC):
    """The definition of one policy; subclass it once per policy."""

    #: `Context.Policy`; also the name of its durable checkpoint
    name: ClassVar[str]
    #: the event types it reacts to
    events: ClassVar[tuple[type[Event], ...]] = ()

    def react(self, event: Event, envelope: Envelope) -> Sequence[Command]:
        """The commands to issue for `event` (empty when its condition is false).

        Unless overridden: none for an event not in `events` or when `applies` is
        false, else `commands`.
        """
        if not isinstance(event, self.events) or not self.applies(event, envelope):
            return []
        return self.commands(event, envelope)

    def applies(self, event: Any, envelope: Envelope) -> bool:
        """Whether the policy reacts to `event`, one of its `events` (its `if`)."""
        return True

    def commands(self, event: Any, envelope: Envelope) -> Sequence[Command]:
        """The commands to issue for `event`, one of its `events`, when it applies."""
        raise TypeError(f"{type(self).__qualname__} must override react() or commands()")


@functools.lru_cache(maxsize=4096)
def command_id(policy: str, event_id: str, index: int) -> uuid.UUID:
    """The deterministic id of the `index`-th command a policy issues for an event.

    It is the command's idempotency key, so a redelivered event never issues twice.
    """
    return uuid.uuid5(POLICY_NAMESPACE, f"{policy}/{event_id}/{index}")


class Port(Protocol):
    """An external system, as the service talks to it: commands out, events back."""

    def send(self, command: Command, command_id: uuid.UUID) -> Sequence[Event]:
        """Send a command; return the events the system answered at once (maybe none).

        `command_id` is stable across redeliveries: pass it on to the system to
        deduplicate there. Raising makes a failure event and a retry.
        """
        ...


class FakePort:
    """A development adapter: answers every command with the system's first declared
    event, its fields copied by name from the command (defaults for the rest)."""

    def __init__(self, events: Sequence[type[Event]]) -> None:
        if not events:
            raise ValueError("a fake port needs at least one event class to answer with")
        self.answer = events[0]
        self.sent: list[Command] = []

    def send(self, command: Command, command_id: uuid.UUID) -> Sequence[Event]:
        """Record the command and answer it: with the event the method marked
        `@on_command` for its class returns, else with the first declared event."""
        self.sent.append(command)
        found = handlers(type(self)).find("command", type(command))
        if found is not None:
            return [getattr(self, found.name)(command)]
        data = codec.to_data(command)
        wires = (codec.wire_name(self.answer, name) for name in field_names(self.answer))
        fields = {wire: data[wire] for wire in wires if wire in data}
        return [codec.from_data(self.answer, fields)]


def copy_fields(target: type[Any], source: Any, **assignments: Any) -> Any:
    """Build `target` from explicit assignments, then same-named fields of `source`.

    The default mapping of a policy's `then` line (language.md §8).
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(target):
        if f.name in assignments:
            values[f.name] = assignments[f.name]
        elif hasattr(source, f.name):
            values[f.name] = getattr(source, f.name)
    return target(**values)
