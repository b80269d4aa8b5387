"""Policies ("whenever EVENT then COMMAND") and ports to external systems.

A policy either overrides `react`, or names its `events` and gives `commands` (and
`applies`, its condition): `react` then checks the event's class and the condition.
A fake port answers a command with the method marked `@on_command` for its class.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from abc import ABC
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from stormgen.runtime import codec
from stormgen.runtime.clock import SYSTEM_CLOCK, Clock
from stormgen.runtime.dispatch import handlers
from stormgen.runtime.errors import StormgenRuntimeError
from stormgen.runtime.lookups import UNBOUND, Lookups
from stormgen.runtime.messages import Command, Envelope, Event, field_names, info

#: Namespace of the deterministic ids of the commands policies issue.
POLICY_NAMESPACE = uuid.UUID("6f1d3c1e-5a0b-4d7c-9a51-3e6a2b8f0c47")


class Policy(ABC):
    """The definition of one policy; subclass it once per policy."""

    #: `Context.Policy`; also the name of its durable checkpoint
    name: ClassVar[str]
    #: the event types it reacts to
    events: ClassVar[tuple[type[Event], ...]] = ()
    #: the views it reads (a model's `View[key]`): bound by the application
    lookups: Lookups = UNBOUND
    #: what the model's `now()` and `today()` read (the application binds its clock)
    clock: Clock = SYSTEM_CLOCK

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
def command_id(policy: str, event_id: str, place: int | str) -> uuid.UUID:
    """The deterministic id of the command a policy issues for an event at `place`.

    `place` is the command's index in the list `commands` returned, or the place an
    `Issued` list gives it (its `then` line, and an element's index for a fan-out).
    It is the command's idempotency key, so a redelivered event never issues twice.
    Anyone who reads the event can compute it: it is kept in the service's own
    namespace of keys, which no API client can write (`stormgen.runtime.idempotency`).
    """
    return uuid.uuid5(POLICY_NAMESPACE, f"{policy}/{event_id}/{place}")


class Issued(list[Command]):
    """The commands a generated policy issues for an event, each with its place.

    A place is the `then` line's index (`"1"`), and for a fan-out the element's index
    in its list too (`"0.3"`): the command's id derives from it (`command_id`), so a
    line whose condition is false, or a fan-out over a longer list, moves no other
    line's ids. A plain list's commands are placed by their index in it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.places: list[str] = []

    def add(self, line: int, command: Command, element: int | None = None) -> None:
        """Issue `command` for `then` line `line` (and the fan-out's `element`)."""
        self.append(command)
        self.places.append(str(line) if element is None else f"{line}.{element}")


def places(commands: Sequence[Command]) -> list[str]:
    """Where each command stands: an `Issued` list's places, else its index."""
    found = getattr(commands, "places", None)
    if isinstance(found, list) and len(found) == len(commands):
        return found
    return [str(index) for index in range(len(commands))]


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
    event (or the one `answer` names: `steer_fakes`), its fields copied by name from the
    command (defaults for the rest)."""

    def __init__(self, events: Sequence[type[Event]]) -> None:
        if not events:
            raise ValueError("a fake port needs at least one event class to answer with")
        #: the events the system declares, in model order
        self.events = tuple(events)
        #: the event it answers with
        self.answer = events[0]
        self.sent: list[Command] = []

    def send(self, command: Command, command_id: uuid.UUID) -> Sequence[Event]:
        """Record the command and answer it: with the event the method marked
        `@on_command` for its class returns (a generated fake answers with `answer`),
        else with `answer`, its fields copied by name from the command."""
        self.sent.append(command)
        found = handlers(type(self)).find("command", type(command))
        if found is not None:
            return [getattr(self, found.name)(command)]
        data = codec.to_data(command)
        wires = (codec.wire_name(self.answer, name) for name in field_names(self.answer))
        fields = {wire: data[wire] for wire in wires if wire in data}
        return [codec.from_data(self.answer, fields)]


#: The environment variable `fake_choices` reads when no choice is given: `SYSTEM=EVENT`
#: items separated by commas or spaces.
FAKES_ENV = "STORMGEN_FAKES"


class FakeChoiceError(StormgenRuntimeError, ValueError):
    """A fake adapter's answer that names no system with a fake, or no event of it."""


def fake_choices(items: Iterable[str] | None = None) -> dict[str, str]:
    """`SYSTEM=EVENT` items (`--fake`, repeatable) as a mapping; without any, the items
    of `$STORMGEN_FAKES` (comma or space separated). The last choice of a system wins."""
    chosen = list(items or ())
    if not chosen:
        chosen = os.environ.get(FAKES_ENV, "").replace(",", " ").split()
    choices: dict[str, str] = {}
    for item in chosen:
        system, sep, event = (part.strip() for part in item.partition("="))
        if not (sep and system and event):
            raise FakeChoiceError(f"a fake's answer is written SYSTEM=EVENT, not {item!r}")
        choices[system] = event
    return choices


def steer_fakes(ports: Mapping[str, Port], choices: Mapping[str, str]) -> dict[str, str]:
    """Make the fake adapter of each chosen system answer with the chosen event.

    A system is named `Context.System` or just `System`; an event by its name
    (`CardDeclined`) or its full name. Raises `FakeChoiceError` (one sentence) for a
    system that has no fake here or an event it does not declare. Returns every fake's
    answer afterwards: `{"Context.System": "EventName"}`.
    """
    fakes = {name: port for name, port in ports.items() if isinstance(port, FakePort)}
    for system, event in choices.items():
        name = _fake_system(fakes, system)
        fakes[name].answer = _declared_event(fakes[name], name, event)
    return {name: _short(info(fake.answer).name) for name, fake in sorted(fakes.items())}


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _fake_system(fakes: Mapping[str, FakePort], system: str) -> str:
    matches = [name for name in fakes if system in (name, _short(name))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise FakeChoiceError(
            f"several systems are named {system!r} ({', '.join(matches)}): write Context.System"
        )
    known = ", ".join(sorted(fakes)) or "none"
    raise FakeChoiceError(f"no external system {system!r} has a fake adapter here (fakes: {known})")


def _declared_event(fake: FakePort, system: str, event: str) -> type[Event]:
    for cls in fake.events:
        if event in (info(cls).name, _short(info(cls).name)):
            return cls
    declared = ", ".join(_short(info(cls).name) for cls in fake.events)
    raise FakeChoiceError(f"{system} declares no event {event!r} (it declares {declared})")


def copy_fields(target: type[Any], source: Any, **assignments: Any) -> Any:
    """Build `target` from explicit assignments, then same-named fields of `source`.

    The default mapping of a policy's `then` line (docs/runtime.md, "Policies and ports").
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(target):
        if f.name in assignments:
            values[f.name] = assignments[f.name]
        elif hasattr(source, f.name):
            values[f.name] = getattr(source, f.name)
    return target(**values)
