"""vmap: the batching transform, an interpreter over the IR.

The function is traced once at the per-example shapes; the graph is then
evaluated on the batched values, each carrying the axis that holds the batch
(or None when it is the same for every member). Each primitive's ``batch`` rule
maps (operands, batch axes) to (result, result batch axis), so the printed IR of
a vmapped function is the batched graph, not a loop.

Helpers for writing batch rules live here too (``bdim_to_front``, ``shift_axes``,
``move_batch_axis``); the rules themselves sit beside their primitives.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .core import get_aval
from .ir import Graph, Literal, Var
from .pytree import _REGISTRY, _is_namedtuple, tree_flatten, tree_unflatten, treedef_children_prefix


# ---------------------------------------------------------------- the interpreter

def batch_graph(graph: Graph, args, dims, size: int):
    """Evaluate ``graph`` on batched ``args`` (batch axis per arg in ``dims``, None for
    unbatched). Returns (outputs, their batch axes). Equations none of whose operands
    is batched are re-bound unchanged; the others go through their primitive's rule."""
    from .core import bind
    env: dict[Var, Any] = dict(zip(graph.invars, args))
    denv: dict[Var, int] = {v: d for v, d in zip(graph.invars, dims) if d is not None}
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


def batch_subgraph(graph: Graph, in_dims: Sequence[int | None], size: int,
                   out_dims: Sequence[int | None] | None = None):
    """The batched version of a closed sub-graph (for rules of higher-order primitives:
    cond, while, scan, calls). Returns ``(new_graph, out_dims)``: ``new_graph`` takes
    the inputs batched along ``in_dims`` and returns the outputs batched along
    ``out_dims`` (given: outputs are moved there, an int broadcasting an unbatched
    output; None: wherever the rules put them)."""
    from .core import trace_flat
    avals = [v.aval if d is None else
             v.aval.update(shape=v.aval.shape[:d] + (size,) + v.aval.shape[d:])
             for v, d in zip(graph.invars, in_dims)]
    box = []

    def fn(*xs):
        outs, dims = batch_graph(graph, xs, in_dims, size)
        if out_dims is not None:
            for d, want in zip(dims, out_dims):
                if want is None and d is not None:
                    raise ValueError(f"batch_subgraph: output of {graph.name} is batched but was "
                                     f"required unbatched")
            outs = [o if w is None else move_batch_axis(o, d, w, size)
                    for o, d, w in zip(outs, dims, out_dims)]
            dims = list(out_dims)
        box.append(dims)
        return outs
    new, captured = trace_flat(fn, avals, graph.name)
    if captured:  # a closed graph's rules only see its own values and constants
        raise AssertionError(f"batch_subgraph: {graph.name} captured outer values")
    return new, box[0]


# ---------------------------------------------------------------- helpers for rules

def batch_size(args, dims) -> int:
    """The batch size, read off the first batched operand."""
    return next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)


def shift_axes(axes: Sequence[int], d: int) -> tuple[int, ...]:
    """Per-example axis numbers -> axis numbers of the batched value (batch axis at ``d``)."""
    return tuple(a + (a >= d) for a in axes)


def move_batch_axis(x, src: int | None, dst: int, size: int):
    """Put the batch axis of ``x`` (``src``; None: unbatched, broadcast it) at ``dst``."""
    from . import lax
    if src is None:
        a = get_aval(x)
        shape = a.shape[:dst] + (size,) + a.shape[dst:]
        return lax.broadcast_in_dim(x, shape, tuple(i for i in range(len(shape)) if i != dst))
    return lax.moveaxis(x, src, dst)


def bdim_to_front(x, d: int | None, size: int | None = None):
    """``x`` with its batch axis first (an unbatched ``x`` is broadcast to ``size``)."""
    return move_batch_axis(x, d, 0, size)


# ---------------------------------------------------------------- vmap

def _leaf_paths(x, prefix: str) -> list[str]:
    """A readable name per leaf of ``x``, in ``tree_flatten`` order."""
    t = type(x)
    if x is None:
        return []
    if t in _REGISTRY:
        kids = list(_REGISTRY[t][0](x)[0])
        return [p for i, c in enumerate(kids) for p in _leaf_paths(c, f"{prefix}[{i}]")]
    if isinstance(x, dict):
        return [p for k in sorted(x) for p in _leaf_paths(x[k], f"{prefix}[{k!r}]")]
    if t is tuple or t is list or _is_namedtuple(x):
        return [p for i, c in enumerate(x) for p in _leaf_paths(c, f"{prefix}[{i}]")]
    return [prefix]


def _skeleton(x):
    """``x`` with every leaf replaced by ``*``, for error messages about structure."""
    leaves, tree = tree_flatten(x)
    return tree_unflatten(tree, [_Star()] * len(leaves))


class _Star:
    def __repr__(self):
        return "*"


def _check_axes_spec(spec, what: str) -> None:
    """in_axes/out_axes leaves must be ints or None."""
    for leaf in tree_flatten(spec)[0]:
        if not isinstance(leaf, int) or isinstance(leaf, bool):
            raise TypeError(f"vmap: {what} must be an int, None, or a pytree of those; got {leaf!r} "
                            f"in {what}={spec!r}")


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0) -> Callable:
    """Vectorise ``fun`` over an axis of its arguments.

    ``in_axes``: an int (the mapped axis of every argument), None (not mapped), or a
    tuple/list with one entry per positional argument, each entry itself an int, None
    or a pytree prefix of that argument (e.g. a dict of axes). Negative axes count
    from the end. ``out_axes`` (same forms, a prefix of the output) says where the
    batch axis goes in each result; None means "unbatched", allowed only for outputs
    that do not depend on the mapped inputs."""
    from .api import _arg_names, abstractify, fun_name, trace
    from .ir import ShapedArray

    if not callable(fun):
        raise TypeError(f"vmap: expected a function, got {type(fun).__name__}")
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if not (in_axes is None or isinstance(in_axes, (int, tuple))) or isinstance(in_axes, bool):
        raise TypeError(f"vmap: in_axes must be an int, None, or a tuple with one entry per "
                        f"positional argument; got {type(in_axes).__name__} {in_axes!r}")
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")
    name = fun_name(fun)

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        if kwargs:  # as in JAX: keyword arguments are mapped over their axis 0
            n = len(args)
            axes = in_axes + (0,) if isinstance(in_axes, tuple) else in_axes
            if axes is None:
                axes = (None,) * n + (0,)
            return vmap(lambda *a: fun(*a[:n], **a[n]), axes, out_axes)(*args, dict(kwargs))
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap({name}): in_axes {in_axes!r} has {len(in_axes)} entries but the "
                             f"function was called with {len(args)} positional arguments")
        arg_names = _arg_names(fun, len(args))
        leaves, in_tree = tree_flatten(list(args))
        paths = [p for nm, a in zip(arg_names, args) for p in _leaf_paths(a, f"`{nm}`")]
        try:
            leaf_axes = treedef_children_prefix(list(in_axes) if isinstance(in_axes, tuple) else in_axes,
                                                list(args))
        except ValueError:
            structs = ", ".join(repr(_skeleton(a)) for a in args)
            raise ValueError(f"vmap({name}): in_axes {in_axes!r} is not a prefix of the arguments' "
                             f"structure ({structs})") from None
        per_example, norm_axes, mapped = [], [], []
        for leaf, ax, path in zip(leaves, leaf_axes, paths):
            try:
                aval = abstractify(leaf)
            except TypeError as e:
                raise TypeError(f"vmap({name}): argument {path}: {e}") from None
            if ax is None:
                per_example.append(aval)
                norm_axes.append(None)
                continue
            if not -aval.ndim <= ax < aval.ndim:
                raise ValueError(f"vmap({name}): in_axes {ax} is out of range for argument {path} of "
                                 f"shape {aval.shape} (rank {aval.ndim})")
            ax %= aval.ndim
            mapped.append((path, ax, aval))
            per_example.append(ShapedArray(aval.shape[:ax] + aval.shape[ax + 1:], aval.dtype,
                                           aval.weak_type))
            norm_axes.append(ax)
        if not mapped:
            raise ValueError(f"vmap({name}): no argument is mapped (every in_axes entry is None); "
                             f"at least one argument needs a batch axis")
        sizes = {aval.shape[ax] for _, ax, aval in mapped}
        if len(sizes) > 1:
            detail = "; ".join(f"argument {p} has size {a.shape[ax]} along axis {ax} (shape {a.shape})"
                               for p, ax, a in mapped)
            raise ValueError(f"vmap({name}): inconsistent sizes along the mapped axes: {detail}")
        size = sizes.pop()
        t = trace(fun, tree_unflatten(in_tree, per_example))
        outs, out_dims = batch_graph(t.graph, leaves + t.captured,
                                     norm_axes + [None] * len(t.captured), size)
        out_struct = tree_unflatten(t.out_tree, outs)
        try:
            out_leaf_axes = treedef_children_prefix(out_axes, out_struct)
        except ValueError:
            raise ValueError(f"vmap({name}): out_axes {out_axes!r} is not a prefix of the output's "
                             f"structure {_skeleton(out_struct)!r}") from None
        out_paths = _leaf_paths(out_struct, "output")
        moved = []
        for o, d, oa, path, v in zip(outs, out_dims, out_leaf_axes, out_paths, t.graph.outvars):
            if oa is None:
                if d is not None:
                    raise ValueError(f"vmap({name}): out_axes=None for {path}, but it depends on the "
                                     f"mapped inputs (its per-example shape is {v.aval.shape}); "
                                     f"out_axes=None is only for outputs that are the same for every "
                                     f"batch member")
                moved.append(o)
                continue
            nd = v.aval.ndim + 1
            if not -nd <= oa < nd:
                raise ValueError(f"vmap({name}): out_axes {oa} is out of range for {path} of batched "
                                 f"rank {nd}")
            moved.append(move_batch_axis(o, d, oa % nd, size))
        return tree_unflatten(t.out_tree, moved)
    return batched
