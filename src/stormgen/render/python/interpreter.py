"""The interpreter of the model's expressions that finds the generated tests' scenarios.

It evaluates an expression over plain values (names bound by ``typecheck.analyse``),
independent of the compiled Python, so that :mod:`stormgen.render.python.scenarios` can
predict what the generated code must do; what a test cannot know in advance (the clock,
fresh ids, an unset field) raises :class:`Unknowable`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from stormgen.model import typecheck as tc
from stormgen.model import types as t
from stormgen.model.nodes import (
    Binary,
    Call,
    Comprehension,
    Conditional,
    Construction,
    Expr,
    ListExpr,
    Literal,
    Name,
    TypeRef,
    Unary,
)


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
        self._types: dict[int, t.Type] = {}  # the static type of every node analysed

    def with_clock(self, clock: datetime | None) -> Interpreter:
        """The same interpreter reading ``clock``; it shares the analyses (which do not
        depend on the clock) instead of repeating them."""
        other = Interpreter(self.env, self.unset, clock)
        other._analyses = self._analyses
        other._keep = self._keep
        other._types = self._types
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
            self._types.update(analysis.types)
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
            # a sum of durations starts at no time, as the compiled code does
            durations = t.strip_optional(self._types.get(id(e), t.INT)) == t.DURATION
            return _aggregate(e.function, items, timedelta(0) if durations else 0)
        if isinstance(e, Call):
            if e.function == "new_id" or (self.clock is None and e.function in ("now", "today")):
                raise Unknowable(f"{e.function}()")
            if e.function == "now":
                return self.clock
            if e.function == "today":
                assert self.clock is not None
                return self.clock.date()
            args = [ev(a, bindings, message, state) for a in e.args]
            if any(a is None for a in args):
                # an optional the guards before would have stopped: no case to find here
                raise Unknowable(f"none in {e.function}()")
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
            if e.function in t.DURATION_UNITS:
                return _duration(e.function, args[0])
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


def _aggregate(fn: str, items: tuple[Any, ...], start: Any = 0) -> Any:
    """``any``/``all``/``sum``/``min``/``max``/``first`` of the items (``sum`` from
    ``start``)."""
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
            return sum(items, start)
        if fn == "min":
            return min(items, default=None)
        return max(items, default=None)
    except TypeError as exc:
        raise Unknowable(str(exc)) from None
    except ArithmeticError as exc:
        raise Incomputable(str(exc)) from None


def _duration(unit: str, amount: Any) -> timedelta:
    """``minutes(15)``: ``amount`` whole units."""
    try:
        return timedelta(**{unit: amount})
    except OverflowError as exc:
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
