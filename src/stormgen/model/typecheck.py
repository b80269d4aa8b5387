"""The static type checker of `.storm` expressions (docs/language.md): E401 and E402.

:func:`analyse` walks one expression in an :class:`~stormgen.model.types.Env` and
returns its type, the problems found in it (each located at the offending
sub-expression, with a ``help:`` line where a fix is known), and the type and meaning
(:class:`Binding`) of every node, which the code generator and the model interpreter
read. The types themselves live in :mod:`stormgen.model.types`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.model.hints import closest, did_you_mean, suggest
from stormgen.model.nodes import (
    Binary,
    Call,
    Command,
    Comprehension,
    Conditional,
    Construction,
    Enum,
    Expr,
    Let,
    ListExpr,
    Literal,
    Name,
    Require,
    TypeRef,
    Unary,
)
from stormgen.model.types import (
    BOOL,
    DATE,
    DATETIME,
    DECIMAL,
    FRACTION,
    FUNCTIONS,
    GENERATOR_FUNCTIONS,
    INT,
    NONE,
    NOTHING,
    ORDERED,
    PRIMITIVE_TYPES,
    STR,
    UNKNOWN,
    UUID,
    EnumType,
    Env,
    ListType,
    OptionalType,
    Primitive,
    Source,
    Type,
    ValueType,
    assignable,
    comparable,
    enum_type,
    is_numeric,
    make_optional,
    numeric_join,
    resolve_type,
    strip_optional,
    unify,
    value_fields,
)

# ---------------------------------------------------------------- inference


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
    proved = _none_tests(condition, True) if condition is not None else set()
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
        proved = _none_tests(require.condition, True)
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


_QUALIFIERS = ("command", "event", "state", "row")
_ARITY = {"len": 1, "now": 0, "today": 0, "date": 1, "new_id": 0, "lower": 1, "upper": 1}
_ARITY |= {"min": 2, "max": 2, "round": 2, "abs": 1, "matches": 2, "startswith": 2}
_ARITY |= {"endswith": 2}
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ORDERINGS = frozenset({"<", "<=", ">", ">="})


def _enum_of(expected: Type | None) -> EnumType | None:
    t = strip_optional(expected) if expected is not None else None
    if isinstance(t, ListType):
        t = strip_optional(t.element)
    return t if isinstance(t, EnumType) else None


def _none_tests(expr: Expr, when: bool) -> set[str]:
    """Names that cannot be none when ``expr`` evaluates to ``when`` (for ``and``/``or``)."""
    if isinstance(expr, Unary) and expr.op == "not":
        return _none_tests(expr.operand, not when)
    if isinstance(expr, Binary):
        if expr.op == ("and" if when else "or"):
            return _none_tests(expr.left, when) | _none_tests(expr.right, when)
        if expr.op == ("!=" if when else "=="):
            left, right = expr.left, expr.right
            if isinstance(right, Literal) and right.kind == "none" and isinstance(left, Name):
                return {left.dotted}
            if isinstance(left, Literal) and left.kind == "none" and isinstance(right, Name):
                return {right.dotted}
    return set()


class _Checker:
    """One pass over an expression tree, collecting types, bindings and problems."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.problems: list[Diagnostic] = []
        self.types: dict[int, Type] = {}
        self.bindings: dict[int, Binding] = {}
        self.locals: dict[str, Type] = dict(env.locals)  # variables of the `for`s around

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

    def _name(self, e: Name, expected: Type | None, narrowed: frozenset[str]) -> Type:
        t = self._name_type(e, expected, narrowed)
        if isinstance(t, OptionalType) and e.dotted in narrowed:
            return t.inner
        return t

    def _name_type(self, e: Name, expected: Type | None, narrowed: frozenset[str]) -> Type:
        env = self.env
        head, rest = e.parts[0], e.parts[1:]
        if head in self.locals:
            self.bindings[id(e)] = Binding("local", head, rest)
            return self._walk(e, self.locals[head], 1, narrowed)
        if rest and head in _QUALIFIERS:
            return self._qualified(e, narrowed)
        if head in env.lets:
            self.bindings[id(e)] = Binding("let", head, rest)
            return self._walk(e, env.lets[head][0], 1, narrowed)
        found = env.lookup_field(head)
        if found is not None:
            ns, t = found
            self.bindings[id(e)] = Binding(ns.source, head, rest)
            return self._walk(e, t, 1, narrowed)
        if not rest:
            return self._member(e, head, expected)
        # ``Size.Medium`` or ``Context.Enum.Member``: the longest enum prefix.
        resolved = env.scope.resolve_type(env.context, ".".join(e.parts[:-1]))
        if resolved is not None and isinstance(resolved.element, Enum):
            et = enum_type(resolved.element, resolved.context)
            member = e.parts[-1]
            if member not in et.members:
                self.problems.append(
                    unknown_name(
                        f"`{member}` is not a member of {et.name}",
                        e.loc,
                        did_you_mean(member, et.members),
                    )
                )
                return UNKNOWN
            self.bindings[id(e)] = Binding("member", member, enum=et)
            return et
        candidates = [n for ns in env.namespaces for n in ns.fields] + [x.name for x in env.enums]
        self.problems.append(
            unknown_name(
                f"unknown name `{head}`", e.loc, did_you_mean(head, candidates) or env.note
            )
        )
        return UNKNOWN

    def _qualified(self, e: Name, narrowed: frozenset[str]) -> Type:
        env = self.env
        qualifier, name = e.parts[0], e.parts[1]
        ns = next((n for n in env.namespaces if n.qualifier == qualifier), None)
        if ns is None:
            available = ", ".join(f"`{n.qualifier}.`" for n in env.namespaces)
            hint = f"{env.where} sees {available}" if available else f"{env.where} sees no fields"
            if env.note is not None:
                hint = env.note
            self.problems.append(
                unknown_name(
                    f"unknown name `{qualifier}.{name}`: there is no `{qualifier}` here",
                    e.loc,
                    hint,
                )
            )
            return UNKNOWN
        # Envelope metadata wins over a field of the same name: `event.id` is always
        # the event's id (the field stays reachable by its plain name).
        if name in ns.metadata:
            self.bindings[id(e)] = Binding("metadata", name, e.parts[2:])
            return self._walk(e, ns.metadata[name], 2, narrowed)
        if name in ns.fields:
            self.bindings[id(e)] = Binding(ns.source, name, e.parts[2:])
            return self._walk(e, ns.fields[name], 2, narrowed)
        # Match the bare names: the shared `state.` prefix would make everything close.
        close = closest(name, [*ns.fields, *ns.metadata])
        help_ = suggest([f"{qualifier}.{c}" for c in close])
        if qualifier == "event" and name == "stream_id":
            help_ = "an external system's event has no stream_id"
        self.problems.append(unknown_name(f"unknown name `{qualifier}.{name}`", e.loc, help_))
        return UNKNOWN

    def _walk(self, e: Name, t: Type, start: int, narrowed: frozenset[str]) -> Type:
        """Follow ``a.b.c`` through value fields from ``e.parts[start]`` on."""
        for i in range(start, len(e.parts)):
            part = e.parts[i]
            so_far = ".".join(e.parts[:i])
            if t is UNKNOWN:
                return UNKNOWN
            if isinstance(t, OptionalType) and so_far not in narrowed:
                self.problems.append(
                    mismatch(
                        f"`{so_far}` may be none ({t}), so it has no field `{part}`",
                        e.loc,
                        f"test it first: '{so_far} != none and ...'",
                    )
                )
                return UNKNOWN
            t = strip_optional(t)
            if not isinstance(t, ValueType):
                self.problems.append(mismatch(f"`{so_far}` is {t}, which has no fields", e.loc))
                return UNKNOWN
            fields = value_fields(t, self.env.scope)
            if part not in fields:
                self.problems.append(
                    unknown_name(
                        f"`{part}` is not a field of {t.name}", e.loc, did_you_mean(part, fields)
                    )
                )
                return UNKNOWN
            t = fields[part]
        return t

    def _member(self, e: Name, name: str, expected: Type | None) -> Type:
        env = self.env
        wanted = _enum_of(expected)
        if wanted is not None and name in wanted.members:
            self.bindings[id(e)] = Binding("member", name, enum=wanted)
            return wanted
        having = [et for et in env.enums if name in et.members]
        if len(having) == 1:
            self.bindings[id(e)] = Binding("member", name, enum=having[0])
            return having[0]
        if len(having) > 1:
            listed = " or ".join(f"`{et.name}.{name}`" for et in having)
            self.problems.append(
                unknown_name(
                    f"ambiguous name `{name}`: a member of "
                    + " and ".join(et.name for et in having),
                    e.loc,
                    f"qualify it: {listed}",
                )
            )
            return UNKNOWN
        candidates = [n for ns in env.namespaces for n in ns.fields]
        if wanted is not None:
            candidates += wanted.members
        candidates += [m for et in env.enums for m in et.members]
        self.problems.append(
            unknown_name(
                f"unknown name `{name}`", e.loc, did_you_mean(name, candidates) or env.note
            )
        )
        return UNKNOWN

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

    # ------------------------------------------------------------ calls and operators

    def _call(self, e: Call, expected: Type | None, narrowed: frozenset[str]) -> Type:
        arity = _ARITY
        fn = e.function
        if fn in GENERATOR_FUNCTIONS and len(e.args) == 1:
            return self._aggregate(e, fn, e.args[0], expected, narrowed)
        gens = [a for a in e.args if type(a) is Comprehension and a.generator]
        if gens and fn in arity:
            self.problems.append(
                mismatch(
                    f"{fn}() does not take a generator `... for x in L`",
                    gens[0].loc,
                    "only any(), all(), sum(), min(), max() and first() do; "
                    "elsewhere write a list: '[E for x in L]'",
                )
            )
            self._args_anyway(e, narrowed)
            return UNKNOWN
        if fn not in arity:
            self.problems.append(
                unknown_name(
                    f"unknown function `{fn}`",
                    e.loc,
                    did_you_mean(fn, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS),
                )
            )
            self._args_anyway(e, narrowed)
            return UNKNOWN
        if len(e.args) != arity[fn]:
            n = arity[fn]
            self.problems.append(
                mismatch(
                    f"{fn}() takes {n} argument{'s' if n != 1 else ''}, not {len(e.args)}", e.loc
                )
            )
            self._args_anyway(e, narrowed)
            return UNKNOWN
        if fn == "now":
            return DATETIME
        if fn == "today":
            return DATE
        if fn == "new_id":
            return UUID
        if fn in ("min", "max"):
            a = self.expr(e.args[0], expected, narrowed)
            b = self.expr(e.args[1], a if a is not UNKNOWN else expected, narrowed)
            return self._ordered_pair(f"{fn}()", e.args[0], a, e.args[1], b, e.loc) or UNKNOWN
        if fn in ("round", "abs"):
            return self._rounding(e, fn, expected, narrowed)
        if fn in ("matches", "startswith", "endswith"):
            return self._text_test(e, fn, narrowed)
        arg = e.args[0]
        t = self.expr(arg, None, narrowed)
        if t is UNKNOWN:
            return STR if fn in ("lower", "upper") else (INT if fn == "len" else DATE)
        if self._maybe_none(arg, t):
            return UNKNOWN
        if fn == "len":
            if t == STR or isinstance(t, ListType):
                return INT
            self.problems.append(mismatch(f"len() needs a list or a str, not {t}", arg.loc))
            return INT
        if fn == "date":
            if t != DATETIME:
                self.problems.append(mismatch(f"date() needs a datetime, not {t}", arg.loc))
            return DATE
        if t != STR:
            self.problems.append(mismatch(f"{fn}() needs a str, not {t}", arg.loc))
        return STR

    def _args_anyway(self, e: Call, narrowed: frozenset[str]) -> None:
        """Check the arguments of a call already reported (for the names in them)."""
        for arg in e.args:
            if isinstance(arg, Comprehension) and arg.generator:
                self._generator(arg, None, narrowed)  # one finding for the call
            else:
                self.expr(arg, None, narrowed)

    def _rounding(self, e: Call, fn: str, expected: Type | None, narrowed: frozenset[str]) -> Type:
        """``round(x, n)`` and ``abs(x)``: the type of the number x."""
        x = e.args[0]
        t = self.expr(x, expected, narrowed)
        if fn == "round":
            n = self.expr(e.args[1], INT, narrowed)
            if n is not UNKNOWN and not self._maybe_none(e.args[1], n) and n != INT:
                self.problems.append(
                    mismatch(
                        f"round() takes an int number of places, not {n}",
                        e.args[1].loc,
                        "write the places as a whole number: 'round(x, 2)'",
                    )
                )
        if t is UNKNOWN or self._maybe_none(x, t):
            return UNKNOWN
        if not is_numeric(t):
            self.problems.append(
                mismatch(
                    f"{fn}() needs a number, not {t}",
                    x.loc,
                    f"{fn}() takes an int, decimal or float",
                )
            )
            return UNKNOWN
        return DECIMAL if t == FRACTION else t

    def _text_test(self, e: Call, fn: str, narrowed: frozenset[str]) -> Type:
        """``matches(s, "regex")``, ``startswith(s, p)``, ``endswith(s, p)``: bool."""
        for i, arg in enumerate(e.args):
            t = self.expr(arg, STR, narrowed)
            if t is UNKNOWN or self._maybe_none(arg, t):
                continue
            if t != STR:
                which = "the pattern" if fn == "matches" and i == 1 else "a str"
                self.problems.append(
                    mismatch(
                        f"{fn}() needs {which}, not {t}",
                        arg.loc,
                        f"{fn}() tests text: '{fn}(s, ...)' with s a str",
                    )
                )
        if fn == "matches":
            self._pattern(e.args[1])
        return BOOL

    def _pattern(self, p: Expr) -> None:
        """E404 unless ``matches``'s pattern is a string literal that compiles."""
        if not (isinstance(p, Literal) and p.kind == "str"):
            if self.types.get(id(p)) in (STR, None):
                self.problems.append(
                    Diagnostic(
                        "E404",
                        Level.ERROR,
                        "the pattern of matches() must be a string literal",
                        p.loc,
                        'write the pattern itself: matches(code, "[A-Z]{3}-[0-9]+")',
                    )
                )
            return
        try:
            re.compile(str(p.value))
        except re.error as exc:
            self.problems.append(
                Diagnostic(
                    "E404",
                    Level.ERROR,
                    f"the pattern of matches() does not compile: {exc}",
                    p.loc,
                    "matches() takes Python's `re` syntax and must match the whole text",
                )
            )

    def _aggregate(
        self, e: Call, fn: str, arg: Expr, expected: Type | None, narrowed: frozenset[str]
    ) -> Type:
        """``any``/``all``/``sum``/``min``/``max``/``first`` of a generator (or a list)."""
        wanted = strip_optional(expected) if expected is not None else None
        if fn in ("any", "all"):
            wanted = BOOL
        element: Type
        if isinstance(arg, Comprehension) and arg.generator:
            element = self._generator(arg, wanted, narrowed)
            self.types[id(arg)] = element
        else:
            listed = self.expr(arg, ListType(wanted) if wanted is not None else None, narrowed)
            if listed is UNKNOWN or self._maybe_none(arg, listed):
                element = UNKNOWN
            elif isinstance(listed, ListType):
                element = listed.element
            else:
                self.problems.append(
                    mismatch(
                        f"{fn}() needs a list or a generator `E for x in L`, not {listed}",
                        arg.loc,
                    )
                )
                element = UNKNOWN
        where = arg.element if isinstance(arg, Comprehension) else arg
        if fn in ("any", "all"):
            if element not in (UNKNOWN, NOTHING) and element != BOOL:
                self.problems.append(
                    mismatch(
                        f"{fn}() needs bool items, not {element}",
                        where.loc,
                        f"give it a test: '{fn}(x.qty > 0 for x in items)'",
                    )
                )
            return BOOL
        if element is UNKNOWN:
            return UNKNOWN
        if fn == "first":
            return NONE if element is NOTHING else make_optional(element)
        if element is NOTHING:
            return INT if fn == "sum" else NONE
        if self._maybe_none(where, element):
            return UNKNOWN
        plain = DECIMAL if element == FRACTION else element
        if fn == "sum":
            if not is_numeric(element):
                self.problems.append(
                    mismatch(
                        f"sum() adds numbers, not {element}",
                        where.loc,
                        "sum a number of each item: 'sum(x.price for x in items)'",
                    )
                )
                return UNKNOWN
            return plain
        if not (isinstance(element, Primitive) and element.name in ORDERED):
            self.problems.append(
                mismatch(
                    f"{fn}() cannot order {element} values",
                    where.loc,
                    "ordering works on numbers, str, date and datetime",
                )
            )
            return UNKNOWN
        return OptionalType(plain)

    def _generator(self, c: Comprehension, element: Type | None, narrowed: frozenset[str]) -> Type:
        """The type of a comprehension's element, its variable bound while it is checked."""
        source = self.expr(c.source, None, narrowed)
        var: Type = UNKNOWN
        if source is not UNKNOWN and not self._maybe_none(c.source, source):
            if isinstance(source, ListType):
                var = UNKNOWN if source.element is NOTHING else source.element
            else:
                self.problems.append(
                    mismatch(
                        f"`for` goes through a list, not {source}",
                        c.source.loc,
                        "write a list field (or a list) after `in`",
                    )
                )
        if self.env.lookup_field(c.var) is not None or c.var in self.env.lets:
            self.problems.append(
                Diagnostic(
                    "E101",
                    Level.ERROR,
                    f"`{c.var}` is already a name here: the variable of `for` would hide it",
                    c.var_loc or c.loc,
                    "choose another name for the variable",
                )
            )
        outer = self.locals.get(c.var)
        self.locals[c.var] = var
        try:
            if c.condition is not None:
                test = self.expr(c.condition, BOOL, narrowed)
                if test is not UNKNOWN and test != BOOL:
                    self.problems.append(
                        mismatch(
                            f"the `if` of `for` must be bool, not {test}",
                            c.condition.loc,
                            "write a test: '... if x.qty > 0'",
                        )
                    )
            return self.expr(c.element, element, narrowed)
        finally:
            if outer is None:
                del self.locals[c.var]
            else:
                self.locals[c.var] = outer

    def _comprehension(
        self, c: Comprehension, expected: Type | None, narrowed: frozenset[str]
    ) -> Type:
        if c.generator:
            self.problems.append(
                mismatch(
                    "a generator `... for x in L` stands only in any(), all(), sum(), "
                    "min(), max() or first()",
                    c.loc,
                    "write a list: '[E for x in L]'",
                )
            )
        wanted = strip_optional(expected) if expected is not None else None
        item = wanted.element if isinstance(wanted, ListType) else None
        element = self._generator(c, item, narrowed)
        return UNKNOWN if element is UNKNOWN else ListType(element)

    def _conditional(self, e: Conditional, expected: Type | None, narrowed: frozenset[str]) -> Type:
        test = self.expr(e.test, BOOL, narrowed)
        if test is not UNKNOWN and test != BOOL:
            self.problems.append(
                mismatch(
                    f"the condition of `if ... else` must be bool, not {test}",
                    e.test.loc,
                    "write a test between `if` and `else`: 'a if count > 0 else b'",
                )
            )
        # `x.a if x != none else 0`: in the first branch x is known not to be none.
        a = self.expr(e.body, expected, narrowed | _none_tests(e.test, True))
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
                self.problems.append(mismatch(f"cannot compare {a} with {b}", loc, _MIX_HELP))
            return joined
        if a == b and isinstance(a, Primitive) and a.name in ORDERED:
            return a
        if a == b:
            self.problems.append(
                mismatch(
                    f"{what} cannot order {a} values",
                    loc,
                    "ordering works on numbers, str, date and datetime",
                )
            )
        else:
            self.problems.append(mismatch(f"cannot compare {a} with {b}", loc))
        return None

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
            right_narrowed = narrowed | _none_tests(e.left, op == "and")
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
        if is_numeric(a) and is_numeric(b):
            joined = numeric_join(a, b)
            if joined is None:
                self.problems.append(mismatch(f"cannot {verb} {a} and {b}", e.loc, _MIX_HELP))
                return UNKNOWN
            if op == "/" and a == INT and b == INT:
                return DECIMAL
            return joined
        self.problems.append(mismatch(f"cannot {verb} {a} and {b}", e.loc))
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
                _MIX_HELP
                if is_numeric(strip_optional(a)) and is_numeric(strip_optional(b))
                else None
            )
            if a is NONE or b is NONE:
                other = e.left if b is NONE else e.right
                help_ = f"{describe(other)} is never none; only an optional (T?) may be"
            self.problems.append(mismatch(f"cannot compare {a} with {b}", e.loc, help_))
        return BOOL


_MIX_HELP = "float and decimal never mix; declare both the same type"
