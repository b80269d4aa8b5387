"""Given-when-then scenarios for the generated tests, found by evaluating the model.

For every command, :class:`ScenarioFinder` looks for a state and a command that pass
all guards (the happy path), and for each guard one that passes the guards before it
and fails it (its rejection). It evaluates the model's expressions with a small
interpreter of the model's expressions (independent of the compiled Python), so the generated
tests check the generated code against the model's meaning: the events expected, with
their fields sourced as the model says, and the state after ``apply``.

The search is a deterministic sampling of typical values (0, 1, -1, the literals the
expressions mention, each enum member, empty and one-item lists...). When nothing is
found, or an expression depends on the clock or fresh ids, the scenario is left out
and the test file says so.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
    Comprehension,
    Conditional,
    Construction,
    Context,
    Event,
    Expr,
    Field,
    ListExpr,
    Literal,
    Name,
    TypeRef,
    Unary,
)
from stormgen.model.scope import EVENT_KINDS, Scope
from stormgen.runtime.testing import RECORDED_AT as TESTS_RECORDED_AT

ATTEMPTS = 400
#: When the generated tests' events are recorded (what ``event.recorded_at`` reads):
#: ``stormgen.runtime.testing.when`` records them then.
RECORDED_AT = TESTS_RECORDED_AT
#: A guard that reads the clock is tried at both ends of the years the tests may run
#: in; a case is used only when both agree (candidate dates lie outside that range).
CLOCKS = (datetime(2001, 1, 1, tzinfo=UTC), datetime(2990, 1, 1, tzinfo=UTC))


class Unknowable(Exception):
    """An expression whose value a test cannot know in advance (clock, fresh ids, unset)."""


class Incomputable(Unknowable):
    """An expression that fails on these values (a division by zero): the command would
    be rejected for it, so the values make no accepted case."""


@dataclass(frozen=True)
class EnumValue:
    """An enum member as the interpreter sees it."""

    enum: str
    context: str | None
    member: str


@dataclass(frozen=True)
class Outcome:
    """A found scenario: the state and command, and what should happen."""

    state: dict[str, Any]  # the given state, field -> value
    command: dict[str, Any]  # the command's fields (the aggregate id included)
    rejected: str | None  # the guard message, or None when accepted
    events: tuple[tuple[Event, dict[str, Any]], ...] | None  # None: not knowable
    after: dict[str, Any] | None  # the state after the events, when knowable


# ---------------------------------------------------------------- the interpreter


class Interpreter:
    """Evaluate expressions over plain values; names are bound by ``typecheck.analyse``."""

    def __init__(
        self, env: t.Env, unset: frozenset[str] = frozenset(), clock: datetime | None = None
    ) -> None:
        self.env = env
        self.unset = unset  # state fields that are None until an event sets them
        self.clock = clock  # what now() reads; None: the clock is unknowable
        # ``event.<metadata>`` of the event being applied, as the generated tests record it
        self.metadata: dict[str, Any] | None = None
        self._analyses: dict[tuple[int, int], tc.Analysis] = {}
        # Keeps analysed nodes and types alive, so that their ids stay theirs.
        self._keep: list[tuple[Expr, t.Type | None]] = []
        self._locals: dict[str, Any] = {}  # the variables of the comprehensions around

    def with_clock(self, clock: datetime | None) -> Interpreter:
        """The same interpreter reading ``clock``; it shares the analyses (which do not
        depend on the clock) instead of repeating them."""
        other = Interpreter(self.env, self.unset, clock)
        other._analyses = self._analyses
        other._keep = self._keep
        return other

    def eval(
        self,
        expr: Expr,
        message: Mapping[str, Any],
        state: Mapping[str, Any],
        want: t.Type | None = None,
    ) -> Any:
        key = (id(expr), id(want))
        analysis = self._analyses.get(key)
        if analysis is None:
            # The meaning of the names does not depend on the values: analyse once.
            analysis = self._analyses[key] = tc.analyse(expr, self.env, want)
            self._keep.append((expr, want))
        if analysis.problems:
            raise Unknowable("the expression does not type-check")
        return self._eval(expr, analysis.bindings, message, state)

    def _eval(
        self,
        e: Expr,
        bindings: dict[int, tc.Binding],
        message: Mapping[str, Any],
        state: Mapping[str, Any],
    ) -> Any:
        ev = self._eval
        if isinstance(e, Literal):
            return e.value
        if isinstance(e, Name):
            b = bindings[id(e)]
            if b.source in ("local", "let"):
                if b.source == "local":
                    value = self._locals[b.field]
                else:
                    value = self.eval(self.env.lets[b.field][1], message, state)
                return _path(value, b.path)
            if b.source == "member":
                assert b.enum is not None
                return EnumValue(b.enum.name, b.enum.context_name, b.field)
            if b.source == "metadata":
                if self.metadata is None or b.field not in self.metadata:
                    raise Unknowable("event metadata")
                return self.metadata[b.field]
            source = message if b.source == "message" else state
            if b.field not in source:
                raise Unknowable(f"'{b.field}' has no value")
            value = source[b.field]
            if value is None and b.source == "state" and b.field in self.unset:
                raise Unknowable("an unset state field")
            for part in b.path:
                if not isinstance(value, dict):
                    raise Unknowable("a field of none")
                value = value[part]
            return value
        if isinstance(e, ListExpr):
            return tuple(ev(i, bindings, message, state) for i in e.items)
        if isinstance(e, Conditional):
            if ev(e.test, bindings, message, state):
                return ev(e.body, bindings, message, state)
            return ev(e.orelse, bindings, message, state)
        if isinstance(e, Comprehension):
            return self._each(e, bindings, message, state)
        if isinstance(e, Construction):
            return self._construct(e, bindings, message, state)
        if isinstance(e, Call) and e.function in t.GENERATOR_FUNCTIONS and len(e.args) == 1:
            arg = e.args[0]
            if isinstance(arg, Comprehension):
                items = self._each(arg, bindings, message, state)
            else:
                items = tuple(ev(arg, bindings, message, state))
            return _aggregate(e.function, items)
        if isinstance(e, Call):
            if e.function == "new_id" or (self.clock is None and e.function in ("now", "today")):
                raise Unknowable(f"{e.function}()")
            if e.function == "now":
                return self.clock
            if e.function == "today":
                assert self.clock is not None
                return self.clock.date()
            args = [ev(a, bindings, message, state) for a in e.args]
            if e.function == "len":
                return len(args[0])
            if e.function == "lower":
                return str(args[0]).lower()
            if e.function == "upper":
                return str(args[0]).upper()
            if e.function == "date":
                return args[0].date()
            if e.function == "min":
                return min(args[0], args[1])
            if e.function == "max":
                return max(args[0], args[1])
            return _text_or_number(e.function, args)
        if isinstance(e, Unary):
            value = ev(e.operand, bindings, message, state)
            return (not value) if e.op == "not" else -value
        assert isinstance(e, Binary)
        if e.op == "and":
            return ev(e.left, bindings, message, state) and ev(e.right, bindings, message, state)
        if e.op == "or":
            return ev(e.left, bindings, message, state) or ev(e.right, bindings, message, state)
        a = ev(e.left, bindings, message, state)
        b = ev(e.right, bindings, message, state)
        return _binary(e.op, a, b)

    def _each(
        self,
        c: Comprehension,
        bindings: dict[int, tc.Binding],
        message: Mapping[str, Any],
        state: Mapping[str, Any],
    ) -> tuple[Any, ...]:
        """The items of ``E for x in L if C``."""
        source = self._eval(c.source, bindings, message, state)
        if source is None:
            raise Unknowable("a list that is none")
        outer = self._locals.get(c.var, _ABSENT)
        out = []
        try:
            for item in source:
                self._locals[c.var] = item
                if c.condition is None or self._eval(c.condition, bindings, message, state):
                    out.append(self._eval(c.element, bindings, message, state))
        finally:
            if outer is _ABSENT:
                self._locals.pop(c.var, None)
            else:
                self._locals[c.var] = outer
        return tuple(out)

    def _construct(
        self,
        e: Construction,
        bindings: dict[int, tc.Binding],
        message: Mapping[str, Any],
        state: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A value as the interpreter holds one: its fields by name, defaults filled."""
        given = {a.target: self._eval(a.value, bindings, message, state) for a in e.assignments}
        vt = t.resolve_type(TypeRef(e.type.name, e.type.loc), self.env.context, self.env.scope)
        if not isinstance(vt, t.ValueType):
            raise Unknowable(f"unknown value {e.type.name}")
        out: dict[str, Any] = {}
        for f in vt.node.fields:
            if f.name in given:
                out[f.name] = given[f.name]
            elif f.default is not None:
                constants = Interpreter(t.constant_env(vt.context, self.env.scope))
                out[f.name] = constants.eval(
                    f.default, {}, {}, t.field_type(f, vt.context, self.env.scope)
                )
            else:
                out[f.name] = None
        return out


_ABSENT = object()


def _path(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(value, dict):
            raise Unknowable("a field of none")
        value = value[part]
    return value


def _aggregate(fn: str, items: tuple[Any, ...]) -> Any:
    """``any``/``all``/``sum``/``min``/``max``/``first`` of the items."""
    if fn == "any":
        return any(items)
    if fn == "all":
        return all(items)
    if fn == "first":
        return items[0] if items else None
    if any(i is None for i in items):
        raise Unknowable("none among the items")
    try:
        if fn == "sum":
            return sum(items)
        if fn == "min":
            return min(items, default=None)
        return max(items, default=None)
    except TypeError as exc:
        raise Unknowable(str(exc)) from None
    except ArithmeticError as exc:
        raise Incomputable(str(exc)) from None


def _text_or_number(fn: str, args: list[Any]) -> Any:
    """``round``, ``abs``, ``matches``, ``startswith``, ``endswith``."""
    if any(a is None for a in args):
        raise Unknowable(f"none in {fn}()")
    try:
        if fn == "round":
            return round(args[0], args[1])
        if fn == "abs":
            return abs(args[0])
        if fn == "matches":
            return re.fullmatch(args[1], args[0]) is not None
        if fn == "startswith":
            return str(args[0]).startswith(args[1])
        if fn == "endswith":
            return str(args[0]).endswith(args[1])
    except TypeError as exc:
        raise Unknowable(str(exc)) from None
    except ArithmeticError as exc:
        raise Incomputable(str(exc)) from None
    raise Unknowable(fn)


def _binary(op: str, a: Any, b: Any) -> Any:
    try:
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == "in":
            return a in b
        if op == "not in":
            return a not in b
        if a is None or b is None:
            raise Unknowable("none in arithmetic")
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        if op == ">=":
            return a >= b
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if isinstance(a, int) and isinstance(b, int):
                return Decimal(a) / Decimal(b)
            return a / b
    except TypeError as exc:
        raise Unknowable(str(exc)) from None
    except ArithmeticError as exc:
        raise Incomputable(str(exc)) from None
    raise Unknowable(op)


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

    def const(self, f: Field, tp: t.Type) -> Any:
        assert f.default is not None
        return _widen(self._constants.eval(f.default, {}, {}, tp), tp)

    def initial_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.agg.state:
            out[f.name] = self.const(f, self.state_types[f.name]) if f.default else None
        return out

    def command_types(self, cmd: Command) -> dict[str, t.Type]:
        """The command's fields by name, the aggregate id first (as in its class)."""
        fields = t.message_fields(cmd.fields, self.agg, self.context, self.scope)
        id_name = self.agg.id_field.name
        return {id_name: fields[id_name]} | {n: v for n, v in fields.items() if n != id_name}

    def scenarios(self, cmd: Command) -> tuple[Outcome | None, list[Outcome | None]]:
        """The happy path (or None) and, per guard, its rejection (or None)."""
        env = t.command_env(cmd, self.scope)
        interp = Interpreter(env, self.unset)
        early, late = (interp.with_clock(clock) for clock in CLOCKS)
        exprs: list[Expr] = [r.condition for r in cmd.requires]
        exprs += [e.condition for e in cmd.emits if e.condition is not None]
        cands = Candidates(self.scope, literals_in(exprs))
        rng = random.Random(f"{self.context.name}.{self.agg.name}.{cmd.name}")
        happy: Outcome | None = None
        rejections: list[Outcome | None] = [None] * len(cmd.requires)
        for state, command in self._samples(cmd, cands, rng):
            try:
                results = [bool(early.eval(r.condition, command, state)) for r in cmd.requires]
                later = [bool(late.eval(r.condition, command, state)) for r in cmd.requires]
            except Unknowable:
                continue
            if results != later:
                continue
            failing = next((i for i, ok in enumerate(results) if not ok), None)
            if failing is None:
                if happy is None:
                    happy = self._accepted(cmd, env, (interp, early, late), state, command)
            elif rejections[failing] is None:
                message = cmd.requires[failing].message
                rejections[failing] = Outcome(state, command, message, (), None)
            if happy is not None and all(r is not None for r in rejections):
                break
        return happy, rejections

    def _samples(
        self, cmd: Command, cands: Candidates, rng: random.Random
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        ctypes = self.command_types(cmd)
        id_name = self.agg.id_field.name
        pools_cmd = {n: cands.of(tp) for n, tp in ctypes.items() if n != id_name}
        initial = self.initial_state()
        pools_state: dict[str, list[Any]] = {}
        if not cmd.creates:
            for n, tp in self.state_types.items():
                pool = [v for v in cands.of(tp) if not (v is None and n in self.unset)]
                if initial.get(n) is not None and initial[n] in pool:
                    pool.remove(initial[n])
                    pool.insert(0, initial[n])
                pools_state[n] = pool
        if any(not p for p in pools_cmd.values()) or any(not p for p in pools_state.values()):
            return
        ident = id_value(self.id_type)
        for attempt in range(ATTEMPTS):
            pick = (lambda pool: pool[0]) if attempt == 0 else rng.choice
            command = {n: pick(pool) for n, pool in pools_cmd.items()}
            command[id_name] = ident
            state = dict(initial)
            for n, pool in pools_state.items():
                state[n] = pick(pool)
            if id_name in self.state_types and not cmd.creates:
                state[id_name] = ident
            yield state, command

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
