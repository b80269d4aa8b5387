"""Model elements written back as `.storm` text, for docs, board notes and diagrams."""

from __future__ import annotations

from decimal import Decimal

from stormgen.model.nodes import (
    Assignment,
    Binary,
    Call,
    Comprehension,
    Conditional,
    Construction,
    Expr,
    Field,
    ListExpr,
    Literal,
    Lookup,
    Name,
    SetTimer,
    Then,
    Unary,
)

# Loosest first, as the grammar has them; a child binding looser than its parent gets parens.
_PRECEDENCE = {
    "if": 0.5,
    "or": 1,
    "and": 2,
    "not": 3,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "in": 4,
    "not in": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "neg": 7,
}


def _literal(lit: Literal) -> str:
    if lit.kind == "none":
        return "none"
    if lit.kind == "bool":
        return "true" if lit.value else "false"
    if lit.kind == "str":
        text = str(lit.value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{text}"'
    value = lit.value
    return str(value) if isinstance(value, int | Decimal) else repr(value)


def _for(c: Comprehension) -> str:
    text = f"{expression(c.element)} for {c.var} in {expression(c.source, 1)}"
    if c.condition is not None:
        text += f" if {expression(c.condition, 1)}"
    return text


def expression(expr: Expr, parent: float = 0) -> str:
    """The source text of an expression, with only the parentheses it needs."""
    if isinstance(expr, Conditional):
        prec = _PRECEDENCE["if"]
        body = expression(expr.body, 1)
        text = f"{body} if {expression(expr.test, 1)} else {expression(expr.orelse, prec)}"
        return f"({text})" if prec < parent else text
    if isinstance(expr, Comprehension):
        return _for(expr) if expr.generator else f"[{_for(expr)}]"
    if isinstance(expr, Construction):
        return f"{expr.type.name} {{ " + ", ".join(assignment(a) for a in expr.assignments) + " }"
    if isinstance(expr, Lookup):
        return f"{expr.view.name}[{expression(expr.key)}]" + "".join(f".{p}" for p in expr.path)
    if isinstance(expr, Literal):
        return _literal(expr)
    if isinstance(expr, Name):
        return expr.dotted
    if isinstance(expr, ListExpr):
        return "[" + ", ".join(expression(i) for i in expr.items) + "]"
    if isinstance(expr, Call):
        return f"{expr.function}(" + ", ".join(expression(a) for a in expr.args) + ")"
    if isinstance(expr, Unary):
        prec = _PRECEDENCE["not" if expr.op == "not" else "neg"]
        inner = expression(expr.operand, prec)
        text = f"not {inner}" if expr.op == "not" else f"-{inner}"
    else:
        assert isinstance(expr, Binary)
        prec = _PRECEDENCE.get(expr.op, 4)
        # Left-associative: the right operand of the same precedence needs parentheses.
        text = f"{expression(expr.left, prec)} {expr.op} {expression(expr.right, prec + 1)}"
    return f"({text})" if prec < parent else text


def then_tail(t: Then) -> str:
    """What follows a `then` line's command: `` for x in L [if C]`` or `` if C``."""
    if t.fan is not None:
        text = f" for {t.fan.var} in {expression(t.fan.source, 1)}"
        if t.fan.condition is not None:
            text += f" if {expression(t.fan.condition, 1)}"
        return text
    return f" if {expression(t.condition)}" if t.condition is not None else ""


def assignment(a: Assignment) -> str:
    return f"{a.target} {a.op} {expression(a.value)}"


def field_line(f: Field) -> str:
    """``name: Type [= default] [pii] [was old]`` (the description is kept apart)."""
    text = f"{f.name}: {f.type}"
    if f.default is not None:
        text += f" = {expression(f.default)}"
    if f.pii:
        text += " pii"
    if f.was:
        text += f" was {f.was}"
    return text


def timer_due(timer: SetTimer) -> str:
    """When a process's timer is due, as its `timer` line says (`after minutes(15)`)."""
    if timer.after is not None:
        return f"after {expression(timer.after)}"
    assert timer.at is not None
    return f"at {expression(timer.at)}"
