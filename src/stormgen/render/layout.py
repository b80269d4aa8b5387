"""Graph algorithms of the board's layout: longest-path layering and causal chains."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from stormgen.model.nodes import Binary, Expr, Name


def reaches(dag: dict[str, list[str]], start: str, goal: str) -> bool:
    """Whether ``goal`` can be reached from ``start`` along ``dag``."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for child in dag.get(node, ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return False


def longest_path_layers(
    nodes: list[str],
    edges: list[tuple[str, str]],
    hints: Sequence[tuple[str, str]] = (),
) -> dict[str, int]:
    """Longest-path layers of a directed graph, its cycles broken where DFS closes them.

    ``hints`` are edges that only order the layout ("this command comes after that
    event"); each is kept only if it closes no cycle with the edges kept before it.
    """
    succ: dict[str, list[str]] = defaultdict(list)
    for u, v in edges:
        succ[u].append(v)
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    kept: list[tuple[str, str]] = []
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, i = stack[-1]
            children = succ.get(node, [])
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                s = state.get(child)
                if s == 1:
                    continue  # a back edge: it closes a cycle, leave it out of the layering
                kept.append((node, child))
                if s is None:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[node] = 2
                stack.pop()
    dag: dict[str, list[str]] = defaultdict(list)
    for u, v in kept:
        dag[u].append(v)
    for u, v in hints:
        if u != v and u in state and v in state and not reaches(dag, v, u):
            dag[u].append(v)
    indegree: dict[str, int] = {n: 0 for n in nodes}
    for children in dag.values():
        for v in children:
            indegree[v] += 1
    layer = {n: 0 for n in nodes}
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for child in dag.get(node, []):
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return layer


def guard_equalities(expr: Expr) -> list[tuple[str, str]]:
    """``(field, Member)`` for each ``field == Member`` joined by ``and``/``or`` in a guard."""
    if isinstance(expr, Binary):
        # `a == X or a == Y` too: the command comes after the events setting either.
        if expr.op in ("and", "or"):
            return guard_equalities(expr.left) + guard_equalities(expr.right)
        if expr.op == "==":
            for a, b in ((expr.left, expr.right), (expr.right, expr.left)):
                if isinstance(a, Name) and isinstance(b, Name) and len(a.parts) in (1, 2):
                    if len(a.parts) == 2 and a.parts[0] != "state":
                        continue
                    return [(a.parts[-1], b.parts[-1])]
    return []


# ---------------------------------------------------------------- chains


def causal_chains(
    graph: Any, causal: list[tuple[str, str]], events: list[str]
) -> dict[str, frozenset[str]]:
    """For each event, every node upstream and downstream of it (bitsets over SCCs)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(n for n in graph.nodes)
    g.add_edges_from(causal)
    condensed = nx.condensation(g)
    members: dict[int, list[str]] = {c: list(d["members"]) for c, d in condensed.nodes(data=True)}
    mapping: dict[str, int] = condensed.graph["mapping"]
    order = list(nx.topological_sort(condensed))
    down: dict[int, int] = {}
    for c in reversed(order):
        bits = 1 << c
        for s in condensed.successors(c):
            bits |= down[s]
        down[c] = bits
    up: dict[int, int] = {}
    for c in order:
        bits = 1 << c
        for p in condensed.predecessors(c):
            bits |= up[p]
        up[c] = bits
    cache: dict[int, frozenset[str]] = {}
    chains: dict[str, frozenset[str]] = {}
    for e in events:
        c = mapping[e]
        if c not in cache:
            # The set bits' positions, found by C code rather than a Python bit loop.
            binary = format(down[c] | up[c], "b")[::-1]
            found: list[str] = []
            i = binary.find("1")
            while i != -1:
                found.extend(members[i])
                i = binary.find("1", i + 1)
            cache[c] = frozenset(found)
        chains[e] = cache[c]
    return chains
