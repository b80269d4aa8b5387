"""``stormgen graph``: Mermaid for the coffee shop, DOT through real Graphviz, SVG, HTML."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from stormgen import LoadedModel
from stormgen.cli import app
from stormgen.render.diagram import context_map, event_flow, to_dot, to_mermaid

COFFEE_SHOP = Path(__file__).resolve().parents[2] / "examples" / "coffee_shop.storm"
CARGO = Path(__file__).resolve().parents[2] / "tests" / "browser" / "cargo.storm"

runner = CliRunner()

COFFEE_MAP = """\
flowchart LR
  n0["Ordering"]
  n1["Bar"]
  n2["Display"]
  n3["PaymentGateway"]
  n0 -->|"OHS, PL → CF"| n1
  n1 -->|"PL → D"| n2
  n0 -.->|"1 command · 2 events"| n3
  classDef context fill:#f1f3f5,stroke:#495057,color:#212529
  class n0,n1,n2 context
  classDef external fill:#fcc2d7,stroke:#495057,color:#212529
  class n3 external
"""


def mermaid_edges(text: str) -> set[tuple[str, str, str]]:
    """(source label, arrow, target label) of every edge of a Mermaid flowchart."""
    labels = dict(re.findall(r'^\s*(\w+)[\[\(\{]+"([^"]*)"', text, re.M))
    edges = re.findall(r"^\s*(\w+) (-->|-\.->|<-->)(?:\|\"[^\"]*\"\|)? (\w+)$", text, re.M)
    return {(labels[a], arrow, labels[b]) for a, arrow, b in edges}


def test_context_map_mermaid(coffee: LoadedModel) -> None:
    assert to_mermaid(context_map(coffee.graph)) == COFFEE_MAP


def test_context_map_shows_each_contexts_external_systems() -> None:
    done = stormgen("graph", str(CARGO))
    assert done.returncode == 0, done.stderr
    edges = mermaid_edges(done.stdout)
    assert {
        ("Booking", "-.->", "CustomsAuthority"),
        ("Handling", "-.->", "CarrierNetwork"),
        ("Tracking", "-.->", "SmsGateway"),
    } <= edges
    assert '"1 command · 2 events"' in done.stdout
    # Only the filtered context's own systems, not its neighbours'.
    done = stormgen("graph", str(CARGO), "--context", "Tracking")
    assert "SmsGateway" in done.stdout and "CustomsAuthority" not in done.stdout


def test_flow_draws_one_arrow_per_pair_however_many_conditional_emits() -> None:
    # RecordHandlingOfCargo emits CargoMisdirected under two conditions; the model
    # graph has two edges, the drawing one arrow.
    for fmt in ("mermaid", "dot"):
        done = stormgen("graph", str(CARGO), "--flow", "-f", fmt)
        assert done.returncode == 0, done.stderr
        if fmt == "mermaid":
            ids = dict(re.findall(r'^\s*(\w+)[\[\(\{]+"([^"]*)"', done.stdout, re.M))
            pairs = re.findall(r"^\s*(\w+) -\.?->(?:\|[^|]*\|)? (\w+)$", done.stdout, re.M)
        else:
            ids = dict(re.findall(r'^\s*(n\d+) \[label="([^"]*)"', done.stdout, re.M))
            pairs = re.findall(r"^\s*(n\d+) -> (n\d+)", done.stdout, re.M)
        named = [(ids[a], ids[b]) for a, b in pairs]
        assert len(named) == len(set(named)), fmt
        assert named.count(("RecordHandlingOfCargo", "CargoMisdirected")) == 1, fmt


def test_event_flow_mermaid_has_the_board_arrows(coffee: LoadedModel) -> None:
    text = to_mermaid(event_flow(coffee.graph))
    edges = mermaid_edges(text)
    for edge in [
        ("Customer", "-->", "PlaceOrder"),
        ("PlaceOrder", "-->", "OrderPlaced"),
        ("OrderPlaced", "-->", "ChargeOnOrder"),
        ("ChargeOnOrder", "-->", "ChargeCard"),
        ("ChargeCard", "-.->", "CardCharged"),  # the external system answers
        ("CardCharged", "-->", "PaidWhenCharged"),
        ("PaidWhenCharged", "-->", "MarkPaid"),
        ("OrderPaid", "-->", "DailySales"),
        ("OrderPaid", "-.->", "QueuePaidOrder"),  # across contexts: dashed
        ("QueuePaidOrder", "-->", "OpenTicket"),
        ("DrinksReady", "-.->", "Pickup"),
    ]:
        assert edge in edges
    # Aggregates and external systems are boxes around their messages.
    assert re.search(r'subgraph c\d+\["Order"\]', text)
    assert re.search(r'subgraph c\d+\["PaymentGateway"\]', text)
    # GitHub-safe: generated ids only, every label quoted.
    for line in text.splitlines()[1:]:
        words = line.split()
        if words[0] in ("subgraph", "end", "classDef", "class", "style"):
            continue
        assert re.fullmatch(r"[nc]\d+", re.match(r"\w+", words[0]).group(0))  # type: ignore[union-attr]


def test_flow_for_one_context_keeps_its_neighbours(coffee: LoadedModel) -> None:
    text = to_mermaid(event_flow(coffee.graph, "Bar"))
    labels = set(re.findall(r'"([^"]+)"', text))
    assert {"QueuePaidOrder", "OpenTicket", "TicketOpened", "HandOver"} <= labels
    assert {"OrderPaid", "Pickup"} <= labels  # what Bar consumes and who consumes Bar
    assert not {"PlaceOrder", "ChargeOnOrder", "OrderHistory"} & labels
    assert "classDef neighbour" in text


def test_labels_are_escaped_for_mermaid_and_dot(load_text: Callable[[str], LoadedModel]) -> None:
    loaded = load_text('context Odd "say \\"<b>hi</b>\\"" { view V { key k: str } }')
    mermaid = to_mermaid(context_map(loaded.graph))
    assert '"Odd"' in mermaid
    dot = to_dot(context_map(loaded.graph))
    assert 'tooltip="say \\"<b>hi</b>\\""' in dot
    graphviz(dot)


def graphviz(dot: str) -> str:
    exe = shutil.which("dot")
    assert exe is not None, "Graphviz's dot is needed (scripts/test.sh installs it)"
    done = subprocess.run([exe, "-Tsvg"], input=dot.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b"", done.stderr.decode()  # not even a warning
    return done.stdout.decode()


def test_dot_is_accepted_by_graphviz(coffee: LoadedModel) -> None:
    for diagram in (
        context_map(coffee.graph),
        event_flow(coffee.graph),
        event_flow(coffee.graph, "Ordering"),
        context_map(coffee.graph, "Display"),
    ):
        svg = graphviz(to_dot(diagram))
        for node in diagram.nodes:
            assert f">{node.label}</text>" in svg


def test_cli_formats(tmp_path: Path) -> None:
    result = runner.invoke(app, ["graph", str(COFFEE_SHOP)])
    assert result.exit_code == 0, result.output
    assert result.stdout == COFFEE_MAP
    result = runner.invoke(app, ["graph", str(COFFEE_SHOP), "--flow", "--format", "dot"])
    assert result.exit_code == 0
    graphviz(result.stdout)
    svg_file = tmp_path / "map.svg"
    result = runner.invoke(app, ["graph", str(COFFEE_SHOP), "-f", "svg", "-o", str(svg_file)])
    assert result.exit_code == 0, result.output
    assert svg_file.read_text().startswith("<svg")
    html_file = tmp_path / "flow.html"
    args = ["graph", str(COFFEE_SHOP), "--flow", "-f", "html", "-o", str(html_file)]
    assert runner.invoke(app, args).exit_code == 0
    html = html_file.read_text()
    assert "<svg" in html and "flowchart LR" in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing to fetch


def stormgen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stormgen", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_unknown_context_is_one_sentence() -> None:
    done = stormgen("graph", str(COFFEE_SHOP), "--context", "Kitchen")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: the model has no context named 'Kitchen' (its contexts: Ordering, Bar, Display)"
    )


def test_svg_without_graphviz_says_how_to_get_it(tmp_path: Path) -> None:
    # stormgen runs by its full path; the PATH it searches for Graphviz is empty.
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    done = stormgen("graph", str(COFFEE_SHOP), "--format", "svg", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Graphviz" in lines[0] and "apt-get install graphviz" in lines[0]
