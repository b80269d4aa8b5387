"""The static type checker of `.storm` expressions (docs/language.md): E401 and E402.

:func:`analyse` walks one expression in an :class:`~stormgen.model.types.Env` and
returns its type, the problems found in it (each located at the offending
sub-expression, with a ``help:`` line where a fix is known), and the type and meaning
(:class:`Binding`) of every node, which the code generator and the model interpreter
read. The types themselves live in :mod:`stormgen.model.types`; what the parts of the
checker share in :mod:`stormgen.model.typecheck_base`, and its names, built-in calls and
operators in ``typecheck_names``, ``typecheck_calls`` and ``typecheck_operators``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from stormgen.diagnostics import Diagnostic, Level
from stormgen.model.hints import did_you_mean
from stormgen.model.nodes import (
    Binary,
    Call,
    Command,
    Comprehension,
    Conditional,
    Construction,
    Expr,
    Let,
    ListExpr,
    Literal,
    Lookup,
    Name,
    Require,
    TypeRef,
    Unary,
)
from stormgen.model.typecheck_base import Binding as Binding
from stormgen.model.typecheck_base import describe as describe
from stormgen.model.typecheck_base import literal_text as literal_text
from stormgen.model.typecheck_base import mismatch as mismatch
from stormgen.model.typecheck_base import none_tests
from stormgen.model.typecheck_base import unknown_name as unknown_name
from stormgen.model.typecheck_calls import CallChecker
from stormgen.model.typecheck_names import NameChecker
from stormgen.model.typecheck_operators import OperatorChecker
from stormgen.model.types import (
    DECIMAL,
    FRACTION,
    NONE,
    NOTHING,
    PRIMITIVE_TYPES,
    UNKNOWN,
    Env,
    ListType,
    Type,
    ValueType,
    assignable,
    resolve_type,
    strip_optional,
    unify,
    value_fields,
)

# ---------------------------------------------------------------- inference


@dataclass(slots=True)
class Analysis:
    """The outcome of type-checking one expression.

    ``types`` and ``bindings`` are keyed by ``id(node)`` of the expression's nodes.
    """

    type: Type
    problems: list[Diagnostic]
    types: dict[int, Type]
    bindings: dict[int, Binding]


def infer(expr: Expr, env: Env, expected: Type | None = None) -> tuple[Type, list[Diagnostic]]:
    """The type of ``expr`` in ``env`` and the E401/E402 problems found in it."""
    result = analyse(expr, env, expected)
    return result.type, result.problems


def analyse(expr: Expr, env: Env, expected: Type | None = None) -> Analysis:
    """Type-check ``expr``: its type, problems, and the type and meaning of every node."""
    checker = _Checker(env)
    t = checker.expr(expr, expected, env.narrowed)
    return Analysis(t, checker.problems, checker.types, checker.bindings)


def subexpressions(expr: Expr) -> Iterator[Expr]:
    """``expr`` and every expression inside it, parents first."""
    yield expr
    if isinstance(expr, ListExpr):
        children: tuple[Expr | None, ...] = expr.items
    elif isinstance(expr, Call):
        children = expr.args
    elif isinstance(expr, Unary):
        children = (expr.operand,)
    elif isinstance(expr, Binary):
        children = (expr.left, expr.right)
    elif isinstance(expr, Conditional):
        children = (expr.body, expr.test, expr.orelse)
    elif isinstance(expr, Comprehension):
        children = (expr.source, expr.condition, expr.element)
    elif isinstance(expr, Construction):
        children = tuple(a.value for a in expr.assignments)
    elif isinstance(expr, Lookup):
        children = (expr.key,)
    else:
        children = ()
    for child in children:
        if child is not None:
            yield from subexpressions(child)


Line = Require | Let


def fan_out(fan: Comprehension, env: Env) -> tuple[Env, list[Diagnostic]]:
    """What a policy's fan-out ``then C {...} for x in L [if C]`` gives its assignments:
    ``env`` with ``x`` bound to an item of ``L``; and the problems of ``L`` and ``C``."""
    checker = _Checker(env)
    element = Name((fan.var,), fan.var_loc or fan.loc)
    probe = Comprehension(element, fan.var, fan.source, fan.loc, fan.condition, fan.var_loc)
    checker.expr(probe, None, env.narrowed)
    item = checker.types.get(id(element), UNKNOWN)
    return replace(env, locals={**env.locals, fan.var: item}), checker.problems


def narrowed_by(condition: Expr | None, env: Env) -> Env:
    """``env`` where ``condition`` holds: the optional names it proves not none narrowed
    (a policy's ``then`` lines after its ``when ... if``)."""
    proved = none_tests(condition, True) if condition is not None else set()
    return env if proved <= env.narrowed else replace(env, narrowed=env.narrowed | proved)


def command_lines(command: Command, env: Env) -> list[tuple[Line | None, Env, list[Diagnostic]]]:
    """A command's ``require`` and ``let`` lines in order, each with what it sees.

    A line sees the ``let``s before it, with the names the ``require``s before it proved
    not none narrowed (``require x != none else ...``); the last entry (line None) is
    what the ``emit``s see. Each ``let`` comes with its own problems: those of its value,
    E101 when it hides a field or an earlier ``let``, E402 when it calls ``new_id()`` or
    ``now()`` (a ``let`` names an expression, which is computed where it is used).
    """
    out: list[tuple[Line | None, Env, list[Diagnostic]]] = []
    lets = list(command.lets)
    for i, require in enumerate(command.requires):
        while lets and lets[0].after <= i:
            env = _let_line(lets.pop(0), env, out)
        out.append((require, env, []))
        proved = none_tests(require.condition, True)
        if not proved <= env.narrowed:
            env = replace(env, narrowed=env.narrowed | proved)
    for let in lets:
        env = _let_line(let, env, out)
    out.append((None, env, []))
    return out


def let_types(
    lets: tuple[Let, ...], env: Env
) -> tuple[dict[str, tuple[Type, Expr]], list[tuple[Let, Env, list[Diagnostic]]]]:
    """The ``let``s of a view handler in order: the names they add, and each with what it
    sees and its problems (as :func:`command_lines`)."""
    out: list[tuple[Line | None, Env, list[Diagnostic]]] = []
    for let in lets:
        env = _let_line(let, env, out)
    return dict(env.lets), [(line, e, p) for line, e, p in out if isinstance(line, Let)]


def _let_line(let: Let, env: Env, out: list[tuple[Line | None, Env, list[Diagnostic]]]) -> Env:
    problems: list[Diagnostic] = []
    hidden = env.lookup_field(let.name)
    if hidden is not None or let.name in env.lets:
        what = (
            f"the field `{let.name}`" if hidden is not None else f"the `let {let.name}` before it"
        )
        problems.append(
            Diagnostic(
                "E101",
                Level.ERROR,
                f"`let {let.name}` would hide {what}",
                let.loc,
                "choose another name",
            )
        )
    analysis = analyse(let.value, env)
    problems += analysis.problems
    for sub in subexpressions(let.value):
        if isinstance(sub, Call) and sub.function in ("new_id", "now"):
            problems.append(
                mismatch(
                    f"a `let` cannot call {sub.function}(): its value is computed where it is used",
                    sub.loc,
                    f"call {sub.function}() where the value is needed",
                )
            )
    out.append((let, env, problems))
    t = UNKNOWN if analysis.problems else analysis.type
    return replace(env, lets={**env.lets, let.name: (t, let.value)})


_IF_ELSE_TEST = "write a test between `if` and `else`: 'a if count > 0 else b'"


class _Checker(NameChecker, CallChecker, OperatorChecker):
    """One pass over an expression tree, collecting types, bindings and problems.

    The names (:mod:`~stormgen.model.typecheck_names`), the built-in calls and
    comprehensions (:mod:`~stormgen.model.typecheck_calls`) and the operators
    (:mod:`~stormgen.model.typecheck_operators`) are mixins; the literals, lists,
    ``if ... else`` and value constructions are here.
    """

    def expr(self, e: Expr, expected: Type | None, narrowed: frozenset[str]) -> Type:
        if isinstance(e, Literal):
            t = self._literal(e)
        elif isinstance(e, Name):
            t = self._name(e, expected, narrowed)
        elif isinstance(e, ListExpr):
            t = self._list(e, expected, narrowed)
        elif isinstance(e, Call):
            t = self._call(e, expected, narrowed)
        elif isinstance(e, Unary):
            t = self._unary(e, narrowed)
        elif isinstance(e, Binary):
            t = self._binary(e, narrowed)
        elif isinstance(e, Conditional):
            t = self._conditional(e, expected, narrowed)
        elif isinstance(e, Comprehension):
            t = self._comprehension(e, expected, narrowed)
        elif isinstance(e, Lookup):
            t = self._lookup(e, narrowed)
        else:
            t = self._construction(e, narrowed)
        self.types[id(e)] = t
        return t

    # ------------------------------------------------------------ leaves

    @staticmethod
    def _literal(e: Literal) -> Type:
        if e.kind == "decimal":
            return FRACTION
        if e.kind == "none":
            return NONE
        return PRIMITIVE_TYPES[e.kind]

    def _list(self, e: ListExpr, expected: Type | None, narrowed: frozenset[str]) -> Type:
        wanted = strip_optional(expected) if expected is not None else None
        item_expected = wanted.element if isinstance(wanted, ListType) else None
        element: Type = NOTHING
        unknown = False  # an item already reported: the list's type is unknown too
        for item in e.items:
            t = self.expr(item, item_expected if item_expected is not None else element, narrowed)
            if t is UNKNOWN:
                unknown = True
                continue
            joined = unify(element, t)
            if joined is None:
                self.problems.append(
                    mismatch(f"a list's items must have one type, not {element} and {t}", item.loc)
                )
                return UNKNOWN
            element = joined
        return UNKNOWN if unknown else ListType(element)

    def _conditional(self, e: Conditional, expected: Type | None, narrowed: frozenset[str]) -> Type:
        self._test(e.test, narrowed, "the condition of `if ... else`", _IF_ELSE_TEST)
        # `x.a if x != none else 0`: in the first branch x is known not to be none.
        a = self.expr(e.body, expected, narrowed | none_tests(e.test, True))
        hint = expected if expected is not None else (None if a in (UNKNOWN, NONE) else a)
        b = self.expr(e.orelse, hint, narrowed)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        joined = unify(a, b)
        if joined is None:
            self.problems.append(
                mismatch(
                    f"the two sides of `if ... else` must have one type, not {a} and {b}",
                    e.orelse.loc,
                    "give both sides the same type (an int widens to a decimal or float)",
                )
            )
            return UNKNOWN
        return DECIMAL if joined == FRACTION else joined

    def _construction(self, e: Construction, narrowed: frozenset[str]) -> Type:
        env = self.env
        vt = resolve_type(TypeRef(e.type.name, e.type.loc), env.context, env.scope)
        if not isinstance(vt, ValueType):
            values = [v.name for v in env.scope.model.values]
            if env.context is not None:
                values += [v.name for v in env.context.values]
            what = f"`{e.type.name}` is not a value" if vt is not UNKNOWN else None
            self.problems.append(
                unknown_name(
                    what or f"unknown value `{e.type.name}`",
                    e.type.loc,
                    did_you_mean(e.type.name, values) or None,
                )
            )
            for a in e.assignments:
                self.expr(a.value, None, narrowed)
            return UNKNOWN
        fields = value_fields(vt, env.scope)
        given: set[str] = set()
        for a in e.assignments:
            target = fields.get(a.target)
            if target is None:
                self.problems.append(
                    Diagnostic(
                        "E403",
                        Level.ERROR,
                        f"`{a.target}` is not a field of {vt.name}",
                        a.loc,
                        did_you_mean(a.target, fields),
                    )
                )
                self.expr(a.value, None, narrowed)
                continue
            if a.target in given:
                self.problems.append(
                    Diagnostic(
                        "E101", Level.ERROR, f"`{a.target}` is given twice in {vt.name}", a.loc
                    )
                )
            given.add(a.target)
            got = self.expr(a.value, target, narrowed)
            if a.op != "=":
                self.problems.append(
                    mismatch(
                        f"`{a.op}` cannot set a field of a new {vt.name}: it has no earlier value",
                        a.loc,
                        f"write '{a.target} = ...'",
                    )
                )
            elif got is not UNKNOWN and target is not UNKNOWN and not assignable(got, target):
                self.problems.append(
                    mismatch(f"cannot assign {got} to `{a.target}` ({target})", a.value.loc)
                )
        missing = [
            f.name
            for f in vt.node.fields
            if f.name not in given and f.default is None and not f.type.optional
        ]
        if missing:
            listed = ", ".join(f"`{m}`" for m in missing)
            self.problems.append(
                Diagnostic(
                    "E301",
                    Level.ERROR,
                    f"{vt.name} {{ ... }} leaves out {listed}, with no default",
                    e.loc,
                    f"give {'it' if len(missing) == 1 else 'them'} a value: '{missing[0]} = ...'",
                )
            )
        return vt
