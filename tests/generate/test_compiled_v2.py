"""Language 2 expressions compiled to plain Python (tests/generate/language2.storm).

A comprehension stays a comprehension, a generator call stays a call, a value
construction is a keyword call; the generated project passes ruff, mypy --strict and
its own tests; an expression that fails at run time rejects the command and writes
nothing.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from ._helpers import check_project, generate, render, run

MODEL = Path(__file__).with_name("language2.storm")


@pytest.fixture(scope="module")
def basket() -> str:
    return render(MODEL)["src/language2/shop/basket.py"].content


def test_comprehensions_stay_comprehensions(basket: str) -> None:
    # removal from a list is a filter (`let kept = ...`: a local the emit reads)
    assert "kept = tuple([l_ for l_ in state.lines if l_.sku != command.sku])\n" in basket
    assert "lines=kept," in basket
    assert "skus=tuple([l_.sku.lower() for l_ in state.lines])," in basket


def test_generator_calls(basket: str) -> None:
    assert "require(any(l_.sku == command.sku for l_ in state.lines), " in basket
    assert "require(all(l_.sku != command.sku for l_ in state.lines), " in basket
    assert "cheapest=min((l_.price for l_ in state.lines), default=None)," in basket
    assert "priciest=max((l_.price for l_ in state.lines if l_.qty > 0), default=None)," in basket
    assert 'first_sku=next((l_.sku for l_ in state.lines if "-" in l_.sku), None),' in basket
    # a decimal sum starts at Decimal(0), so mypy and the wire see a Decimal
    assert "), Decimal(0))," in basket


def test_functions_and_value_construction(basket: str) -> None:
    assert 'require(fullmatch("[A-Z]{3}-[0-9]+", command.sku) is not None, ' in basket
    assert 'command.sku.startswith("XXX")' in basket
    assert 'command.sku.endswith("-0")' in basket
    assert "Line(sku=command.sku, qty=command.qty, price=round(abs(command.price), 2))" in basket
    assert "from re import fullmatch" in basket


def test_conditionals_and_narrowing_after_a_require(basket: str) -> None:
    assert "band=Band.High" in basket and "else Band.Low," in basket
    # `require note != none` holds in the emit: mypy is told so, the guard reads plainly
    assert "require(state.note is not None, " in basket
    assert 'label=present(state.note, "note").upper()' in basket


def test_narrowing_in_a_policy_s_then_lines() -> None:
    policies = render(MODEL)["src/language2/shop/policies.py"].content
    assert "return event.first_sku is not None and len(event.skus) > 1" in policies
    assert 'label=present(event.first_sku, "first_sku").lower()' in policies


def test_a_view_handler_let() -> None:
    views = render(MODEL)["src/language2/shop/views.py"].content
    assert "return replace(row, lines=len(event.lines), big=len(event.lines) > 3)" in views


def test_the_project_is_clean_and_its_tests_pass(tmp_path: Path, mypy_cache: Path) -> None:
    project = generate(MODEL, tmp_path / "language2")
    check_project(project, mypy_cache)
    tests = (project / "tests/test_shop_basket.py").read_text()
    for command in ("RemoveLine", "Split"):
        assert f"{command}: found no case where it is accepted" not in tests


SPLIT_BY_ZERO = """\
from uuid import UUID

from stormgen.runtime import Application, Rejected

from language2.app import definitions
from language2.shop.basket import Open, Split

store = "sqlite:///" + {db!r}
ident = UUID(int=7)
with Application.open(store, **definitions()) as app:
    app.handle(Open(basket_id=ident))
    try:
        app.handle(Split(basket_id=ident, ways=0))
    except Rejected as exc:
        print("rejected:", exc.message)
    else:
        print("accepted")
with Application.open(store, **definitions()) as app:
    print("events:", len(app.history("Shop.Basket", ident)))
"""


def test_a_division_by_zero_rejects_the_command_and_writes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "split.storm"
    # the guard lets ways == 0 through: total / ways fails when the command runs
    model.write_text(
        MODEL.read_text()
        .replace('require note != none else "a basket to split needs a note"', "")
        .replace('label = upper(note) if len(note) > 0 else "none"', 'label = "x"')
    )
    project = generate(model, tmp_path / "project")
    script = project / "split.py"
    script.write_text(textwrap.dedent(SPLIT_BY_ZERO.format(db=str(tmp_path / "events.db"))))
    out = run([sys.executable, str(script)], project, env={"PYTHONPATH": str(project / "src")})
    assert out.splitlines() == [
        "rejected: Split cannot be computed: an undefined operation (such as 0 / 0)",
        "events: 1",
    ]


def test_the_docs_show_the_lets_and_the_new_forms() -> None:
    from stormgen import load
    from stormgen.render.targets import normalize, render_target

    files = normalize(render_target("docs", load(MODEL), None, checked=True))
    shop = next(f.content for path, f in files.items() if path.endswith("Shop.md"))
    assert "`let kept = [l for l in lines if l.sku != sku]`" in shop
    assert "`any(l.sku == sku for l in lines)` else “not in the basket”" in shop
