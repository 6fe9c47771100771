"""Graph passes (IR -> IR). Every primitive is pure, so an equation whose outputs
nobody reads can be dropped."""
from __future__ import annotations

from .ir import Eqn, Graph, Var, subgraphs


def dce(graph: Graph) -> Graph:
    """Dead-code elimination: drop equations (and constants) no output depends on."""
    live: set = {v for v in graph.outvars if isinstance(v, Var)}
    kept: list[Eqn] = []
    for eqn in reversed(graph.eqns):
        if any(v in live for v in eqn.outvars) or getattr(eqn.prim, "effectful", False):
            kept.append(eqn)
            live.update(v for v in eqn.invars if isinstance(v, Var))
    kept.reverse()
    consts = [(v, c) for v, c in zip(graph.constvars, graph.constvals) if v in live]
    if len(kept) == len(graph.eqns) and len(consts) == len(graph.constvars):
        return graph
    return graph.replace(eqns=kept, constvars=[v for v, _ in consts], constvals=[c for _, c in consts])
