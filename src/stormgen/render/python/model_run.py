"""``stormgen test``: run a model's scenarios on the model itself, generating nothing.

A scenario is one step of the service (docs/language.md, "Scenarios"). :class:`World`
plays that step with the model's own meaning, evaluated by the interpreter of
:mod:`stormgen.render.python.interpreter`: the ``given`` events evolve the aggregates'
state (their ``apply``), the views' rows (their ``on`` lines) and the process
instances (a ``starts`` handler creates one; its timers count from the scenario's
start) as if recorded at the scenario's start; the processes' commands are dropped. The ``when``
command runs its ``let``/``require`` lines and its ``emit``s (or the ``when`` event
happens); the policies and processes that react to the resulting events issue
commands, which are collected, not run; ``DURATION pass`` moves the clock on and fires
the timers that fall due, soonest first, their handlers' commands collected.
:func:`run_scenarios` then compares what happened with each ``then``, field by field,
as the generated tests do on the compiled service (:mod:`stormgen.runtime.scenarios`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from stormgen.diagnostics import Location
from stormgen.model import types as t
from stormgen.model.nodes import (
    Aggregate,
    Assignment,
    Binary,
    Call,
    CancelTimer,
    Command,
    Comprehension,
    Context,
    EndLine,
    Event,
    Expr,
    Field,
    Literal,
    Model,
    Name,
    On,
    Passing,
    Policy,
    Process,
    ProcessOn,
    RowExpectation,
    Scenario,
    ScenarioMessage,
    SetTimer,
    Then,
    View,
)
from stormgen.model.scenarios import (
    Message,
    all_scenarios,
    fields_of,
    reacting_policies,
    reacting_processes,
    resolve_message,
    resolve_view,
)
from stormgen.model.scope import COMMAND_KINDS, EVENT_KINDS, Resolved, Scope
from stormgen.model.typecheck import fan_out, let_types, narrowed_by
from stormgen.render.python.interpreter import EnumValue, Incomputable, Interpreter, Unknowable
from stormgen.render.python.scenarios import _widen
from stormgen.runtime.aggregate import _arithmetic as arithmetic_words
from stormgen.runtime.scenarios import STARTED_AT

#: How many timers one `DURATION pass` may fire: a timer that sets itself again at
#: once would fire for ever.
MAX_FIRED = 10_000


class Refused(Exception):
    """The service refuses the command before its guards: no such instance, or one that
    already exists (``NotFound``, ``AlreadyExists``)."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One ``then`` that did not hold: where it is written, what, expected and actual."""

    loc: Location
    what: str
    expected: str
    actual: str


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """The outcome of one scenario: passed when it has no differences and no error."""

    scenario: Scenario
    context: str | None
    differences: tuple[Difference, ...] = ()
    error: str | None = None  # the scenario could not run to its `then`

    @property
    def passed(self) -> bool:
        return not self.differences and self.error is None

    def to_json(self) -> dict[str, Any]:
        loc = self.scenario.loc
        return {
            "name": self.scenario.name,
            "context": self.context,
            "location": f"{loc.file}:{loc.line}:{loc.column}",
            "passed": self.passed,
            "error": self.error,
            "differences": [
                {
                    "location": f"{d.loc.file}:{d.loc.line}:{d.loc.column}",
                    "what": d.what,
                    "expected": d.expected,
                    "actual": d.actual,
                }
                for d in self.differences
            ],
        }


@dataclass
class Outcome:
    """What ``when`` did: events recorded (or the guard's message) and commands issued."""

    events: list[tuple[Event, dict[str, Any]]] = field(default_factory=list)
    rejected: str | None = None
    commands: list[tuple[Command, dict[str, Any]]] = field(default_factory=list)


class Evaluator:
    """The interpreters of a model's places, made once and shared by every scenario."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._interps: dict[tuple[str, int], Interpreter] = {}
        self._updates: dict[int, Expr] = {}  # `x += e` as `x + e`, made once per line
        self._types: dict[int, t.Type] = {}
        self._envs: dict[int, t.Env] = {}
        self._fields: dict[int, dict[str, t.Type]] = {}
        self._keep: list[object] = []  # what the caches are keyed by, kept alive
        self.clock = datetime.now(UTC)

    def interp(
        self,
        kind: str,
        node: object,
        env: Callable[[], t.Env],
        unset: frozenset[str] = frozenset(),
        clock: datetime | None = None,
    ) -> Interpreter:
        """The interpreter of the place ``kind`` of ``node`` (its env made once); its
        ``now()`` reads ``clock``, else the evaluator's (a scenario's clock: its start,
        moved on as time passes, as `ScenarioRun` binds to the compiled code)."""
        key = (kind, id(node))
        found = self._interps.get(key)
        if found is None:
            found = Interpreter(env(), unset)
            self._interps[key] = found
            found.new_id = uuid.uuid4
            self._keep.append(node)
        found.clock = self.clock if clock is None else clock
        return found

    def ftype(self, f: Field, context: Context | None) -> t.Type:
        """A field's type (the same object each time: the interpreter caches by it)."""
        found = self._types.get(id(f))
        if found is None:
            found = self._types[id(f)] = t.field_type(f, context, self.scope)
            self._keep.append(f)
        return found

    def fields(self, msg: Message) -> dict[str, t.Type]:
        """A scenario message's fields and their types, made once per message."""
        found = self._fields.get(id(msg.element))
        if found is None:
            found = fields_of(msg, self.scope)
            owner = msg.resolved.owner
            if isinstance(owner, Aggregate):  # the id first, as in the message's class
                ident = owner.id_field.name
                found = {ident: found[ident]} | {n: v for n, v in found.items() if n != ident}
            self._fields[id(msg.element)] = found
            self._keep.append(msg.element)
        return found

    def row(self, view: View) -> dict[str, t.Type]:
        found = self._fields.get(id(view))
        if found is None:
            found = self._fields[id(view)] = t.view_row(view, self.scope)
            self._keep.append(view)
        return found

    def policy_env(self, policy: Policy, event: Event, context: Context) -> t.Env:
        found = self._envs.get(id(policy))
        if found is None:
            found = self._envs[id(policy)] = t.policy_env(event, context, self.scope)
            self._keep.append(policy)
        return found

    def command_fields(self, command: Command, found: Resolved) -> dict[str, t.Type]:
        out = self._fields.get(id(command))
        if out is None:
            out = t.message_fields(command.fields, found.owner, found.context, self.scope)
            self._fields[id(command)] = out
            self._keep.append(command)
        return out

    def update(self, a: Assignment, qualifier: str) -> Expr:
        """The new value of ``a``'s target: its value, or ``target op value``."""
        if a.op == "=":
            return a.value
        found = self._updates.get(id(a))
        if found is None:
            old = Name((qualifier, a.target), a.loc)
            found = self._updates[id(a)] = Binary(a.op[0], old, a.value, a.loc)
        return found

    def const(self, f: Field, context: Context | None) -> Any:
        """A field's value when nothing sets it: its default, or none."""
        if f.default is None:
            return None
        tp = self.ftype(f, context)
        interp = self.interp("default", f, lambda: t.constant_env(context, self.scope))
        return _widen(interp.eval(f.default, {}, {}, tp), tp)


class World:
    """One scenario's service: streams, view rows, and what the policies issue."""

    def __init__(self, evaluator: Evaluator, show: Callable[[Any], str] = str) -> None:
        self.ev = evaluator
        self.show = show  # how an id is named in messages
        self.scope = evaluator.scope
        self.states: dict[str, dict[str, Any]] = {}
        self.rows: dict[int, dict[Any, dict[str, Any]]] = {}
        self.position = 0
        self.elapsed = timedelta(0)  # how long after the start the clock stands
        evaluator.clock = STARTED_AT  # what the model's `now()` reads, as ScenarioRun's
        # process instances by (process, key): state, pending timers, ended
        self.instances: dict[tuple[int, Any], Instance] = {}

    def view_rows(self, context: Context) -> dict[str, dict[Any, dict[str, Any]]]:
        """The rows of the context's views by view name, as its lookups `View[key]` read
        them: the rows the scenario's events have made so far."""
        return {view.name: self.rows.setdefault(id(view), {}) for view in context.views}

    # ------------------------------------------------------------ events

    def record(self, event: Event, data: dict[str, Any]) -> dict[str, Any]:
        """Record ``event``: evolve its aggregate and the views; return its envelope."""
        self.position += 1
        owner = self.scope.owner_of(event)
        context = self.scope.context_of(event)
        assert context is not None
        ident = data.get(owner.id_field.name) if isinstance(owner, Aggregate) else None
        stream = f"{context.name}.{owner.name if owner is not None else event.name}"
        if isinstance(owner, Aggregate):
            stream += f"/{_id_text(ident)}"
        meta = {
            "id": uuid.UUID(int=self.position),
            "position": self.position,
            "version": event.version,
            "recorded_at": STARTED_AT,
            "stream": stream,
            "stream_id": ident,
        }
        if isinstance(owner, Aggregate):
            state = self.states.get(stream)
            if state is None:
                state = self.initial_state(owner, context)
            self.states[stream] = self.apply(event, owner, data, state, meta)
        for ctx in self.scope.model.contexts:
            for view in ctx.views:
                for on in view.handlers:
                    found = self.scope.resolve(ctx, on.event.name, EVENT_KINDS)
                    if found is not None and found.element is event:
                        self.update_view(view, ctx, on, event, data, meta)
        return meta

    def initial_state(self, agg: Aggregate, context: Context) -> dict[str, Any]:
        return {f.name: self.ev.const(f, context) for f in agg.state}

    def apply(
        self,
        event: Event,
        agg: Aggregate,
        data: dict[str, Any],
        state: dict[str, Any],
        meta: dict[str, Any],
    ) -> dict[str, Any]:
        context = self.scope.context_of(agg)
        unset = frozenset(f.name for f in agg.state if f.default is None and not f.type.optional)
        interp = self.ev.interp("apply", event, lambda: t.apply_env(event, self.scope), unset)
        interp.metadata = meta
        after = dict(state)
        assigned = {a.target: a for a in event.apply}
        for f in agg.state:
            tp = self.ev.ftype(f, context)
            a = assigned.get(f.name)
            if a is not None:
                value = interp.eval(self.ev.update(a, "state"), data, state, tp)
                after[f.name] = _widen(value, tp)
            elif f.name in data:
                after[f.name] = _widen(data[f.name], tp)
        return after

    def update_view(
        self,
        view: View,
        context: Context,
        on: On,
        event: Event,
        data: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        scope = self.scope
        key: Any
        if on.by is not None:
            interp = self.ev.interp("by", on, lambda: t.view_env(view, event, scope, row=False))
            interp.metadata = meta
            key = interp.eval(on.by, data, {}, self.ev.ftype(view.key, context))
        elif view.key.name in data:
            key = data[view.key.name]
        else:
            key = meta["stream_id"]
        if key is None:
            return
        if on.condition is not None:
            interp = self.ev.interp("if", on, lambda: t.view_env(view, event, scope, test=True))
            interp.metadata = meta
            if not interp.eval(on.condition, data, {}):
                return
        rows = self.rows.setdefault(id(view), {})
        if on.delete:
            rows.pop(key, None)
            return
        row = rows.get(key)
        if row is None:
            row = {view.key.name: key} | {f.name: self.ev.const(f, context) for f in view.fields}
        interp = self.ev.interp("on", on, lambda: t.view_env(view, event, scope, on=on))
        interp.metadata = meta
        new = dict(row)
        columns = {f.name: f for f in view.fields}
        for a in on.assignments:
            tp = self.ev.ftype(columns[a.target], context)
            new[a.target] = _widen(interp.eval(self.ev.update(a, "row"), data, row, tp), tp)
        if not on.assignments:  # a bare `on EVENT`: columns named like event fields
            for name, f in columns.items():
                if name in data:
                    new[name] = _widen(data[name], self.ev.ftype(f, context))
        rows[key] = new

    # ------------------------------------------------------------ commands

    def handle(self, command: Command, data: dict[str, Any]) -> Outcome:
        """Run ``command``: its guards, then its events, recorded; and the reactions."""
        scope = self.scope
        agg = scope.owner_of(command)
        context = scope.context_of(command)
        assert isinstance(agg, Aggregate) and context is not None
        ident = data[agg.id_field.name]
        stream = f"{context.name}.{agg.name}/{_id_text(ident)}"
        state = self.states.get(stream)
        if command.creates and state is not None:
            raise Refused(f"{context.name}.{agg.name} {self.show(ident)} already exists")
        if not command.creates and state is None:
            raise Refused(
                f"{context.name}.{agg.name} {self.show(ident)} does not exist "
                "(no `given` event created it)"
            )
        if state is None:
            state = self.initial_state(agg, context)
        unset = frozenset(f.name for f in agg.state if f.default is None and not f.type.optional)
        interp = self.ev.interp("command", command, lambda: t.command_env(command, scope), unset)
        interp.rows = self.view_rows(context)
        try:
            for require in command.requires:
                if not interp.eval(require.condition, data, state):
                    return Outcome(rejected=require.message)
            emitted = self.emitted(command, context, agg, interp, data, state)
        except Incomputable as exc:  # the service refuses it so too
            return Outcome(rejected=f"{command.name} cannot be computed: {_arithmetic(exc)}")
        outcome = Outcome(events=emitted)
        for event, event_data in emitted:
            meta = self.record(event, event_data)
            outcome.commands += self.react(event, event_data, meta)
        return outcome

    def emitted(
        self,
        command: Command,
        context: Context,
        agg: Aggregate,
        interp: Interpreter,
        data: dict[str, Any],
        state: dict[str, Any],
    ) -> list[tuple[Event, dict[str, Any]]]:
        scope = self.scope
        out: list[tuple[Event, dict[str, Any]]] = []
        env = interp.env
        for emit in command.emits:
            if emit.condition is not None and not interp.eval(emit.condition, data, state):
                continue
            found = scope.resolve(context, emit.event.name, EVENT_KINDS)
            assert found is not None and isinstance(found.element, Event)
            event = found.element
            fields = list(event.fields)
            if not any(f.name == agg.id_field.name for f in fields):
                fields.insert(0, agg.id_field)
            assigned = {a.target: a for a in emit.assignments}
            values: dict[str, Any] = {}
            for f in fields:
                tp = self.ev.ftype(f, context)
                if f.name in assigned:
                    value = interp.eval(assigned[f.name].value, data, state, tp)
                elif env.lookup_field(f.name) is not None:
                    value = interp.eval(Name((f.name,), f.loc), data, state, tp)
                else:
                    value = self.ev.const(f, context)
                values[f.name] = _widen(value, tp)
            out.append((event, values))
        return out

    def passes(self, duration: timedelta) -> Outcome:
        """Time passes: the clock moves on from the start, and the timers that fall due
        fire, soonest first (ties by process, key and timer name, as the store claims
        them); the commands their handlers issue are the outcome's."""
        until = STARTED_AT + self.elapsed + duration
        outcome = Outcome()
        for _ in range(MAX_FIRED):
            due = [
                (when, inst.process.name, _id_text(key), name, inst.process, key)
                for (_, key), inst in self.instances.items()
                for name, when in inst.timers.items()
                if when <= until
            ]
            if not due:
                break
            when, _, _, name, process, key = min(due, key=lambda d: d[:4])
            outcome.commands += self.fire(process, key, name, when)
        else:
            raise Unknowable(f"more than {MAX_FIRED} timers fall due: a timer sets itself again")
        self.elapsed += duration
        self.ev.clock = STARTED_AT + self.elapsed
        return outcome

    # ------------------------------------------------------------ reactions

    def react(
        self, event: Event, data: dict[str, Any], meta: dict[str, Any]
    ) -> list[tuple[Command, dict[str, Any]]]:
        """The commands the policies and processes issue for ``event``."""
        out: list[tuple[Command, dict[str, Any]]] = []
        for context, policy in reacting_policies(event, self.scope):
            out += self.policy(policy, context, event, data, meta)
        return out + self.processes(event, data, meta)

    def processes(
        self, event: Event, data: dict[str, Any], meta: dict[str, Any]
    ) -> list[tuple[Command, dict[str, Any]]]:
        """Run the processes' handlers of ``event`` (a `given` one too: its commands are
        then dropped); the commands they issue."""
        out: list[tuple[Command, dict[str, Any]]] = []
        for context, process, handler in reacting_processes(event, self.scope):
            key = self.process_key(process, context, handler, event, data, meta)
            if key is None:
                continue
            inst = self.instances.get((id(process), key))
            if inst is None:
                if not handler.starts:
                    continue  # no instance, and this event does not start one
                inst = Instance(process, self.started(process, context, key, data))
            elif inst.ended:
                continue
            env = partial(t.process_env, process, event, self.scope)
            issued = self.run_handler(inst, context, handler, env, data, meta["recorded_at"], meta)
            if issued is None:
                continue  # its `if` is false: nothing decided (a starting event starts none)
            self.instances[(id(process), key)] = inst
            out += issued
        return out

    def process_key(
        self,
        process: Process,
        context: Context,
        handler: ProcessOn,
        event: Event,
        data: dict[str, Any],
        meta: dict[str, Any],
    ) -> Any:
        """The instance ``event`` concerns: ``by EXPR``, else the event field named like
        the key, else the event's stream id (None: none)."""
        tp = self.ev.ftype(process.key, context)
        if handler.by is not None:
            env = partial(t.process_env, process, event, self.scope, state=False)
            interp = self.ev.interp("process-by", handler, env)
            interp.metadata = meta
            return _widen(interp.eval(handler.by, data, {}, tp), tp)
        if process.key.name in data:
            return data[process.key.name]
        return meta["stream_id"]

    def started(
        self, process: Process, context: Context, key: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        """A new instance's state: the defaults, the event's same-named fields, the key."""
        state = {process.key.name: key}
        for f in process.fields:
            tp = self.ev.ftype(f, context)
            copied = f.name in data
            state[f.name] = _widen(data[f.name], tp) if copied else self.ev.const(f, context)
        return state

    def fire(
        self, process: Process, key: Any, name: str, due: datetime
    ) -> list[tuple[Command, dict[str, Any]]]:
        """A due timer fires: its handler runs on the instance, at its due time."""
        inst = self.instances[(id(process), key)]
        del inst.timers[name]
        context = self.scope.context_of(process)
        assert context is not None
        handler = next((h for h in process.handlers if h.timer == name), None)
        if handler is None:
            return []
        env = partial(t.process_env, process, None, self.scope)
        return self.run_handler(inst, context, handler, env, {}, due, None) or []

    def run_handler(
        self,
        inst: Instance,
        context: Context,
        handler: ProcessOn,
        env: Callable[[], t.Env],
        data: dict[str, Any],
        now: datetime,
        meta: dict[str, Any] | None,
    ) -> list[tuple[Command, dict[str, Any]]] | None:
        """One handler on one instance, as the compiled one: its `if` and assignments see
        the state before; its `then`, `timer`, `cancel` and `end` lines, in order, the
        state after. The commands it issues; None when its `if` is false (it decides
        nothing, and the instance is left as it was)."""
        process = inst.process
        unset = frozenset(
            f.name for f in process.fields if f.default is None and not f.type.optional
        )
        rows = self.view_rows(context)  # what its lookups `View[key]` read
        head = self.ev.interp("process-if", handler, env, unset)
        head.metadata, head.rows = meta, rows
        before = inst.state
        if handler.condition is not None and not head.eval(handler.condition, data, before):
            return None
        lines_env = partial(_handler_env, handler, env)
        interp = self.ev.interp("process", handler, lines_env, unset)
        interp.metadata, interp.rows = meta, rows
        after = dict(before)
        for a in handler.assignments:
            f = next(f for f in process.fields if f.name == a.target)
            tp = self.ev.ftype(f, context)
            after[a.target] = _widen(interp.eval(self.ev.update(a, "state"), data, before, tp), tp)
        inst.state = after
        out: list[tuple[Command, dict[str, Any]]] = []
        lines: list[Then | SetTimer | CancelTimer | EndLine] = [
            *handler.thens,
            *handler.timers,
            *handler.cancels,
            *handler.ends,
        ]
        lines.sort(key=lambda line: (line.loc.line, line.loc.column))
        ended = False
        for line in lines:
            if isinstance(line, Then):
                out += self.issue(line, context, interp, data, after)
            elif isinstance(line, SetTimer):
                if line.after is not None:
                    inst.timers[line.name] = now + interp.eval(line.after, data, after, t.DURATION)
                else:
                    assert line.at is not None
                    inst.timers[line.name] = interp.eval(line.at, data, after, t.DATETIME)
            elif isinstance(line, CancelTimer):
                inst.timers.pop(line.name, None)
            elif line.condition is None or interp.eval(line.condition, data, after):
                ended = True
        if ended:
            inst.ended = True
            inst.timers.clear()
        return out

    def issue(
        self,
        then: Then,
        context: Context,
        interp: Interpreter,
        data: dict[str, Any],
        state: dict[str, Any],
    ) -> list[tuple[Command, dict[str, Any]]]:
        """A process's `then` line: its command filled from the line's assignments, then
        the event's same-named fields, then the state's, then the command's defaults."""
        found = self.scope.resolve(context, then.command.name, COMMAND_KINDS)
        assert found is not None and isinstance(found.element, Command)
        command = found.element
        if then.condition is not None and not interp.eval(then.condition, data, state):
            return []
        items: list[Any] = [None]
        inner = interp
        if then.fan is not None:
            inner = self.ev.interp("process-fan", then, partial(_fan_env, then.fan, interp.env))
            inner.metadata, inner.rows = interp.metadata, interp.rows
            items = list(inner.eval(then.fan.source, data, state))
        out: list[tuple[Command, dict[str, Any]]] = []
        targets = self.ev.command_fields(command, found)
        assigned = {a.target: a for a in then.assignments}
        declared = {f.name: f for f in command.fields}
        for item in items:
            if then.fan is not None:
                inner._locals[then.fan.var] = item
                cond = then.fan.condition
                if cond is not None and not inner.eval(cond, data, state):
                    continue
            values: dict[str, Any] = {}
            for name, tp in targets.items():
                if name in assigned:
                    value = inner.eval(assigned[name].value, data, state, tp)
                elif name in data:
                    value = data[name]
                elif name in state:
                    value = state[name]
                elif name in declared:
                    value = self.ev.const(declared[name], found.context)
                else:
                    value = None
                values[name] = _widen(value, tp)
            out.append((command, values))
        return out

    def policy(
        self,
        policy: Policy,
        context: Context,
        event: Event,
        data: dict[str, Any],
        meta: dict[str, Any],
    ) -> list[tuple[Command, dict[str, Any]]]:
        scope = self.scope
        env = self.ev.policy_env(policy, event, context)
        rows = self.view_rows(context)
        if policy.condition is not None:
            interp = self.ev.interp("policy", policy, lambda: env)
            interp.metadata, interp.rows = meta, rows
            if not interp.eval(policy.condition, data, {}):
                return []
        env = narrowed_by(policy.condition, env)  # the same object each time: cached below
        out: list[tuple[Command, dict[str, Any]]] = []
        for then in policy.thens:
            found = scope.resolve(context, then.command.name, COMMAND_KINDS)
            assert found is not None and isinstance(found.element, Command)
            command = found.element
            line = self.ev.interp("then", then, lambda: env)
            line.metadata, line.rows = meta, rows
            if then.condition is not None and not line.eval(then.condition, data, {}):
                continue
            items: list[Any] = [None]
            inner = line
            if then.fan is not None:
                fan = then.fan
                inner = self.ev.interp("fan", then, partial(_fan_env, fan, env))
                inner.metadata, inner.rows = meta, rows
                items = list(inner.eval(then.fan.source, data, {}))
            for item in items:
                if then.fan is not None:
                    inner._locals[then.fan.var] = item
                    if then.fan.condition is not None and not inner.eval(
                        then.fan.condition, data, {}
                    ):
                        continue
                targets = self.ev.command_fields(command, found)
                assigned = {a.target: a for a in then.assignments}
                declared = {f.name: f for f in command.fields}
                values: dict[str, Any] = {}
                for name, tp in targets.items():
                    if name in assigned:
                        value = inner.eval(assigned[name].value, data, {}, tp)
                    elif name in data:
                        value = data[name]
                    elif name in declared:
                        value = self.ev.const(declared[name], found.context)
                    else:
                        value = None
                    values[name] = _widen(value, tp)
                out.append((command, values))
        return out


@dataclass
class Instance:
    """A process instance in a scenario: its state, pending timers (due times by name)
    and whether it ended."""

    process: Process
    state: dict[str, Any]
    timers: dict[str, datetime] = field(default_factory=dict)
    ended: bool = False


def _handler_env(handler: ProcessOn, env: Callable[[], t.Env]) -> t.Env:
    """What a handler's assignments and lines see: narrowed by its `if`, with its lets."""
    after = narrowed_by(handler.condition, env())
    if not handler.lets:
        return after
    return replace(after, lets=let_types(handler.lets, after)[0])


# ---------------------------------------------------------------- running scenarios


class Runner:
    """Run the scenarios of one model; its evaluator is shared by all of them."""

    def __init__(self, model: Model, scope: Scope) -> None:
        self.model = model
        self.scope = scope
        self.ev = Evaluator(scope)
        self.names: dict[Any, str] = {}  # the values of `id("o1")` -> "o1"

    def run_all(self) -> list[ScenarioResult]:
        return [self.run(context, s) for context, s in all_scenarios(self.model)]

    def run(self, context: Context | None, scenario: Scenario) -> ScenarioResult:
        name = context.name if context is not None else None
        world = World(self.ev, self.show)
        try:
            for node in scenario.given:
                msg = self.resolve(context, node)
                assert isinstance(msg.element, Event)
                data = self.data(context, msg)
                meta = world.record(msg.element, data)
                world.processes(msg.element, data, meta)  # their commands are not `then`'s
            if isinstance(scenario.when, Passing):
                outcome = world.passes(self.duration(context, scenario.when))
                return ScenarioResult(
                    scenario, name, tuple(self.compare(context, scenario, world, outcome))
                )
            when = self.resolve(context, scenario.when)
            data = self.data(context, when)
            if isinstance(when.element, Event):
                meta = world.record(when.element, data)
                outcome = Outcome(commands=world.react(when.element, data, meta))
            else:
                outcome = world.handle(when.element, data)
            differences = self.compare(context, scenario, world, outcome)
        except Refused as exc:
            return ScenarioResult(scenario, name, error=f"the command is refused: {exc}")
        except Incomputable as exc:
            why = _arithmetic(exc)
            return ScenarioResult(scenario, name, error=f"a value cannot be computed: {why}")
        except Unknowable as exc:
            return ScenarioResult(scenario, name, error=f"the model cannot decide it: {exc}")
        return ScenarioResult(scenario, name, tuple(differences))

    def resolve(self, context: Context | None, node: ScenarioMessage) -> Message:
        found = resolve_message(self.scope, context, node)
        assert found is not None  # a model that validates
        return found

    def values(
        self,
        context: Context | None,
        assignments: tuple[Assignment, ...],
        types: Mapping[str, t.Type],
    ) -> dict[str, Any]:
        interp = self.scenario_interp(context)
        out: dict[str, Any] = {}
        for a in assignments:
            tp = types[a.target]
            out[a.target] = _widen(interp.eval(a.value, {}, {}, tp), tp)
            self.remember(a.value, out[a.target])
        return out

    def duration(self, context: Context | None, when: Passing) -> timedelta:
        value = self.scenario_interp(context).eval(when.duration, {}, {}, t.DURATION)
        assert isinstance(value, timedelta)
        return value

    def scenario_interp(self, context: Context | None) -> Interpreter:
        # A scenario's own values read its start as `now()` (its events' recorded_at).
        env = partial(t.scenario_env, context, self.scope)
        return self.ev.interp("scenario", context, env, clock=STARTED_AT)

    def remember(self, expr: Expr, value: Any) -> None:
        """Name the value of an ``id("o1")`` as written, for messages and tests."""
        if isinstance(expr, Call) and expr.function == "id" and isinstance(expr.args[0], Literal):
            self.names[value] = str(expr.args[0].value)

    def data(self, context: Context | None, msg: Message) -> dict[str, Any]:
        """A given or when message's fields: those named, the others' defaults."""
        types = self.ev.fields(msg)
        out = self.values(context, msg.node.assignments, types)
        declared = {f.name: f for f in msg.element.fields}
        for name in types:
            if name not in out:
                f = declared.get(name)
                out[name] = self.ev.const(f, msg.resolved.context) if f is not None else None
        return out

    # ------------------------------------------------------------ comparing

    def compare(
        self, context: Context | None, scenario: Scenario, world: World, outcome: Outcome
    ) -> list[Difference]:
        out: list[Difference] = []
        if scenario.rejected:
            expected = f'rejected "{scenario.message}"' if scenario.message else "rejected"
            if outcome.rejected is None:
                got = "accepted, recording " + (
                    ", ".join(e.name for e, _ in outcome.events) or "no event"
                )
                out.append(Difference(scenario.when.loc, "rejected", expected, got))
            elif scenario.message is not None and outcome.rejected != scenario.message:
                got = f'rejected "{outcome.rejected}"'
                out.append(Difference(scenario.when.loc, "rejected", expected, got))
            return out
        if outcome.rejected is not None:
            out.append(
                Difference(
                    scenario.when.loc, "accepted", "accepted", f'rejected "{outcome.rejected}"'
                )
            )
            return out
        if not scenario.then:  # nothing happens: no event recorded, no command issued
            happened = [e.name for e, _ in outcome.events]
            happened += [c.name for c, _ in outcome.commands]
            if happened:
                out.append(Difference(scenario.loc, "nothing", "nothing", ", ".join(happened)))
            return out
        events = [self.resolve(context, m) for m in scenario.then if isinstance(m, ScenarioMessage)]
        expected_events = [m for m in events if m.is_event]
        expected_commands = [m for m in events if not m.is_event]
        if expected_events:
            out += self.compare_events(context, expected_events, outcome.events)
        if expected_commands:
            out += self.compare_commands(context, expected_commands, outcome.commands)
        for item in scenario.then:
            if isinstance(item, RowExpectation):
                out += self.compare_row(context, item, world)
        return out

    def compare_events(
        self,
        context: Context | None,
        expected: list[Message],
        actual: list[tuple[Event, dict[str, Any]]],
    ) -> list[Difference]:
        want = [m.element.name for m in expected]
        got = [e.name for e, _ in actual]
        if want != got:
            return [Difference(expected[0].node.loc, "events", _names(want), _names(got))]
        out: list[Difference] = []
        for m, (_event, data) in zip(expected, actual, strict=True):
            out += self.compare_fields(context, m, data)
        return out

    def compare_fields(
        self, context: Context | None, m: Message, data: dict[str, Any]
    ) -> list[Difference]:
        expected = self.values(context, m.node.assignments, self.ev.fields(m))
        out: list[Difference] = []
        for a in m.node.assignments:
            if not _same(expected[a.target], data.get(a.target)):
                what = f"{m.element.name}.{a.target}"
                out.append(
                    Difference(
                        a.loc, what, self.show(expected[a.target]), self.show(data.get(a.target))
                    )
                )
        return out

    def compare_commands(
        self,
        context: Context | None,
        expected: list[Message],
        actual: list[tuple[Command, dict[str, Any]]],
    ) -> list[Difference]:
        left = list(actual)
        out: list[Difference] = []
        for m in expected:
            same_kind = [(c, d) for c, d in left if c is m.element]
            if not same_kind:
                got = _names([c.name for c, _ in actual]) if actual else "no command issued"
                out.append(Difference(m.node.loc, m.element.name, "issued", got))
                continue
            match = next((p for p in same_kind if not self.compare_fields(context, m, p[1])), None)
            if match is None:
                out += self.compare_fields(context, m, same_kind[0][1])
                match = same_kind[0]
            left.remove(match)
        for command, _ in left:
            loc = expected[-1].node.loc
            out.append(Difference(loc, command.name, "not issued", "issued as well"))
        return out

    def compare_row(
        self, context: Context | None, item: RowExpectation, world: World
    ) -> list[Difference]:
        view = resolve_view(self.scope, context, item)
        assert view is not None
        row_types = self.ev.row(view)
        key_type = row_types[view.key.name]
        interp = self.scenario_interp(context)
        key = _widen(interp.eval(item.key, {}, {}, key_type), key_type)
        self.remember(item.key, key)
        what = f"{view.name}[{self.show(key)}]"
        row = world.rows.get(id(view), {}).get(key)
        if row is None:
            return [Difference(item.loc, what, "a row", "none")]
        expected = self.values(context, item.assignments, row_types)
        return [
            Difference(
                a.loc,
                f"{what}.{a.target}",
                self.show(expected[a.target]),
                self.show(row.get(a.target)),
            )
            for a in item.assignments
            if not _same(expected[a.target], row.get(a.target))
        ]

    def show(self, value: Any) -> str:
        """A value as the model writes it."""
        if isinstance(value, uuid.UUID | str) and value in self.names:
            return f'id("{self.names[value]}")'
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, EnumValue):
            return value.member
        if isinstance(value, tuple | list):
            return "[" + ", ".join(self.show(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{ " + ", ".join(f"{k} = {self.show(v)}" for k, v in value.items()) + " }"
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return str(value)


def _fan_env(fan: Comprehension, env: t.Env) -> t.Env:
    return fan_out(fan, env)[0]


def _arithmetic(exc: Incomputable) -> str:
    """What went wrong, in the service's words (``decide`` refuses a command so)."""
    cause = exc.__cause__
    return arithmetic_words(cause) if isinstance(cause, ArithmeticError) else str(exc)


def _same(expected: Any, actual: Any) -> bool:
    return bool(expected == actual)


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "no event"


def _id_text(ident: Any) -> str:
    return ident if isinstance(ident, str) else str(ident)


def run_scenarios(model: Model, scope: Scope | None = None) -> list[ScenarioResult]:
    """Run every scenario of a model that validates; one result per scenario."""
    return Runner(model, scope if scope is not None else Scope(model)).run_all()
