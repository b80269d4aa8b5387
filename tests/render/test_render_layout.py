"""The board's layering and chains, on random graphs (hypothesis)."""

from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from stormgen.render.layout import causal_chains, longest_path_layers

NODES = [f"n{i}" for i in range(12)]
edges = st.lists(st.tuples(st.sampled_from(NODES), st.sampled_from(NODES)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(edges, edges)
def test_layers_respect_every_edge_not_on_a_cycle(
    real: list[tuple[str, str]], hints: list[tuple[str, str]]
) -> None:
    layer = longest_path_layers(NODES, real, hints)
    assert set(layer) == set(NODES)
    g = nx.DiGraph(real)
    g.add_nodes_from(NODES)
    for u, v in real:
        if not nx.has_path(g, v, u):  # not closing a cycle: it must point right
            assert layer[u] < layer[v], (u, v)
    # Longest path: a node with a predecessor sits right after the furthest one it keeps.
    assert min(layer.values()) == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=40), edges)
def test_a_dag_keeps_its_order_and_hints_never_break_it(
    pairs: list[tuple[int, int]], hints: list[tuple[str, str]]
) -> None:
    dag = [(f"n{min(a, b)}", f"n{max(a, b)}") for a, b in pairs if a != b]
    layer = longest_path_layers(NODES, dag, hints)
    for u, v in dag:
        assert layer[u] < layer[v]


@settings(max_examples=100, deadline=None)
@given(edges)
def test_chains_are_ancestors_and_descendants(causal: list[tuple[str, str]]) -> None:
    g = nx.DiGraph()
    g.add_nodes_from(NODES)
    g.add_edges_from(causal)
    chains = causal_chains(g, causal, NODES)
    for n in NODES:
        assert chains[n] == frozenset(nx.ancestors(g, n) | nx.descendants(g, n) | {n})
