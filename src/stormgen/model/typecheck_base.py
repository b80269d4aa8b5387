"""What every part of the expression type checker shares (:mod:`stormgen.model.typecheck`).

The meaning of a name (:class:`Binding`), the E401/E402 findings and their wording, the
narrowing of optionals by a condition (:func:`none_tests`), and :class:`CheckerBase`: the
state of one pass (types, bindings, problems, the variables of the ``for``s around) with
the checks of operands that names, calls and operators all make.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.model.nodes import (
    Binary,
    Call,
    Expr,
    Literal,
    Name,
    Unary,
)
from stormgen.model.types import (
    BOOL,
    NONE,
    ORDERED,
    UNKNOWN,
    EnumType,
    Env,
    OptionalType,
    Primitive,
    Source,
    Type,
    is_numeric,
    numeric_join,
)


@dataclass(frozen=True, slots=True)
class Binding:
    """What a :class:`Name` means: a field of the message or state, event metadata, or a member.

    ``field`` is the field (or metadata, or member) name; ``path`` the value fields
    read from it after that (``drink.size`` → field ``drink``, path ``("size",)``).
    """

    source: Source
    field: str
    path: tuple[str, ...] = ()
    enum: EnumType | None = None


def describe(expr: Expr) -> str:
    """A short quote of an expression for messages: a name, a literal or a call."""
    if isinstance(expr, Name):
        return f"`{expr.dotted}`"
    if isinstance(expr, Literal):
        return literal_text(expr)
    if isinstance(expr, Call):
        return f"{expr.function}()"
    return "the expression"


def literal_text(lit: Literal) -> str:
    """A literal as it would be written."""
    if lit.kind == "none":
        return "none"
    if lit.kind == "bool":
        return "true" if lit.value else "false"
    if lit.kind == "str":
        return '"' + str(lit.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(lit.value)


def mismatch(message: str, loc: Location, help: str | None = None) -> Diagnostic:
    """An E402 finding: ``type mismatch: <message>``."""
    return Diagnostic("E402", Level.ERROR, f"type mismatch: {message}", loc, help)


def unknown_name(message: str, loc: Location, help: str | None = None) -> Diagnostic:
    """An E401 finding."""
    return Diagnostic("E401", Level.ERROR, message, loc, help)


def none_tests(expr: Expr, when: bool) -> set[str]:
    """Names that cannot be none when ``expr`` evaluates to ``when`` (for ``and``/``or``)."""
    if isinstance(expr, Unary) and expr.op == "not":
        return none_tests(expr.operand, not when)
    if isinstance(expr, Binary):
        if expr.op == ("and" if when else "or"):
            return none_tests(expr.left, when) | none_tests(expr.right, when)
        if expr.op == ("!=" if when else "=="):
            left, right = expr.left, expr.right
            if isinstance(right, Literal) and right.kind == "none" and isinstance(left, Name):
                return {left.dotted}
            if isinstance(left, Literal) and left.kind == "none" and isinstance(right, Name):
                return {right.dotted}
    return set()


MIX_HELP = "float and decimal never mix; declare both the same type"


class CheckerBase(ABC):
    """The state of one pass over an expression tree, and the operand checks shared by its parts."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.problems: list[Diagnostic] = []
        self.types: dict[int, Type] = {}
        self.bindings: dict[int, Binding] = {}
        self.locals: dict[str, Type] = dict(env.locals)  # variables of the `for`s around

    @abstractmethod
    def expr(self, e: Expr, expected: Type | None, narrowed: frozenset[str]) -> Type:
        """The type of ``e`` (recorded for every node); the full checker dispatches it."""

    def _test(self, test: Expr, narrowed: frozenset[str], what: str, help: str) -> None:
        """Check a condition: E402 unless it is bool."""
        t = self.expr(test, BOOL, narrowed)
        if t is not UNKNOWN and t != BOOL:
            self.problems.append(mismatch(f"{what} must be bool, not {t}", test.loc, help))

    def _maybe_none(self, e: Expr, t: Type) -> bool:
        """Report an optional (or none) operand where a value is needed; True if reported."""
        if t is NONE:
            self.problems.append(mismatch("none has no value to compute with", e.loc))
            return True
        if isinstance(t, OptionalType):
            what = describe(e)
            hint = f"test it first: '{e.dotted} != none and ...'" if isinstance(e, Name) else None
            if isinstance(e, Call) and e.function in ("min", "max", "first"):
                hint = (
                    f"{e.function}() is none when nothing is left: name it with `let` and "
                    "test it ('require m != none else ...'), or test it in place "
                    "('x if x != none else ...' needs a name too)"
                )
            self.problems.append(mismatch(f"{what} may be none ({t})", e.loc, hint))
            return True
        return False

    def _ordered_pair(
        self, what: str, left: Expr, a: Type, right: Expr, b: Type, loc: Location
    ) -> Type | None:
        """The common type of two ordered operands (``<``, min, max), or None if reported."""
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if self._maybe_none(left, a) or self._maybe_none(right, b):
            return None
        if is_numeric(a) and is_numeric(b):
            joined = numeric_join(a, b)
            if joined is None:
                self.problems.append(mismatch(f"cannot compare {a} with {b}", loc, MIX_HELP))
            return joined
        if a == b and isinstance(a, Primitive) and a.name in ORDERED:
            return a
        if a == b:
            self.problems.append(
                mismatch(
                    f"{what} cannot order {a} values",
                    loc,
                    "ordering works on numbers, str, date, datetime and duration",
                )
            )
        else:
            self.problems.append(mismatch(f"cannot compare {a} with {b}", loc))
        return None
