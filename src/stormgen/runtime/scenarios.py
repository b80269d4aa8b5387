"""Run a model's scenarios against the compiled service, in memory (the generated tests).

A scenario (docs/language.md, "Scenarios") is one step of the service: `given` events
happened, `when` a command is handled or an event happens, `then` events were
recorded, the command was rejected, policies issued commands, or a view holds a row.
:class:`ScenarioRun` runs that step on the service's own definitions (the aggregates'
`decide` and `evolve`, the views' `key_of` and `update`, the policies' `react`, the
processes' handlers) without a store: the `given` events evolve the aggregates, views
and process instances as if recorded at :data:`STARTED_AT` (the commands the processes
issue for them are dropped); the commands issued for the `when` by policies and
processes are collected, not handled. The scenario's clock (`ScenarioClock`) starts at
:data:`STARTED_AT`; `passes(duration)` moves it on and fires the processes' timers
that fall due, soonest first, as the service's timer thread does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from stormgen.runtime.aggregate import Aggregate, decide, id_text
from stormgen.runtime.codec import to_data
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.lookups import Lookups
from stormgen.runtime.messages import Command, Envelope, Event, info
from stormgen.runtime.policies import Policy
from stormgen.runtime.processes import Instance, Process, Step, key_text
from stormgen.runtime.rejections import AlreadyExists, NotFound, Rejected
from stormgen.runtime.testing import RECORDED_AT
from stormgen.runtime.views import Delete, View

__all__ = [
    "SCENARIO_IDS",
    "STARTED_AT",
    "Outcome",
    "ScenarioClock",
    "ScenarioRun",
    "stable_id",
]

#: The namespace of `id("name")` for a uuid: `uuid5(SCENARIO_IDS, name)`.
SCENARIO_IDS = uuid.UUID("7eb5c91b-72b9-5d3d-acf4-ec854a69dacb")
#: When a scenario's events are recorded (its start time).
STARTED_AT: datetime = RECORDED_AT
#: How many timers one `passes` may fire: a timer that sets itself again at once
#: would fire for ever.
MAX_FIRED = 10_000


def stable_id(name: str, kind: type[Any] = uuid.UUID) -> Any:
    """`id("name")` of a scenario: `uuid5(SCENARIO_IDS, name)` for a uuid, else the name."""
    if kind is uuid.UUID:
        return uuid.uuid5(SCENARIO_IDS, name)
    return name


@dataclass
class Outcome:
    """What `when` did: the events recorded, or the guard's message, and the commands
    the policies issued for the events."""

    events: list[Event] = field(default_factory=list)
    rejected: str | None = None
    commands: list[Command] = field(default_factory=list)

    def issued(self, kind: type[Command], **fields: Any) -> bool:
        """Whether a command of class ``kind`` with these field values was issued."""
        return any(
            type(c) is kind and all(getattr(c, k) == v for k, v in fields.items())
            for c in self.commands
        )


class ScenarioClock:
    """A scenario's clock (a `stormgen.runtime.clock.Clock`): it stands at
    :data:`STARTED_AT` until `advance` moves it on; it never moves by itself."""

    def __init__(self, start: datetime = STARTED_AT) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by `by` (never back); return the new time."""
        if by < timedelta():
            raise ValueError("a scenario's clock only moves forward")
        self._now += by
        return self._now


class ScenarioRun:
    """One scenario's service in memory; takes the keywords of the generated
    `definitions()` (the aggregates, views, policies and processes; the others are not
    needed)."""

    def __init__(
        self,
        *,
        aggregates: Iterable[Aggregate[Any]] = (),
        views: Iterable[View[Any]] = (),
        policies: Iterable[Policy] = (),
        processes: Iterable[Process[Any]] = (),
        **_others: Any,
    ) -> None:
        self.aggregates = list(aggregates)
        self.views = list(views)
        self.policies = list(policies)
        self.processes = list(processes)
        self._states: dict[str, tuple[Any, int]] = {}  # stream -> (state, version)
        self._rows: dict[str, dict[Any, Any]] = {view.name: {} for view in self.views}
        # process instances by (process name, key as text), with their keys
        self._instances: dict[tuple[str, str], tuple[Process[Any], Any, Instance]] = {}
        self._position = 0
        self.clock = ScenarioClock()
        # `View[key]` in a guard, a policy or a process reads the rows this scenario's
        # events made
        lookups = Lookups(_ScenarioRows(self._rows), {view.name: view for view in self.views})
        lookups.bind([*self.aggregates, *self.policies, *self.processes])
        # the model's `now()` reads the scenario's clock: its start, until time passes
        definitions: list[Aggregate[Any] | Policy | View[Any] | Process[Any]] = [
            *self.aggregates,
            *self.policies,
            *self.views,
            *self.processes,
        ]
        for definition in definitions:
            definition.clock = self.clock

    def given(self, *events: Event) -> None:
        """Events that happened: they evolve the aggregates and the views."""
        for event in events:
            self._processes(self._record(event))  # their commands are not the `when`'s

    def when(self, message: Command | Event) -> Outcome:
        """Handle a command (or let an event happen) and say what came of it.

        Raises `NotFound` for a command to an instance no event created, and
        `AlreadyExists` for a `creates` command to one that exists, as the service does.
        """
        if isinstance(message, Event):
            return Outcome(commands=list(self._react(self._record(message))))
        aggregate = self._aggregate_of(message)
        ident = getattr(message, aggregate.id_field)
        stream = aggregate.stream(ident)
        state, version = self._states.get(stream, (aggregate.initial_state(), 0))
        if info(message).creates and version:
            raise AlreadyExists(f"{aggregate.name} {id_text(ident)} already exists")
        if not info(message).creates and not version:
            raise NotFound(f"{aggregate.name} {id_text(ident)} does not exist")
        try:
            events = decide(aggregate, state, message)
        except Rejected as exc:
            return Outcome(rejected=exc.message)
        issued: list[Command] = []
        for event in events:
            issued += self._react(self._record(event))
        return Outcome(events=list(events), commands=issued)

    @property
    def now(self) -> datetime:
        """The scenario's clock: its start, until time passes."""
        return self.clock.now()

    def passes(self, duration: timedelta) -> Outcome:
        """Time passes: the clock moves on by ``duration`` and the processes' timers
        that fall due fire, soonest first (ties by process, key and timer name, as the
        store claims them), each handler at its timer's due time; the outcome holds the
        commands they issue."""
        until = self.now + duration
        issued: list[Command] = []
        for _ in range(MAX_FIRED):
            due = [
                (when, process.name, text, name)
                for (_, text), (process, _, instance) in self._instances.items()
                for name, when in instance.timers.items()
                if when <= until
            ]
            if not due:
                break
            when, name_of_process, text, name = min(due)
            process, key, instance = self._instances[(name_of_process, text)]
            del instance.timers[name]
            step: Step[Any] = Step(key, instance.state, when)
            process.fire(step, name)
            issued += self._settle(instance, step)
        else:
            raise RuntimeError(f"more than {MAX_FIRED} timers fall due: a timer sets itself again")
        self.clock.advance(duration)
        return Outcome(commands=issued)

    def instance(self, process: type[Process[Any]] | str, key: Any) -> Instance | None:
        """A process instance (its class or its `Context.Process` name, and its key):
        its state, pending timers and whether it ended; None if none started."""
        name = process if isinstance(process, str) else process.name
        found = self._instances.get((name, key_text(key)))
        return None if found is None else found[2]

    def row(self, view: type[View[Any]] | str, key: Any) -> Any:
        """The row of `view` (its class or its `Context.View` name) at `key`, or None."""
        name = view if isinstance(view, str) else view.name
        return self._rows[name].get(key)

    # -- the step ------------------------------------------------------------------
    def _aggregate_of(self, command: Command) -> Aggregate[Any]:
        for aggregate in self.aggregates:
            if type(command) in aggregate.commands:
                return aggregate
        raise TypeError(f"no aggregate handles {type(command).__name__}")

    def _record(self, event: Event) -> Envelope:
        self._position += 1
        meta = info(event)
        owner = next((a for a in self.aggregates if type(event) in a.events), None)
        stream, stream_id = meta.system or meta.name, None
        if owner is not None:
            ident = getattr(event, owner.id_field)
            stream, stream_id = owner.stream(ident), id_text(ident)
        state, version = (None, 0)
        if owner is not None:
            state, version = self._states.get(stream, (owner.initial_state(), 0))
        recorded = RecordedEvent(
            id=str(uuid.UUID(int=self._position)),
            type=meta.name,
            version=meta.version,
            stream=stream,
            stream_id=stream_id,
            stream_version=version + 1,
            position=self._position,
            recorded_at=STARTED_AT,
            data={},
            metadata={},
        )
        envelope = Envelope(recorded, event, to_data(event), meta.version)
        if owner is not None:
            self._states[stream] = (owner.evolve(state, event, recorded), version + 1)
        for view in self.views:
            if isinstance(event, view.events):
                self._update(view, event, envelope)
        return envelope

    def _update(self, view: View[Any], event: Event, envelope: Envelope) -> None:
        key = view.key_of(event, envelope)
        if key is None:
            return
        rows = self._rows[view.name]
        row = rows.get(key)
        new = view.update(view.new_row(key) if row is None else row, event, envelope)
        if isinstance(new, Delete):
            rows.pop(key, None)
        else:
            rows[key] = new

    def _react(self, envelope: Envelope) -> list[Command]:
        assert envelope.event is not None
        issued: list[Command] = []
        for policy in self.policies:
            issued += policy.react(envelope.event, envelope)
        return issued + self._processes(envelope)

    def _processes(self, envelope: Envelope) -> list[Command]:
        """Run the processes' handlers of an event; the commands they issue."""
        event = envelope.event
        assert event is not None
        issued: list[Command] = []
        for process in self.processes:
            if not isinstance(event, process.events):
                continue
            key = process.key_of(event, envelope)
            if key is None:
                continue
            text = key_text(key)
            found = self._instances.get((process.name, text))
            if found is None:
                if not process.starts_with(event):
                    continue  # no instance, and this event does not start one
                instance = Instance(text, process.initial(event, key))
            elif found[2].ended:
                continue
            else:
                instance = found[2]
            step: Step[Any] = Step(key, instance.state, envelope.recorded_at)
            process.handle(step, event, envelope)
            if step.skipped:
                continue  # its `if` is false: nothing decided (a starting event starts none)
            self._instances[(process.name, text)] = (process, key, instance)
            issued += self._settle(instance, step)
        return issued

    @staticmethod
    def _settle(instance: Instance, step: Step[Any]) -> list[Command]:
        """Keep what a handler decided: the state, the timers, the end."""
        instance.state = step.state
        if step.ended:
            instance.ended = True
            instance.timers.clear()
        else:
            for name, due in step.timers.items():
                if due is None:
                    instance.timers.pop(name, None)
                else:
                    instance.timers[name] = due
        return step.commands


@dataclass(frozen=True, slots=True)
class _ScenarioRows:
    """The rows of a scenario's views, read as `Lookups` reads a store's (as JSON)."""

    rows: dict[str, dict[Any, Any]]

    def row(self, view: Any, key: Any) -> dict[str, Any] | None:
        found = self.rows[view.name].get(key)
        return None if found is None else to_data(found)
