"""Expressions get the precedence of the grammar and their locations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stormgen.diagnostics import Location
from stormgen.lang.loader import parse_text
from stormgen.model import nodes as n


def _condition(expr: str) -> n.Expr:
    parts = parse_text(f"context C {{ policy P {{ when E if {expr} then X }} }}", "f.storm")
    assert not isinstance(parts, list), parts
    condition = parts.contexts[0].policies[0].condition
    assert condition is not None
    return condition


def show(e: n.Expr) -> str:
    """A fully parenthesised rendering, to compare trees at a glance."""
    if isinstance(e, n.Binary):
        return f"({show(e.left)} {e.op} {show(e.right)})"
    if isinstance(e, n.Unary):
        return f"({e.op} {show(e.operand)})"
    if isinstance(e, n.Call):
        return f"{e.function}({', '.join(show(a) for a in e.args)})"
    if isinstance(e, n.ListExpr):
        return f"[{', '.join(show(a) for a in e.items)}]"
    if isinstance(e, n.Name):
        return e.dotted
    return repr(e.value)


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("a or b and c", "(a or (b and c))"),
        ("a and b or c", "((a and b) or c)"),
        ("not a and b", "((not a) and b)"),
        ("not a == b", "(not (a == b))"),
        ("a == b + c * d", "(a == (b + (c * d)))"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b * c", "((a / b) * c)"),
        ("-a * b", "((- a) * b)"),
        ("- -a", "(- (- a))"),
        ("(a + b) * c", "((a + b) * c)"),
        ("a in [1, 2] and b not in c", "((a in [1, 2]) and (b not in c))"),
        ("a not   in c", "(a not in c)"),
        ("not not done", "(not (not done))"),
        ("len(x) > 0 or max(a, b) <= min(c, d)", "((len(x) > 0) or (max(a, b) <= min(c, d)))"),
        ("now() != event.recorded_at", "(now() != event.recorded_at)"),
        ("state.state == Status.Open", "(state.state == Status.Open)"),
        ("notes == note", "(notes == note)"),  # `not` is a whole word only
        ("a + 1 >= 2.50", "((a + 1) >= Decimal('2.50'))"),
        ('"a\\"b" + "c"', "('a\"b' + 'c')"),
        ("x == none or y == true or z == false", "(((x == None) or (y == True)) or (z == False))"),
        ("(a < b) == c", "((a < b) == c)"),
        ("[]", "[]"),
    ],
)
def test_precedence(source: str, tree: str) -> None:
    assert show(_condition(source)) == tree


def test_literals_keep_their_exact_value() -> None:
    e = _condition("4.50 == 42")
    assert isinstance(e, n.Binary)
    assert e.left == n.Literal(Decimal("4.50"), "decimal", Location("f.storm", 1, 34))
    assert str(e.left.value) == "4.50"  # the exact text, not a float
    assert e.right == n.Literal(42, "int", Location("f.storm", 1, 42))


def test_locations_of_operators_and_prefixes() -> None:
    e = _condition("a + -b")
    assert isinstance(e, n.Binary) and e.loc == Location("f.storm", 1, 34)
    assert isinstance(e.right, n.Unary) and e.right.loc == Location("f.storm", 1, 38)


@pytest.mark.parametrize(
    ("source", "column"),
    [("a < b < c", 40), ("a == b != c", 41), ("x in y in z", 41)],
)
def test_chained_comparisons_are_syntax_errors(source: str, column: int) -> None:
    result = parse_text(f"context C {{ policy P {{ when E if {source} then X }} }}", "f.storm")
    assert isinstance(result, list)
    (d,) = result
    assert (d.code, d.location) == ("E001", Location("f.storm", 1, column))
    assert d.message == "comparisons cannot be chained: write `a < b and b < c`"


def test_only_a_function_name_can_be_called() -> None:
    result = parse_text("context C { policy P { when E if a.b(1) then X } }", "f.storm")
    assert isinstance(result, list)
    assert [(d.code, d.message, d.location) for d in result] == [
        ("E001", "only a built-in function can be called, not 'a.b'", Location("f.storm", 1, 34))
    ]
