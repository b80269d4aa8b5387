"""Unit tests of stormgen.model.types on hand-built model nodes (no parser involved)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stormgen.diagnostics import Location
from stormgen.model.hints import did_you_mean
from stormgen.model.nodes import (
    Aggregate,
    Binary,
    Call,
    Command,
    Context,
    Enum,
    EnumMember,
    Event,
    Expr,
    External,
    Field,
    ListExpr,
    Literal,
    Model,
    Name,
    TypeRef,
    Unary,
    Value,
    View,
)
from stormgen.model.scope import Scope
from stormgen.model.typecheck import Binding, analyse, infer
from stormgen.model.types import (
    BOOL,
    DATE,
    DATETIME,
    DECIMAL,
    FLOAT,
    FRACTION,
    INT,
    NONE,
    NOTHING,
    STR,
    UNKNOWN,
    UUID,
    EnumType,
    Env,
    ListType,
    Namespace,
    OptionalType,
    Type,
    ValueType,
    apply_env,
    assignable,
    command_env,
    comparable,
    constant_env,
    numeric_join,
    policy_env,
    resolve_type,
    unify,
    view_env,
)


def at(line: int = 1, column: int = 1) -> Location:
    return Location("t.storm", line, column)


def tref(text: str) -> TypeRef:
    optional = text.endswith("?")
    text = text.removesuffix("?")
    if text.startswith("list["):
        return TypeRef("list", at(), element=tref(text[5:-1]), optional=optional)
    return TypeRef(text, at(), optional=optional)


def fld(name: str, type_: str, default: Expr | None = None) -> Field:
    return Field(name, tref(type_), at(), default=default)


def n(dotted: str, line: int = 1, column: int = 1) -> Name:
    return Name(tuple(dotted.split(".")), at(line, column))


def lit(value: object) -> Literal:
    if value is None:
        return Literal(None, "none", at())
    if isinstance(value, bool):
        return Literal(value, "bool", at())
    if isinstance(value, int):
        return Literal(value, "int", at())
    if isinstance(value, str) and value[:1].isdigit():
        return Literal(Decimal(value), "decimal", at())
    assert isinstance(value, str)
    return Literal(value, "str", at())


def b(op: str, left: Expr, right: Expr, column: int = 1) -> Binary:
    return Binary(op, left, right, at(1, column))


def call(fn: str, *args: Expr) -> Call:
    return Call(fn, tuple(args), at())


def members(*names: str) -> tuple[EnumMember, ...]:
    return tuple(EnumMember(x, at()) for x in names)


SIZE = Enum("Size", members("Small", "Medium", "Large"), at())
CUP = Enum("Cup", members("Small", "Mug"), at())
DRINK = Value("Drink", (fld("name", "str"), fld("size", "Size"), fld("price", "decimal")), at())
STATUS = Enum("OrderStatus", members("Placed", "Paid", "Cancelled"), at())
PLACE = Command(
    "PlaceOrder",
    (
        fld("customer", "str"),
        fld("drinks", "list[Drink]"),
        fld("total", "decimal"),
        fld("note", "str?"),
        fld("tip", "float"),
        fld("count", "int"),
        fld("status", "str"),  # shadows the state's enum `status`
        fld("when", "datetime"),
        fld("best", "Drink?"),
    ),
    at(),
    creates=True,
)
PLACED = Event("OrderPlaced", (fld("customer", "str"), fld("total", "decimal")), at())
ORDER = Aggregate(
    "Order",
    fld("order_id", "uuid"),
    at(),
    state=(
        fld("customer", "str"),
        fld("total", "decimal", lit(0)),
        fld("status", "OrderStatus", n("Placed")),
        fld("paid", "decimal"),
        fld("tags", "list[str]"),
    ),
    commands=(PLACE,),
    events=(PLACED,),
)
CHARGED = Event("CardCharged", (fld("order_id", "uuid"), fld("amount", "decimal")), at())
GATEWAY = External("Gateway", at(), events=(CHARGED,))
HISTORY = View("History", fld("day", "date"), at(), fields=(fld("orders", "int", lit(0)),))
ORDERING = Context(
    "Ordering",
    at(),
    enums=(STATUS,),
    aggregates=(ORDER,),
    externals=(GATEWAY,),
    views=(HISTORY,),
)
MODEL = Model("Shop", at(), enums=(SIZE, CUP), values=(DRINK,), contexts=(ORDERING,))
SCOPE = Scope(MODEL)
ENV = command_env(PLACE, SCOPE)

SIZE_T = EnumType("Size", ("Small", "Medium", "Large"), None, SIZE)
STATUS_T = EnumType("OrderStatus", ("Placed", "Paid", "Cancelled"), "Ordering", STATUS)
DRINK_T = ValueType("Drink", None, DRINK)


def check(expr: Expr, env: Env = ENV, expected: Type | None = None) -> Type:
    """Infer ``expr`` and insist it has no problems."""
    t, problems = infer(expr, env, expected)
    assert problems == [], problems
    return t


def problem(
    expr: Expr, env: Env = ENV, expected: Type | None = None
) -> tuple[str, str, str | None]:
    """Infer ``expr`` and return its one problem as (code, message, help)."""
    _, problems = infer(expr, env, expected)
    assert len(problems) == 1, problems
    p = problems[0]
    return p.code, p.message, p.help


# ---------------------------------------------------------------- type algebra


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        (INT, INT, True),
        (INT, FLOAT, True),
        (INT, DECIMAL, True),
        (FRACTION, FLOAT, True),
        (FRACTION, DECIMAL, True),
        (FRACTION, INT, False),
        (FLOAT, DECIMAL, False),
        (DECIMAL, FLOAT, False),
        (DECIMAL, INT, False),
        (NONE, OptionalType(STR), True),
        (NONE, STR, False),
        (STR, OptionalType(STR), True),
        (OptionalType(STR), STR, False),
        (OptionalType(INT), OptionalType(DECIMAL), True),
        (ListType(NOTHING), ListType(STR), True),
        (ListType(NOTHING), STR, False),
        (ListType(INT), ListType(DECIMAL), True),
        (ListType(FLOAT), ListType(DECIMAL), False),
        (SIZE_T, SIZE_T, True),
        (SIZE_T, STR, False),
        (STR, SIZE_T, False),
        (STATUS_T, SIZE_T, False),
        (UNKNOWN, INT, True),
        (INT, UNKNOWN, True),
        (DATE, DATETIME, False),
    ],
)
def test_assignable(source: Type, target: Type, ok: bool) -> None:
    assert assignable(source, target) is ok


def test_numeric_join_follows_python_without_mixing_float_and_decimal() -> None:
    assert numeric_join(INT, INT) == INT
    assert numeric_join(INT, FLOAT) == FLOAT
    assert numeric_join(DECIMAL, INT) == DECIMAL
    assert numeric_join(FRACTION, FLOAT) == FLOAT
    assert numeric_join(FRACTION, DECIMAL) == DECIMAL
    assert numeric_join(FRACTION, INT) == FRACTION
    assert numeric_join(FLOAT, DECIMAL) is None
    assert numeric_join(STR, INT) is None


def test_unify_and_comparable() -> None:
    assert unify(NOTHING, STR) == STR
    assert unify(NONE, STR) == OptionalType(STR)
    assert unify(OptionalType(INT), DECIMAL) == OptionalType(DECIMAL)
    assert unify(STR, INT) is None
    assert comparable(OptionalType(STR), NONE)
    assert not comparable(STR, NONE)
    assert comparable(INT, DECIMAL)
    assert not comparable(FLOAT, DECIMAL)
    assert not comparable(STATUS_T, STR)
    assert comparable(ListType(NOTHING), ListType(INT))


def test_type_names_read_like_the_source() -> None:
    assert str(ListType(OptionalType(DRINK_T))) == "list[Drink?]"
    assert str(FRACTION) == "decimal"
    assert str(ListType(NOTHING)) == "empty list"


def test_resolve_type() -> None:
    assert resolve_type(tref("list[Drink]?"), ORDERING, SCOPE) == OptionalType(ListType(DRINK_T))
    assert resolve_type(tref("OrderStatus"), ORDERING, SCOPE) == STATUS_T
    assert resolve_type(tref("uuid"), None, SCOPE) == UUID
    # A context's private enum is not visible at top level; unknown stays unknown.
    assert resolve_type(tref("OrderStatus"), None, SCOPE) is UNKNOWN
    assert resolve_type(tref("Nope?"), ORDERING, SCOPE) is UNKNOWN


# ---------------------------------------------------------------- numeric rules


def test_arithmetic_result_types() -> None:
    assert check(b("+", n("count"), lit(1))) == INT
    assert check(b("/", n("count"), lit(2))) == DECIMAL  # `/` of two ints
    assert check(b("*", n("total"), n("count"))) == DECIMAL
    assert check(b("*", n("tip"), lit("1.5"))) == FLOAT  # a fraction literal fits float
    assert check(b("*", n("total"), lit("1.5"))) == DECIMAL
    assert check(b("-", n("tip"), n("count"))) == FLOAT
    assert check(Unary("-", n("total"), at())) == DECIMAL
    assert check(b("+", n("customer"), lit("!"))) == STR
    assert check(b("+", n("tags"), ListExpr((lit("x"),), at()))) == ListType(STR)


def test_float_and_decimal_never_mix() -> None:
    assert problem(b("+", n("total"), n("tip"), column=7)) == (
        "E402",
        "type mismatch: cannot add decimal and float",
        "float and decimal never mix; declare both the same type",
    )
    assert problem(b("==", n("total"), n("tip")))[1] == (
        "type mismatch: cannot compare decimal with float"
    )
    assert problem(b("<", n("tip"), n("total")))[1] == (
        "type mismatch: cannot compare float with decimal"
    )


def test_mismatch_is_located_at_the_operator_node() -> None:
    _, problems = infer(b("+", n("total"), n("tip"), column=9), ENV)
    assert problems[0].location == at(1, 9)


def test_operators_on_wrong_types() -> None:
    assert problem(b("+", n("customer"), lit(1)))[1] == "type mismatch: cannot add str and int"
    assert problem(b("-", n("tags"), n("tags")))[1] == (
        "type mismatch: cannot subtract list[str] and list[str]"
    )
    assert problem(b("and", n("count"), lit(True)))[1] == (
        "type mismatch: `and` needs bool operands, not int"
    )
    assert (
        problem(Unary("not", n("customer"), at()))[1]
        == "type mismatch: `not` needs a bool, not str"
    )
    assert problem(Unary("-", n("customer"), at()))[1] == "type mismatch: cannot negate str"
    assert problem(b("<", n("state.status"), n("state.status")))[1] == (
        "type mismatch: `<` cannot order OrderStatus values"
    )


# ---------------------------------------------------------------- name lookup


def test_message_fields_come_before_state() -> None:
    # `status` is both a command field (str) and a state field (OrderStatus).
    name = n("status")
    analysed = analyse(name, ENV)
    assert analysed.type == STR
    assert analysed.bindings[id(name)] == Binding("message", "status")
    # Qualified names pick the other one.
    assert check(n("state.status")) == STATUS_T
    assert check(n("command.status")) == STR


def test_state_fields_and_aggregate_id() -> None:
    name = n("paid")
    analysed = analyse(name, ENV)
    assert analysed.type == DECIMAL
    assert analysed.bindings[id(name)] == Binding("state", "paid")
    assert check(n("order_id")) == UUID  # every command carries its aggregate's id


def test_expected_enum_members_then_unique_visible_member() -> None:
    # `Placed` is found through the other side of the comparison...
    assert check(b("==", n("state.status"), n("Placed"))) == BOOL
    # ...also when written first.
    assert check(b("==", n("Placed"), n("state.status"))) == BOOL
    assert check(b("in", n("state.status"), ListExpr((n("Placed"), n("Paid")), at()))) == BOOL
    # Without an expected type a member only one visible enum has is found.
    assert check(n("Medium")) == SIZE_T
    # The expected enum disambiguates a member two enums share.
    assert check(n("Small"), expected=SIZE_T) == SIZE_T
    assert check(n("Size.Small")) == SIZE_T


def test_ambiguous_member() -> None:
    assert problem(n("Small")) == (
        "E401",
        "ambiguous name `Small`: a member of Size and Cup",
        "qualify it: `Size.Small` or `Cup.Small`",
    )


def test_unknown_names_with_help() -> None:
    assert problem(n("totl", 3, 12)) == ("E401", "unknown name `totl`", "did you mean `total`?")
    _, problems = infer(n("totl", 3, 12), ENV)
    assert problems[0].location == at(3, 12)
    assert problem(n("state.stauts")) == (
        "E401",
        "unknown name `state.stauts`",
        "did you mean `state.status`?",
    )
    assert problem(n("OrderStatus.Payd")) == (
        "E401",
        "`Payd` is not a member of OrderStatus",
        "did you mean `Paid`?",
    )
    assert problem(n("event.id"))[:2] == (
        "E401",
        "unknown name `event.id`: there is no `event` here",
    )
    assert problem(call("lenght", n("drinks"))) == (
        "E401",
        "unknown function `lenght`",
        "did you mean `len`?",
    )


def test_unknown_name_gets_no_type_mismatch_on_top() -> None:
    _, problems = infer(b("+", b("*", n("totl"), n("tip")), lit("x")), ENV)
    assert [p.code for p in problems] == ["E401"]


def test_value_fields() -> None:
    assert problem(n("best.size"))[0] == "E402"  # `best` is a Drink? and may be none
    narrowed = b("and", b("!=", n("best"), lit(None)), b("==", n("best.size"), n("Large")))
    assert check(narrowed) == BOOL
    assert problem(n("customer.name"))[1] == "type mismatch: `customer` is str, which has no fields"


def test_value_field_unknown() -> None:
    drink_env = Env(
        SCOPE, ORDERING, "a test", message=Namespace("command", "message", {"d": DRINK_T})
    )
    assert check(n("d.price"), drink_env) == DECIMAL
    assert problem(n("d.prise"), drink_env) == (
        "E401",
        "`prise` is not a field of Drink",
        "did you mean `price`?",
    )


def test_event_envs_and_metadata() -> None:
    env = apply_env(PLACED, SCOPE)
    assert check(n("total"), env) == DECIMAL
    assert check(n("state.paid"), env) == DECIMAL
    assert check(n("event.recorded_at"), env) == DATETIME
    assert check(n("event.stream_id"), env) == UUID
    assert check(n("event.position"), env) == INT
    assert check(n("order_id"), env) == UUID
    external = policy_env(CHARGED, ORDERING, SCOPE)
    assert check(n("amount"), external) == DECIMAL
    assert problem(n("event.stream_id"), external) == (
        "E401",
        "unknown name `event.stream_id`",
        "an external system's event has no stream_id",
    )
    assert problem(n("state.paid"), external)[2] == "a policy has no state; it sees only the event"
    by = view_env(HISTORY, PLACED, SCOPE, row=False)
    assert check(call("date", n("event.recorded_at")), by) == DATE
    assert problem(n("row.orders"), by)[2] == "`by` picks the row, so it sees only the event"
    assert check(n("row.orders"), view_env(HISTORY, PLACED, SCOPE)) == INT


# ---------------------------------------------------------------- functions, none, lists


def test_functions() -> None:
    assert check(call("len", n("drinks"))) == INT
    assert check(call("len", n("customer"))) == INT
    assert check(call("now")) == DATETIME
    assert check(call("today")) == DATE
    assert check(call("date", n("when"))) == DATE
    assert check(call("new_id")) == UUID
    assert check(call("lower", n("customer"))) == STR
    assert check(call("max", n("total"), lit(0))) == DECIMAL
    assert check(call("min", n("count"), n("tip"))) == FLOAT
    assert (
        problem(call("len", n("count")))[1] == "type mismatch: len() needs a list or a str, not int"
    )
    assert problem(call("len"))[1] == "type mismatch: len() takes 1 argument, not 0"
    assert problem(call("min", n("total"), n("tip")))[1] == (
        "type mismatch: cannot compare decimal with float"
    )
    assert (
        problem(call("date", call("today")))[1]
        == "type mismatch: date() needs a datetime, not date"
    )


def test_none_only_for_optionals() -> None:
    assert check(b("==", n("note"), lit(None))) == BOOL
    assert check(b("!=", lit(None), n("note"))) == BOOL
    assert problem(b("==", n("customer"), lit(None))) == (
        "E402",
        "type mismatch: cannot compare str with none",
        "`customer` is never none; only an optional (T?) may be",
    )
    assert problem(b("+", n("note"), lit("x"))) == (
        "E402",
        "type mismatch: `note` may be none (str?)",
        "test it first: 'note != none and ...'",
    )
    # Narrowing through `and` / `or`.
    assert check(b("and", b("!=", n("note"), lit(None)), b("==", call("len", n("note")), lit(3))))
    assert check(b("or", b("==", n("note"), lit(None)), b("==", call("len", n("note")), lit(3))))


def test_in_and_lists() -> None:
    assert check(b("in", lit("a"), n("customer"))) == BOOL
    assert check(b("not in", lit("vip"), n("tags"))) == BOOL
    assert (
        problem(b("in", n("count"), n("tags")))[1]
        == "type mismatch: cannot look for int in list[str]"
    )
    assert problem(b("in", n("count"), n("total")))[1] == (
        "type mismatch: `in` needs a list (or a str in a str) on the right, not decimal"
    )
    assert check(ListExpr((lit(1), lit("2.5")), at())) == ListType(FRACTION)
    assert check(ListExpr((), at())) == ListType(NOTHING)
    assert problem(ListExpr((lit(1), lit("x")), at()))[1] == (
        "type mismatch: a list's items must have one type, not int and str"
    )
    assert problem(b("==", n("state.status"), lit("Placed")))[1] == (
        "type mismatch: cannot compare OrderStatus with str"
    )


def test_constant_env_sees_only_members() -> None:
    env = constant_env(ORDERING, SCOPE)
    assert check(n("Paid"), env) == STATUS_T
    assert problem(n("total"), env)[:2] == ("E401", "unknown name `total`")


def test_did_you_mean() -> None:
    assert did_you_mean("totl", ["total", "totals", "x"]) == "did you mean `total` or `totals`?"
    assert did_you_mean("zzz", ["total"]) is None


# ---------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OPS = ["or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "+", "-", "*", "/"]
_KNOWN = ["total", "tip", "count", "customer", "note", "tags", "drinks", "best", "best.size",
          "state.status", "Placed", "Medium", "Small", "event.id", "when"]  # fmt: skip


def _trees(
    leaves: st.SearchStrategy[Expr],
    min_items: int = 0,
    ops: list[str] = _OPS,
    prefixes: list[str] = ["-", "not"],  # noqa: B006 - never mutated
    with_len: bool = True,
) -> st.SearchStrategy[Expr]:
    def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        return st.one_of(
            st.builds(b, st.sampled_from(ops), children, children),
            st.builds(lambda op, x: Unary(op, x, at()), st.sampled_from(prefixes), children),
            st.builds(
                lambda xs: ListExpr(tuple(xs), at()),
                st.lists(children, min_size=min_items, max_size=3),
            ),
            st.builds(lambda x: call("len", x) if with_len else call("min", x, x), children),
            st.builds(lambda x, y: call("max", x, y), children, children),
        )

    return st.recursive(leaves, extend, max_leaves=12)


_LITERALS = st.sampled_from([lit(1), lit("2.5"), lit("s"), lit(True), lit(None)])


@settings(max_examples=300, deadline=None)
@given(_trees(st.one_of(_LITERALS, st.sampled_from(_KNOWN).map(n))))
def test_inference_never_fails_and_reports_only_its_codes(expr: Expr) -> None:
    result = analyse(expr, ENV)
    assert all(p.code in ("E401", "E402") for p in result.problems)
    assert all(p.message and p.location is not None for p in result.problems)
    assert result.types[id(expr)] == result.type
    # Deterministic: the same tree gives the same findings.
    assert analyse(expr, ENV).problems == result.problems


@settings(max_examples=300, deadline=None)
@given(
    _trees(
        st.sampled_from(["zork", "state.nope", "Nope.Member", "blah"]).map(n),
        min_items=1,
        ops=["+", "-", "*", "/"],
        prefixes=["-"],
        with_len=False,
    )
)
def test_unknown_names_get_no_type_mismatch_on_top(expr: Expr) -> None:
    # Operators whose result type depends on their operands: a comparison or `and` is
    # a bool and `len()` an int whatever their operands are, so `len(a or b)` is a
    # mistake of its own.
    problems = analyse(expr, ENV).problems
    assert [p for p in problems if p.code != "E401"] == []


def test_bindings_tell_the_code_generator_where_names_come_from() -> None:
    env = apply_env(PLACED, SCOPE)
    names = [n("total"), n("state.total"), n("event.recorded_at"), n("Paid"), n("Size.Large")]
    expr = ListExpr(tuple(b("==", x, x) for x in names), at())
    analysed = analyse(expr, env)
    assert [analysed.bindings[id(x)] for x in names] == [
        Binding("message", "total"),
        Binding("state", "total"),
        Binding("metadata", "recorded_at"),
        Binding("member", "Paid", enum=STATUS_T),
        Binding("member", "Large", enum=SIZE_T),
    ]
    best = n("best.size")
    guarded = b("and", b("!=", n("best"), lit(None)), b("==", best, n("Large")))
    analysed = analyse(guarded, ENV)
    assert analysed.bindings[id(best)] == Binding("message", "best", ("size",))
    assert analysed.types[id(best)] == SIZE_T


def test_lookup_order_fields_before_members_and_expected_before_unique() -> None:
    # A field named like a member wins over the member (fields come first).
    env = Env(
        SCOPE,
        ORDERING,
        "a test",
        message=Namespace("command", "message", {"Paid": INT}),
        enums=ENV.enums,
    )
    assert check(n("Paid"), env, expected=STATUS_T) == INT
    # The expected enum's member before another enum's unique one: `Small` is in
    # Size and Cup, expected Cup picks Cup.
    cup = EnumType("Cup", ("Small", "Mug"), None, CUP)
    assert check(n("Small"), ENV, expected=OptionalType(cup)) == cup
    # Not in the expected enum, but in exactly one visible enum: found there, then the
    # comparison is a type mismatch (E402), not an unknown name.
    assert problem(b("==", n("state.status"), n("Medium"))) == (
        "E402",
        "type mismatch: cannot compare OrderStatus with Size",
        None,
    )
