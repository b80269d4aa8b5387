"""The checker's operators: ``not``, negation, arithmetic, ``and``/``or``, comparisons, ``in``.

``and``/``or`` narrow: ``x != none and x > 0`` checks its right operand with ``x``
known not to be none. A mixin of :class:`stormgen.model.typecheck._Checker`; see
:mod:`stormgen.model.typecheck`.
"""

from __future__ import annotations

from stormgen.model.nodes import (
    Binary,
    Expr,
    Name,
    Unary,
)
from stormgen.model.typecheck_base import MIX_HELP, CheckerBase, describe, mismatch, none_tests
from stormgen.model.types import (
    BOOL,
    DATE,
    DATETIME,
    DECIMAL,
    DURATION,
    INT,
    NONE,
    STR,
    UNKNOWN,
    ListType,
    Type,
    comparable,
    is_numeric,
    numeric_join,
    strip_optional,
    time_arithmetic,
    unify,
)

_TIMES = (DATE, DATETIME)
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ORDERINGS = frozenset({"<", "<=", ">", ">="})


class OperatorChecker(CheckerBase):
    """The type of a unary or binary operation."""

    def _unary(self, e: Unary, narrowed: frozenset[str]) -> Type:
        t = self.expr(e.operand, None, narrowed)
        if t is UNKNOWN:
            return BOOL if e.op == "not" else UNKNOWN
        if e.op == "not":
            if t != BOOL:
                self.problems.append(mismatch(f"`not` needs a bool, not {t}", e.operand.loc))
            return BOOL
        if self._maybe_none(e.operand, t):
            return UNKNOWN
        if t == DURATION:
            return t  # `-minutes(5)`: a duration backwards
        if not is_numeric(t):
            self.problems.append(mismatch(f"cannot negate {t}", e.operand.loc))
            return UNKNOWN
        return t

    def _starts_unresolved(self, e: Expr) -> bool:
        """Whether ``e`` is a bare name that only an expected enum could resolve."""
        return (
            isinstance(e, Name) and len(e.parts) == 1 and self.env.lookup_field(e.parts[0]) is None
        )

    def _binary(self, e: Binary, narrowed: frozenset[str]) -> Type:
        op = e.op
        if op in ("and", "or"):
            a = self.expr(e.left, None, narrowed)
            # `x != none and x > 0`: in the right operand x is known not to be none.
            right_narrowed = narrowed | none_tests(e.left, op == "and")
            b = self.expr(e.right, None, frozenset(right_narrowed))
            for side, t in ((e.left, a), (e.right, b)):
                if t is not UNKNOWN and t != BOOL:
                    self.problems.append(mismatch(f"`{op}` needs bool operands, not {t}", side.loc))
            return BOOL
        if op in _COMPARISONS or op in ("in", "not in"):
            return self._comparison(e, narrowed)
        # Arithmetic: the right operand may be an enum member only by mistake, but the
        # left operand's type still helps list literals (`tags + [Urgent]`).
        a = self.expr(e.left, None, narrowed)
        b = self.expr(e.right, a if isinstance(a, ListType) else None, narrowed)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if self._maybe_none(e.left, a) or self._maybe_none(e.right, b):
            return UNKNOWN
        verb = _VERBS.get(op, op)
        if op == "+":
            if a == STR and b == STR:
                return STR
            if isinstance(a, ListType) and isinstance(b, ListType):
                joined = unify(a, b)
                if joined is None:
                    self.problems.append(mismatch(f"cannot join {a} and {b}", e.loc))
                    return UNKNOWN
                return joined
        if DURATION in (a, b) or (a in _TIMES and a == b and op == "-"):
            timed, help_ = time_arithmetic(op, a, b)
            if timed is None:
                self.problems.append(mismatch(f"cannot {verb} {a} and {b}", e.loc, help_))
                return UNKNOWN
            return timed
        if is_numeric(a) and is_numeric(b):
            joined = numeric_join(a, b)
            if joined is None:
                self.problems.append(mismatch(f"cannot {verb} {a} and {b}", e.loc, MIX_HELP))
                return UNKNOWN
            if op == "/" and a == INT and b == INT:
                return DECIMAL
            return joined
        help_ = None
        if a in _TIMES or b in _TIMES:
            help_ = time_arithmetic(op, a, b)[1]
        self.problems.append(mismatch(f"cannot {verb} {a} and {b}", e.loc, help_))
        return UNKNOWN

    def _comparison(self, e: Binary, narrowed: frozenset[str]) -> Type:
        op = e.op
        membership = op in ("in", "not in")
        # Infer the side that does not need an expected enum first (`Placed == status`).
        if self._starts_unresolved(e.left) and not self._starts_unresolved(e.right):
            b = self.expr(e.right, None, narrowed)
            wanted = b.element if membership and isinstance(b, ListType) else b
            a = self.expr(e.left, wanted, narrowed)
        else:
            a = self.expr(e.left, None, narrowed)
            b = self.expr(e.right, ListType(a) if membership else a, narrowed)
        if a is UNKNOWN or b is UNKNOWN:
            return BOOL
        if (a is NONE or b is NONE) and op in ("==", "!="):
            other = e.right if a is NONE else e.left
            if isinstance(other, Name) and other.dotted in narrowed:
                return BOOL  # an optional known not to be none here: still an optional
        if membership:
            if a == STR and b == STR:
                return BOOL
            if self._maybe_none(e.right, b):
                return BOOL
            if not isinstance(b, ListType):
                self.problems.append(
                    mismatch(
                        f"`{op}` needs a list (or a str in a str) on the right, not {b}", e.loc
                    )
                )
            elif not comparable(a, b.element):
                self.problems.append(mismatch(f"cannot look for {a} in {b}", e.loc))
            return BOOL
        if op in _ORDERINGS:
            self._ordered_pair(f"`{op}`", e.left, a, e.right, b, e.loc)
            return BOOL
        if not comparable(a, b):
            help_ = (
                MIX_HELP
                if is_numeric(strip_optional(a)) and is_numeric(strip_optional(b))
                else None
            )
            if a is NONE or b is NONE:
                other = e.left if b is NONE else e.right
                help_ = f"{describe(other)} is never none; only an optional (T?) may be"
            self.problems.append(mismatch(f"cannot compare {a} with {b}", e.loc, help_))
        return BOOL
