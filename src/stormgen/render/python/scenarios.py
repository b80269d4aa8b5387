"""Given-when-then scenarios for the generated tests, found by evaluating the model.

For every command, :class:`ScenarioFinder` looks for a state and a command that pass
all guards (the happy path), and for each guard one that passes the guards before it
and fails it (its rejection). It evaluates the model's expressions with a small
interpreter (:mod:`stormgen.render.python.interpreter`, independent of the compiled
Python), so the generated tests check the generated code against the model's meaning:
the events expected, with their fields sourced as the model says, and the state after
``apply``.

The search is a deterministic sampling of typical values (0, 1, -1, the literals the
expressions mention, each enum member, empty and one-item lists...). When nothing is
found, or an expression depends on the clock or fresh ids, the scenario is left out
and the test file says so. Each sample is tried once; its guards run in order up to
the first that fails, as in the generated code; and a guard's answer is kept for the
values it reads (through its ``let``s too), which most samples share.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from stormgen.model import typecheck as tc
from stormgen.model import types as t
from stormgen.model.nodes import (
    Aggregate,
    Assignment,
    Binary,
    Call,
    Command,
    Context,
    Event,
    Expr,
    Field,
    Literal,
    Name,
)
from stormgen.model.scope import EVENT_KINDS, Scope
from stormgen.render.python.interpreter import EnumValue, Incomputable, Interpreter, Unknowable
from stormgen.runtime.testing import RECORDED_AT as TESTS_RECORDED_AT

ATTEMPTS = 400
#: When the generated tests' events are recorded (what ``event.recorded_at`` reads):
#: ``stormgen.runtime.testing.when`` records them then.
RECORDED_AT = TESTS_RECORDED_AT
#: A guard that reads the clock is tried at both ends of the years the tests may run
#: in; a case is used only when both agree (candidate dates lie outside that range).
CLOCKS = (datetime(2001, 1, 1, tzinfo=UTC), datetime(2990, 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Outcome:
    """A found scenario: the state and command, and what should happen."""

    state: dict[str, Any]  # the given state, field -> value
    command: dict[str, Any]  # the command's fields (the aggregate id included)
    rejected: str | None  # the guard message, or None when accepted
    events: tuple[tuple[Event, dict[str, Any]], ...] | None  # None: not knowable
    after: dict[str, Any] | None  # the state after the events, when knowable


# ---------------------------------------------------------------- candidate values


def literals_in(exprs: list[Expr]) -> list[Any]:
    """The literal values an expression mentions (good boundary candidates)."""
    return [
        sub.value
        for e in exprs
        for sub in tc.subexpressions(e)
        if isinstance(sub, Literal) and sub.kind in ("int", "decimal", "str")
    ]


class Candidates:
    """Typical values of each type, plus the literals of the command at hand."""

    def __init__(self, scope: Scope, literals: list[Any]) -> None:
        self.scope = scope
        self.ints = [0, 1, 2, -1, 10]
        self.strs = ["", "a", "text"]
        for lit in literals:
            if isinstance(lit, bool):
                continue
            if isinstance(lit, int):
                self.ints += [lit, lit + 1, lit - 1]
            elif isinstance(lit, Decimal):
                self.ints += [int(lit), int(lit) + 1]
            elif isinstance(lit, str):
                self.strs.append(lit)
        self.ints = list(dict.fromkeys(self.ints))
        self.strs = list(dict.fromkeys(self.strs))
        self.decimals = [Decimal(i) for i in self.ints] + [Decimal("2.50")]
        for lit in literals:
            if isinstance(lit, Decimal):
                self.decimals += [lit, lit + 1, lit - 1]
        self.decimals = list(dict.fromkeys(self.decimals))

    def of(self, tp: t.Type, depth: int = 0) -> list[Any]:
        if isinstance(tp, t.OptionalType):
            return [*self.of(tp.inner, depth), None]
        if isinstance(tp, t.ListType):
            inner = self.of(tp.element, depth + 1)
            return [(), (inner[0],)] if inner else [()]
        if isinstance(tp, t.EnumType):
            return [EnumValue(tp.name, tp.context_name, m) for m in tp.members]
        if isinstance(tp, t.ValueType):
            if depth > 3:
                return []
            fields = t.value_fields(tp, self.scope)
            firsts = {n: self.of(ft, depth + 1) for n, ft in fields.items()}
            if any(not v for v in firsts.values()):
                return []
            one = {n: v[0] for n, v in firsts.items()}
            two = {n: v[1] if len(v) > 1 else v[0] for n, v in firsts.items()}
            return [one, two] if one != two else [one]
        if isinstance(tp, t.Primitive):
            if tp.name == "int":
                return list(self.ints)
            if tp.name == "decimal":
                return list(self.decimals)
            if tp.name == "float":
                return [float(i) for i in self.ints] + [2.5]
            if tp.name == "str":
                return list(self.strs)
            if tp.name == "bool":
                return [True, False]
            if tp.name == "uuid":
                return [UUID(int=11), UUID(int=12)]
            if tp.name == "date":
                return [date(2000, 1, 1), date(2999, 1, 1)]
            if tp.name == "datetime":
                return [datetime(2000, 1, 1, 12, tzinfo=UTC), datetime(2999, 1, 1, 12, tzinfo=UTC)]
            if tp.name == "duration":
                return [
                    timedelta(minutes=15),
                    timedelta(0),
                    timedelta(days=3),
                    timedelta(seconds=-60),
                ]
        return []


def id_value(tp: t.Type) -> Any:
    """The aggregate id every scenario uses."""
    plain = t.strip_optional(tp)
    if plain == t.UUID:
        return UUID(int=1)
    if plain == t.INT:
        return 1
    if plain == t.STR:
        return "id-1"
    if plain == t.DECIMAL:
        return Decimal(1)
    if plain == t.DATE:
        return date(2026, 1, 1)
    raise Unknowable(f"an id of type {tp}")


# ---------------------------------------------------------------- the finder


class ScenarioFinder:
    """Find the happy path and each guard's rejection for the commands of one aggregate."""

    def __init__(self, scope: Scope, context: Context, agg: Aggregate) -> None:
        self.scope = scope
        self.context = context
        self.agg = agg
        self.state_types = {f.name: t.field_type(f, context, scope) for f in agg.state}
        self.unset = frozenset(
            f.name for f in agg.state if f.default is None and not f.type.optional
        )
        self.id_type = t.field_type(agg.id_field, context, scope)
        self._constants = Interpreter(t.constant_env(context, scope))
        self._appliers: dict[int, Interpreter] = {}
        self._initial: dict[str, Any] | None = None

    def const(self, f: Field, tp: t.Type) -> Any:
        assert f.default is not None
        return _widen(self._constants.eval(f.default, {}, {}, tp), tp)

    def initial_state(self) -> dict[str, Any]:
        """The state's defaults (a new dict each time: a sample's state starts from it)."""
        if self._initial is None:
            self._initial = {
                f.name: self.const(f, self.state_types[f.name]) if f.default else None
                for f in self.agg.state
            }
        return dict(self._initial)

    def command_types(self, cmd: Command) -> dict[str, t.Type]:
        """The command's fields by name, the aggregate id first (as in its class)."""
        fields = t.message_fields(cmd.fields, self.agg, self.context, self.scope)
        id_name = self.agg.id_field.name
        return {id_name: fields[id_name]} | {n: v for n, v in fields.items() if n != id_name}

    def scenarios(self, cmd: Command) -> tuple[Outcome | None, list[Outcome | None]]:
        """The happy path (or None) and, per guard, its rejection (or None)."""
        env = t.command_env(cmd, self.scope)
        # the generated tests' aggregates read views without rows (`testing.when`)
        interp = Interpreter(env, self.unset, rows={})
        early, late = (interp.with_clock(clock) for clock in CLOCKS)
        exprs: list[Expr] = [r.condition for r in cmd.requires]
        exprs += [e.condition for e in cmd.emits if e.condition is not None]
        cands = Candidates(self.scope, literals_in(exprs))
        rng = random.Random(f"{self.context.name}.{self.agg.name}.{cmd.name}")
        pools = self.pools(cmd, cands)
        guards = [_Guard(index, r.condition, env, pools) for index, r in enumerate(cmd.requires)]
        # what each guard gave for the values it reads: the samples share most of them
        memo: dict[tuple[int, ...], bool | None] = {}
        happy: Outcome | None = None
        rejections: list[Outcome | None] = [None] * len(cmd.requires)
        for picks in self.samples(pools, rng):
            sample: tuple[dict[str, Any], dict[str, Any]] | None = None  # built when needed
            # in order, up to the first that fails, as the generated code checks them
            failing: int | None = None
            passed: bool | None = True
            for guard in guards:
                key = guard.key(picks)
                passed = memo.get(key, _UNTRIED)
                if passed is _UNTRIED:
                    sample = sample or self.sample(cmd, pools, picks)
                    passed = memo[key] = guard.passes(early, late, *sample)
                    guard.tried(passed)
                if not passed:
                    failing = guard.index
                    break
            if failing is None:
                if happy is None:
                    command, state = sample or self.sample(cmd, pools, picks)
                    happy = self._accepted(cmd, env, (interp, early, late), state, command)
            elif passed is not None and rejections[failing] is None:
                command, state = sample or self.sample(cmd, pools, picks)
                message = cmd.requires[failing].message
                rejections[failing] = Outcome(state, command, message, (), None)
            if happy is not None and all(
                r is not None or g.never_fails for r, g in zip(rejections, guards, strict=True)
            ):
                break
        return happy, rejections

    def pools(self, cmd: Command, cands: Candidates) -> list[tuple[str, str, list[Any]]]:
        """The values to try, as (``message`` or ``state``, field, values): the command's
        fields but its aggregate's id, then (unless it creates) the state's."""
        id_name = self.agg.id_field.name
        out = [
            ("message", n, cands.of(tp))
            for n, tp in self.command_types(cmd).items()
            if n != id_name
        ]
        if not cmd.creates:
            initial = self.initial_state()
            for n, tp in self.state_types.items():
                pool = [v for v in cands.of(tp) if not (v is None and n in self.unset)]
                if initial.get(n) is not None and initial[n] in pool:
                    pool.remove(initial[n])
                    pool.insert(0, initial[n])
                out.append(("state", n, pool))
        return out

    def samples(
        self, pools: list[tuple[str, str, list[Any]]], rng: random.Random
    ) -> Iterator[tuple[int, ...]]:
        """Up to ``ATTEMPTS`` samples, each once, as which value of each pool they take;
        the first takes each pool's first value."""
        sizes = [len(pool) for _, _, pool in pools]
        if not all(sizes):
            return
        seen: set[tuple[int, ...]] = set()
        distinct = math.prod(sizes)
        for attempt in range(ATTEMPTS):
            picks = tuple(map(rng.randrange, sizes)) if attempt else (0,) * len(sizes)
            # the samples repeat when the pools are small: a repeat would find nothing new
            if picks in seen:
                continue
            seen.add(picks)
            yield picks
            if len(seen) == distinct:
                return

    def sample(
        self, cmd: Command, pools: list[tuple[str, str, list[Any]]], picks: tuple[int, ...]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The command and the state of a sample."""
        id_name = self.agg.id_field.name
        chosen = [(source, n, pool[i]) for (source, n, pool), i in zip(pools, picks, strict=True)]
        command = {n: v for source, n, v in chosen if source == "message"}
        command[id_name] = id_value(self.id_type)
        state = self.initial_state() | {n: v for source, n, v in chosen if source == "state"}
        if id_name in self.state_types and not cmd.creates:
            state[id_name] = command[id_name]
        return command, state

    def _accepted(
        self,
        cmd: Command,
        env: t.Env,
        interps: tuple[Interpreter, Interpreter, Interpreter],
        state: dict[str, Any],
        command: dict[str, Any],
    ) -> Outcome | None:
        try:
            events = self._events(cmd, env, interps, state, command)
        except Incomputable:
            return None  # rejected as incomputable: look for other values
        except Unknowable:
            return Outcome(state, command, None, None, None)
        try:
            after = dict(state)
            for number, (event, data) in enumerate(events, 1):
                after = self._apply(event, data, after, number)
        except Unknowable:
            return Outcome(state, command, None, events, None)
        return Outcome(state, command, None, events, after)

    def _events(
        self,
        cmd: Command,
        env: t.Env,
        interps: tuple[Interpreter, Interpreter, Interpreter],
        state: dict[str, Any],
        command: dict[str, Any],
    ) -> tuple[tuple[Event, dict[str, Any]], ...]:
        interp, early, late = interps
        out = []
        for emit in cmd.emits:
            if emit.condition is not None:
                emitted = bool(early.eval(emit.condition, command, state))
                if emitted != bool(late.eval(emit.condition, command, state)):
                    raise Unknowable("an emit condition that depends on the clock")
                if not emitted:
                    continue
            found = self.scope.resolve(self.context, emit.event.name, EVENT_KINDS)
            assert found is not None and isinstance(found.element, Event)
            event = found.element
            fields = list(event.fields)
            if not any(f.name == self.agg.id_field.name for f in fields):
                fields.insert(0, self.agg.id_field)
            assigned = {a.target: a for a in emit.assignments}
            data: dict[str, Any] = {}
            for f in fields:
                tp = t.field_type(f, self.context, self.scope)
                if f.name in assigned:
                    data[f.name] = interp.eval(assigned[f.name].value, command, state, tp)
                elif env.lookup_field(f.name) is not None:
                    data[f.name] = interp.eval(Name((f.name,), f.loc), command, state, tp)
                elif f.default is not None:
                    data[f.name] = self.const(f, tp)
                else:
                    data[f.name] = None
                data[f.name] = _widen(data[f.name], tp)
            out.append((event, data))
        return tuple(out)

    def _apply(
        self, event: Event, data: dict[str, Any], state: dict[str, Any], number: int
    ) -> dict[str, Any]:
        interp = self._appliers.get(id(event))
        if interp is None:
            env = t.apply_env(event, self.scope)
            interp = self._appliers[id(event)] = Interpreter(env, self.unset)
        ident = data[self.agg.id_field.name]
        interp.metadata = {
            "id": UUID(int=number),
            "position": number,
            "version": event.version,
            "recorded_at": RECORDED_AT,
            "stream": f"{self.context.name}.{self.agg.name}/{ident}",
            "stream_id": ident,
        }
        after = dict(state)
        assigned = {a.target for a in event.apply}
        for f in self.agg.state:
            tp = self.state_types[f.name]
            explicit: list[Assignment] = [a for a in event.apply if a.target == f.name]
            if explicit:
                a = explicit[-1]
                expr: Expr = a.value
                if a.op != "=":
                    expr = Binary(a.op[0], Name(("state", f.name), a.loc), a.value, a.loc)
                after[f.name] = _widen(interp.eval(expr, data, state, tp), tp)
            elif f.name in data and f.name not in assigned:
                after[f.name] = _widen(data[f.name], tp)
        return after


def inputs(expr: Expr, env: t.Env) -> tuple[set[tuple[str, str]] | None, bool]:
    """What ``expr`` reads, itself or through its ``let``s: the fields of the message and
    the state (None: not known, so any), and whether the clock (``now()``, ``today()``)."""
    fields: set[tuple[str, str]] | None = set()
    clock = False
    pending, seen = [expr], set()
    while pending:
        e = pending.pop()
        clock = clock or any(
            isinstance(sub, Call) and sub.function in ("now", "today")
            for sub in tc.subexpressions(e)
        )
        for binding in tc.analyse(e, env).bindings.values():
            if binding.source == "let" and binding.field not in seen:
                seen.add(binding.field)
                pending.append(env.lets[binding.field][1])
            elif binding.source in ("message", "state") and fields is not None:
                fields.add((binding.source, binding.field))
            elif binding.source not in ("let", "message", "state", "local", "member", "lookup"):
                fields = None
    return fields, clock


class _Guard:
    """A command's ``require`` (the ``index``-th), and which sampled values it reads."""

    def __init__(
        self, index: int, condition: Expr, env: t.Env, pools: list[tuple[str, str, list[Any]]]
    ) -> None:
        self.index = index
        self.condition = condition
        read, self.clocked = inputs(condition, env)
        #: the indexes in the pools of the values it reads
        self.reads = tuple(
            i for i, (source, name, _) in enumerate(pools) if read is None or (source, name) in read
        )
        self._untried = math.prod(len(pools[i][2]) for i in self.reads)
        self._failed = False

    def tried(self, passed: bool | None) -> None:
        """Count a combination of the values it reads as tried."""
        self._untried -= 1
        self._failed = self._failed or passed is False

    @property
    def never_fails(self) -> bool:
        """Every combination of the values it reads was tried, and none failed it."""
        return self._untried == 0 and not self._failed

    def key(self, picks: tuple[int, ...]) -> tuple[int, ...]:
        """This guard and the values of a sample it reads."""
        return (self.index, *[picks[i] for i in self.reads])

    def passes(
        self, early: Interpreter, late: Interpreter, command: dict[str, Any], state: dict[str, Any]
    ) -> bool | None:
        """Whether the guard holds; None when a test cannot know (an unknowable value, or
        a guard that reads the clock and answers differently at both ends of the years
        the tests may run in)."""
        try:
            ok = bool(early.eval(self.condition, command, state))
            if self.clocked and ok != bool(late.eval(self.condition, command, state)):
                return None
        except Unknowable:
            return None
        return ok


_UNTRIED: Any = object()


def _widen(value: Any, tp: t.Type) -> Any:
    """An int stored where a decimal or float is declared becomes one (in lists too)."""
    plain = t.strip_optional(tp)
    if isinstance(plain, t.ListType) and isinstance(value, tuple):
        return tuple(_widen(item, plain.element) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        if plain == t.DECIMAL:
            return Decimal(value)
        if plain == t.FLOAT:
            return float(value)
    if isinstance(value, Decimal) and plain == t.FLOAT:
        return float(value)
    return value
