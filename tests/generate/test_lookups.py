"""Lookups `View[key]`: a view's current row read by a command's guards and a policy.

Checked (the key's type, another context's view is E107, a lookup outside a command or
a policy, narrowing after `!= none`), compiled (a `lookup_<view>` method reading the row
through the runtime's `Lookups`, the row class imported for annotations only), and run
on SQLite and in memory: the guard sees the row the view's consumer wrote.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.lang import parse_model
from stormgen.render.board import build_board, render_board
from stormgen.render.diagram import event_flow, to_mermaid
from stormgen.render.targets import with_graph

from ._helpers import check_project, errors, generate, render, run

pytestmark = pytest.mark.slow

MODEL = """\
model Look
actor Clerk
context Shop {
  aggregate Order {
    id order_id: uuid
    state { sku: str = "", quantity: int = 0 }
    command Place by Clerk creates {
      sku: str
      quantity: int
      let stock = Stock[sku]
      require stock != none else "unknown product"
      require stock.available >= quantity else "not enough stock"
      emit Placed { left = stock.available - quantity }
    }
    event Placed { sku: str, quantity: int, left: int }
  }
  aggregate Product {
    id sku: str
    state { available: int = 0 }
    command Create by Clerk creates { emit Created }
    command Restock by Clerk { amount: int, emit Restocked }
    event Created { }
    event Restocked { amount: int }
  }
  view Stock {
    key sku: str
    available: int = 0
    on Restocked { available += amount }
    on Placed { available -= quantity }
  }
  policy Reorder {
    when Placed if Stock[sku] != none and Stock[sku].available < 2
    then Restock { amount = 10 }
  }
}
context Other {
  aggregate Thing {
    id thing_id: str
    command Make creates { emit Made }
    event Made { }
  }
}
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "look.storm"
    path.write_text(MODEL)
    return path


def test_a_model_with_lookups_checks_clean(model: Path) -> None:
    assert [d for d in check(parse_model(model)) if d.code.startswith("E")] == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # the key's type is the view's key's
        ("let stock = Stock[sku]", "let stock = Stock[quantity]", "the key of Stock is str"),
        # a row may be none: reading a field needs a test first
        ('require stock != none else "unknown product"', "", "`stock` may be none"),
        (
            "when Placed if Stock[sku] != none and Stock[sku].available < 2",
            "when Placed if Stock[sku].available < 2",
            "`Stock[sku]` may be none",
        ),
        ("let stock = Stock[sku]", "let stock = Stokc[sku]", "unknown view `Stokc`"),
        # a view's handler and an apply cannot read a view
        (
            "on Placed { available -= quantity }",
            "on Placed { available = 0 if Stock[sku] == none else 1 }",
            "a view cannot read a view",
        ),
    ],
)
def test_lookup_mistakes(tmp_path: Path, old: str, new: str, expected: str) -> None:
    found = errors(tmp_path, MODEL.replace(old, new))
    assert any(expected in message for _, message, _, _ in found), found


def test_another_contexts_view_is_e107(tmp_path: Path) -> None:
    text = MODEL.replace(
        "command Make creates { emit Made }",
        'command Make creates {\n      require Shop.Stock[thing_id] == none else "taken"\n'
        "      emit Made\n    }",
    )
    found = errors(tmp_path, text)
    assert found == [
        ("E107", "`Shop.Stock[...]` reads a view of the Shop context from Other", 40, 15)
    ], found


def test_a_lookup_compiles_to_a_method_reading_the_row(model: Path) -> None:
    files = render(model)
    order = files["src/look/shop/order.py"].content
    assert "if TYPE_CHECKING:\n    from look.shop.views import StockRow\n" in order
    assert "    def lookup_stock(self, key: str) -> StockRow | None:\n" in order
    assert 'row: StockRow | None = self.lookups.row("Shop.Stock", key)' in order
    # `let stock = Stock[sku]` is a local variable: the row is read once in each method,
    # before the first line that uses it, and every later line sees that same row
    check = order[order.index("    def check_place(") : order.index("    def emit_place(")]
    assert check.count("self.lookup_stock(") == 1
    assert check.index("        stock = self.lookup_stock(command.sku)\n") < check.index("require(")
    assert 'require(stock is not None, "unknown product")' in check
    assert 'require(present(stock, "stock").available >= command.quantity, ' in check
    emit = order[order.index("    def emit_place(") :]
    assert emit.count("self.lookup_stock(") == 1
    assert 'left=present(stock, "stock").available - command.quantity,' in emit
    policies = files["src/look/shop/policies.py"].content
    assert "self.lookup_stock(event.sku) is not None" in policies
    assert 'present(self.lookup_stock(event.sku), "Stock[sku]").available < 2' in policies


def test_the_rows_of_two_views_are_imported_on_one_line(tmp_path: Path) -> None:
    """As isort writes them (ruff's I001 in the generated project otherwise)."""
    path = tmp_path / "look.storm"
    path.write_text(
        MODEL.replace(
            '      require stock != none else "unknown product"\n',
            '      require stock != none else "unknown product"\n'
            '      require Sold[sku] == none or Sold[sku].count < 100 else "sold out"\n',
        ).replace(
            "  policy Reorder",
            "  view Sold {\n    key sku: str\n    count: int = 0\n"
            "    on Placed { count += quantity }\n  }\n  policy Reorder",
        )
    )
    order = render(path)["src/look/shop/order.py"].content
    assert "if TYPE_CHECKING:\n    from look.shop.views import SoldRow, StockRow\n\n" in order


def test_a_lookup_is_a_dashed_edge_view_to_reader(model: Path) -> None:
    loaded = with_graph(parse_model(model))
    graph = loaded.graph
    reads = [(u, v) for u, v, kind in graph.edges(data="kind") if kind == "reads"]
    # once per reader, though Reorder's `if` reads Stock twice
    assert sorted(reads) == [
        ("view:Shop.Stock", "command:Shop.Place"),
        ("view:Shop.Stock", "policy:Shop.Reorder"),
    ]
    flow = event_flow(graph)
    dashed = [(e.source, e.target) for e in flow.edges if e.kind == "reads" and e.dashed]
    assert sorted(dashed) == sorted(reads)
    mermaid = to_mermaid(flow)
    assert mermaid.count("-.->") == 2
    board = build_board(loaded)
    links = [link for lane in board.lanes for link in lane.links if link.kind == "reads"]
    assert len(links) == 2
    assert ".links .l-reads { stroke: #2b8a3e; stroke-dasharray: 6 4; }" in render_board(loaded)


RUN = """\
from stormgen.runtime import Application, Rejected

from look.app import definitions
from look.shop.order import Place
from look.shop.product import Create, Restock

with Application.open({url!r}, **definitions()) as app:
    try:
        app.handle(Place(sku="tea", quantity=1))
    except Rejected as exc:
        print("rejected:", exc)
    app.handle(Create(sku="tea"))
    app.handle(Restock(sku="tea", amount=3))
    app.run_consumers()  # the view has the row now
    try:
        app.handle(Place(sku="tea", quantity=5))
    except Rejected as exc:
        print("rejected:", exc)
    placed = app.handle(Place(sku="tea", quantity=2))
    print("left:", app.history("Shop.Order", placed.stream_id)[0].event.left)
    app.run_consumers()  # Stock 1 < 2: Reorder restocks 10
    app.run_consumers()
    print("stock:", app.view_row("Shop.Stock", "tea"))
"""


def test_guards_and_policies_read_the_views_rows(
    model: Path, tmp_path: Path, mypy_cache: Path
) -> None:
    project = generate(model, tmp_path / "look")
    check_project(project, mypy_cache)
    script = project / "run.py"
    for url in ("sqlite:///" + str(tmp_path / "events.db"), "memory://"):
        script.write_text(textwrap.dedent(RUN.format(url=url)))
        env = {"PYTHONPATH": str(project / "src")}
        out = run([sys.executable, str(script)], project, env=env).splitlines()
        assert out == [
            "rejected: unknown product",
            "rejected: not enough stock",
            "left: 1",
            "stock: {'sku': 'tea', 'available': 11}",
        ], (url, out)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # a conditional's first branch, and a `then` line after the `when ... if`
        ("then Restock { amount = 10 }", "then Restock { amount = 12 - Stock[sku].available }"),
        (
            "emit Placed { left = stock.available - quantity }",
            "emit Placed { left = Stock[sku].available if Stock[sku] != none else 0 }",
        ),
        # `or`: the right side sees the left side false
        (
            'require stock != none else "unknown product"',
            'require Stock[sku] == none or Stock[sku].available > 0 else "sold out"\n'
            '      require stock != none else "unknown product"',
        ),
    ],
)
def test_a_lookup_is_narrowed_like_any_optional(tmp_path: Path, old: str, new: str) -> None:
    assert errors(tmp_path, MODEL.replace(old, new)) == []
