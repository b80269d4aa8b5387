"""A service's definitions, by name: aggregates, views, policies, processes, external
systems.

`Definitions` checks the names are unique (they are checkpoint and table names too),
finds the aggregate that handles a command, and registers every message class the
definitions use, with their upcasters, for decoding (`upcasting.Registry`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from stormgen.runtime.aggregate import Aggregate
from stormgen.runtime.messages import Command, Event, Message, info
from stormgen.runtime.policies import FakePort, Policy, Port
from stormgen.runtime.processes import Process, check_state_names
from stormgen.runtime.rejections import UnknownCommand
from stormgen.runtime.upcasting import Registry
from stormgen.runtime.views import View

AggregateRef = Aggregate[Any] | type[Aggregate[Any]] | str
ViewRef = View[Any] | type[View[Any]] | str
T = TypeVar("T")


def _add_once(table: dict[str, Any], name: str, item: Any, kind: str) -> None:
    # names are checkpoint and table names too: a silent overwrite would mix two up
    if name in table:
        raise ValueError(f"two {kind} definitions are named {name}")
    table[name] = item


def _named(table: dict[str, T], ref: Any, kind: str, missing: type[Exception]) -> T:
    """The definition `ref` names (or is), by its name; `missing` when there is none."""
    name = ref if isinstance(ref, str) else cast(str, ref.name)
    try:
        return table[name]
    except KeyError:
        raise missing(f"no {kind} {name!r} in this service") from None


class Definitions:
    """The definitions of one service.

    `ports` maps external system names (`Context.System`) to adapters; a system whose
    commands some policy issues and that has no adapter gets a `FakePort` answering
    with `system_events[name][0]`.
    """

    def __init__(
        self,
        aggregates: Iterable[Aggregate[Any]],
        views: Iterable[View[Any]],
        policies: Iterable[Policy],
        ports: Mapping[str, Port] | None,
        system_events: Mapping[str, Sequence[type[Event]]],
        messages: Iterable[type[Message]],
        processes: Iterable[Process[Any]] = (),
    ) -> None:
        self.aggregates: dict[str, Aggregate[Any]] = {}
        self.views: dict[str, View[Any]] = {}
        self.policies: dict[str, Policy] = {}
        self.system_events: dict[str, tuple[type[Event], ...]] = {
            name: tuple(classes) for name, classes in system_events.items()
        }
        self.registry = Registry()
        self._command_owner: dict[type[Command], Aggregate[Any]] = {}
        for agg in aggregates:
            _add_once(self.aggregates, agg.name, agg, "aggregate")
            for cmd in agg.commands:
                self.registry.add(cmd)
                if cmd in self._command_owner:
                    raise ValueError(f"two aggregates handle the command {info(cmd).name}")
                self._command_owner[cmd] = agg
            for evt in agg.events:
                self.registry.add(evt)
        for classes in self.system_events.values():
            for evt in classes:
                self.registry.add(evt)
        for view in views:
            _add_once(self.views, view.name, view, "view")
            for evt in view.events:
                self.registry.add(evt)
        for policy in policies:
            _add_once(self.policies, policy.name, policy, "policy")
            if policy.name in self.views:
                raise ValueError(f"a view and a policy are both named {policy.name}")
            for evt in policy.events:
                self.registry.add(evt)
        self.processes: dict[str, Process[Any]] = {}
        for process in processes:
            _add_once(self.processes, process.name, process, "process")
            check_state_names(process)
            if process.name in self.views or process.name in self.policies:
                raise ValueError(f"a process and a view or policy are both named {process.name}")
            for evt in process.events:
                self.registry.add(evt)
        for msg in messages:
            self.registry.add(msg)
        self.ports: dict[str, Port] = dict(ports or {})
        for system, classes in self.system_events.items():
            if system not in self.ports and classes:
                self.ports[system] = FakePort(classes)

    def aggregate(self, ref: AggregateRef) -> Aggregate[Any]:
        """The registered aggregate named (or given) by `ref` (else `UnknownCommand`)."""
        return _named(self.aggregates, ref, "aggregate", UnknownCommand)

    def view(self, ref: ViewRef) -> View[Any]:
        """The registered view named (or given) by `ref` (else `KeyError`)."""
        return _named(self.views, ref, "view", KeyError)

    def process(self, ref: Process[Any] | type[Process[Any]] | str) -> Process[Any]:
        """The registered process named (or given) by `ref` (else `KeyError`)."""
        return _named(self.processes, ref, "process", KeyError)

    def aggregate_for(self, command: type[Command] | Command) -> Aggregate[Any]:
        """The aggregate that handles a command class."""
        cls = command if isinstance(command, type) else type(command)
        agg = self._command_owner.get(cls)
        if agg is None:
            meta = info(cls)
            if meta.aggregate is not None and meta.aggregate in self.aggregates:
                return self.aggregates[meta.aggregate]
            raise UnknownCommand(f"no aggregate of this service handles {meta.name}")
        return agg
