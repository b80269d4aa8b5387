"""``stormgen generate`` for docs, asyncapi and jsonschema: files, --check, refusals."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from stormgen import LoadedModel
from stormgen.cli import app
from stormgen.render.docs import render_docs
from stormgen.render.output import RenderedFile
from stormgen.render.targets import plan, write_files

COFFEE_SHOP = Path(__file__).resolve().parents[2] / "examples" / "coffee_shop.storm"
runner = CliRunner()


def test_docs_pages(coffee: LoadedModel) -> None:
    pages = render_docs(coffee)
    assert set(pages) == {"index.md", "Ordering.md", "Bar.md", "Display.md"}
    index = pages["index.md"]
    assert "```mermaid\nflowchart LR\n" in index
    assert (
        "| [Ordering](Ordering.md) | Takes orders and charges for them | 1 | 3 | 3 | 3 | 2 | 1 |"
        in index
    )
    assert "- `Customer`: Someone buying a drink" in index
    ordering = pages["Ordering.md"]
    # Fields with type, default, pii and the aggregate id every message carries.
    assert "| `customer` | `str` |  | yes |  |" in ordering
    assert "| `drinks` | `list[Drink]` | `[]` |  |  |" in ordering
    assert "| `order_id` | `uuid` |  |  |  |" in ordering
    # Who emits and who consumes an event, across contexts with links.
    paid = ordering[ordering.index("#### OrderPaid") :]
    paid = paid[: paid.index("####", 5)]
    assert "**Emitted by:**\n- [`MarkPaid`](#markpaid)" in paid
    assert "- policy [`Bar.QueuePaidOrder`](Bar.md#queuepaidorder)" in paid
    assert "- view [`DailySales`](#dailysales)" in paid
    assert "- command Cancel: Can a paid order be refunded?" in ordering
    assert "- upstream of [Bar](Bar.md) (upstream OHS, PL; downstream CF)" in ordering
    bar = pages["Bar.md"]
    assert "- policy QueuePaidOrder: What if the bar is out of an ingredient?" in bar
    assert "whenever `Ordering.OrderPaid`" in bar
    assert "`ticket_id = order_id`" in bar
    display = pages["Display.md"]
    assert "`Bar.TicketHandedOver`: deletes the row" in display
    assert "## Open questions\n\nNone.\n" in display


def test_docs_print_each_contexts_scenarios(coffee: LoadedModel) -> None:
    pages = render_docs(coffee)
    ordering = pages["Ordering.md"]
    spec = ordering[ordering.index("## Scenarios") :]
    cancelled = spec[spec.index("### a paid order cannot be cancelled") :]
    cancelled = cancelled[: cancelled.index("###", 5)]
    assert cancelled == (
        "### a paid order cannot be cancelled\n\n"
        "**Given:**\n"
        '- `OrderPlaced` with `order_id = id("o1")`, `customer = "Ada"`, '
        '`drinks = [Drink { name = "latte", price = 3.50 }]`, `total = 3.50`\n'
        '- `OrderPaid` with `order_id = id("o1")`, `amount = 3.50`, `drinks = []`\n\n'
        "**When:**\n"
        '- `Cancel` with `order_id = id("o1")`, `reason = "changed my mind"`\n\n'
        "**Then:**\n"
        "- rejected: “only an unpaid order can be cancelled”\n\n"
    )
    assert '- row `OrderHistory[id("o1")]` with `status = "paid"`' in spec
    unpaid = spec[spec.index("### an unpaid order is cancelled after 15 minutes") :]
    assert unpaid[: unpaid.index("###", 5)].endswith(
        "**When:**\n- `minutes(16)` pass\n\n"
        "**Then:**\n"
        '- `Cancel` with `order_id = id("o1")`, `reason = "not paid within 15 minutes"`\n\n'
    )
    paid = spec[spec.index("### a paid order is not cancelled") :]
    assert paid[: paid.index("###", 5)].endswith(
        "**Then:**\n- nothing happens (no event, no command)\n\n"
    )
    assert "### ready drinks show on the screen" in pages["Display.md"]
    assert "### ready drinks show on the screen" not in ordering


def test_model_text_cannot_break_markdown(tmp_path: Path) -> None:
    path = tmp_path / "odd.storm"
    path.write_text(
        'context Odd "pipes | and <script>x</script>" {\n'
        '  aggregate A { command Make creates { note: str "a | b" emit Made } event Made {} }\n'
        "}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["generate", str(path), "-o", str(tmp_path / "d"), "-t", "docs"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "d" / "Odd.md").read_text()
    assert "<script>" not in text
    assert "| `note` | `str` |  |  | a \\| b |" in text


def test_generate_then_check(tmp_path: Path) -> None:
    for target in ("docs", "asyncapi", "jsonschema"):
        out = tmp_path / target
        args = ["generate", str(COFFEE_SHOP), "-o", str(out), "--target", target]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert snapshot
        again = runner.invoke(app, args)
        assert again.exit_code == 0
        assert "wrote 0 files" in again.output
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
        ok = runner.invoke(app, [*args, "--check"])
        assert ok.exit_code == 0, ok.output
    out = tmp_path / "jsonschema"
    edited = out / "Bar" / "OpenTicket.command.schema.json"
    edited.write_text("{}\n")
    (out / "Ordering" / "Cancel.command.schema.json").unlink()
    drift = runner.invoke(
        app, ["generate", str(COFFEE_SHOP), "-o", str(out), "-t", "jsonschema", "--check"]
    )
    assert drift.exit_code == 1
    assert "  differs: Bar/OpenTicket.command.schema.json" in drift.output
    assert "  missing: Ordering/Cancel.command.schema.json" in drift.output
    assert edited.read_text() == "{}\n"  # --check writes nothing


def test_user_files_are_written_once(tmp_path: Path) -> None:
    files = {"gen.py": RenderedFile("generated 1\n"), "mine.py": RenderedFile("stub\n", False)}
    first = plan(files, tmp_path)
    assert first.write == ("gen.py", "mine.py")
    write_files(files, tmp_path, first.write)
    (tmp_path / "mine.py").write_text("my own code\n")
    files["gen.py"] = RenderedFile("generated 2\n")
    second = plan(files, tmp_path)
    assert second.write == ("gen.py",) and second.kept == ("mine.py",)
    write_files(files, tmp_path, second.write)
    assert (tmp_path / "mine.py").read_text() == "my own code\n"
    assert (tmp_path / "gen.py").read_text() == "generated 2\n"


def test_generate_refuses_a_model_with_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.storm"
    bad.write_text(
        "context Shop {\n  aggregate Cart {\n    command Open creates { emit Opend }\n"
        "    event Opened {}\n  }\n}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stormgen",
            "generate",
            str(bad),
            "-o",
            str(tmp_path / "o"),
            "-t",
            "docs",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{bad}:3:" in done.stderr and "E102" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1] == (
        f"error: {bad} has 1 error; fix them before generating"
    )
    assert not (tmp_path / "o").exists()


def test_unknown_target_and_unreadable_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", str(COFFEE_SHOP), "-o", str(tmp_path), "-t", "rust"])
    assert result.exit_code == 2
    assert "unknown target 'rust'" in result.output
    result = runner.invoke(app, ["generate", str(tmp_path / "none.storm"), "-o", str(tmp_path)])
    assert result.exit_code == 2


def test_files_the_model_no_longer_produces_are_stale(tmp_path: Path) -> None:
    model = tmp_path / "shop.storm"
    two = (
        "context Shop {\n  aggregate Cart {\n"
        "    command Open creates { emit Opened }\n"
        "    command Close { emit Closed }\n"
        "    event Opened {}\n    event Closed {}\n  }\n}\n"
    )
    model.write_text(two, encoding="utf-8")
    out = tmp_path / "schemas"
    args = ["generate", str(model), "-o", str(out), "-t", "jsonschema"]
    assert runner.invoke(app, args).exit_code == 0
    mine = out / "Shop" / "notes.json"
    mine.write_text('{"mine": true}\n')  # not generated: never touched
    model.write_text(two.replace("    command Close { emit Closed }\n", ""), encoding="utf-8")
    check = runner.invoke(app, [*args, "--check"])
    assert check.exit_code == 1
    assert "  stale: Shop/Close.command.schema.json" in check.output
    done = runner.invoke(app, args)
    assert done.exit_code == 0
    assert "1 stale generated files removed" in done.output
    assert not (out / "Shop" / "Close.command.schema.json").exists()
    assert (out / "Shop" / "Closed.event.schema.json").exists()
    assert mine.read_text() == '{"mine": true}\n'
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0


def test_docs_put_a_top_level_scenario_under_its_whens_context(
    load_text: Callable[[str], LoadedModel],
) -> None:
    loaded = load_text(
        """
context Shop {
  aggregate Cart {
    command OpenCart creates { emit CartOpened }
    event CartOpened
  }
  view Carts { key cart_id: uuid  opened: bool = false  on CartOpened { opened = true } }
}
scenario "a cart opens" {
  when Shop.OpenCart { cart_id = id("c1") }
  then Shop.CartOpened Shop.Carts[id("c1")] { opened = true }
}
scenario "time passes" {
  given Shop.CartOpened { cart_id = id("c1") }
  when minutes(5) pass
  then Shop.Carts[id("c1")] { opened = true }
}
"""
    )
    shop = render_docs(loaded)["Shop.md"]
    assert '### a cart opens\n\n**When:**\n- `Shop.OpenCart` with `cart_id = id("c1")`' in shop
    assert '- row `Shop.Carts[id("c1")]` with `opened = true`' in shop
    assert "### time passes" in shop and "- `minutes(5)` pass" in shop
