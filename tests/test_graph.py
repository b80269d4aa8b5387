"""The model graph on the coffee shop: node ids, attributes and every kind of edge."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stormgen.lang import parse_model
from stormgen.model.graph import build_graph
from stormgen.model.nodes import Event, Policy

EXAMPLE = Path(__file__).parent.parent / "examples" / "coffee_shop.storm"


@pytest.fixture(scope="module")
def graph() -> Any:
    return build_graph(parse_model(EXAMPLE))


def edges(g: Any, kind: str) -> set[tuple[str, str]]:
    return {(u, v) for u, v, k in g.edges(data="kind") if k == kind}


def test_node_counts(graph: Any) -> None:
    kinds = Counter(kind for _, kind in graph.nodes(data="kind"))
    assert kinds == {
        "context": 3,
        "actor": 2,
        "value": 1,
        "enum": 3,
        "aggregate": 2,
        "command": 8,
        "event": 9,
        "external": 1,
        "policy": 4,
        "view": 3,
        "process": 1,
        "hotspot": 2,
    }


def test_edge_counts(graph: Any) -> None:
    kinds = Counter(kind for _, _, kind in graph.edges(data="kind"))
    assert kinds == {
        "contains": 32,
        "issues": 10,
        "handles": 7,
        "emits": 7,
        "feeds": 7,
        "publishes": 6,
        "triggers": 4,
        "consumes": 3,
        "timer": 1,
        "upstream-of": 2,
    }


def test_node_attributes(graph: Any) -> None:
    placed = graph.nodes["event:Ordering.OrderPlaced"]
    assert placed["kind"] == "event"
    assert placed["name"] == "OrderPlaced"
    assert placed["context"] == "Ordering"
    assert placed["published"] is True
    assert isinstance(placed["element"], Event)
    assert placed["loc"].line == 54
    assert graph.nodes["event:Bar.BrewingStarted"]["published"] is False
    assert graph.nodes["actor:Customer"]["context"] is None
    assert graph.nodes["enum:Ordering.OrderStatus"]["context"] == "Ordering"
    assert isinstance(graph.nodes["policy:Bar.QueuePaidOrder"]["element"], Policy)


def test_external_messages(graph: Any) -> None:
    gateway = "external:Ordering.PaymentGateway"
    assert (gateway, "command:Ordering.PaymentGateway.ChargeCard") in edges(graph, "contains")
    assert (gateway, "event:Ordering.PaymentGateway.CardDeclined") in edges(graph, "contains")
    # An external system receives commands; it does not handle them like an aggregate.
    assert not any(u == gateway for u, _ in edges(graph, "handles"))


def test_flow_edges(graph: Any) -> None:
    assert ("aggregate:Ordering.Order", "command:Ordering.MarkPaid") in edges(graph, "handles")
    assert ("command:Ordering.PlaceOrder", "event:Ordering.OrderPlaced") in edges(graph, "emits")
    assert ("actor:Customer", "command:Ordering.Cancel") in edges(graph, "issues")
    assert ("actor:Barista", "command:Bar.HandOver") in edges(graph, "issues")
    assert ("policy:Ordering.ChargeOnOrder", "command:Ordering.PaymentGateway.ChargeCard") in (
        edges(graph, "issues")
    )
    assert ("event:Ordering.PaymentGateway.CardCharged", "policy:Ordering.PaidWhenCharged") in (
        edges(graph, "triggers")
    )
    assert ("event:Ordering.OrderPaid", "policy:Bar.QueuePaidOrder") in edges(graph, "triggers")
    assert ("event:Bar.TicketHandedOver", "view:Display.Pickup") in edges(graph, "feeds")
    assert ("context:Bar", "event:Bar.DrinksReady") in edges(graph, "publishes")
    assert ("context:Bar", "event:Bar.BrewingStarted") not in edges(graph, "publishes")
    assert ("command:Ordering.Cancel", "hotspot:1") in edges(graph, "contains")


def test_context_map(graph: Any) -> None:
    data = graph.get_edge_data("context:Ordering", "context:Bar")
    (relation,) = data.values()
    assert relation["kind"] == "upstream-of"
    assert relation["relation"] == "->"
    assert relation["patterns_up"] == ("OHS", "PL")
    assert relation["patterns_down"] == ("CF",)
    assert graph.get_edge_data("context:Bar", "context:Ordering") is None


def test_symmetric_relation_and_unresolved_references(tmp_path: Path) -> None:
    source = tmp_path / "pair.storm"
    source.write_text(
        """
actor User
context A {
  aggregate Thing {
    command Make by User, Nobody creates { emit Made  emit Missing }
    published event Made {}
  }
  policy Ghost { when Nowhere then Make }
}
context B {
  view Things { key thing_id: uuid  on A.Made }
}
map { A <-> B [partnership] }
""",
        encoding="utf-8",
    )
    g = build_graph(parse_model(source))
    assert ("context:A", "context:B") in edges(g, "upstream-of")
    assert ("context:B", "context:A") in edges(g, "upstream-of")
    (relation,) = g.get_edge_data("context:B", "context:A").values()
    assert relation["relation"] == "<->"
    assert relation["patterns_up"] == ("partnership",)
    # Unresolved names (Nobody, Missing, Nowhere) are left out, not invented.
    assert edges(g, "emits") == {("command:A.Make", "event:A.Made")}
    assert edges(g, "issues") == {
        ("actor:User", "command:A.Make"),
        ("policy:A.Ghost", "command:A.Make"),
    }
    assert edges(g, "triggers") == set()
    assert ("event:A.Made", "view:B.Things") in edges(g, "feeds")
