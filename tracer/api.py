"""The public transforms: make_ir, grad, value_and_grad, vjp, jvp, jacfwd, jacrev,
hessian. Each traces the user's function into a graph, then interprets the graph
(forward/reverse mode). With concrete inputs the result is computed at once; with
traced inputs (inside jit, another grad, make_ir) the work is staged, so
transforms compose."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Sequence

import numpy as np

from . import dtypes
from .ad_util import Zero, is_zero, known_fill
from .autodiff import jvp_graph, vjp_graph
from .core import Tracer, concrete_aval, eval_graph, get_aval, trace_flat
from .ir import Graph, ShapedArray
from .passes import dce
from .pytree import tree_flatten, tree_unflatten, PyTreeDef


def abstractify(x) -> ShapedArray:
    if isinstance(x, ShapedArray):
        return x
    if isinstance(x, Tracer):
        return x.aval
    return concrete_aval(x)[1]


def _arg_names(fun, n: int) -> list[str]:
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(n):
        if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY, params[i].POSITIONAL_OR_KEYWORD):
            names.append(params[i].name)
        else:
            names.append(f"args[{i}]")
    return names


def fun_name(fun) -> str:
    return getattr(fun, "__name__", None) or type(fun).__name__


class Traced:
    """A function traced at some arguments: its graph, the captured outer values
    (extra trailing graph inputs), and the pytree structures of inputs and outputs."""

    def __init__(self, graph: Graph, captured: list, in_tree: PyTreeDef, out_tree: PyTreeDef):
        self.graph, self.captured, self.in_tree, self.out_tree = graph, captured, in_tree, out_tree


def trace(fun: Callable, args: Sequence[Any], static_argnums: Sequence[int] = (),
          name: str | None = None) -> Traced:
    """Trace ``fun(*args)`` with abstract values for every non-static argument leaf."""
    if not callable(fun):
        raise TypeError(f"expected a function, got {type(fun).__name__}")
    static = {i % len(args) if args else i for i in static_argnums}
    dyn = [a for i, a in enumerate(args) if i not in static]
    leaves, in_tree = tree_flatten(dyn)
    avals = [abstractify(x) for x in leaves]
    names = _arg_names(fun, len(args))
    dyn_names = [n for i, n in enumerate(names) if i not in static]
    origins = []
    for nm, sub in zip(dyn_names, dyn):
        k = len(tree_flatten(sub)[0])
        origins += [f"argument `{nm}`" if k == 1 else f"a leaf of argument `{nm}`"] * k
    out_tree_box = []

    def flat_fun(*tracers):
        dyn_vals = iter(tree_unflatten(in_tree, tracers))
        full = [args[i] if i in static else next(dyn_vals) for i in range(len(args))]
        out = fun(*full)
        out_leaves, out_tree = tree_flatten(out)
        out_tree_box.append(out_tree)
        return out_leaves

    graph, captured = trace_flat(flat_fun, avals, name or fun_name(fun), origins)
    return Traced(dce(graph), captured, in_tree, out_tree_box[0])


def make_ir(fun: Callable, static_argnums: Sequence[int] | int = ()) -> Callable[..., Graph]:
    """``make_ir(f)(*args)`` returns the typed IR graph of ``f`` at those arguments
    (arrays, Python scalars, ``ShapedArray``s, or pytrees of them); print it to read it."""
    static_argnums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def make(*args):
        return trace(fun, args, static_argnums).graph
    return make


# ---------------------------------------------------------------- reverse mode

def _argnums_tuple(argnums) -> tuple[int, ...]:
    if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool):
        return (int(argnums),)
    try:
        nums = tuple(argnums)
    except TypeError:
        raise TypeError(f"argnums must be an int or a tuple of ints, got {argnums!r}") from None
    if not nums or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in nums):
        raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    if len(set(nums)) != len(nums):
        raise ValueError(f"argnums {argnums!r} repeats an argument")
    return tuple(int(i) for i in nums)


def _normalize_argnums(fun, args, nums, what) -> tuple[int, ...]:
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"{what}({fun_name(fun)}): argnums {i} is out of range for "
                             f"{len(args)} positional arguments")
    return tuple(i % len(args) for i in nums)


def _check_diff_leaves(fun, args, argnums, what):
    for i in argnums:
        for leaf in tree_flatten(args[i])[0]:
            aval = abstractify(leaf)
            if not dtypes.is_float(aval.dtype):
                raise TypeError(
                    f"{what} requires floating-point inputs, but argument {i} of {fun_name(fun)} has "
                    f"dtype {aval.dtype.name}. Convert it with .astype(float32), or differentiate "
                    f"with respect to another argument (argnums).")


def _zeros_for(leaf):
    a = abstractify(leaf).strip_weak()
    return np.zeros(a.shape, a.dtype) if not isinstance(leaf, Tracer) else _traced_zeros(a)


def _traced_zeros(aval):
    from . import lax
    return lax.full(aval.shape, 0, aval.dtype)


def _ones_like(x):
    a = get_aval(x).strip_weak()
    return np.ones(a.shape, a.dtype)


def _staged(fn: Callable, leaves: Sequence[Any], name: str) -> list:
    """Run ``fn(*leaves) -> list`` by first tracing it into a graph at the leaves'
    abstract values, pruning dead equations (e.g. cotangents nobody asked for), then
    evaluating the graph: with numpy leaves this computes the result, with tracers
    it re-binds the pruned graph on their trace."""
    graph, captured = trace_flat(fn, [abstractify(x) for x in leaves], name)
    graph = dce(graph)
    outs = eval_graph(graph, list(leaves) + captured)
    # an output may be a graph constant or an argument itself (d/dx sum(x * c) is c):
    # copy those, so the caller never receives an alias of its own arrays
    shared = {id(v) for v in list(leaves) + graph.constvals}
    return [o if isinstance(o, Tracer) else np.array(o) if id(o) in shared else np.asarray(o)
            for o in outs]


def _split_aux(out, has_aux: bool, what: str):
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{what} with has_aux=True needs a function returning a pair "
                        f"(output, aux), got {type(out).__name__}")
    return out[0], out[1]


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """``f -> (value, gradient)``: the gradient of a scalar-valued ``f`` with respect to
    the arguments ``argnums`` (an int: that argument's pytree; a tuple: a tuple of them).
    With ``has_aux`` the function returns ``(value, aux)`` and this gives
    ``((value, aux), gradient)``. The gradient is computed by the adjoint graph: the
    function is traced, differentiated in reverse mode, pruned, then evaluated."""
    nums = _argnums_tuple(argnums)
    single = not isinstance(argnums, (tuple, list))

    @functools.wraps(fun)
    def vg(*args, **kwargs):
        norm = _normalize_argnums(fun, args, nums, "grad")
        _check_diff_leaves(fun, args, norm, "grad")
        order = sorted(norm)  # trace() orders the traced arguments by position
        diff_leaves, diff_tree = tree_flatten([args[i] for i in order])
        box = {}

        def adjoint(*leaf_tracers):
            new_args = list(args)
            for i, a in zip(order, tree_unflatten(diff_tree, leaf_tracers)):
                new_args[i] = a
            t = trace(functools.partial(fun, **kwargs) if kwargs else fun, new_args,
                      static_argnums=[i for i in range(len(args)) if i not in norm],
                      name=fun_name(fun))
            outs, backward = vjp_graph(t.graph, list(leaf_tracers) + t.captured,
                                       [True] * len(leaf_tracers) + [False] * len(t.captured))
            value, _ = _split_aux(tree_unflatten(t.out_tree, outs), has_aux, "grad")
            vleaves = tree_flatten(value)[0]
            if len(vleaves) != 1 or get_aval(vleaves[0]).shape != ():
                shapes = [str(get_aval(v)) for v in vleaves]
                raise TypeError(f"grad requires a function with a scalar (0-d) output, but "
                                f"{fun_name(fun)} returned {', '.join(shapes) or 'nothing'}; use "
                                f"jacrev or vjp for non-scalar outputs")
            if not dtypes.is_float(get_aval(vleaves[0]).dtype):
                raise TypeError(f"grad requires a floating-point output, but {fun_name(fun)} "
                                f"returned {get_aval(vleaves[0])}")
            cts = [None] * len(outs)
            cts[0] = _ones_like(outs[0])  # the value is the first output leaf
            in_cts = backward(cts)[:len(leaf_tracers)]
            box["out_tree"], box["n_out"] = t.out_tree, len(outs)
            return list(outs) + [_zeros_for(x) if is_zero(c) else c
                                 for c, x in zip(in_cts, leaf_tracers)]

        res = _staged(adjoint, diff_leaves, f"grad_{fun_name(fun)}")
        outs, grads = res[:box["n_out"]], res[box["n_out"]:]
        out = tree_unflatten(box["out_tree"], outs)
        by_num = dict(zip(order, tree_unflatten(diff_tree, grads)))
        g = by_num[norm[0]] if single else tuple(by_num[i] for i in norm)
        return (out, g)
    return vg


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """The gradient of a scalar-valued function (reverse mode: the adjoint graph).
    See ``value_and_grad`` for ``argnums`` and ``has_aux``."""
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def g(*args, **kwargs):
        value_aux, grads = vg(*args, **kwargs)
        return (grads, value_aux[1]) if has_aux else grads
    return g


def vjp(fun: Callable, *primals, has_aux: bool = False):
    """``(out, vjp_fun)`` (or ``(out, vjp_fun, aux)``) with ``vjp_fun(cotangent) ->
    tuple of input cotangents``, one per primal, shaped like the primals. The forward
    pass runs now; each call of ``vjp_fun`` runs the pruned backward graph."""
    for i, p in enumerate(primals):
        for leaf in tree_flatten(p)[0]:
            if not dtypes.is_float(abstractify(leaf).dtype):
                raise TypeError(f"vjp requires floating-point inputs, but argument {i} of "
                                f"{fun_name(fun)} has dtype {abstractify(leaf).dtype.name}")
    t = trace(fun, primals)
    leaves = tree_flatten(list(primals))[0]
    outs, backward = vjp_graph(t.graph, leaves + t.captured,
                               [True] * len(leaves) + [False] * len(t.captured))
    out, aux = _split_aux(tree_unflatten(t.out_tree, outs), has_aux, "vjp")
    out_leaves, out_tree = tree_flatten(out)
    n_main = len(out_leaves)  # the main output's leaves come first among the outputs

    def vjp_fun(ct):
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree:
            raise TypeError(f"vjp_fun: cotangent structure {ct_tree} differs from the output's {out_tree}")
        for c, o in zip(ct_leaves, out_leaves):
            if abstractify(c).shape != get_aval(o).shape:
                raise ValueError(f"vjp_fun: cotangent of shape {abstractify(c).shape} for an output "
                                 f"of shape {get_aval(o).shape}")

        # concrete all-zero cotangents (e.g. jacrev's rows for the other outputs) are
        # symbolic zeros: the backward pass skips them instead of multiplying zeros through
        zero = [not isinstance(c, Tracer) and known_fill(c) == 0 for c in ct_leaves]

        def pull(*cs):
            it = iter(cs)
            cts = [None if z else _as_ct(next(it), o) for z, o in zip(zero, out_leaves)]
            cts += [None] * (len(outs) - n_main)
            return [_zeros_for(x) if is_zero(c) else c for c, x in zip(backward(cts), leaves)]
        res = _staged(pull, [c for c, z in zip(ct_leaves, zero) if not z], f"vjp_{fun_name(fun)}")
        grads, pos = [], 0
        for p in primals:
            pl, pt = tree_flatten(p)
            grads.append(tree_unflatten(pt, res[pos:pos + len(pl)]))
            pos += len(pl)
        return tuple(grads)
    return (out, vjp_fun, aux) if has_aux else (out, vjp_fun)


def _as_ct(c, o):
    dt = get_aval(o).dtype
    if not dtypes.is_float(dt):
        return None  # integer outputs carry no cotangent
    from . import lax
    return lax.convert_element_type(c, dt) if isinstance(c, Tracer) else np.asarray(c, dt)


# ---------------------------------------------------------------- forward mode

def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False):
    """``(fun(*primals), J @ tangents)`` by forward mode (``(out, tangent_out, aux)``
    with ``has_aux``). Tangents have the primals' structure and shapes; tangents of
    integer primals are ignored (their derivative is zero)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp takes primals and tangents as tuples (or lists) of arguments")
    if len(primals) != len(tangents):
        raise TypeError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    p_leaves, p_tree = tree_flatten(list(primals))
    t_leaves, t_tree = tree_flatten(list(tangents))
    if p_tree != t_tree:
        raise TypeError(f"jvp: primal structure {p_tree} differs from tangent structure {t_tree}")
    t = trace(fun, tuple(primals))
    ts = []
    for p, tn in zip(p_leaves, t_leaves):
        pa, ta = abstractify(p), abstractify(tn)
        if pa.shape != ta.shape:
            raise ValueError(f"jvp: tangent shape {ta.shape} differs from primal shape {pa.shape}")
        if not dtypes.is_float(pa.dtype) or (not isinstance(tn, Tracer) and known_fill(tn) == 0):
            ts.append(Zero(pa.strip_weak()))  # integer primal, or an all-zero tangent
            continue
        if isinstance(tn, Tracer):
            from . import lax
            ts.append(lax.convert_element_type(tn, pa.dtype))
        else:
            ts.append(np.asarray(tn, pa.dtype))
    outs, touts = jvp_graph(t.graph, p_leaves + t.captured, ts + [None] * len(t.captured))
    touts = [_zeros_for(o) if is_zero(tt) else tt for tt, o in zip(touts, outs)]
    out, aux = _split_aux(tree_unflatten(t.out_tree, outs), has_aux, "jvp")
    tout, _ = _split_aux(tree_unflatten(t.out_tree, touts), has_aux, "jvp")
    return (out, tout, aux) if has_aux else (out, tout)


# ---------------------------------------------------------------- jacobians

def _std_basis(aval):
    n = aval.size
    return np.eye(n, dtype=aval.dtype).reshape((n,) + aval.shape)


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """The Jacobian by forward mode: one JVP per input element, batched with vmap.
    The result has the output's pytree structure, each leaf holding the argument's
    structure (a tuple of them for tuple ``argnums``) with leaves of shape
    ``out.shape + in.shape``; with ``has_aux``, ``(jacobian, aux)``."""
    return _jacobian(fun, argnums, forward=True, has_aux=has_aux)


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """The Jacobian by reverse mode: one VJP per output element, batched with vmap
    (same structure as ``jacfwd``)."""
    return _jacobian(fun, argnums, forward=False, has_aux=has_aux)


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """``jacfwd(jacrev(fun))``: for tuple ``argnums``, a nested tuple ``H[i][j]``."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux), argnums, has_aux=has_aux)


def _jacobian(fun, argnums, forward: bool, has_aux: bool = False):
    from . import lax
    from .batching import vmap
    nums = _argnums_tuple(argnums)

    @functools.wraps(fun)
    def jac(*args):
        what = "jacfwd" if forward else "jacrev"
        norm = _normalize_argnums(fun, args, nums, what)
        _check_diff_leaves(fun, args, norm, what)
        diff_args = [args[i] for i in norm]
        d_leaves, d_tree = tree_flatten(diff_args)
        d_avals = [abstractify(x) for x in d_leaves]

        def f_full(*dl):
            new = list(args)
            for i, v in zip(norm, tree_unflatten(d_tree, dl)):
                new[i] = v
            return fun(*new)

        def f_flat(*dl):
            return _split_aux(f_full(*dl), has_aux, what)[0]

        out_shape_tree = aux = None
        if forward:
            if has_aux:
                aux = _split_aux(f_full(*d_leaves), True, what)[1]
            blocks = []  # blocks[j][i]: d out_i / d in_j with shape out_i.shape + in_j.shape
            for j, a in enumerate(d_avals):
                basis = _std_basis(a)

                def push(t, j=j):
                    ts = [t if k == j else np.zeros(av.shape, av.dtype) for k, av in enumerate(d_avals)]
                    return jvp(f_flat, tuple(d_leaves), tuple(ts))[1]
                res = vmap(push)(basis)  # leading axis: input element
                r_leaves, out_shape_tree = tree_flatten(res)
                blocks.append([lax.moveaxis(lax.reshape(r, (a.size,) + get_aval(r).shape[1:]), 0, -1)
                               for r in r_leaves])
                blocks[-1] = [lax.reshape(b, get_aval(b).shape[:-1] + a.shape) for b in blocks[-1]]
            per_out = list(zip(*blocks))
        else:
            out, pullback, aux = vjp(f_full, *d_leaves, has_aux=True) if has_aux else \
                (*vjp(f_flat, *d_leaves), None)
            o_leaves, out_shape_tree = tree_flatten(out)
            per_out = []
            for i, o in enumerate(o_leaves):
                oa = get_aval(o)

                def pull(c, i=i):
                    cts = [c if k == i else np.zeros(get_aval(x).shape, get_aval(x).dtype)
                           for k, x in enumerate(o_leaves)]
                    return pullback(tree_unflatten(out_shape_tree, cts))
                res = vmap(pull)(_std_basis(oa.strip_weak()))
                per_out.append([lax.reshape(r, oa.shape + d_avals[j].shape) for j, r in enumerate(res)])
        # structure: output tree of (argnums tree of arrays)
        jac_leaves = []
        for row in per_out:
            sub = tree_unflatten(d_tree, list(row))
            jac_leaves.append(sub[0] if isinstance(argnums, int) else tuple(sub))
        J = tree_unflatten(out_shape_tree, jac_leaves)
        return (J, aux) if has_aux else J
    return jac
