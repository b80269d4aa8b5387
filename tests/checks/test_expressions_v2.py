"""Language 2 expressions in the checker: types, errors (located, with help), narrowing.

The forms: `A if C else B`, `[E for x in L if C]`, any/all/sum/min/max/first of a
generator, `Value { f = e }`, round/abs/matches/startswith/endswith, `let`, and the
narrowing of `T?` after `!= none` (docs/language.md, "Language 2").
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.lang import parse_model

Finding = tuple[str, int, int, str, str | None]

MODEL = """\
actor Customer
context Shop {
  enum Size { Small, Large }
  value Item { product_id: str, qty: int = 1, price: decimal, size: Size = Small, note: str? }
  aggregate Cart {
    id cart_id: uuid
    state {
      items: list[Item] = []
      note: str? = none
      total: decimal = 0
      ratio: float = 0
    }
    command Open by Customer creates { emit Opened }
    command Act by Customer {
      product_id: str
      count: int
      price: decimal
      maybe: decimal?
      BODY
      emit Acted
    }
    event Opened { }
    event Acted { product_id: str }
  }
}
"""


def findings(tmp_path: Path, body: str) -> list[Finding]:
    path = tmp_path / "model.storm"
    path.write_text(MODEL.replace("BODY", textwrap.dedent(body).strip()))
    out = []
    for d in check(parse_model(path)):
        if d.code.startswith(("E1", "E3", "E4")):
            assert d.location is not None
            out.append((d.code, d.location.line, d.location.column, d.message, d.help))
    return out


def column_of(body: str, needle: str) -> int:
    """The column of ``needle`` in the one-line ``body`` (which starts at column 7)."""
    return 7 + body.index(needle)


LINE = 19  # the line BODY stands on


@pytest.mark.parametrize(
    "body",
    [
        # conditional expressions: int widens, none makes it optional
        'require (price if count > 0 else 0) >= 0 else "m"',
        'require ("a" if count > 0 else none) != none else "m"',
        # comprehensions, filters, nested generators
        'require len([i for i in items if i.product_id != product_id]) >= 0 else "m"',
        'require len([[j for j in items] for i in items]) >= 0 else "m"',
        'require any(i.qty > 1 for i in items) else "m"',
        'require all(i.qty > 1 for i in items if i.size == Large) else "m"',
        'require sum(i.price * i.qty for i in items) >= total else "m"',
        'require sum(i.qty for i in items) + count > 0 else "m"',
        'require sum([1, 2]) > 0 else "m"',
        'require min(i.price for i in items) != none else "m"',
        'require first(i.product_id for i in items if i.qty > 1) == product_id else "m"',
        # value construction: omitted fields take defaults, optionals none
        'require Item { product_id = product_id, price = price } in items else "m"',
        # functions
        'require round(price, 2) == abs(price) else "m"',
        'require matches(product_id, "[A-Z]{3}-[0-9]+") else "m"',
        'require startswith(product_id, "A") and endswith(product_id, "1") else "m"',
        'require "A" in product_id else "m"',
        # narrowing: right of `and`, first branch of `if`, after a require
        'require maybe != none and maybe > 0 else "m"',
        'require (maybe if maybe != none else price) > 0 else "m"',
        'require maybe != none else "m"\n      require maybe > 0 else "m"',
        # let: before, between and after requires
        'let n = len(items)\n      require n >= 0 else "m"\n      let m = n + 1\n'
        '      require m > n else "m"',
    ],
)
def test_language_2_forms_check_clean(tmp_path: Path, body: str) -> None:
    assert findings(tmp_path, body) == []


def test_a_conditional_needs_one_type(tmp_path: Path) -> None:
    body = 'require ("a" if count > 0 else 1) == "a" else "m"'
    assert findings(tmp_path, body) == [
        (
            "E402",
            LINE,
            column_of(body, "1)"),
            "type mismatch: the two sides of `if ... else` must have one type, not str and int",
            "give both sides the same type (an int widens to a decimal or float)",
        )
    ]


def test_a_conditional_needs_a_bool_condition(tmp_path: Path) -> None:
    body = 'require (1 if count else 2) > 0 else "m"'
    ((code, line, col, message, _),) = findings(tmp_path, body)
    assert (code, line, col) == ("E402", LINE, column_of(body, "count"))
    assert "must be bool, not int" in message


def test_the_variable_is_bound_inside_only(tmp_path: Path) -> None:
    body = 'require len([i for i in items]) > i.qty else "m"'
    ((code, line, col, message, _),) = findings(tmp_path, body)
    assert (code, line, col, message) == (
        "E401",
        LINE,
        column_of(body, "i.qty"),
        "unknown name `i`",
    )


def test_for_goes_through_a_list(tmp_path: Path) -> None:
    body = 'require any(c > 0 for c in count) else "m"'
    assert findings(tmp_path, body) == [
        (
            "E402",
            LINE,
            column_of(body, "count)"),
            "type mismatch: `for` goes through a list, not int",
            "write a list field (or a list) after `in`",
        )
    ]


def test_any_needs_bool_items(tmp_path: Path) -> None:
    body = 'require any(i.qty for i in items) else "m"'
    ((code, _, col, message, _),) = findings(tmp_path, body)
    assert (code, col, message) == (
        "E402",
        column_of(body, "i.qty"),
        "type mismatch: any() needs bool items, not int",
    )


def test_sum_adds_numbers(tmp_path: Path) -> None:
    body = 'require sum(i.product_id for i in items) != "" else "m"'
    ((code, _, col, message, _),) = findings(tmp_path, body)
    assert (code, col, message) == (
        "E402",
        column_of(body, "i.product_id"),
        "type mismatch: sum() adds numbers, not str",
    )


@pytest.mark.parametrize("fn", ["min", "max", "first"])
def test_min_max_first_are_optional(tmp_path: Path, fn: str) -> None:
    body = f'require {fn}(i.price for i in items) > 0 else "m"'
    ((code, _, col, message, help_),) = findings(tmp_path, body)
    assert (code, col) == ("E402", column_of(body, fn))
    assert message == f"type mismatch: {fn}() may be none (decimal?)"
    assert help_ is not None and help_.startswith(f"{fn}() is none when nothing is left")


def test_a_generator_stands_only_in_its_functions(tmp_path: Path) -> None:
    body = 'require len(i for i in items) > 0 else "m"'
    ((code, _, col, message, help_),) = findings(tmp_path, body)
    assert (code, col) == ("E402", column_of(body, "i for"))
    assert message == "type mismatch: len() does not take a generator `... for x in L`"
    assert help_ is not None and "[E for x in L]" in help_


def test_for_follows_one_expression(tmp_path: Path) -> None:
    path = tmp_path / "model.storm"
    path.write_text(MODEL.replace("BODY", 'require len([1, 2 for i in items]) > 0 else "m"'))
    with pytest.raises(Exception, match="follows exactly one expression"):
        parse_model(path)


def test_a_variable_hiding_a_field_is_e101(tmp_path: Path) -> None:
    body = 'require any(count > 0 for count in [1]) else "m"'
    ((code, _, col, message, help_),) = findings(tmp_path, body)
    assert (code, col) == ("E101", column_of(body, "for count"))
    assert "would hide it" in message
    assert help_ == "choose another name for the variable"


def test_a_value_left_without_a_required_field_is_e301(tmp_path: Path) -> None:
    body = 'require Item { product_id = product_id } in items else "m"'
    assert findings(tmp_path, body) == [
        (
            "E301",
            LINE,
            column_of(body, "Item"),
            "Item { ... } leaves out `price`, with no default",
            "give it a value: 'price = ...'",
        )
    ]


def test_a_value_field_that_does_not_exist_is_e403(tmp_path: Path) -> None:
    body = 'require Item { product_id = product_id, price = price, prize = 1 } in items else "m"'
    ((code, _, col, message, help_),) = findings(tmp_path, body)
    assert (code, col, message, help_) == (
        "E403",
        column_of(body, "prize"),
        "`prize` is not a field of Item",
        "did you mean `price`?",
    )


def test_a_value_field_of_the_wrong_type_is_e402(tmp_path: Path) -> None:
    body = 'require Item { product_id = count, price = price } in items else "m"'
    ((code, _, col, message, _),) = findings(tmp_path, body)
    assert (code, col, message) == (
        "E402",
        column_of(body, "count"),
        "type mismatch: cannot assign int to `product_id` (str)",
    )


def test_an_unknown_value_is_e401(tmp_path: Path) -> None:
    body = 'require Itme { product_id = product_id } in items else "m"'
    ((code, _, col, message, help_),) = findings(tmp_path, body)
    assert (code, col, message, help_) == (
        "E401",
        column_of(body, "Itme"),
        "unknown value `Itme`",
        "did you mean `Item`?",
    )


def test_a_matches_pattern_that_does_not_compile_is_e404(tmp_path: Path) -> None:
    body = 'require matches(product_id, "[A-Z") else "m"'
    ((code, _, col, message, help_),) = findings(tmp_path, body)
    assert (code, col) == ("E404", column_of(body, '"[A-Z"'))
    assert message.startswith("the pattern of matches() does not compile: ")
    assert help_ is not None


def test_a_matches_pattern_must_be_a_literal(tmp_path: Path) -> None:
    body = 'require matches(product_id, product_id) else "m"'
    ((code, _, col, message, _),) = findings(tmp_path, body)
    assert (code, col, message) == (
        "E404",
        column_of(body, "product_id)"),
        "the pattern of matches() must be a string literal",
    )


def test_round_needs_a_number(tmp_path: Path) -> None:
    body = 'require round(product_id, 2) == "" else "m"'
    ((code, _, col, message, _),) = findings(tmp_path, body)
    assert (code, col, message) == (
        "E402",
        column_of(body, "product_id"),
        "type mismatch: round() needs a number, not str",
    )


def test_no_narrowing_in_the_else_branch(tmp_path: Path) -> None:
    body = 'require (price if maybe != none else maybe) > 0 else "m"'
    ((code, _, col, message, _),) = findings(tmp_path, body)
    assert (code, col) == ("E402", column_of(body, "price if"))
    assert "may be none" in message or "cannot compare" in message


def test_no_narrowing_before_the_require(tmp_path: Path) -> None:
    body = 'let big = maybe > 0\n      require maybe != none else "m"'
    ((code, line, col, message, help_),) = findings(tmp_path, body)
    assert (code, line, col) == ("E402", LINE, column_of(body, "maybe >"))
    assert message == "type mismatch: `maybe` may be none (decimal?)"
    assert help_ == "test it first: 'maybe != none and ...'"


def test_a_let_is_seen_by_later_lines_only(tmp_path: Path) -> None:
    body = 'require n > 0 else "m"\n      let n = 1'
    ((code, line, col, message, _),) = findings(tmp_path, body)
    assert (code, line, col, message) == ("E401", LINE, column_of(body, "n >"), "unknown name `n`")


def test_a_let_hiding_a_field_is_e101(tmp_path: Path) -> None:
    body = "let total = 1"
    assert findings(tmp_path, body) == [
        ("E101", LINE, 7, "`let total` would hide the field `total`", "choose another name")
    ]


def test_a_let_cannot_call_new_id(tmp_path: Path) -> None:
    body = "let fresh = new_id()"
    ((code, _, col, message, _),) = findings(tmp_path, body)
    assert (code, col) == ("E402", column_of(body, "new_id"))
    assert "cannot call new_id()" in message


def test_a_view_handler_let(tmp_path: Path) -> None:
    text = MODEL.replace("BODY", "") + textwrap.dedent(
        """\
        context Shop {
        }
        """
    )
    del text  # views are checked in test_a_view_let_hiding_a_column_is_e101
    path = tmp_path / "model.storm"
    path.write_text(
        MODEL.replace("BODY", "").replace(
            "  aggregate Cart {",
            "  view Acts {\n    key cart_id: uuid\n    n: int = 0\n"
            "    on Acted { let k = len(product_id)  n = k + 1 }\n  }\n  aggregate Cart {",
        )
    )
    assert [d for d in check(parse_model(path)) if d.code.startswith("E")] == []


def test_a_view_let_hiding_a_column_is_e101(tmp_path: Path) -> None:
    path = tmp_path / "model.storm"
    path.write_text(
        MODEL.replace("BODY", "").replace(
            "  aggregate Cart {",
            "  view Acts {\n    key cart_id: uuid\n    n: int = 0\n"
            "    on Acted { let n = 1 }\n  }\n  aggregate Cart {",
        )
    )
    found = [(d.code, d.message) for d in check(parse_model(path)) if d.code.startswith("E")]
    assert found == [("E101", "`let n` would hide the field `n`")]


POLICY = """\
  policy Follow {
    when Acted if CONDITION
    then Act { product_id = VALUE, count = 1, price = 1 }
  }
"""


def policy_findings(tmp_path: Path, condition: str, value: str) -> list[tuple[str, str]]:
    text = MODEL.replace("BODY", "").replace(
        "event Acted { product_id: str }", "event Acted { product_id: str, tag: str? }"
    )
    text = text.replace(
        "  aggregate Cart {",
        POLICY.replace("CONDITION", condition).replace("VALUE", value) + "  aggregate Cart {",
    )
    path = tmp_path / "model.storm"
    path.write_text(text)
    return [(d.code, d.message) for d in check(parse_model(path)) if d.code.startswith("E4")]


def test_a_policy_s_then_lines_see_its_condition_s_narrowing(tmp_path: Path) -> None:
    assert policy_findings(tmp_path, "tag != none and len(tag) > 0", "upper(tag)") == []


def test_no_narrowing_in_a_policy_without_the_test(tmp_path: Path) -> None:
    assert policy_findings(tmp_path, "tag != none or true", "upper(tag)") == [
        ("E402", "type mismatch: `tag` may be none (str?)")
    ]
