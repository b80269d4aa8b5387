"""Lookups `View[key]` in a process's handlers: checked as in a policy (the key's type,
another context's view is E107, narrowing after `!= none`; not in `by`), compiled to the
process's own `lookup_<view>` method, drawn as a dashed edge view -> process, and run on
a SQLite file: the handler's `if`, its assignments and a timer's handler read the row
the view's consumer wrote.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from stormgen.lang import parse_model
from stormgen.render.board import build_board
from stormgen.render.targets import with_graph

from ._helpers import check_project, errors, generate, render, run

MODEL = """\
model Watch
actor Clerk
context Shop {
  aggregate Order {
    id order_id: uuid
    command Place by Clerk creates { sku: str  quantity: int  emit Placed }
    command Hold { reason: str  emit Held }
    event Placed { sku: str, quantity: int }
    published event Held { reason: str }
  }
  aggregate Product {
    id sku: str
    command Restock by Clerk creates { amount: int  emit Restocked }
    command Top by Clerk { amount: int  emit Restocked }
    event Restocked { amount: int }
  }
  view Stock {
    key sku: str
    available: int = 0
    on Restocked { available += amount }
  }
  # An order of a product the shop knows is watched: short of stock, it is held when
  # a restock has not come within 30 minutes.
  process Fulfil {
    key order_id: uuid
    state {
      sku: str = ""
      quantity: int = 0
      short: bool = false
    }
    on Placed if Stock[sku] != none starts {
      short = Stock[sku].available < quantity
      timer Recheck after minutes(30)
    }
    on timer Recheck {
      let stock = Stock[sku]
      then Hold { reason = "still short" } if stock == none or stock.available < quantity
      end
    }
  }
}
context Other {
  aggregate Thing {
    id thing_id: str
    command Make creates { emit Made }
    event Made { }
  }
  process Watcher {
    key thing_id: str
    on Made starts { }
  }
}
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "watch.storm"
    path.write_text(MODEL)
    return path


def test_a_process_reading_a_view_checks_clean(tmp_path: Path) -> None:
    assert errors(tmp_path, MODEL) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # the key's type is the view's key's
        (
            "on Placed if Stock[sku] != none starts",
            "on Placed if Stock[quantity] != none starts",
            "the key of Stock is str, not int",
        ),
        # a row may be none: the handler's `if` narrows its lines, nothing else does
        (
            "on Placed if Stock[sku] != none starts",
            "on Placed starts",
            "`Stock[sku]` may be none (Stock row?), so it has no field `available`",
        ),
        (
            "if stock == none or stock.available < quantity",
            "if stock.available < quantity",
            "`stock` may be none",
        ),
        ("let stock = Stock[sku]", "let stock = Stokc[sku]", "unknown view `Stokc`"),
        # the row's type: its columns, not the event's
        (
            "short = Stock[sku].available < quantity",
            "short = Stock[sku].amount < quantity",
            "`amount` is not a field of Stock row",
        ),
        # `by` picks the instance from the event alone
        (
            "on timer Recheck {",
            "on Restocked by Stock[sku].sku { }\n    on timer Recheck {",
            "a process's `by` cannot read a view",
        ),
    ],
)
def test_lookup_mistakes_in_a_process(tmp_path: Path, old: str, new: str, expected: str) -> None:
    found = errors(tmp_path, MODEL.replace(old, new))
    assert any(expected in message for _, message, _, _ in found), found


def test_another_contexts_view_is_e107_in_a_process(tmp_path: Path) -> None:
    text = MODEL.replace("on Made starts { }", "on Made if Shop.Stock[thing_id] == none starts { }")
    assert errors(tmp_path, text) == [
        ("E107", "`Shop.Stock[...]` reads a view of the Shop context from Other", 50, 16)
    ]


def test_a_process_lookup_compiles_to_its_own_method(model: Path) -> None:
    module = render(model)["src/watch/shop/fulfil.py"].content
    assert "if TYPE_CHECKING:\n    from watch.shop.views import StockRow\n" in module
    assert "    def lookup_stock(self, key: str) -> StockRow | None:\n" in module
    assert 'row: StockRow | None = self.lookups.row("Shop.Stock", key)' in module
    # the `if` reads the event's sku; the assignment is narrowed by it
    assert "        if not (self.lookup_stock(event.sku) is not None):\n" in module
    assert 'present(self.lookup_stock(event.sku), "Stock[sku]").available' in module
    # the timer's handler reads the state's sku (its `let`, as a process's are, inlined)
    recheck = module[module.index("    def on_timer_recheck(") :]
    assert "self.lookup_stock(state.sku) is None\n" in recheck
    assert 'present(self.lookup_stock(state.sku), "stock").available < state.quantity' in recheck
    # a process without lookups gets no method
    assert "lookup_" not in render(model)["src/watch/other/watcher.py"].content


def test_a_process_lookup_is_a_dashed_edge_view_to_process(model: Path) -> None:
    loaded = with_graph(parse_model(model))
    reads = [(u, v) for u, v, kind in loaded.graph.edges(data="kind") if kind == "reads"]
    # once, though three lines of two handlers read Stock
    assert reads == [("view:Shop.Stock", "process:Shop.Fulfil")]
    board = build_board(loaded)
    links = [link for lane in board.lanes for link in lane.links if link.kind == "reads"]
    assert len(links) == 1


RUN = """\
from datetime import timedelta

from stormgen.runtime import Application, TestClock

from watch.app import definitions
from watch.shop.order import Place
from watch.shop.product import Restock, Top

clock = TestClock()
with Application.open({url!r}, clock=clock, **definitions()) as app:
    unknown = app.handle(Place(sku="mug", quantity=1))  # no Stock row: not watched
    app.handle(Restock(sku="tea", amount=1))
    app.handle(Restock(sku="jam", amount=1))
    app.run_consumers()
    short = app.handle(Place(sku="tea", quantity=3))
    topped = app.handle(Place(sku="jam", quantity=3))
    app.run_consumers()
    print("unknown:", app.process_instance("Shop.Fulfil", unknown.id))
    print("short:", app.process_instance("Shop.Fulfil", short.id).state.short)
    app.handle(Top(sku="jam", amount=5))  # jam is restocked in time, tea is not
    app.run_consumers()
    clock.advance(timedelta(minutes=31))
    app.run_consumers()
    held = [e.type for e in app.history("Shop.Order", short.id)]
    kept = [e.type for e in app.history("Shop.Order", topped.id)]
    print("held:", held, kept)
    print("ended:", app.process_instance("Shop.Fulfil", short.id).ended)
"""


def test_a_process_reads_the_views_rows_on_a_file(
    model: Path, tmp_path: Path, mypy_cache: Path
) -> None:
    project = generate(model, tmp_path / "watch")
    check_project(project, mypy_cache)
    script = project / "run.py"
    script.write_text(textwrap.dedent(RUN.format(url="sqlite:///" + str(tmp_path / "events.db"))))
    out = run([sys.executable, str(script)], project, env={"PYTHONPATH": str(project / "src")})
    assert out.splitlines() == [
        "unknown: None",
        "short: True",
        "held: ['Shop.Placed', 'Shop.Held'] ['Shop.Placed']",
        "ended: True",
    ]
