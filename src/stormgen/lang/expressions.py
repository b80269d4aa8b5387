"""Give the grammar's flat operator chains the precedence of docs/reference/expressions.md.

The grammar reads ``a or not b == c + d * -e`` as operands and operators in a row; this
module builds the tree, loosest first: ``or``; ``and``; ``not``; comparisons (not
chained); ``+ -``; ``* /``; unary ``-``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stormgen.diagnostics import Location
from stormgen.model.nodes import Binary, Expr, Unary

# Binding powers (left, right): left-associative operators bind tighter on the right.
_INFIX: dict[str, tuple[int, int]] = {
    "or": (1, 2),
    "and": (3, 4),
    "==": (7, 8),
    "!=": (7, 8),
    "<": (7, 8),
    "<=": (7, 8),
    ">": (7, 8),
    ">=": (7, 8),
    "in": (7, 8),
    "not in": (7, 8),
    "+": (9, 10),
    "-": (9, 10),
    "*": (11, 12),
    "/": (11, 12),
}
_PREFIX = {"not": 5, "-": 13}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})


class ChainedComparison(Exception):
    """``a < b < c``: comparisons do not chain (a syntax error, E001)."""

    def __init__(self, loc: Location) -> None:
        super().__init__("comparisons cannot be chained: write `a < b and b < c`")
        self.loc = loc


class Chain:
    """Precedence climbing over one flat chain of operands (textX objects) and operators.

    ``primary`` turns an operand without a prefix into an expression; ``prefixed``
    unpacks a ``Prefixed`` operand into its operator, its operand and its location;
    ``op_at`` gives an operator's text and location.
    """

    __slots__ = ("i", "loc_of", "operands", "operators", "prefixed", "primary")

    def __init__(
        self,
        operands: list[Any],
        operators: list[Any],
        primary: Callable[[Any], Expr],
        prefixed: Callable[[Any], tuple[str, Any, Location] | None],
        loc_of: Callable[[Any], Location],
    ) -> None:
        self.operands = operands
        self.operators = operators
        self.primary = primary
        self.prefixed = prefixed
        self.loc_of = loc_of
        self.i = 0  # index of the next operand; operator i-1 stands before it

    def parse(self) -> Expr:
        return self._expr(0)

    def _operand(self, operand: Any) -> Expr:
        pre = self.prefixed(operand)
        if pre is None:
            return self.primary(operand)
        op, inner, loc = pre
        # The prefix covers the operand and every following operator binding tighter.
        return Unary("not" if op == "not" else "-", self._climb(inner, _PREFIX[op]), loc)

    def _expr(self, min_bp: int) -> Expr:
        operand = self.operands[self.i]
        self.i += 1
        return self._climb_from(self._operand(operand), min_bp)

    def _climb(self, operand: Any, min_bp: int) -> Expr:
        return self._climb_from(self._operand(operand), min_bp)

    def _climb_from(self, lhs: Expr, min_bp: int) -> Expr:
        compared = False
        while self.i < len(self.operands):
            opnode = self.operators[self.i - 1]
            op = " ".join(opnode.op.split())  # `not   in` is `not in`
            left, right = _INFIX[op]
            if left < min_bp:
                break
            if op in COMPARISONS:
                if compared:
                    raise ChainedComparison(self.loc_of(opnode))
                compared = True
            start = lhs.loc
            rhs = self._expr(right)
            lhs = Binary(op, lhs, rhs, start)
        return lhs
