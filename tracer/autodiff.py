"""Forward and reverse mode as interpreters over the IR.

``jvp_graph`` evaluates a graph, carrying a tangent beside every value and
applying each primitive's JVP rule. ``vjp_graph`` evaluates the graph forward,
remembering every intermediate value, and returns a function that walks the
equations in reverse applying each primitive's VJP rule. Run on tracers (inside
``make_ir`` or ``jit``) both *stage* their work: the result is the adjoint graph,
forward values and backward pass in one IR, where the backward equations read
the forward values rather than recompute them.

Symbolic zeros (``Zero``/``None``) flow through both: no zero arrays are added or
multiplied; equations that no differentiated input reaches are not visited.
"""
from __future__ import annotations

from typing import Any, Sequence

from . import dtypes
from .ad_util import Zero, add_tangents, instantiate, is_zero
from .core import bind, get_aval, source_of
from .ir import Graph, Literal, Var


def _read(env, a):
    return a.val if isinstance(a, Literal) else env[a]


def jvp_graph(graph: Graph, primals: Sequence[Any], tangents: Sequence[Any]):
    """Evaluate ``graph`` at ``primals`` with input ``tangents`` (Zero allowed).
    Returns (outputs, output tangents)."""
    env: dict[Var, Any] = dict(zip(graph.invars, primals))
    env.update(zip(graph.constvars, graph.constvals))
    tenv: dict[Var, Any] = {v: t for v, t in zip(graph.invars, tangents) if not is_zero(t)}

    for eqn in graph.eqns:
        ins = [_read(env, a) for a in eqn.invars]
        ts = [tenv.get(a) if isinstance(a, Var) else None for a in eqn.invars]
        if all(t is None for t in ts):
            with source_of(eqn.source):
                outs = bind(eqn.prim, *ins, **eqn.params)
            env.update(zip(eqn.outvars, outs if eqn.prim.multiple_results else [outs]))
            continue
        ts = [Zero(get_aval(x).strip_weak()) if t is None else t for x, t in zip(ins, ts)]
        with source_of(eqn.source, f"jvp of {eqn.prim.name}"):
            outs, touts = eqn.prim.jvp(ins, ts, **eqn.params)
        if not eqn.prim.multiple_results:
            outs, touts = [outs], [touts]
        env.update(zip(eqn.outvars, outs))
        for v, t in zip(eqn.outvars, touts):
            if not is_zero(t):
                tenv[v] = t
    outs = [_read(env, v) for v in graph.outvars]
    touts = [tenv.get(v, Zero(v.aval.strip_weak())) if isinstance(v, Var) else Zero(v.aval)
             for v in graph.outvars]
    return outs, touts


def _differentiable(aval) -> bool:
    return dtypes.is_float(aval.dtype)


def vjp_graph(graph: Graph, primals: Sequence[Any], active: Sequence[bool]):
    """Evaluate ``graph`` forward. Returns (outputs, backward) where
    ``backward(output_cotangents) -> input cotangents`` (None for zero/inactive)."""
    env: dict[Var, Any] = dict(zip(graph.invars, primals))
    env.update(zip(graph.constvars, graph.constvals))
    live: set[Var] = {v for v, a in zip(graph.invars, active) if a and _differentiable(v.aval)}
    tape = []  # equations that a differentiated input reaches, in order
    residuals: dict[int, Any] = {}  # for primitives with a custom forward pass (vjp_fwd)

    for i, eqn in enumerate(graph.eqns):
        ins = [_read(env, a) for a in eqn.invars]
        is_live = any(isinstance(a, Var) and a in live for a in eqn.invars)
        with source_of(eqn.source):
            if is_live and eqn.prim.vjp_fwd is not None:
                extra = {}
                if getattr(eqn.prim, "vjp_fwd_wants_live", False):  # custom_vjp checks its closure
                    extra["live"] = tuple(isinstance(a, Var) and a in live for a in eqn.invars)
                outs, residuals[i] = eqn.prim.vjp_fwd(ins, **extra, **eqn.params)
            else:
                outs = bind(eqn.prim, *ins, **eqn.params)
                outs = outs if eqn.prim.multiple_results else [outs]
        env.update(zip(eqn.outvars, outs))
        if is_live:
            tape.append((i, eqn))
            live.update(v for v in eqn.outvars if _differentiable(v.aval))

    outputs = [_read(env, v) for v in graph.outvars]

    def backward(cts: Sequence[Any]) -> list[Any]:
        ctenv: dict[Var, Any] = {}
        for v, ct in zip(graph.outvars, cts):
            if isinstance(v, Var) and v in live and not is_zero(ct):
                ctenv[v] = add_tangents(ctenv.get(v), ct)
        for i, eqn in reversed(tape):
            cts_out = [ctenv.pop(v, None) for v in eqn.outvars]
            if all(is_zero(c) for c in cts_out):
                continue
            ins = [_read(env, a) for a in eqn.invars]
            outs = [env[v] for v in eqn.outvars]
            with source_of(eqn.source, f"vjp of {eqn.prim.name}"):
                if i in residuals:
                    cts_in = eqn.prim.vjp(cts_out, ins, outs, residuals=residuals[i], **eqn.params)
                elif eqn.prim.multiple_results:
                    cts_in = eqn.prim.vjp(cts_out, ins, outs, **eqn.params)
                else:
                    cts_in = eqn.prim.vjp(cts_out[0], ins, outs[0], **eqn.params)
            for a, c in zip(eqn.invars, cts_in):
                if isinstance(a, Var) and a in live and not is_zero(c):
                    ctenv[a] = add_tangents(ctenv.get(a), c)
        return [ctenv.get(v) if act else None for v, act in zip(graph.invars, active)]

    return outputs, backward


def instantiate_cts(cts, avals):
    return [instantiate(c, a.strip_weak()) for c, a in zip(cts, avals)]
