"""Structured control flow: ``cond``, ``while`` and ``scan``, primitives that hold sub-graphs.

The user's branch / loop-body functions are traced once into closed graphs; every
value they close over (outer tracers, constant arrays) becomes an explicit operand, so
a sub-graph reads nothing but its own inputs. Each primitive is one block with all
its rules (type rule, numpy reference interpreter, JVP, VJP, batching); the public
wrappers ``cond``, ``switch``, ``while_loop``, ``fori_loop`` and ``scan`` follow JAX's
signatures and pytree semantics.

Operand layouts (params say how many of each):

* ``cond[branches]  index, *operands``             -> branch outputs
* ``while[cond_graph, body_graph, cond_nconsts, body_nconsts]  cond_consts, body_consts, carry``
  -> final carry
* ``scan[body, length, reverse, num_consts, num_carry]  consts, carry_init, xs``
  -> final carry, stacked ys

Reverse mode: ``scan`` runs a forward scan whose body is the forward half of the
body's VJP, stacking the residuals the backward half needs as extra outputs
(memory: trip count x residual size), then a reverse scan applying the backward
half. ``cond`` re-runs the taken branch's forward pass inside its backward branch
(no residuals beyond its operands). ``while`` has no reverse mode: see
``_while_vjp_fwd``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from . import dtypes, lax
from .ad_util import Zero, instantiate, is_zero
from .autodiff import jvp_graph, vjp_graph
from .batching import batch_graph, move_batch_axis
from .core import Primitive, Tracer, eval_concrete, eval_graph, get_aval, trace_flat, where
from .errors import TracerError
from .ir import Graph, Literal, ShapedArray, Var
from .passes import dce
from .pytree import PyTreeDef, tree_flatten, tree_unflatten

# ---------------------------------------------------------------- sub-graph helpers


def _trace_closed(fn: Callable, in_avals: Sequence[ShapedArray], name: str) -> tuple[Graph, list]:
    """Trace ``fn`` into a graph that reads only its inputs. Returns (graph, extras):
    the values the function closed over (captured outer tracers and constant arrays)
    are ``extras``, and they are the graph's *leading* inputs."""
    graph, captured = trace_flat(fn, in_avals, name)
    graph = dce(graph)  # e.g. the loss value computed by a grad inside a loop body
    n = len(in_avals)
    explicit, cap_vars = graph.invars[:n], graph.invars[n:]
    invars = list(graph.constvars) + list(cap_vars) + list(explicit)
    closed = Graph(invars, [], [], graph.eqns, graph.outvars, name)
    return closed, list(graph.constvals) + list(captured)


def _run(graph: Graph, args: Sequence[Any]) -> list[np.ndarray]:
    """The reference interpreter for a sub-graph: every equation runs its numpy impl
    (never staged, even while some trace is open)."""
    env: dict = dict(zip(graph.invars, args))
    env.update(zip(graph.constvars, graph.constvals))

    def read(a):
        return a.val if isinstance(a, Literal) else env[a]
    for eqn in graph.eqns:
        outs = eval_concrete(eqn.prim, [read(a) for a in eqn.invars], eqn.params)
        env.update(zip(eqn.outvars, outs if eqn.prim.multiple_results else [outs]))
    return [np.asarray(read(v), v.aval.dtype) for v in graph.outvars]


def _same_types(got: Sequence[ShapedArray], want: Sequence[ShapedArray]) -> bool:
    return len(got) == len(want) and all(g.strip_weak() == w.strip_weak() for g, w in zip(got, want))


def _types(avals) -> str:
    return "(" + ", ".join(str(a) for a in avals) + ")"


def _diff(aval: ShapedArray) -> bool:
    return dtypes.is_float(aval.dtype)


def _zeros(aval: ShapedArray):
    return lax.full(aval.shape, 0, aval.dtype)


def _split(seq, *sizes):
    out, pos = [], 0
    for s in sizes:
        out.append(list(seq[pos:pos + s]))
        pos += s
    out.append(list(seq[pos:]))
    return out


def _join_branches(closed: Sequence[tuple[Graph, list]]) -> tuple[tuple, list]:
    """Give every branch the same inputs: the explicit operands, then the extras of
    all branches in order (each branch ignores the others' extras)."""
    new = []
    for i, (g, ex) in enumerate(closed):
        own, explicit = g.invars[:len(ex)], g.invars[len(ex):]
        invars = list(explicit)
        for j, (gj, exj) in enumerate(closed):
            invars += own if j == i else [Var(v.aval) for v in gj.invars[:len(exj)]]
        new.append(g.replace(invars=invars))
    return tuple(new), [e for _, ex in closed for e in ex]


def _batch_sub(graph: Graph, in_batched: Sequence[bool], size: int, force_out: Sequence[bool],
               name: str) -> tuple[Graph, list, list[bool]]:
    """The batched version of a sub-graph: batched inputs/outputs carry the batch at
    axis 0; outputs in ``force_out`` are batched even when they need not be."""
    in_avals = [a.update(shape=(size,) + a.shape) if b else a for a, b in zip(graph.in_avals, in_batched)]
    box = []

    def fn(*args):
        outs, dims = batch_graph(graph, args, [0 if b else None for b in in_batched], size)
        res, ob = [], []
        for o, d, f in zip(outs, dims, force_out):
            if d is not None or f:
                res.append(move_batch_axis(o, d, 0, size))
                ob.append(True)
            else:
                res.append(o)
                ob.append(False)
        box.append(ob)
        return res
    g, extras = _trace_closed(fn, in_avals, name)
    return g, extras, box[0]


def _jvp_sub(graph: Graph, nz_in: Sequence[bool], force_out: Sequence[bool],
             name: str) -> tuple[Graph, list, list[bool]]:
    """Trace the JVP of a sub-graph. Inputs: the primals, then the tangents of the inputs
    in ``nz_in``; outputs: the primals, then the tangents that are nonzero or forced.
    Returns (graph, extras, which output tangents are present)."""
    avals = graph.in_avals
    t_avals = [a.strip_weak() for a, nz in zip(avals, nz_in) if nz]
    box = []

    def fn(*args):
        primals, ts = args[:len(avals)], iter(args[len(avals):])
        tangents = [next(ts) if nz else Zero(a.strip_weak()) for a, nz in zip(avals, nz_in)]
        outs, touts = jvp_graph(graph, primals, tangents)
        present = [not is_zero(t) or f for t, f in zip(touts, force_out)]
        box.append(present)
        return list(outs) + [instantiate(t, a.strip_weak())
                             for t, a, p in zip(touts, graph.out_avals, present) if p]
    g, extras = _trace_closed(fn, list(avals) + t_avals, name)
    return g, extras, box[0]


# ---------------------------------------------------------------- pytree paths and type checks

def _leaf_paths(td: PyTreeDef, prefix: str) -> list[str]:
    if td.kind is None:
        return [prefix]
    if td.kind == "none":
        return []
    if td.kind == "dict":
        keys = td.aux
    elif isinstance(td.kind, type) and hasattr(td.kind, "_fields") and td.aux is None:
        keys = [f".{f}" for f in td.kind._fields]
        return [p for k, c in zip(keys, td.children) for p in _leaf_paths(c, prefix + k)]
    else:
        keys = range(len(td.children))
    return [p for k, c in zip(keys, td.children) for p in _leaf_paths(c, f"{prefix}[{k!r}]")]


def _promotes_to(weak: ShapedArray, dtype) -> bool:
    """A weakly typed value of ``weak``'s kind may take ``dtype`` (JAX's rule)."""
    return dtypes.promote((weak.dtype, True), (dtype, False)) == (np.dtype(dtype), False)


def _match_leaf(x, want: ShapedArray, what: str, path: str, role: str):
    """``x`` as a value of type ``want``; a weakly typed value of a compatible kind is
    converted, anything else is a TypeError naming the leaf and both types."""
    got = get_aval(x)
    if got.shape == want.shape and got.dtype == want.dtype:
        return x
    if got.shape == want.shape and got.weak_type and _promotes_to(got, want.dtype):
        return _cast(x, want.dtype)
    raise TypeError(f"{what}: {role} `{path}` has type {want.strip_weak()} but the body "
                    f"returns {got.strip_weak()}; a loop carry must keep its shape and dtype across "
                    f"iterations (convert with .astype(...) or start from a value of the "
                    f"right type){where()}")


def _cast(x, dtype):
    if isinstance(x, Tracer):
        return lax.convert_element_type(x, dtype)
    return np.asarray(x, dtype)


def _carry_aval(x) -> ShapedArray:
    # Weak types are kept while tracing (as JAX does), so a Python-scalar carry can take
    # the dtype the body gives it, also through nested loops; outputs are strong.
    return get_aval(x)


def _trace_loop_body(fn: Callable, carry_avals: list[ShapedArray], init_weak: list[bool],
                     other_avals: Sequence[ShapedArray], paths: Sequence[str], what: str,
                     name: str) -> tuple[Graph, list, list[ShapedArray]]:
    """Trace a loop body ``fn(*carry, *others) -> (carry_out_leaves, other_out_leaves)``
    whose carry outputs must match ``carry_avals``. A carry that started as a weakly
    typed Python scalar takes the body's output dtype when that is a promotion of it
    (e.g. int -> float, float32 -> float64): retrace with it."""
    init_weak = list(init_weak)
    while True:
        promote: dict[int, Any] = {}

        def flat(*args):
            carry_out, rest = fn(*args)
            fixed = []
            for i, (o, want) in enumerate(zip(carry_out, carry_avals)):
                got = get_aval(o)
                if (init_weak[i] and got.shape == want.shape and got.dtype != want.dtype
                        and _promotes_to(want, got.dtype)):
                    promote[i] = got
                    fixed.append(o)
                else:
                    fixed.append(_match_leaf(o, want, what, paths[i], "the carry"))
            return fixed + list(rest)
        graph, extras = _trace_closed(flat, list(carry_avals) + list(other_avals), name)
        if not promote:
            return graph, extras, carry_avals
        for i, got in promote.items():  # each promotion moves up the lattice: this ends
            carry_avals[i] = carry_avals[i].update(dtype=got.dtype, weak_type=got.weak_type)
            init_weak[i] = got.weak_type


# ================================================================ cond

cond_p = Primitive("cond", multiple_results=True)


def _cond_aval(index, *ops, branches):
    if index.shape != () or not dtypes.is_int(index.dtype):
        raise TypeError(f"cond: the branch index must be an integer scalar, got {index}")
    for i, b in enumerate(branches):
        if not _same_types(ops, b.in_avals):
            raise TypeError(f"cond: branch {i} takes {_types(b.in_avals)} but the operands are "
                            f"{_types(ops)}")
        if not _same_types(b.out_avals, branches[0].out_avals):
            raise TypeError(f"cond: branch {i} returns {_types(b.out_avals)} but branch 0 returns "
                            f"{_types(branches[0].out_avals)}")
    return [a.update(weak_type=all(b.out_avals[k].weak_type for b in branches))
            for k, a in enumerate(branches[0].out_avals)]


def _clamp_index(i, n: int) -> int:
    return int(min(max(int(i), 0), n - 1))


def _cond_impl(index, *ops, branches):
    return _run(branches[_clamp_index(index, len(branches))], ops)


def _cond_jvp(primals, tangents, *, branches):
    index, ops = primals[0], primals[1:]
    nz_in = [not is_zero(t) and _diff(get_aval(x)) for x, t in zip(ops, tangents[1:])]
    n_out = len(branches[0].outvars)
    force = [False] * n_out
    for b in branches:  # an output tangent is present when any branch makes it nonzero
        force = [f or p for f, p in zip(force, _jvp_sub(b, nz_in, [False] * n_out, "cond_jvp")[2])]
    closed = [_jvp_sub(b, nz_in, force, f"branch{i}_jvp")[:2] for i, b in enumerate(branches)]
    new_branches, extras = _join_branches(closed)
    ts = [t for t, nz in zip(tangents[1:], nz_in) if nz]
    outs = cond_p.bind(index, *ops, *ts, *extras, branches=new_branches)
    prim_out, t_out = outs[:n_out], iter(outs[n_out:])
    return prim_out, [next(t_out) if f else Zero(a.strip_weak())
                      for f, a in zip(force, branches[0].out_avals)]


def _cond_vjp_fwd(primals, *, live, branches):
    # Nothing is stored: the residual is which operands are differentiated.
    return cond_p.bind(*primals, branches=branches), live


def _cond_vjp(cts, primals, outs, *, branches, residuals=None):
    # The backward branch re-runs the taken branch's forward pass (no stored residuals).
    index, ops = primals[0], primals[1:]
    op_avals = [get_aval(x) for x in ops]
    live = residuals[1:] if residuals is not None else [True] * len(ops)
    diff_in = [_diff(a) and lv for a, lv in zip(op_avals, live)]
    ct_present = [not is_zero(c) for c in cts]
    ct_avals = [a.strip_weak() for a, p in zip(branches[0].out_avals, ct_present) if p]
    if not any(ct_present) or not any(diff_in):
        return [None] * len(primals)

    def bwd(branch):
        def fn(*args):
            xs, cs = args[:len(ops)], iter(args[len(ops):])
            _, backward = vjp_graph(branch, xs, diff_in)
            in_cts = backward([next(cs) if p else None for p in ct_present])
            return [instantiate(c, a.strip_weak()) for c, a, d in zip(in_cts, op_avals, diff_in) if d]
        return _trace_closed(fn, op_avals + ct_avals, "cond_bwd")
    new_branches, extras = _join_branches([bwd(b) for b in branches])
    res = iter(cond_p.bind(index, *ops, *[c for c in cts if not is_zero(c)], *extras,
                           branches=new_branches))
    return [None] + [next(res) if d else None for d in diff_in]


def _bcast_pred(pred, shape):
    return lax.broadcast_in_dim(pred, shape, (0,)) if len(shape) > 1 else pred


def _cond_batch(args, dims, *, branches):
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    index, ops = args[0], args[1:]
    op_dims = dims[1:]
    ops = [x if d is None else lax.moveaxis(x, d, 0) for x, d in zip(ops, op_dims)]
    in_b = [d is not None for d in op_dims]
    n = len(branches)
    if dims[0] is not None:
        # A batched predicate: run every branch on the whole batch and select per member.
        index = lax.moveaxis(index, dims[0], 0)
        index = lax.max(lax.min(index, n - 1), 0)
        results = []
        for b in branches:
            outs, ods = batch_graph(b, ops, [0 if x else None for x in in_b], size)
            results.append([move_batch_axis(o, d, 0, size) for o, d in zip(outs, ods)])
        out = results[-1]
        for i in reversed(range(n - 1)):
            pick = lax.eq(index, np.asarray(i, get_aval(index).dtype))
            out = [lax.select(_bcast_pred(pick, get_aval(r).shape), r, o) for r, o in zip(results[i], out)]
        return out, [0] * len(out)
    n_out = len(branches[0].outvars)
    force = [False] * n_out
    for b in branches:
        force = [f or x for f, x in zip(force, _batch_sub(b, in_b, size, force, "cond_batch")[2])]
    closed = [_batch_sub(b, in_b, size, force, f"branch{i}_batched")[:2] for i, b in enumerate(branches)]
    new_branches, extras = _join_branches(closed)
    outs = cond_p.bind(index, *ops, *extras, branches=new_branches)
    return outs, [0 if f else None for f in force]


cond_p.abstract_eval = _cond_aval
cond_p.impl = _cond_impl
cond_p.jvp = _cond_jvp
cond_p.vjp_fwd = _cond_vjp_fwd
cond_p.vjp_fwd_wants_live = True
cond_p.vjp = _cond_vjp
cond_p.batch = _cond_batch


def _trace_branches(funs: Sequence[Callable], operands: tuple, names: Sequence[str], what: str):
    """Trace each branch at the operands' types; the outputs must agree in structure and
    type (a weakly typed output takes the other branches' dtype when it can)."""
    leaves, in_tree = tree_flatten(list(operands))
    avals = [get_aval(x) for x in leaves]
    targets: list | None = None
    while True:
        traced, out_trees, out_avals = [], [], []
        for fun, name in zip(funs, names):
            box = []

            def flat(*args, fun=fun):
                out = fun(*tree_unflatten(in_tree, args))
                ol, ot = tree_flatten(out)
                box.append(ot)
                if targets is not None:
                    ol = [_cast(o, t) if get_aval(o).dtype != t else o for o, t in zip(ol, targets)]
                return ol
            g, ex = _trace_closed(flat, avals, name)
            traced.append((g, ex))
            out_trees.append(box[0])
            out_avals.append(g.out_avals)
        for name, t in zip(names[1:], out_trees[1:]):
            if t != out_trees[0]:
                raise TypeError(f"{what}: {names[0]} and {name} must return the same structure, "
                                f"got {out_trees[0]} and {t}{where()}")
        if targets is not None:
            break
        paths = _leaf_paths(out_trees[0], "output")
        new_targets, changed = [], False
        for k, path in enumerate(paths):
            col = [a[k] for a in out_avals]
            shapes = {a.shape for a in col}
            dts = {a.dtype for a in col}
            strong = {a.dtype for a in col if not a.weak_type}
            target = dtypes.promote(*[(a.dtype, a.weak_type) for a in col])[0]
            ok = len(shapes) == 1 and (len(dts) == 1 or (
                strong <= {target} and all(_promotes_to(a, target) for a in col if a.weak_type)))
            if not ok:
                detail = ", ".join(f"{n} returns {a.strip_weak()}" for n, a in zip(names, col))
                raise TypeError(f"{what}: the branches disagree on the type of `{path}`: {detail}; "
                                f"every branch must return the same shapes and dtypes{where()}")
            changed |= len(dts) > 1
            new_targets.append(target)
        if not changed:
            break
        targets = new_targets
    return traced, leaves, out_trees[0]


def switch(index, branches: Sequence[Callable], *operands):
    """Apply ``branches[index](*operands)``; the index is clamped to the valid range.
    Every branch must return the same pytree structure, shapes and dtypes."""
    branches = list(branches)
    if not branches or not all(callable(b) for b in branches):
        raise TypeError("switch: branches must be a non-empty sequence of functions")
    ia = get_aval(index)
    if ia.shape != () or not dtypes.is_int(ia.dtype):
        raise TypeError(f"switch: the index must be an integer scalar, got {ia}{where()}")
    index = _cast(index, dtypes.int32) if ia.dtype != dtypes.int32 or ia.weak_type else index
    n = len(branches)
    if isinstance(index, Tracer):
        index = lax.max(lax.min(index, n - 1), 0)
    else:
        index = np.asarray(_clamp_index(index, n), dtypes.int32)
    names = [f"branch {i}" for i in range(n)]
    return _bind_cond(index, branches, operands, names, "switch")


def cond(pred, true_fun: Callable, false_fun: Callable, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, staged as one
    ``cond`` equation (both branches are traced; one runs)."""
    if not callable(true_fun) or not callable(false_fun):
        raise TypeError("cond: true_fun and false_fun must be functions")
    pa = get_aval(pred)
    if pa.shape != ():
        raise TypeError(f"cond: the predicate must be a scalar, got {pa}; for an elementwise "
                        f"choice use tnp.where{where()}")
    if dtypes.is_float(pa.dtype):
        raise TypeError(f"cond: the predicate must be bool or an integer, got {pa}{where()}")
    if not dtypes.is_bool(pa.dtype):
        pred = lax.ne(pred, _cast(0, pa.dtype)) if isinstance(pred, Tracer) else bool(pred)
    index = lax.convert_element_type(pred, dtypes.int32) if isinstance(pred, Tracer) \
        else np.asarray(int(bool(pred)), dtypes.int32)
    return _bind_cond(index, [false_fun, true_fun], operands, ["false_fun", "true_fun"], "cond")


def _bind_cond(index, funs, operands, names, what):
    traced, leaves, out_tree = _trace_branches(funs, operands, names, what)
    branches, extras = _join_branches(traced)
    outs = cond_p.bind(index, *leaves, *extras, branches=branches)
    return tree_unflatten(out_tree, outs)


# ================================================================ while

while_p = Primitive("while", multiple_results=True)


def _while_aval(*avals, cond_graph, body_graph, cond_nconsts, body_nconsts):
    cc, bc, carry = _split(avals, cond_nconsts, body_nconsts)
    if not _same_types(cc + carry, cond_graph.in_avals):
        raise TypeError(f"while: the condition takes {_types(cond_graph.in_avals)} but gets "
                        f"{_types(cc + carry)}")
    if [a.strip_weak() for a in cond_graph.out_avals] != [ShapedArray((), dtypes.bool_)]:
        raise TypeError(f"while: the condition must return one bool scalar, got "
                        f"{_types(cond_graph.out_avals)}")
    if not _same_types(bc + carry, body_graph.in_avals):
        raise TypeError(f"while: the body takes {_types(body_graph.in_avals)} but gets "
                        f"{_types(bc + carry)}")
    if not _same_types(body_graph.out_avals, carry):
        raise TypeError(f"while: the body returns {_types(body_graph.out_avals)} for a carry of "
                        f"type {_types(carry)}")
    return [a.strip_weak() for a in carry]


def _while_impl(*args, cond_graph, body_graph, cond_nconsts, body_nconsts):
    cc, bc, carry = _split(args, cond_nconsts, body_nconsts)
    while bool(_run(cond_graph, cc + carry)[0]):
        carry = _run(body_graph, bc + carry)
    return carry


def _while_jvp(primals, tangents, *, cond_graph, body_graph, cond_nconsts, body_nconsts):
    cc, bc, carry = _split(primals, cond_nconsts, body_nconsts)
    _, bct, carry_t = _split(tangents, cond_nconsts, body_nconsts)
    nz_bc = [not is_zero(t) and _diff(get_aval(x)) for x, t in zip(bc, bct)]
    nz_c = [not is_zero(t) and _diff(get_aval(x)) for x, t in zip(carry, carry_t)]
    while True:  # a carry's tangent is nonzero if its start or any iteration makes it so
        g, extras, present = _jvp_sub(body_graph, nz_bc + nz_c, nz_c, "while_body_jvp")
        if all(c or not p for c, p in zip(nz_c, present)):
            break
        nz_c = [c or p for c, p in zip(nz_c, present)]
    # jvp body layout: extras, bc, carry, bc tangents, carry tangents -> carry, carry tangents
    n_bc, n_c, n_bct, n_ct = len(bc), len(carry), sum(nz_bc), sum(nz_c)
    ex_v, bc_v, c_v, bct_v, ct_v = _split(g.invars, len(extras), n_bc, n_c, n_bct)
    body = g.replace(invars=ex_v + bc_v + bct_v + c_v + ct_v)
    cg = cond_graph.replace(invars=cond_graph.invars + [Var(a) for a in _ct_avals(carry, nz_c)])
    bct_in = [t for t, nz in zip(bct, nz_bc) if nz]
    ct_in = [instantiate(t, get_aval(x).strip_weak()) for x, t, nz in zip(carry, carry_t, nz_c) if nz]
    outs = while_p.bind(*cc, *extras, *bc, *bct_in, *carry, *ct_in, cond_graph=cg, body_graph=body,
                        cond_nconsts=len(cc), body_nconsts=len(extras) + n_bc + n_bct)
    t_out = iter(outs[n_c:])
    return outs[:n_c], [next(t_out) if nz else Zero(get_aval(x).strip_weak()) for x, nz in zip(carry, nz_c)]


def _ct_avals(xs, mask):
    return [get_aval(x).strip_weak() for x, m in zip(xs, mask) if m]


class ReverseModeError(TracerError, NotImplementedError):
    """Reverse-mode differentiation of a loop whose trip count is not static."""


def _while_vjp_fwd(primals, **params):
    raise ReverseModeError(
        f"reverse-mode differentiation (grad, vjp, jacrev) of a while_loop is not supported{where()}: "
        f"its trip count is known only at run time, so the per-iteration values the backward "
        f"pass needs cannot be stored in buffers sized in advance. Use tr.fori_loop with "
        f"static Python-int bounds (it becomes a scan) or tr.scan; forward mode (tr.jvp, "
        f"tr.jacfwd) of a while_loop works.")


def _while_vjp(cts, primals, outs, **params):
    _while_vjp_fwd(primals, **params)


def _while_batch(args, dims, *, cond_graph, body_graph, cond_nconsts, body_nconsts):
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    args = [x if d is None else lax.moveaxis(x, d, 0) for x, d in zip(args, dims)]
    cc, bc, carry = _split(args, cond_nconsts, body_nconsts)
    b_cc, b_bc, b_c = [[d is not None for d in ds] for ds in _split(dims, cond_nconsts, body_nconsts)]
    while True:
        _, _, out_b = _batch_sub(body_graph, b_bc + b_c, size, b_c, "while_body_batched")
        _, _, (pred_b,) = _batch_sub(cond_graph, b_cc + b_c, size, [False], "while_cond_batched")
        if pred_b:  # members finish at different times: every carry is masked, so batched
            out_b = [True] * len(carry)
        if all(c or not o for c, o in zip(b_c, out_b)):
            break
        b_c = [c or o for c, o in zip(b_c, out_b)]
    carry = [move_batch_axis(x, 0 if was is not None else None, 0, size) if b else x
             for x, b, was in zip(carry, b_c, dims[cond_nconsts + body_nconsts:])]
    cg, c_ex, _ = _batch_sub(cond_graph, b_cc + b_c, size, [False], "while_cond_batched")
    if not pred_b:
        bg, b_ex, _ = _batch_sub(body_graph, b_bc + b_c, size, b_c, "while_body_batched")
        outs = while_p.bind(*c_ex, *cc, *b_ex, *bc, *carry, cond_graph=cg, body_graph=bg,
                            cond_nconsts=len(c_ex) + len(cc), body_nconsts=len(b_ex) + len(bc))
        return outs, [0 if b else None for b in b_c]

    def any_cond(*a):  # the loop runs while any member's condition holds
        return [lax.reduce_max(eval_graph(cg, list(c_ex) + list(a))[0], (0,))]
    cg_any, ca_ex = _trace_closed(any_cond, [v.aval for v in cg.invars[len(c_ex):]], "while_cond_any")
    bg, b_ex, _ = _batch_sub(body_graph, b_bc + b_c, size, b_c, "while_body_batched")

    def masked_body(*a):  # finished members keep their carry
        c_args, b_args, cur = _split(a, len(c_ex) + len(cc), len(b_ex) + len(bc))
        (pred,) = eval_graph(cg, c_args + cur)
        new = eval_graph(bg, b_args + cur)
        return [lax.select(_bcast_pred(pred, get_aval(n).shape), n, o) for n, o in zip(new, cur)]
    m_avals = [v.aval for v in cg.invars[:len(c_ex) + len(cc)]] + [v.aval for v in bg.invars]
    mg, m_ex = _trace_closed(masked_body, m_avals, "while_body_masked")
    outs = while_p.bind(*ca_ex, *cc, *m_ex, *c_ex, *cc, *b_ex, *bc, *carry,
                        cond_graph=cg_any, body_graph=mg, cond_nconsts=len(ca_ex) + len(cc),
                        body_nconsts=len(m_ex) + len(c_ex) + len(cc) + len(b_ex) + len(bc))
    return outs, [0] * len(outs)


while_p.abstract_eval = _while_aval
while_p.impl = _while_impl
while_p.jvp = _while_jvp
while_p.vjp_fwd = _while_vjp_fwd
while_p.vjp = _while_vjp
while_p.batch = _while_batch


def while_loop(cond_fun: Callable, body_fun: Callable, init_val):
    """``while cond_fun(val): val = body_fun(val)``, staged as one ``while`` equation.
    The carry keeps its pytree structure, shapes and dtypes. Not reverse-differentiable
    (use fori_loop with static bounds, or scan)."""
    if not callable(cond_fun) or not callable(body_fun):
        raise TypeError("while_loop: cond_fun and body_fun must be functions")
    leaves, tree = tree_flatten(init_val)
    return tree_unflatten(tree, _while_flat(cond_fun, body_fun, leaves, tree,
                                            _leaf_paths(tree, "init_val"), "while_loop"))


def _while_flat(cond_fun, body_fun, leaves, tree, paths, what):
    avals = [_carry_aval(x) for x in leaves]
    weak = [get_aval(x).weak_type for x in leaves]

    def body_flat(*args):
        out = body_fun(tree_unflatten(tree, args))
        ol, ot = tree_flatten(out)
        if ot != tree:
            raise TypeError(f"{what}: body_fun must return the carry's structure {tree}, got "
                            f"{ot}{where()}")
        return ol, []
    body, b_ex, avals = _trace_loop_body(body_flat, avals, weak, [], paths, what, "while_body")

    def cond_flat(*args):
        out = cond_fun(tree_unflatten(tree, args))
        oa = get_aval(out) if not isinstance(out, (tuple, list, dict)) else None
        if oa is None or oa.shape != () or not dtypes.is_bool(oa.dtype):
            raise TypeError(f"{what}: cond_fun must return a bool scalar, got "
                            f"{oa if oa is not None else type(out).__name__}{where()}")
        return [out]
    cg, c_ex = _trace_closed(cond_flat, avals, "while_cond")
    init = [_cast(x, a.dtype) if get_aval(x).dtype != a.dtype else x for x, a in zip(leaves, avals)]
    return while_p.bind(*c_ex, *b_ex, *init, cond_graph=cg, body_graph=body,
                        cond_nconsts=len(c_ex), body_nconsts=len(b_ex))


# ================================================================ scan

scan_p = Primitive("scan", multiple_results=True)


def _scan_aval(*avals, body, length, reverse, num_consts, num_carry):
    consts, carry, xs = _split(avals, num_consts, num_carry)
    for x in xs:
        if x.shape[:1] != (length,):
            raise TypeError(f"scan: every xs operand must have leading dimension {length}, got {x}")
    x_avals = [x.update(shape=x.shape[1:]) for x in xs]
    if not _same_types(consts + carry + x_avals, body.in_avals):
        raise TypeError(f"scan: the body takes {_types(body.in_avals)} but gets "
                        f"{_types(consts + carry + x_avals)}")
    c_out, ys = body.out_avals[:num_carry], body.out_avals[num_carry:]
    if not _same_types(c_out, carry):
        raise TypeError(f"scan: the body returns the carry {_types(c_out)} for a carry of type "
                        f"{_types(carry)}")
    return [a.strip_weak() for a in carry] + [ShapedArray((length,) + y.shape, y.dtype) for y in ys]


def _scan_impl(*args, body, length, reverse, num_consts, num_carry):
    consts, carry, xs = _split(args, num_consts, num_carry)
    ys = [np.empty((length,) + a.shape, a.dtype) for a in body.out_avals[num_carry:]]
    for i in (reversed(range(length)) if reverse else range(length)):
        outs = _run(body, consts + carry + [x[i] for x in xs])
        carry = outs[:num_carry]
        for y, o in zip(ys, outs[num_carry:]):
            y[i] = o
    return carry + ys


def _scan_jvp(primals, tangents, *, body, length, reverse, num_consts, num_carry):
    consts, carry, xs = _split(primals, num_consts, num_carry)
    tc, tcarry, txs = _split(tangents, num_consts, num_carry)
    nz = [not is_zero(t) and _diff(get_aval(x)) for x, t in zip(primals, tangents)]
    nz_k, nz_c, nz_x = _split(nz, num_consts, num_carry)
    n_y = len(body.outvars) - num_carry
    while True:  # a carry's tangent is nonzero if its start or any iteration makes it so
        g, extras, present = _jvp_sub(body, nz_k + nz_c + nz_x, nz_c + [False] * n_y, "scan_body_jvp")
        if all(c or not p for c, p in zip(nz_c, present[:num_carry])):
            break
        nz_c = [c or p for c, p in zip(nz_c, present[:num_carry])]
    # reorder the jvp body's inputs into consts / carry / xs, and its outputs into carry / ys
    ex_v, k_v, c_v, x_v, kt_v, ct_v, xt_v = _split(
        g.invars, len(extras), num_consts, num_carry, len(xs), sum(nz_k), sum(nz_c))
    y_present = present[num_carry:]
    c_o, y_o, ct_o, yt_o = _split(g.outvars, num_carry, n_y, sum(nz_c))
    new_body = g.replace(invars=ex_v + k_v + kt_v + c_v + ct_v + x_v + xt_v,
                         outvars=c_o + ct_o + y_o + yt_o)
    kt = [t for t, m in zip(tc, nz_k) if m]
    ct = [instantiate(t, get_aval(x).strip_weak()) for x, t, m in zip(carry, tcarry, nz_c) if m]
    xt = [t for t, m in zip(txs, nz_x) if m]
    outs = scan_p.bind(*extras, *consts, *kt, *carry, *ct, *xs, *xt, body=new_body, length=length,
                       reverse=reverse, num_consts=len(extras) + num_consts + len(kt),
                       num_carry=num_carry + len(ct))
    c_out, ct_out, y_out, yt_out = _split(outs, num_carry, len(ct), n_y)
    ct_it, yt_it = iter(ct_out), iter(yt_out)
    out_avals = _scan_aval(*[get_aval(x) for x in primals], body=body, length=length, reverse=reverse,
                           num_consts=num_consts, num_carry=num_carry)
    t_carry = [next(ct_it) if m else Zero(a) for m, a in zip(nz_c, out_avals[:num_carry])]
    t_ys = [next(yt_it) if p else Zero(a) for p, a in zip(y_present, out_avals[num_carry:])]
    return c_out + y_out, t_carry + t_ys


class _ScanResiduals:
    """What the backward scan needs: the backward body graph, and where each of its
    residual inputs comes from: ('c', value) a loop-invariant value (a constant operand
    or a value computed from them once), ('s', j) the j-th stacked residual of the
    forward scan, ('x', k) the k-th xs operand."""

    def __init__(self, bwd: Graph, sources: list, stacked: list, diff_in: list, diff_out: list):
        self.bwd, self.sources, self.stacked = bwd, sources, stacked
        self.diff_in, self.diff_out = diff_in, diff_out


def _scan_vjp_fwd(primals, *, live, body, length, reverse, num_consts, num_carry):
    """The forward scan of reverse mode: its body is the forward half of the body's VJP
    and also returns, stacked over iterations, the intermediate values that the backward
    half reads (found as the forward tracers the traced backward half captures).
    Consts and xs that are not differentiated (``live``) get no cotangent; carries
    always do (a differentiated const may reach them)."""
    diff_in = [_diff(a) and (lv or num_consts <= k < num_consts + num_carry)
               for k, (a, lv) in enumerate(zip(body.in_avals, live))]
    diff_out = [_diff(a) for a in body.out_avals]
    box = {}

    def fwd(*args):
        outs, backward = vjp_graph(body, args, diff_in)
        ct_avals = [a.strip_weak() for a, d in zip(body.out_avals, diff_out) if d]

        def bwd(*cts):
            it = iter(cts)
            in_cts = backward([next(it) if d else None for d in diff_out])
            return [instantiate(c, a.strip_weak()) for c, a, d in zip(in_cts, body.in_avals, diff_in) if d]
        bwd_graph, res = _trace_closed(bwd, ct_avals, "scan_bwd_body")
        position = {id(a): k for k, a in enumerate(args)}
        sources, stacked = [], []
        for r in res:
            k = position.get(id(r)) if isinstance(r, Tracer) else None
            if not isinstance(r, Tracer):
                sources.append(("c", r))
            elif k is not None and k < num_consts:
                sources.append(("k", k))
            elif k is not None and k >= num_consts + num_carry:
                sources.append(("x", k - num_consts - num_carry))
            else:
                sources.append(("s", len(stacked)))
                stacked.append(r)
        box["res"] = (bwd_graph, sources)
        return list(outs) + stacked
    fwd_graph, extras = _trace_closed(fwd, body.in_avals, "scan_fwd_body")
    bwd_graph, sources = box["res"]
    n_out, n_fixed = len(body.outvars), len(extras) + num_consts
    # Residuals computed from loop constants alone are the same every iteration:
    # compute them once, outside the loop, instead of stacking `length` copies.
    inv = _loop_invariant(fwd_graph, n_fixed)
    res_vars = fwd_graph.outvars[n_out:]
    hoist = [j for j, v in enumerate(res_vars) if v in inv]
    hoisted: dict[int, Any] = {}
    if hoist:
        g_inv = dce(Graph(fwd_graph.invars[:n_fixed], [], [], fwd_graph.eqns,
                          [res_vars[j] for j in hoist], "scan_invariant_residuals"))
        hoisted = dict(zip(hoist, eval_graph(g_inv, list(extras) + list(primals[:num_consts]))))
        fwd_graph = dce(fwd_graph.replace(outvars=fwd_graph.outvars[:n_out] + [
            v for j, v in enumerate(res_vars) if j not in hoisted]))
    renumber = {j: i for i, j in enumerate(j for j in range(len(res_vars)) if j not in hoisted)}
    outs = scan_p.bind(*extras, *primals, body=fwd_graph, length=length, reverse=reverse,
                       num_consts=n_fixed, num_carry=num_carry)
    sources = [("c", primals[v]) if kind == "k" else
               ("c", hoisted[v]) if kind == "s" and v in hoisted else
               ("s", renumber[v]) if kind == "s" else (kind, v) for kind, v in sources]
    return outs[:n_out], _ScanResiduals(bwd_graph, sources, outs[n_out:], diff_in, diff_out)


def _loop_invariant(graph: Graph, n_fixed: int) -> set:
    """The variables of a loop body that depend only on its first ``n_fixed`` inputs
    (the loop constants)."""
    inv = set(graph.invars[:n_fixed])
    for eqn in graph.eqns:
        if all(isinstance(a, Literal) or a in inv for a in eqn.invars):
            inv.update(eqn.outvars)
    return inv


def _scan_vjp(cts, primals, outs, *, residuals, body, length, reverse, num_consts, num_carry):
    """The backward scan: runs in the opposite direction, carrying the carry's
    cotangent and accumulating the consts' cotangents; the xs' cotangents are its ys."""
    r = residuals
    consts, carry, xs = _split(primals, num_consts, num_carry)
    d_k, d_c, d_x = _split(r.diff_in, num_consts, num_carry)
    do_c, do_y = r.diff_out[:num_carry], r.diff_out[num_carry:]
    ct_c, ct_y = cts[:num_carry], cts[num_carry:]
    out_avals = [get_aval(o) for o in outs]
    y_avals = out_avals[num_carry:]
    ct_c_in = [instantiate(c, a.strip_weak()) for c, a, d in zip(ct_c, out_avals, do_c) if d]
    y_present = [d and not is_zero(c) for c, d in zip(ct_y, do_y)]
    ct_y_in = [c for c, p in zip(ct_y, y_present) if p]
    acc_init = [_zeros(get_aval(k).strip_weak()) for k, d in zip(consts, d_k) if d]
    loop_consts = [v for kind, v in r.sources if kind == "c"]
    x_src = [xs[v] for kind, v in r.sources if kind == "x"]
    n_lc, n_cc, n_acc, n_cy, n_st = (len(loop_consts), len(ct_c_in), len(acc_init), len(ct_y_in),
                                     len(r.stacked))

    def bwd_body(*a):
        lc, cc, acc, cy, st, xsrc = _split(a, n_lc, n_cc, n_acc, n_cy, n_st)
        lc_it, st_it, x_it = iter(lc), iter(st), iter(xsrc)
        res = [next({"c": lc_it, "s": st_it, "x": x_it}[kind]) for kind, _ in r.sources]
        cy_it = iter(cy)
        y_cts = [(next(cy_it) if p else _zeros(ShapedArray(a.shape[1:], a.dtype)))
                 for a, p, d in zip(y_avals, y_present, do_y) if d]
        in_cts = eval_graph(r.bwd, res + cc + y_cts)
        k_ct, c_ct, x_ct = _split(in_cts, sum(d_k), sum(d_c))
        return c_ct + [lax.add(s, c) for s, c in zip(acc, k_ct)] + x_ct
    avals = ([get_aval(v) for v in loop_consts] + [get_aval(v) for v in ct_c_in + acc_init]
             + [_unstacked(v) for v in ct_y_in + r.stacked + x_src])
    g, extras = _trace_closed(bwd_body, avals, "scan_bwd")
    res = scan_p.bind(*extras, *loop_consts, *ct_c_in, *acc_init, *ct_y_in, *r.stacked, *x_src,
                      body=g, length=length, reverse=not reverse,
                      num_consts=len(extras) + n_lc, num_carry=n_cc + n_acc)
    c_res, k_res, x_res = _split(res, n_cc, n_acc)
    it_c, it_k, it_x = iter(c_res), iter(k_res), iter(x_res)
    return ([next(it_k) if d else None for d in d_k] + [next(it_c) if d else None for d in d_c]
            + [next(it_x) if d else None for d in d_x])


def _unstacked(x) -> ShapedArray:
    a = get_aval(x)
    return a.update(shape=a.shape[1:])


def _scan_batch(args, dims, *, body, length, reverse, num_consts, num_carry):
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    consts, carry, xs = _split(args, num_consts, num_carry)
    d_k, d_c, d_x = _split(dims, num_consts, num_carry)
    consts = [k if d is None else lax.moveaxis(k, d, 0) for k, d in zip(consts, d_k)]
    xs = [x if d is None else lax.moveaxis(x, d, 1) for x, d in zip(xs, d_x)]  # axis 0 is scanned
    b_k, b_x = [d is not None for d in d_k], [d is not None for d in d_x]
    b_c = [d is not None for d in d_c]
    n_y = len(body.outvars) - num_carry
    while True:
        g, extras, out_b = _batch_sub(body, b_k + b_c + b_x, size, b_c + [False] * n_y, "scan_body_batched")
        if all(c or not o for c, o in zip(b_c, out_b[:num_carry])):
            break
        b_c = [c or o for c, o in zip(b_c, out_b[:num_carry])]
    carry = [move_batch_axis(c, d, 0, size) if b else c for c, d, b in zip(carry, d_c, b_c)]
    outs = scan_p.bind(*extras, *consts, *carry, *xs, body=g, length=length, reverse=reverse,
                       num_consts=len(extras) + num_consts, num_carry=num_carry)
    return outs, [0 if b else None for b in b_c] + [1 if b else None for b in out_b[num_carry:]]


scan_p.abstract_eval = _scan_aval
scan_p.impl = _scan_impl
scan_p.jvp = _scan_jvp
scan_p.vjp_fwd = _scan_vjp_fwd
scan_p.vjp_fwd_wants_live = True
scan_p.vjp = _scan_vjp
scan_p.batch = _scan_batch


def scan(f: Callable, init, xs, length: int | None = None, reverse: bool = False):
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs`` (a pytree, or None
    with ``length``); returns ``(final carry, stacked ys)`` as in JAX. ``reverse=True``
    runs from the last element to the first (ys stay in their original order)."""
    if not callable(f):
        raise TypeError("scan: f must be a function")
    x_leaves, x_tree = tree_flatten(xs)
    lengths = set()
    for x in x_leaves:
        a = get_aval(x)
        if a.shape == ():
            raise TypeError(f"scan: xs leaves must have a leading axis to scan over, got {a}{where()}")
        lengths.add(a.shape[0])
    if length is not None:
        length = int(length)
        if length < 0:
            raise ValueError(f"scan: length must be non-negative, got {length}")
        lengths.add(length)
    if not lengths:
        raise ValueError(f"scan: with xs=None (or no leaves) pass length=...{where()}")
    if len(lengths) > 1:
        raise ValueError(f"scan: xs leaves and length disagree on the trip count: "
                         f"{sorted(lengths)}{where()}")
    init_leaves, init_tree = tree_flatten(init)
    carry, ys = _scan_flat(f, init_leaves, init_tree, x_leaves, x_tree, lengths.pop(), bool(reverse),
                           _leaf_paths(init_tree, "carry"), "scan")
    return carry, ys


def _scan_flat(f, init_leaves, init_tree, x_leaves, x_tree, length, reverse, paths, what):
    avals = [_carry_aval(x) for x in init_leaves]
    weak = [get_aval(x).weak_type for x in init_leaves]
    x_avals = [_unstacked(x) for x in x_leaves]
    y_box = []

    def body_flat(*args):
        c, x = args[:len(avals)], args[len(avals):]
        out = f(tree_unflatten(init_tree, c), tree_unflatten(x_tree, x))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{what}: the body must return a pair (carry, y), got "
                            f"{type(out).__name__}{where()}")
        cl, ct = tree_flatten(out[0])
        if ct != init_tree:
            raise TypeError(f"{what}: the body must return a carry with the structure of init, "
                            f"{init_tree}, got {ct}{where()}")
        yl, yt = tree_flatten(out[1])
        y_box.append(yt)
        return cl, yl
    body, extras, avals = _trace_loop_body(body_flat, avals, weak, x_avals, paths, what, "scan_body")
    init = [_cast(x, a.dtype) if get_aval(x).dtype != a.dtype else x for x, a in zip(init_leaves, avals)]
    outs = scan_p.bind(*extras, *init, *x_leaves, body=body, length=length, reverse=reverse,
                       num_consts=len(extras), num_carry=len(init))
    return tree_unflatten(init_tree, outs[:len(init)]), tree_unflatten(y_box[-1], outs[len(init):])


def fori_loop(lower, upper, body_fun: Callable, init_val):
    """``for i in range(lower, upper): val = body_fun(i, val)`` with an int32 index.
    With Python-int bounds this is a ``scan`` (so reverse mode works); with traced bounds
    it is a ``while`` (forward mode only)."""
    if not callable(body_fun):
        raise TypeError("fori_loop: body_fun must be a function")
    for name, b in (("lower", lower), ("upper", upper)):
        ba = get_aval(b)
        if ba.shape != () or not dtypes.is_int(ba.dtype):
            raise TypeError(f"fori_loop: {name} must be an integer scalar, got {ba}{where()}")
    leaves, tree = tree_flatten(init_val)
    paths = ["loop index"] + _leaf_paths(tree, "init_val")
    if not isinstance(lower, Tracer) and not isinstance(upper, Tracer):
        lo, hi = int(lower), int(upper)

        def step(carry, _):
            i, x = carry
            return (lax.add(i, np.asarray(1, dtypes.int32)), body_fun(i, x)), None
        (_, out), _ = _scan_flat(step, [np.asarray(lo, dtypes.int32)] + leaves,
                                 tree_structure_of((0, init_val)), [], tree_flatten(None)[1],
                                 max(hi - lo, 0), False, paths, "fori_loop")
        return out
    lo, hi = _cast(lower, dtypes.int32), _cast(upper, dtypes.int32)

    def c_fun(carry):
        return lax.lt(carry[0], carry[1])

    def b_fun(carry):
        i, u, x = carry
        return lax.add(i, np.asarray(1, dtypes.int32)), u, body_fun(i, x)
    ctree = tree_structure_of((0, 0, init_val))
    outs = _while_flat(c_fun, b_fun, [lo, hi] + leaves, ctree,
                       ["loop index", "upper bound"] + paths[1:], "fori_loop")
    return tree_unflatten(ctree, outs)[2]


def tree_structure_of(x) -> PyTreeDef:
    return tree_flatten(x)[1]
