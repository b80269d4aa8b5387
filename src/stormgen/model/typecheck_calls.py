"""The checker's built-in function calls and comprehensions (``[E for x in L if C]``).

``len``, ``lower``, ``date``, ``min``/``max``, ``round``/``abs``, ``matches``/
``startswith``/``endswith``, the aggregates over a generator (``any``, ``all``, ``sum``,
``min``, ``max``, ``first``) and the ``for`` that binds a variable. A mixin of
:class:`stormgen.model.typecheck._Checker`; see :mod:`stormgen.model.typecheck`.
"""

from __future__ import annotations

import re

from stormgen.diagnostics import Diagnostic, Level
from stormgen.model.hints import did_you_mean
from stormgen.model.nodes import (
    Call,
    Comprehension,
    Expr,
    Literal,
)
from stormgen.model.typecheck_base import CheckerBase, mismatch, unknown_name
from stormgen.model.types import (
    BOOL,
    DATE,
    DATETIME,
    DECIMAL,
    DURATION,
    DURATION_UNITS,
    FRACTION,
    FUNCTIONS,
    GENERATOR_FUNCTIONS,
    INT,
    NONE,
    NOTHING,
    ORDERED,
    STR,
    UNKNOWN,
    UUID,
    ListType,
    OptionalType,
    Primitive,
    Type,
    is_numeric,
    make_optional,
    strip_optional,
)

_ARITY = {"len": 1, "now": 0, "today": 0, "date": 1, "new_id": 0, "lower": 1, "upper": 1}
_ARITY |= {"min": 2, "max": 2, "round": 2, "abs": 1, "matches": 2, "startswith": 2}
_ARITY |= {"endswith": 2} | dict.fromkeys(DURATION_UNITS, 1)
_FOR_TEST = "write a test: '... if x.qty > 0'"


class CallChecker(CheckerBase):
    """The type of a call to a built-in function, and of a comprehension."""

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
        if fn in DURATION_UNITS:
            return self._duration(e, fn, narrowed)
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
        if fn == "abs" and t == DURATION:
            return t
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

    def _duration(self, e: Call, fn: str, narrowed: frozenset[str]) -> Type:
        """``minutes(n)`` and the other units: a duration of ``n`` whole units."""
        n = e.args[0]
        t = self.expr(n, INT, narrowed)
        if t is not UNKNOWN and not self._maybe_none(n, t) and t != INT:
            self.problems.append(
                mismatch(
                    f"{fn}() counts whole {fn}: it takes an int, not {t}",
                    n.loc,
                    "for a fraction use a smaller unit: 'minutes(90)', not 'hours(1.5)'",
                )
            )
        return DURATION

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
            if element == DURATION:
                return element
            if not is_numeric(element):
                self.problems.append(
                    mismatch(
                        f"sum() adds numbers, not {element}",
                        where.loc,
                        "sum a number (or a duration) of each item: 'sum(x.price for x in items)'",
                    )
                )
                return UNKNOWN
            return plain
        if not (isinstance(element, Primitive) and element.name in ORDERED):
            self.problems.append(
                mismatch(
                    f"{fn}() cannot order {element} values",
                    where.loc,
                    "ordering works on numbers, str, date, datetime and duration",
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
                self._test(c.condition, narrowed, "the `if` of `for`", _FOR_TEST)
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
