"""vmap: the batching transform, an interpreter over the IR.

The function is traced once at the per-example shapes; the graph is then
evaluated on the batched values, each carrying the axis that holds the batch
(or None when it is the same for every member). Each primitive's ``batch`` rule
maps (operands, batch axes) to (result, result batch axis), so the printed IR of
a vmapped function is the batched graph, not a loop.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from .core import bind, get_aval
from .ir import Graph, Literal, Var
from .pytree import tree_flatten, tree_unflatten, treedef_children_prefix


def batch_graph(graph: Graph, args, dims, size: int):
    """Evaluate ``graph`` on batched ``args`` (batch axis per arg in ``dims``)."""
    env: dict[Var, Any] = dict(zip(graph.invars, args))
    denv: dict[Var, Any] = {v: d for v, d in zip(graph.invars, dims) if d is not None}
    env.update(zip(graph.constvars, graph.constvals))

    def read(a):
        return a.val if isinstance(a, Literal) else env[a]

    for eqn in graph.eqns:
        ins = [read(a) for a in eqn.invars]
        ds = [denv.get(a) if isinstance(a, Var) else None for a in eqn.invars]
        if all(d is None for d in ds):
            outs = bind(eqn.prim, *ins, **eqn.params)
            env.update(zip(eqn.outvars, outs if eqn.prim.multiple_results else [outs]))
            continue
        outs, out_dims = eqn.prim.batch(ins, ds, **eqn.params)
        if not eqn.prim.multiple_results:
            outs, out_dims = [outs], [out_dims]
        env.update(zip(eqn.outvars, outs))
        denv.update((v, d) for v, d in zip(eqn.outvars, out_dims) if d is not None)
    return ([read(v) for v in graph.outvars],
            [denv.get(v) if isinstance(v, Var) else None for v in graph.outvars])


def move_batch_axis(x, src, dst, size: int):
    """Put the batch axis of ``x`` (``src``, None if unbatched) at ``dst`` (None: drop)."""
    from . import lax
    if dst is None:
        if src is not None:
            raise ValueError("vmap: out_axes=None requires an output that does not depend on the "
                             "batched inputs")
        return x
    if src is None:
        a = get_aval(x)
        x = lax.broadcast_in_dim(x, (size,) + a.shape, tuple(range(1, a.ndim + 1)))
        src = 0
    nd = get_aval(x).ndim
    return lax.moveaxis(x, src, dst % nd)


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0) -> Callable:
    """Vectorise ``fun`` over the axis ``in_axes`` of its arguments (int, None, or a
    pytree prefix of the arguments); results get their batch axis at ``out_axes``."""
    from .api import fun_name, trace, abstractify
    from .ir import ShapedArray

    @functools.wraps(fun)
    def batched(*args):
        axes = in_axes
        if isinstance(axes, list):
            axes = tuple(axes)
        if isinstance(axes, tuple) and len(axes) != len(args):
            raise ValueError(f"vmap({fun_name(fun)}): in_axes has {len(axes)} entries but the function "
                             f"was called with {len(args)} positional arguments")
        leaves, in_tree = tree_flatten(list(args))
        leaf_axes = treedef_children_prefix(list(axes) if isinstance(axes, tuple) else axes, list(args))
        where_from = []
        for i, a in enumerate(args):
            where_from += [i] * len(tree_flatten(a)[0])
        sizes = {}
        per_example, norm_axes = [], []
        for leaf, ax, i in zip(leaves, leaf_axes, where_from):
            aval = abstractify(leaf)
            if ax is None:
                per_example.append(aval)
                norm_axes.append(None)
                continue
            if not isinstance(ax, int):
                raise TypeError(f"vmap: in_axes entries must be int or None, got {ax!r}")
            if not -aval.ndim <= ax < aval.ndim:
                raise ValueError(f"vmap({fun_name(fun)}): in_axes {ax} is out of range for argument {i} "
                                 f"of shape {aval.shape}")
            ax %= aval.ndim
            sizes.setdefault(aval.shape[ax], []).append(i)
            per_example.append(ShapedArray(aval.shape[:ax] + aval.shape[ax + 1:], aval.dtype,
                                           aval.weak_type))
            norm_axes.append(ax)
        if not sizes:
            raise ValueError(f"vmap({fun_name(fun)}): no argument is batched (all in_axes are None)")
        if len(sizes) > 1:
            detail = "; ".join(f"argument{'s' if len(set(v)) > 1 else ''} {sorted(set(v))} "
                               f"{'have' if len(set(v)) > 1 else 'has'} size {k}" for k, v in sizes.items())
            raise ValueError(f"vmap({fun_name(fun)}): inconsistent sizes along the mapped axes: {detail}")
        size = next(iter(sizes))
        t = trace(fun, tree_unflatten(in_tree, per_example))
        outs, out_dims = batch_graph(t.graph, leaves + t.captured, norm_axes + [None] * len(t.captured),
                                     size)
        out_leaf_axes = treedef_children_prefix(out_axes, tree_unflatten(t.out_tree, outs))
        moved = [move_batch_axis(o, d, oa, size) for o, d, oa in zip(outs, out_dims, out_leaf_axes)]
        return tree_unflatten(t.out_tree, moved)
    return batched
