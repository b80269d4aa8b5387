"""Model text becomes inert Python: literals round-trip, names are valid and distinct."""

from __future__ import annotations

import ast
import keyword
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stormgen.render.python.literals import comment_text, py_docstring, py_str, py_timedelta
from stormgen.render.python.names import (
    Namespace,
    field_name,
    member_name,
    package_name,
    snake_case,
)

IDENTIFIERS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@given(st.text())
def test_a_string_literal_evaluates_to_the_text_on_one_line(text: str) -> None:
    literal = py_str(text)
    assert "\n" not in literal and "\r" not in literal
    assert ast.literal_eval(literal) == text


@given(st.text())
def test_a_docstring_is_one_line_and_holds_the_folded_text(text: str) -> None:
    doc = py_docstring(text)
    module = ast.parse(f"def f() -> None:\n    {doc}\n")
    function = module.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert ast.get_docstring(function, clean=False) == (" ".join(text.split()) or "-")
    assert len(module.body) == 1 and len(function.body) == 1  # nothing escaped the string


@given(st.text())
def test_a_comment_cannot_end_early(text: str) -> None:
    source = f"x = 1  # {comment_text(text)}\ny = 2\n"
    assert [type(n) for n in ast.parse(source).body] == [ast.Assign, ast.Assign]


@given(IDENTIFIERS)
def test_safe_names_are_identifiers_and_not_keywords(name: str) -> None:
    for safe in (field_name(name), member_name(name), package_name(name), snake_case(name)):
        assert safe.isidentifier() or safe == snake_case(name)
    assert not keyword.iskeyword(field_name(name))
    assert not keyword.iskeyword(member_name(name))
    assert package_name(name).isidentifier() and not keyword.iskeyword(package_name(name))


@given(st.lists(IDENTIFIERS, max_size=30))
def test_a_namespace_never_gives_one_name_twice(wanted: list[str]) -> None:
    ns = Namespace()
    given_names = [ns.claim(name, i) for i, name in enumerate(wanted)]
    assert len(set(given_names)) == len(given_names)
    assert all(n.isidentifier() and not keyword.iskeyword(n) for n in given_names)


def test_case_conversions() -> None:
    assert snake_case("PlaceOrder") == "place_order"
    assert snake_case("HTTPRequest") == "http_request"
    assert package_name("CoffeeShop") == "coffee_shop"
    assert package_name("Class") == "class_service"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "timedelta(0)"),
        (timedelta(minutes=15), "timedelta(minutes=15)"),
        (timedelta(weeks=2), "timedelta(weeks=2)"),
        (timedelta(days=1, hours=2), "timedelta(days=1, hours=2)"),
        (timedelta(hours=-36), "-timedelta(days=1, hours=12)"),
        (timedelta(seconds=1, microseconds=5), "timedelta(seconds=1, microseconds=5)"),
    ],
)
def test_py_timedelta_reads_as_written(value: timedelta, text: str) -> None:
    assert py_timedelta(value) == text
    assert eval(text, {"timedelta": timedelta}) == value
