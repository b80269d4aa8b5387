"""Processes: policies with a memory and timers (docs/runtime.md, "Processes").

A process reacts to events like a policy, keeps state per instance (named by a key,
like a view's row), issues commands, sets timers and ends. Its definition names the
events it consumes (`events`), those that start an instance (`starts`), its key and
its state class; a method marked ``@on_event(E)`` handles an event, one marked
``@on_timer("Name")`` a due timer. Each handler gets a `Step`: the state before, and
what the handler decides (`assign`, `issue`, `timer`, `cancel`, `end`).

An instance's decisions are events of its own stream, ``$process-<Name>-<key>``
(`stream_name`): `$ProcessStarted` (the whole first state), `$ProcessChanged` (the
fields that changed), `$TimerSet`, `$TimerCancelled`, `$TimerFired` and
`$ProcessEnded`, so its state at any point of the log is the fold of that stream up
to there (`fold`), like an aggregate's. A state field renamed with `was`
(`Process.was`) is read from its earlier name in the instances stored before.

A state field listed in `Process.pii` (personal data) is stored sealed, in those
events and in the instances' rows: encrypted under the key of the stream whose event
brought the value (its data subject: `{"$pii": ..., "stream": ...}`, like a view's pii
column), so forgetting that stream leaves it unreadable there too (`seal_state`,
`open_state`).
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from abc import ABC
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from cryptography.exceptions import InvalidTag

from stormgen.runtime import codec
from stormgen.runtime.aggregate import id_text
from stormgen.runtime.clock import SYSTEM_CLOCK, Clock
from stormgen.runtime.crypto import KeyRing, decrypt_value, encrypt_value
from stormgen.runtime.dispatch import _marker, handlers
from stormgen.runtime.envelope import SEALED_KEY, RecordedEvent, format_time, parse_time
from stormgen.runtime.lookups import UNBOUND, Lookups
from stormgen.runtime.messages import Command, Envelope, Event, earlier_names, rename_fields
from stormgen.runtime.store.roles import EncryptionKeys
from stormgen.runtime.views import key_by

S = TypeVar("S")
M = TypeVar("M", bound=Callable[..., Any])

#: Namespace of the deterministic ids of the commands processes issue.
PROCESS_NAMESPACE = uuid.UUID("0c9b5a3e-2f71-4e0d-8d36-7b1f4a9e6c25")

STARTED = "$ProcessStarted"
CHANGED = "$ProcessChanged"
TIMER_SET = "$TimerSet"
TIMER_CANCELLED = "$TimerCancelled"
TIMER_FIRED = "$TimerFired"
ENDED = "$ProcessEnded"
#: every event type of an instance's stream
DECISIONS = frozenset({STARTED, CHANGED, TIMER_SET, TIMER_CANCELLED, TIMER_FIRED, ENDED})

STREAM_PREFIX = "$process-"


def stream_name(process: str, key: str) -> str:
    """The stream of a process instance's decisions: ``$process-<Name>-<key>``."""
    return f"{STREAM_PREFIX}{process}-{key}"


def on_timer(name: str) -> Callable[[M], M]:
    """Mark the method that handles the process's timer `name` when it is due."""
    return _marker("timer", _TimerName.of(name))


class _TimerName:
    """A timer's name as a dispatch key (the registry looks keys up by class)."""

    @staticmethod
    @functools.cache
    def of(name: str) -> type:
        return type(f"Timer_{name}", (), {"timer": name})


@functools.lru_cache(maxsize=4096)
def command_id(process: str, key: str, trigger: str, index: int) -> uuid.UUID:
    """The deterministic id of the `index`-th command an instance's handler issues for
    a trigger (an event id, or ``timer:<name>@<due>``): its idempotency key, so a
    handler run again after a failure issues nothing twice."""
    return uuid.uuid5(PROCESS_NAMESPACE, f"{process}/{key}/{trigger}/{index}")


class Step(Generic[S]):
    """One handler run on one instance: the state before, and what the handler decides.

    `state` is the state after the assignments made so far (`before` before any);
    `now` the trigger's time (the event's `recorded_at`, or the timer's due time), from
    which `timer(after=...)` counts, so a replay decides the same. `skipped` says the
    handler's `if` was false (`skip`): the run decides nothing, and a `starts` handler
    starts no instance.
    """

    def __init__(self, key: Any, state: S, now: datetime) -> None:
        self.key = key
        self.before = state
        self.state = state
        self.now = now
        self.commands: list[Command] = []
        #: timer name -> new due time (None: cancelled), in the order decided
        self.timers: dict[str, datetime | None] = {}
        self.ended = False
        self.skipped = False

    def skip(self) -> None:
        """The handler's `if` is false: this run decides nothing (whatever it decided so
        far is dropped), and an event that would start an instance starts none."""
        self.state = self.before
        self.commands.clear()
        self.timers.clear()
        self.ended = False
        self.skipped = True

    def assign(self, **changes: Any) -> None:
        """Change state fields (a handler's assignments, all seeing the state before)."""
        self.state = dataclasses.replace(self.state, **changes)  # type: ignore[type-var]

    def issue(self, command: Command) -> None:
        """Issue a command (a `then` line)."""
        self.commands.append(command)

    def timer(
        self, name: str, *, after: timedelta | None = None, at: datetime | None = None
    ) -> None:
        """Set (or reset) the instance's timer `name`: due `after` the trigger's time, or
        `at` a given time."""
        if (after is None) == (at is None):
            raise TypeError("a timer is set either after a duration or at a time")
        self.timers[name] = self.now + after if after is not None else at

    def cancel(self, name: str) -> None:
        """Drop the instance's timer `name` (nothing if it is not set)."""
        self.timers[name] = None

    def end(self) -> None:
        """End the instance after this handler: its timers go, later events are ignored."""
        self.ended = True


@dataclass
class Instance:
    """A process instance as its stream says: state, pending timers, ended."""

    key: str
    state: Any
    ended: bool = False
    #: pending timers by name: their due times
    timers: dict[str, datetime] = field(default_factory=dict)
    #: the stream's version (0: the instance does not exist)
    version: int = 0
    started_at: datetime | None = None
    updated_at: datetime | None = None
    #: the stored (sealed) values of the state's pii fields, by wire name
    sealed: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The instance as the HTTP API shows it."""
        return {
            "key": self.key,
            "state": codec.to_data(self.state),
            "ended": self.ended,
            "timers": [
                {"name": name, "due": format_time(due)}
                for name, due in sorted(self.timers.items(), key=lambda item: item[1])
            ],
            "version": self.version,
            "started_at": format_time(self.started_at) if self.started_at else None,
            "updated_at": format_time(self.updated_at) if self.updated_at else None,
        }


class Process(ABC, Generic[S]):
    """The definition of one process; subclass it once per process."""

    #: `Context.Process`; also the name of its durable checkpoint
    name: ClassVar[str]
    #: the key's field name (`order_id`) and type
    key: ClassVar[str]
    key_type: ClassVar[Any] = uuid.UUID
    #: the state class: a dataclass with a default for every field
    state_type: ClassVar[type[Any]]
    #: the events it consumes, and those of them that start an instance
    events: ClassVar[tuple[type[Event], ...]] = ()
    starts: ClassVar[tuple[type[Event], ...]] = ()
    #: the names of its timers
    timers: ClassVar[tuple[str, ...]] = ()
    #: the views it reads (a model's `View[key]`): bound by the application
    lookups: Lookups = UNBOUND
    #: what the model's `now()` and `today()` read (the application binds its clock)
    clock: Clock = SYSTEM_CLOCK
    #: the state fields holding personal data, stored sealed (see the module's doc)
    pii: ClassVar[frozenset[str]] = frozenset()
    #: the state fields renamed with `was`, by wire name: current name -> earlier
    #: name(s), most recent first; stored instances' values under an earlier name are
    #: read as the current one (an event's `was`, for the state)
    was: ClassVar[Mapping[str, str | tuple[str, ...]]] = {}

    def key_of(self, event: Event, envelope: Envelope) -> Any:
        """The instance an event concerns: a method marked `@key_for` the event's class
        (a `by EXPR`), else the event field named like the key, else the event's stream
        id. None skips the event."""
        return key_by(self, self.key, self.key_type, event, envelope)

    def initial(self, event: Event, key: Any) -> S:
        """A new instance's state: the defaults, fields named like the event's copied,
        and the key in the field named like it, if the state has one."""
        names = [f.name for f in dataclasses.fields(self.state_type)]
        copied = {name: getattr(event, name) for name in names if hasattr(event, name)}
        if self.key in names:
            copied[self.key] = key
        return self.state_type(**copied)  # type: ignore[no-any-return]

    def handle(self, step: Step[S], event: Event, envelope: Envelope) -> None:
        """Run the handler of the event's class (marked `@on_event`), if any."""
        found = handlers(type(self)).find("event", type(event))
        if found is None:
            return
        if found.arity == 3:
            getattr(self, found.name)(step, event, envelope)
        else:
            getattr(self, found.name)(step, event)

    def fire(self, step: Step[S], timer: str) -> None:
        """Run the handler of the due timer `timer` (marked `@on_timer`), if any."""
        found = handlers(type(self)).find("timer", _TimerName.of(timer))
        if found is not None:
            getattr(self, found.name)(step)

    def starts_with(self, event: Event) -> bool:
        """Whether `event` starts an instance that does not exist yet."""
        return isinstance(event, self.starts)

    def parse_key(self, text: Any) -> Any:
        """A key given as text (a URL segment) in the key's type; `DecodeError` if not."""
        return codec.from_data(self.key_type, text)


def fold(
    process: Process[Any],
    key: str,
    records: Iterable[RecordedEvent],
    keys: KeyRing | None = None,
) -> Instance | None:
    """An instance from the events of its stream (None: it never started); its sealed
    pii fields opened with `keys` (redacted when forgotten, or when no `keys`)."""
    data: dict[str, Any] | None = None
    instance = Instance(key, None)
    for rec in records:
        body = rec.data
        if rec.type == STARTED:
            data = dict(body["state"])
            rename_fields(data, process.was)
            instance.started_at = rec.recorded_at
        elif rec.type == CHANGED and data is not None:
            changes = body["changes"]
            if process.was:  # a copy to rename in: the recorded event's data stays as stored
                changes = dict(changes)
                rename_fields(changes, process.was)
            data.update(changes)
        elif rec.type == TIMER_SET:
            instance.timers[body["timer"]] = parse_time(body["due"])
        elif rec.type in (TIMER_CANCELLED, TIMER_FIRED):
            instance.timers.pop(body["timer"], None)
        elif rec.type == ENDED:
            instance.ended = True
            instance.timers.clear()
        instance.version = rec.stream_version
        instance.updated_at = rec.recorded_at
    if data is None:
        return None
    instance.state, instance.sealed = open_state(process, data, keys)
    return instance


def check_state_names(process: Process[Any]) -> None:
    """Raise `ValueError` when the process's `pii` or `was` names a field its state does
    not have (`pii` by attribute, `was` by wire name): a typo there would go unnoticed,
    the value stored in the clear or read under no name."""
    attributes = [f.name for f in dataclasses.fields(process.state_type)]
    wires = codec.wire_names(process.state_type)
    names = {wires.get(name, name) for name in attributes}
    for option, given, known in (("pii", process.pii, attributes), ("was", process.was, names)):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(
                f"process {process.name}: {option} names {', '.join(unknown)}, which"
                f" {process.state_type.__name__} has no field for (it has"
                f" {', '.join(sorted(known)) or 'none'})"
            )


def pii_wires(process: Process[Any]) -> list[str]:
    """The wire names of the process's pii state fields."""
    if not process.pii:
        return []
    wires = codec.wire_names(process.state_type)
    return [wires.get(name, name) for name in sorted(process.pii)]


def _is_token(value: Any) -> bool:
    return isinstance(value, dict) and SEALED_KEY in value


def open_state(
    process: Process[Any], data: dict[str, Any], keys: KeyRing | None
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Stored state data (pii fields sealed, renamed fields by their current name) as
    the state, and the sealed tokens."""
    sealed = {wire: data[wire] for wire in pii_wires(process) if _is_token(data.get(wire))}
    if not sealed:
        return codec.from_data(process.state_type, data), sealed
    plain, gone = dict(data), set()
    for wire, token in sealed.items():
        value = _open_token(process, wire, token, keys)
        if value is _GONE:
            gone.add(wire)
        else:
            plain[wire] = value
    return codec.from_data_redacted(process.state_type, plain, gone), sealed


_GONE = object()  # a sealed value whose key was forgotten


def _open_token(
    process: Process[Any], wire: str, token: dict[str, Any], keys: KeyRing | None
) -> Any:
    subject = str(token.get("stream", ""))
    key = keys.key_for_reading(subject) if keys is not None else None
    if key is None:
        return _GONE
    # a value sealed before its field was renamed (`was`) is bound to the earlier name
    for name in (wire, *earlier_names(process.was.get(wire, ()))):
        try:
            return decrypt_value(key, subject, f"{process.name}.{name}", token)
        except (InvalidTag, ValueError):
            pass
    return _GONE  # sealed under a key that was forgotten since


def seal_state(
    keys: KeyRing,
    uow: EncryptionKeys,
    process: Process[Any],
    data: dict[str, Any],
    subject: Callable[[str], str],
) -> dict[str, Any]:
    """State data (whole, or the changed fields) with its pii fields sealed under the
    key of their data subject's stream, `subject(wire name)`."""
    wires = [wire for wire in pii_wires(process) if data.get(wire) is not None]
    if not wires:
        return data
    out = dict(data)
    for wire in wires:
        stream = subject(wire)
        key = keys.key_for_writing(uow, stream)
        token = encrypt_value(key, stream, f"{process.name}.{wire}", data[wire])
        out[wire] = {**token, "stream": stream}
    return out


def changes(before: Any, after: Any) -> dict[str, Any]:
    """The state fields (as JSON) that differ between two states."""
    old, new = codec.to_data(before), codec.to_data(after)
    return {name: value for name, value in new.items() if old.get(name) != value}


def key_text(key: Any) -> str:
    """A key as text, as it appears in stream names and timers."""
    return id_text(key)


def decisions(
    step: Step[Any], started: bool, trigger: dict[str, Any], pending: Iterable[str]
) -> Sequence[tuple[str, dict[str, Any]]]:
    """The events (type, data) recording a step's decisions; `pending` names the
    instance's timers set before it (cancelling another is no decision)."""
    pending = set(pending)
    out: list[tuple[str, dict[str, Any]]] = []
    if started:
        out.append((STARTED, {**trigger, "state": codec.to_data(step.state)}))
    else:
        changed = changes(step.before, step.state)
        if changed:
            out.append((CHANGED, {**trigger, "changes": changed}))
    if not step.ended:
        for name, due in step.timers.items():
            if due is None:
                if name in pending:
                    out.append((TIMER_CANCELLED, {"timer": name}))
            else:
                out.append((TIMER_SET, {"timer": name, "due": format_time(due)}))
    else:
        out.append((ENDED, dict(trigger)))
    return out
