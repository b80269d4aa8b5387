"""A policy's reactions: planning them, asking external systems, issuing commands.

A reaction's commands to the service's own aggregates are handled with an idempotency
key derived from the event and the command's place in the reaction (`command_id`: its
index, or the place an `Issued` list gives it), in
the service's own namespace; a command to an external system is sent to its port, then
recorded (a `$CommandSent` in the system's stream, its id the command's) with the
answer, if any, under that key, so a system is asked once per reaction even when the
event is delivered again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from stormgen.runtime.commands import CommandHandler, Sent, command_metadata, trace
from stormgen.runtime.envelope import RecordedEvent
from stormgen.runtime.messages import Command, Envelope, Event, info
from stormgen.runtime.policies import Policy, Port, command_id, places
from stormgen.runtime.reading import EventReader

#: A batch's reactions: each event's envelope with the commands it issues.
Plans = list[tuple[Envelope, list[Command]]]


@dataclass(eq=False)
class Reactions:
    """The reactions of an application's policies: its commands, events and ports."""

    commands: CommandHandler
    reader: EventReader
    ports: Mapping[str, Port]

    def react(
        self,
        policy: Policy,
        env: Envelope,
        commands: list[Command] | None = None,
        answered: dict[uuid.UUID, Sequence[Event]] | None = None,
    ) -> None:
        """Issue a reaction's commands; `answered` holds external systems' answers got
        beforehand (a batch), else each system is asked here."""
        assert env.event is not None
        correlation = env.metadata.get("correlation_id") or env.id
        if commands is None:
            commands = _listed(policy.react(env.event, env))
        for place, command in zip(places(commands), commands, strict=True):
            cid = command_id(policy.name, env.id, place)
            system = info(command).system
            key = str(cid)
            if system is None:
                metadata = command_metadata(key, correlation, env.id, policy.name)
                self.commands.handle(command, metadata, idempotency_key=key)
                continue
            if answered is not None:
                if cid not in answered:
                    continue  # answered before the batch: the answer is in the log
                answers = answered[cid]
            elif self.commands.was_handled(key):
                # the system was asked before and its answer is in the log: don't ask twice
                continue
            else:
                answers = self.ask(system, command, cid)
            # the command is recorded as sent (`$CommandSent`, its id the command's, its
            # cause the event), then the answers, caused by it: one append, one key
            sent = Sent(command, key, trace(key, correlation, env.id, policy.name))
            answer = trace(key, correlation, key, system)
            self.commands.record_external(list(answers), key, answer, sent)

    def ask(self, system: str, command: Command, cid: uuid.UUID) -> Sequence[Event]:
        """An external system's answer to a command, from its port."""
        port = self.ports.get(system)
        if port is None:
            raise LookupError(f"no adapter for the external system {system}")
        return list(port.send(command, cid))

    def plans(self, policy: Policy, batch: Sequence[RecordedEvent]) -> Plans | None:
        """Each event's reaction; None when one asks a system after issuing a command."""
        plans: Plans = []
        for rec in batch:
            env = self.reader.shared_envelope(rec)
            assert env.event is not None
            commands = _listed(policy.react(env.event, env))
            kinds = [info(c).system is not None for c in commands]
            if kinds != sorted(kinds, reverse=True):
                return None
            plans.append((env, commands))
        return plans

    def ask_all(self, policy: Policy, plans: Plans) -> dict[uuid.UUID, Sequence[Event]]:
        """Ask the external systems the planned reactions call (those not asked before:
        their answers are in the log), by command id."""
        return {
            cid: self.ask(system, command, cid)
            for env, commands in plans
            for cid, system, command in self.unasked(policy, env, commands)
        }

    def unasked(
        self, policy: Policy, env: Envelope, commands: Sequence[Command]
    ) -> Iterator[tuple[uuid.UUID, str, Command]]:
        """A reaction's commands to external systems not asked yet (an answer in the
        log means the system was asked before), with their ids and systems."""
        for place, command in zip(places(commands), commands, strict=True):
            system = info(command).system
            if system is not None:
                cid = command_id(policy.name, env.id, place)
                if not self.commands.was_handled(str(cid)):
                    yield cid, system, command


def _listed(commands: Sequence[Command]) -> list[Command]:
    """A reaction's commands as a list, keeping an `Issued` list (and its places)."""
    return commands if isinstance(commands, list) else list(commands)
