"""Compile `.storm` expressions (docs/generated.md, "Behavior") into plain Python source.

The static types come from :mod:`stormgen.model.typecheck` (``analyse``): each name's
meaning (message field, state field, event metadata or enum member) and each node's
type. Compilation then only decides spelling:

- numbers: an ``int`` used where a ``decimal`` is wanted becomes ``Decimal(x)`` (a
  literal ``Decimal("5")``), so ``/`` of two ints is a ``Decimal`` division and mypy
  sees exact types; a fraction literal becomes ``Decimal("4.50")`` or ``4.5``;
- lists are tuples (messages and states are frozen), ``[a, b]`` is ``(a, b)``;
- ``x == none`` is ``x is None``; enum members are ``Enum.Member``;
- a comprehension stays one (``tuple([E for x in L if C])``, lists being tuples), a
  generator call stays a call (``any(...)``, ``sum((...), Decimal(0))``,
  ``min((...), default=None)``, ``next((...), None)`` for ``first``), a value
  construction is a keyword call (``Drink(name=n, price=p)``); a command's ``let`` is
  a local variable (assigned by the aggregate's builder), a view handler's ``let`` its
  expression written where it is used;
- a duration is a ``timedelta``: ``minutes(15)`` is ``timedelta(minutes=15)``, and
  its arithmetic with datetimes and dates is Python's own;
- parentheses only where Python's precedence needs them (it matches the language's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

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
    Lookup,
    Name,
    Unary,
    View,
)
from stormgen.render.python.literals import py_decimal, py_float, py_str
from stormgen.render.python.names import field_name, member_name

#: Python precedence of what an expression compiles to (higher binds tighter).
_IF, _OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _ATOM = range(9)
_PREC = {"or": _OR, "and": _AND, "+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL}
_CMP_OPS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
#: the comparison `not (a OP b)` is written as (ruff's E713/E714: `not in`, `is not`)
_FLIPPED = {"in": "not in", "not in": "in", "==": "!=", "!=": "=="}


class CompileError(Exception):
    """An expression that does not type-check (``validate`` reports it as E401/E402)."""


@dataclass(frozen=True)
class Target:
    """Where compiled names point: ``message``/``state`` objects and the event envelope."""

    message: str = "command"
    state: str = "state"
    metadata: str = "recorded"
    #: the Python name of an enum class in the module being written
    enum: Callable[[t.EnumType], str] = lambda e: e.name
    #: the Python name of a value class in the module being written
    value: Callable[[t.ValueType], str] = lambda v: v.name
    #: ``event.<name>`` metadata in Python, with the names that text needs imported
    metadata_names: Mapping[str, tuple[str, frozenset[str]]] | None = None
    #: state (row) fields that are None until set although their type is not optional
    #: (a view's columns without a default), and the function that reads one
    unset: frozenset[str] = frozenset()
    required: str = "_value"
    #: the method of the class being written that reads a view's row (``View[key]``)
    lookup: Callable[[View], str] = lambda v: f"self.lookup_{v.name.lower()}"
    #: the ``let``s assigned to local variables (a command's), by name: their Python
    #: names; any other ``let`` is written out where it is used (a view handler's)
    lets: Mapping[str, str] | None = None
    #: what ``now()`` reads: the clock the runtime binds to the definition being
    #: written (a test clock moves it too); None: the machine's clock
    clock: str | None = None


@dataclass(frozen=True)
class Code:
    """Python source of an expression and how tightly it binds."""

    text: str
    prec: int


class Compiler:
    """Compile expressions of one environment (a command, an apply, a policy, a view).

    It stays one class, just over 300 lines: one short method per kind of expression
    node, each compiling its sub-expressions through the others with the environment's
    types, bindings and ``let``s, and recording what the compiled code uses.
    """

    def __init__(self, env: t.Env, target: Target) -> None:
        self.env = env
        self.target = target
        self.uses: set[str] = set()  # "Decimal", "UTC", "datetime", "timedelta", "uuid4"
        self.bound: set[str] = set()  # the sources names were bound to: "metadata", ...
        self._types: dict[int, t.Type] = {}
        self._bindings: dict[int, tc.Binding] = {}
        self._lets: dict[str, Code] = {}  # each `let` compiled once
        self.lookups: dict[str, View] = {}  # the views `View[key]` read, by name
        self.used_lets: set[str] = set()  # the `let`s read as local variables

    def compile(self, expr: Expr, want: t.Type | None = None) -> str:
        """Python source for ``expr``; ``want`` is the type of the place it goes to."""
        analysis = tc.analyse(expr, self.env, want)
        if analysis.problems:
            first = analysis.problems[0]
            raise CompileError(f"{first.location}: {first.message}")
        self._types.update(analysis.types)
        self._bindings.update(analysis.bindings)
        return self._expr(expr, want).text

    # ------------------------------------------------------------ nodes

    def _type(self, e: Expr) -> t.Type:
        return self._types.get(id(e), t.UNKNOWN)

    def _expr(self, e: Expr, want: t.Type | None) -> Code:
        own = _plain(self._type(e))
        wanted = _plain(want) if want is not None else None
        if isinstance(e, Literal):
            return self._literal(e, wanted)
        code = self._node(e, want)
        if wanted == t.DECIMAL and own == t.INT:
            self.uses.add("Decimal")
            return Code(f"Decimal({code.text})", _ATOM)
        if (
            isinstance(wanted, t.ListType)
            and isinstance(own, t.ListType)
            and _plain(wanted.element) == t.DECIMAL
            and _plain(own.element) == t.INT
            and not isinstance(e, ListExpr)
        ):
            # A list of ints stored as a list of decimals: each item widened.
            self.uses.add("Decimal")
            return Code(f"tuple(Decimal(item) for item in {code.text})", _ATOM)
        return code

    def _node(self, e: Expr, want: t.Type | None) -> Code:
        if isinstance(e, Name):
            return self._name(e)
        if isinstance(e, ListExpr):
            return self._list(e, want)
        if isinstance(e, Call):
            return self._call(e, want)
        if isinstance(e, Unary):
            return self._unary(e)
        if isinstance(e, Binary):
            return self._binary(e)
        if isinstance(e, Conditional):
            return self._conditional(e, want)
        if isinstance(e, Comprehension):
            return self._comprehension(e, want)
        if isinstance(e, Construction):
            return self._construction(e)
        if isinstance(e, Lookup):
            return self._lookup(e)
        return self._literal(e, None)  # pragma: no cover - Literal handled above

    def _literal(self, e: Literal, wanted: t.Type | None) -> Code:
        if e.kind == "none":
            return Code("None", _ATOM)
        if e.kind == "bool":
            return Code("True" if e.value else "False", _ATOM)
        if e.kind == "str":
            return Code(py_str(str(e.value)), _ATOM)
        number = e.value
        if not isinstance(number, int | Decimal) or isinstance(number, bool):
            raise CompileError(f"{e.loc}: a number literal without a number")
        if wanted == t.DECIMAL or (wanted is None and e.kind == "decimal"):
            self.uses.add("Decimal")
            return Code(py_decimal(number), _ATOM)
        if wanted == t.FLOAT and e.kind == "decimal":
            return Code(py_float(number), _ATOM)
        return Code(str(number), _ATOM)

    def _name(self, e: Name) -> Code:
        binding = self._bindings.get(id(e))
        if binding is None:
            raise CompileError(f"{e.loc}: unresolved name '{e.dotted}'")
        self.bound.add(binding.source)
        if binding.source == "member":
            assert binding.enum is not None
            return Code(f"{self.target.enum(binding.enum)}.{member_name(binding.field)}", _ATOM)
        if binding.source == "local":
            head = self._local(binding.field)
        elif binding.source == "let":
            code = self._let(binding.field)
            head = code.text if code.prec == _ATOM else f"({code.text})"
        elif binding.source == "metadata":
            names = self.target.metadata_names or {}
            found = names.get(binding.field)
            if found is None:
                head = f"{self.target.metadata}.{binding.field}"
            else:
                head, uses = found
                self.uses.update(uses)
        elif binding.source == "message":
            head = f"{self.target.message}.{field_name(binding.field)}"
        else:
            head = f"{self.target.state}.{field_name(binding.field)}"
            if binding.field in self.target.unset:
                self.uses.add("required")
                head = f"{self.target.required}({head}, {py_str(binding.field)})"
        path = "".join(f".{field_name(p)}" for p in binding.path)
        let_type = self.env.lets[binding.field][0] if binding.source == "let" else None
        if path and isinstance(let_type, t.OptionalType):
            # `let s = Stock[k]` proved not none: each use of `s.x` computes `s` again
            self.uses.add("present")
            return Code(f"present({head}, {py_str(e.parts[0])}){path}", _ATOM)
        if e.dotted in self.env.narrowed:
            # An optional an earlier `require ... != none` proved present: say so to mypy.
            self.uses.add("present")
            return Code(f"present({head}{path}, {py_str(e.dotted)})", _ATOM)
        return Code(head + path, _ATOM)

    def local(self, name: str) -> str:
        """The Python name of a variable bound around the expressions (a fan-out's)."""
        return self._local(name)

    def _local(self, name: str) -> str:
        """The Python name of a comprehension's variable (clear of the handler's names)."""
        py = field_name(name)
        taken = {self.target.message, self.target.state, self.target.metadata}
        taken |= {self.target.required, "Decimal", "UTC", "datetime", "uuid4", "fullmatch"}
        taken |= {"timedelta"}
        taken |= {"present", "l", "O", "I"}  # and the names ruff finds ambiguous
        return py + "_" if py in taken else py

    def _let(self, name: str) -> Code:
        found = self.env.lets.get(name)
        if found is None:
            raise CompileError(f"unknown let '{name}'")
        local = (self.target.lets or {}).get(name)
        if local is not None:
            self.used_lets.add(name)
            return Code(local, _ATOM)
        if name not in self._lets:
            value = found[1]
            analysis = tc.analyse(value, self.env)
            if analysis.problems:
                first = analysis.problems[0]
                raise CompileError(f"{first.location}: {first.message}")
            self._types.update(analysis.types)
            self._bindings.update(analysis.bindings)
            self._lets[name] = self._expr(value, None)
        return self._lets[name]

    def _conditional(self, e: Conditional, want: t.Type | None) -> Code:
        own = self._type(e)
        branch = want if want is not None else own
        body = self._expr(e.body, branch)
        test = self._expr(e.test, t.BOOL)
        orelse = self._expr(e.orelse, branch)
        text = f"{_wrap(body, _OR)} if {_wrap(test, _OR)} else {_wrap(orelse, _IF)}"
        return Code(text, _IF)

    def _for(self, c: Comprehension, element: t.Type | None) -> str:
        """``E for x in L if C``, without brackets."""
        item = self._expr(c.element, element)
        source = self._expr(c.source, None)
        text = f"{_wrap(item, _OR)} for {self._local(c.var)} in {_wrap(source, _OR)}"
        if c.condition is not None:
            text += f" if {_wrap(self._expr(c.condition, t.BOOL), _OR)}"
        return text

    def _comprehension(self, c: Comprehension, want: t.Type | None) -> Code:
        own = t.strip_optional(want) if want is not None else self._type(c)
        element = own.element if isinstance(own, t.ListType) else None
        return Code(f"tuple([{self._for(c, element)}])", _ATOM)

    def _aggregate(self, e: Call) -> Code:
        """``any``/``all``/``sum``/``min``/``max``/``first`` of a generator or a list."""
        fn, arg = e.function, e.args[0]
        own = _plain(self._type(e))
        element = own if fn in ("sum", "min", "max", "first") else t.BOOL
        if isinstance(arg, Comprehension):
            inner = self._for(arg, element)
            items = f"({inner})"
        else:
            listed = self._expr(arg, t.ListType(element))
            inner = items = listed.text
        if fn in ("any", "all"):
            return Code(f"{fn}({inner})", _ATOM)
        if fn == "first":
            first = items if isinstance(arg, Comprehension) else f"iter({items})"
            return Code(f"next({first}, None)", _ATOM)
        if fn in ("min", "max"):
            return Code(f"{fn}({items}, default=None)", _ATOM)
        if own == t.DECIMAL:
            self.uses.add("Decimal")
            return Code(f"sum({items}, Decimal(0))", _ATOM)
        if own == t.FLOAT:
            return Code(f"sum({items}, 0.0)", _ATOM)
        if own == t.DURATION:
            self.uses.add("timedelta")
            return Code(f"sum({items}, timedelta(0))", _ATOM)
        return Code(f"sum({inner})", _ATOM)

    def _construction(self, e: Construction) -> Code:
        vt = self._type(e)
        if not isinstance(vt, t.ValueType):
            raise CompileError(f"{e.loc}: unknown value '{e.type.name}'")
        fields = t.value_fields(vt, self.env.scope)
        args = ", ".join(
            f"{field_name(a.target)}={self._expr(a.value, fields.get(a.target)).text}"
            for a in e.assignments
        )
        return Code(f"{self.target.value(vt)}({args})", _ATOM)

    def _lookup(self, e: Lookup) -> Code:
        """``View[key]``: the method reading the view's row (``None`` if it has none)."""
        binding = self._bindings.get(id(e))
        found = self.env.scope.resolve(self.env.context, e.view.name, frozenset({"view"}))
        if binding is None or found is None or not isinstance(found.element, View):
            raise CompileError(f"{e.loc}: unknown view '{e.view.name}'")
        view = found.element
        self.lookups[view.name] = view
        key = self._expr(e.key, t.field_type(view.key, found.context, self.env.scope))
        code = f"{self.target.lookup(view)}({key.text})"
        if not e.path:
            return Code(code, _ATOM)
        path = "".join(f".{field_name(p)}" for p in e.path)
        if binding.found:  # a test `View[k] != none` proved it: say so to mypy
            self.uses.add("present")
            return Code(f"present({code}, {py_str(e.narrowed or e.view.name)}){path}", _ATOM)
        return Code(code + path, _ATOM)

    def _list(self, e: ListExpr, want: t.Type | None) -> Code:
        own = t.strip_optional(want) if want is not None else self._type(e)
        element = own.element if isinstance(own, t.ListType) else None
        items = [self._expr(item, element).text for item in e.items]
        if len(items) == 1:
            return Code(f"({items[0]},)", _ATOM)
        return Code("(" + ", ".join(items) + ")", _ATOM)

    def _call(self, e: Call, want: t.Type | None) -> Code:
        fn = e.function
        if fn in t.GENERATOR_FUNCTIONS and len(e.args) == 1:
            return self._aggregate(e)
        if fn in ("round", "abs"):
            number = self._expr(e.args[0], _plain(self._type(e)))
            places = "".join(f", {self._expr(a, t.INT).text}" for a in e.args[1:])
            return Code(f"{fn}({number.text}{places})", _ATOM)
        if fn == "matches":
            self.uses.add("fullmatch")
            text, pattern = self._expr(e.args[0], t.STR), self._expr(e.args[1], t.STR)
            return Code(f"fullmatch({pattern.text}, {text.text}) is not None", _CMP)
        if fn in ("startswith", "endswith"):
            text, affix = self._expr(e.args[0], t.STR), self._expr(e.args[1], t.STR)
            return Code(f"{_wrap(text, _ATOM)}.{fn}({affix.text})", _ATOM)
        if fn in ("now", "today"):
            if self.target.clock is not None:
                now = f"{self.target.clock}.now()"
            else:
                self.uses.update({"datetime", "UTC"})
                now = "datetime.now(UTC)"
            return Code(now if fn == "now" else f"{now}.date()", _ATOM)
        if fn == "new_id":
            self.uses.add("uuid4")
            return Code("uuid4()", _ATOM)
        if fn in t.DURATION_UNITS:
            self.uses.add("timedelta")
            return Code(f"timedelta({fn}={self._expr(e.args[0], t.INT).text})", _ATOM)
        if fn in ("min", "max"):
            joined = self._type(e)
            wanted = _plain(want) if want is not None else None
            arg_want = t.DECIMAL if wanted == t.DECIMAL else joined
            args = ", ".join(self._expr(a, arg_want).text for a in e.args)
            return Code(f"{fn}({args})", _ATOM)
        arg = self._expr(e.args[0], None)
        if fn == "len":
            return Code(f"len({arg.text})", _ATOM)
        receiver = arg.text if arg.prec == _ATOM else f"({arg.text})"
        if fn == "date":
            return Code(f"{receiver}.date()", _ATOM)
        return Code(f"{receiver}.{fn}()", _ATOM)  # lower, upper

    def _unary(self, e: Unary) -> Code:
        if e.op == "not":
            inner = e.operand
            if isinstance(inner, Binary) and _negatable(inner):
                # `not (x in xs)` is `x not in xs`, `not (x == none)` is `x is not None`
                flipped = Binary(_FLIPPED[inner.op], inner.left, inner.right, inner.loc)
                self._types[id(flipped)] = t.BOOL
                return self._comparison(flipped)
            operand = self._expr(inner, t.BOOL)
            return Code(f"not {_wrap(operand, _NOT)}", _NOT)
        operand = self._expr(e.operand, self._type(e))
        return Code(f"-{_wrap(operand, _NEG)}", _NEG)

    def _binary(self, e: Binary) -> Code:
        op = e.op
        if op in ("and", "or"):
            prec = _PREC[op]
            left = self._expr(e.left, t.BOOL)
            right = self._expr(e.right, t.BOOL)
            return Code(f"{_wrap(left, prec)} {op} {_wrap(right, prec + 1)}", prec)
        if op in _CMP_OPS:
            return self._comparison(e)
        # Arithmetic: Decimal mixes with int in Python, so an int operand stays as it is,
        # except in `/` of two ints, which the language defines as a decimal division.
        own = self._type(e)
        want: t.Type | None = own if t.is_numeric(own) or isinstance(own, t.ListType) else None
        a, b = t.strip_optional(self._type(e.left)), t.strip_optional(self._type(e.right))
        int_division = op == "/" and a == t.INT and b == t.INT
        prec = _PREC[op]
        left = self._expr(e.left, want if a != t.INT or int_division else None)
        right = self._expr(e.right, want if b != t.INT or int_division else None)
        return Code(f"{_wrap(left, prec)} {op} {_wrap(right, prec + 1)}", prec)

    def _comparison(self, e: Binary) -> Code:
        op = e.op
        a, b = self._type(e.left), self._type(e.right)
        if op in ("==", "!=") and (_is_none(e.left) or _is_none(e.right)):
            other = e.right if _is_none(e.left) else e.left
            code = self._expr(other, None)
            word = "is" if op == "==" else "is not"
            return Code(f"{_wrap(code, _CMP + 1)} {word} None", _CMP)
        left_want: t.Type | None
        right_want: t.Type | None
        if op in ("in", "not in"):
            b_plain = t.strip_optional(b)
            if isinstance(b_plain, t.ListType):
                element = t.unify(t.strip_optional(a), b_plain.element)
                element = element if element is not None else t.strip_optional(a)
                left_want, right_want = element, t.ListType(element)
            else:
                left_want, right_want = None, None
        else:
            # An int compares with a Decimal or a float as it is; a fraction literal
            # takes the other side's type (Decimal("4.50") or 4.5).
            joined = t.numeric_join(t.strip_optional(a), t.strip_optional(b))
            left_want = joined if t.strip_optional(a) != t.INT else None
            right_want = joined if t.strip_optional(b) != t.INT else None
        left = self._expr(e.left, left_want)
        right = self._expr(e.right, right_want)
        return Code(f"{_wrap(left, _CMP + 1)} {op} {_wrap(right, _CMP + 1)}", _CMP)


def _plain(tp: t.Type) -> t.Type:
    """``tp`` without ``?``; a fraction literal's type is plain ``decimal``."""
    tp = t.strip_optional(tp)
    if isinstance(tp, t.Primitive) and tp.literal:
        return t.DECIMAL
    return tp


def _is_none(e: Expr) -> bool:
    return isinstance(e, Literal) and e.kind == "none"


def _wrap(code: Code, at_least: int) -> str:
    """``code`` in parentheses unless it binds at least as tightly as ``at_least``."""
    return code.text if code.prec >= at_least else f"({code.text})"


def _negatable(e: Binary) -> bool:
    """Whether ``not (e)`` reads better flipped: a membership test or a test for none."""
    if e.op in ("in", "not in"):
        return True
    return e.op in ("==", "!=") and (_is_none(e.left) or _is_none(e.right))
