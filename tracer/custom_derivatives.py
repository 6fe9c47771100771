"""User-defined derivative rules: ``custom_vjp`` and ``custom_jvp``, as in JAX.

A decorated function is traced into a graph and applied through a higher-order
primitive (``custom_vjp_call`` / ``custom_jvp_call``) whose params hold that graph
(``call``, printed as an indented sub-graph) and the user's rules. Evaluating or
batching the primitive evaluates/batches the graph; differentiating it runs the
user's rules instead:

* ``custom_vjp``: under reverse mode the primitive's ``vjp_fwd`` runs the user's
  ``fwd`` (its residuals come from the forward pass) and ``vjp`` runs ``bwd``.
  Forward mode is refused, as in JAX.
* ``custom_jvp``: forward mode runs the user's JVP rule; reverse mode transposes
  that rule, i.e. differentiates it in reverse with respect to its tangents (in
  which it is linear).

Values the function closes over are constants to the custom rules; differentiating
with respect to one raises TypeError: pass it as an argument instead.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

from . import dtypes
from .ad_util import instantiate, is_zero
from .core import Primitive, Tracer, eval_graph, get_aval, trace_flat
from .ir import ShapedArray
from .pytree import tree_flatten, tree_map, tree_unflatten


def _abstractify(x) -> ShapedArray:
    from .api import abstractify
    return abstractify(x)


def _name(f) -> str:
    return getattr(f, "__name__", None) or type(f).__name__


class _Prepared:
    """A call of a decorated function: its flat differentiable leaves, the traced
    graph, captured outer values, and how to rebuild the user's argument lists."""

    def __init__(self, fun, args, nondiff_argnums, what):
        n = len(args)
        self.nondiff = tuple(sorted(i % n for i in nondiff_argnums)) if n else ()
        for i in self.nondiff:
            if any(isinstance(l, Tracer) for l in tree_flatten(args[i])[0]):
                raise TypeError(f"{what}({_name(fun)}): argument {i} is in nondiff_argnums but is a "
                                f"traced array; nondiff_argnums is for static values (functions, "
                                f"ints, ...). Pass arrays as ordinary arguments.")
        self.args = args
        diff = [a for i, a in enumerate(args) if i not in self.nondiff]
        self.leaves, self.in_tree = tree_flatten(diff)
        self.nondiff_vals = [args[i] for i in self.nondiff]
        box = []

        def flat(*leaves):
            out = fun(*self.full_args(leaves))
            out_leaves, out_tree = tree_flatten(out)
            box.append(out_tree)
            return out_leaves
        self.graph, self.captured = trace_flat(flat, [_abstractify(x) for x in self.leaves], _name(fun))
        self.out_tree = box[0]

    def diff_args(self, leaves) -> list:
        return list(tree_unflatten(self.in_tree, list(leaves)))

    def full_args(self, leaves) -> list:
        it = iter(self.diff_args(leaves))
        return [self.args[i] if i in self.nondiff else next(it) for i in range(len(self.args))]


def _check_outs(what, outs, out_tree, avals):
    """Flatten a rule's output, checking it against the function's output structure/types."""
    leaves, tree = tree_flatten(outs)
    if tree != out_tree:
        raise TypeError(f"{what} returned structure {tree}, but the function returns {out_tree}")
    res = []
    for l, a in zip(leaves, avals):
        la = get_aval(l)
        if la.shape != a.shape:
            raise TypeError(f"{what} returned shape {la.shape} where the function returns {a.shape}")
        if la.dtype != a.dtype:
            from . import lax
            l = lax.convert_element_type(l, a.dtype)
        res.append(l)
    return res


def _batch_call(graph, args, dims, size):
    """Move every batch axis to 0 (broadcasting unbatched operands) and batch ``graph``."""
    from .batching import batch_graph, move_batch_axis
    args = [move_batch_axis(a, d, 0, size) for a, d in zip(args, dims)]

    def run(*xs):
        outs, out_dims = batch_graph(graph, xs, [0] * len(xs), size)
        return [move_batch_axis(o, d, 0, size) for o, d in zip(outs, out_dims)]
    new_graph, captured = trace_flat(run, [get_aval(a) for a in args], graph.name)
    return args, new_graph, captured


def _vmapped(fn, name):
    """``fn`` applied to operands that all carry a leading batch axis."""
    from .batching import vmap

    @functools.wraps(fn)
    def batched(*args):
        return vmap(fn)(*args)
    batched.__name__ = f"vmap({name})"
    return batched


# ---------------------------------------------------------------- custom_vjp

custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)
custom_vjp_call_p.abstract_eval = lambda *avals, call, **_: call.out_avals
custom_vjp_call_p.impl = lambda *args, call, **_: eval_graph(call, args)


def _custom_vjp_jvp(primals, tangents, *, call, **_):
    raise TypeError(f"can't apply forward-mode differentiation (jvp, jacfwd, hessian) to the "
                    f"custom_vjp function {call.name}; use reverse mode (grad, vjp, jacrev), or "
                    f"define the rule with custom_jvp")


def _custom_vjp_fwd(primals, *, call, fwd, bwd, num_captured, live=()):
    k = len(primals) - num_captured
    if any(live[k:]):
        raise TypeError(f"the custom_vjp function {call.name} closes over a value that is being "
                        f"differentiated, which its bwd rule cannot give a cotangent; pass that "
                        f"value as an argument instead")
    return fwd(list(primals[:k]))


def _custom_vjp_bwd(cts, primals, outs, *, residuals, call, fwd, bwd, num_captured):
    cts = [instantiate(c, get_aval(o).strip_weak()) if is_zero(c) else c for c, o in zip(cts, outs)]
    return list(bwd(residuals, cts)) + [None] * num_captured


def _custom_vjp_batch(args, dims, *, call, fwd, bwd, num_captured):
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    args, new_call, captured = _batch_call(call, args, dims, size)
    outs = custom_vjp_call_p.bind(*args, *captured, call=new_call, num_captured=num_captured + len(captured),
                                  fwd=_vmapped(fwd, _name(fwd)), bwd=_vmapped(bwd, _name(bwd)))
    return outs, [0] * len(outs)


custom_vjp_call_p.jvp = _custom_vjp_jvp
custom_vjp_call_p.vjp_fwd = _custom_vjp_fwd
custom_vjp_call_p.vjp_fwd_wants_live = True
custom_vjp_call_p.vjp = _custom_vjp_bwd
custom_vjp_call_p.batch = _custom_vjp_batch


class custom_vjp:
    """A function with a user-defined reverse-mode rule, as ``jax.custom_vjp``::

        @custom_vjp
        def f(x, y): ...
        def f_fwd(x, y): return f(x, y), residuals
        def f_bwd(residuals, g): return (ct_x, ct_y)     # one per argument, None for zero
        f.defvjp(f_fwd, f_bwd)

    Arguments in ``nondiff_argnums`` (static values such as functions or ints) are
    passed to ``bwd`` first: ``bwd(*nondiff_args, residuals, g)``.
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {_name(self.fun)} has no rule: call "
                            f"{_name(self.fun)}.defvjp(fwd, bwd) first")
        p = _Prepared(self.fun, args, self.nondiff_argnums, "custom_vjp")
        out_avals = p.graph.out_avals
        user_fwd, user_bwd = self.fwd, self.bwd

        def fwd(leaves):
            res = user_fwd(*p.full_args(leaves))
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(f"custom_vjp fwd {_name(user_fwd)} must return a pair (output, residuals)")
            return _check_outs(f"custom_vjp fwd {_name(user_fwd)}", res[0], p.out_tree, out_avals), res[1]

        def bwd(residuals, cts):
            ct_in = user_bwd(*p.nondiff_vals, residuals, tree_unflatten(p.out_tree, cts))
            n_diff = len(args) - len(p.nondiff)
            if not isinstance(ct_in, (tuple, list)) or len(ct_in) != n_diff:
                raise TypeError(f"custom_vjp bwd {_name(user_bwd)} must return a tuple with one "
                                f"cotangent per differentiable argument ({n_diff}), got {ct_in!r:.80}")
            flat = []
            for arg, ct in zip(p.diff_args(p.leaves), ct_in):
                arg_leaves, arg_tree = tree_flatten(arg)
                if ct is None:
                    flat += [None] * len(arg_leaves)
                    continue
                ct_leaves, ct_tree = tree_flatten(ct)
                if ct_tree != arg_tree:
                    raise TypeError(f"custom_vjp bwd {_name(user_bwd)} returned a cotangent of "
                                    f"structure {ct_tree} for an argument of structure {arg_tree}")
                for c, a in zip(ct_leaves, arg_leaves):
                    av = _abstractify(a)
                    if not dtypes.is_float(av.dtype) or c is None:
                        flat.append(None)
                        continue
                    if get_aval(c).shape != av.shape:
                        raise TypeError(f"custom_vjp bwd {_name(user_bwd)} returned shape "
                                        f"{get_aval(c).shape} for an argument of shape {av.shape}")
                    from . import lax
                    flat.append(lax.convert_element_type(c, av.strip_weak().dtype))
            return flat
        fwd.__name__, bwd.__name__ = _name(user_fwd), _name(user_bwd)
        outs = custom_vjp_call_p.bind(*p.leaves, *p.captured, call=p.graph, fwd=fwd, bwd=bwd,
                                      num_captured=len(p.captured))
        return tree_unflatten(p.out_tree, outs)


# ---------------------------------------------------------------- custom_jvp

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)
custom_jvp_call_p.abstract_eval = lambda *avals, call, **_: call.out_avals
custom_jvp_call_p.impl = lambda *args, call, **_: eval_graph(call, args)


def _custom_jvp_jvp(primals, tangents, *, call, jvp, num_captured):
    k = len(primals) - num_captured
    if any(not is_zero(t) for t in tangents[k:]):
        raise TypeError(f"the custom_jvp function {call.name} closes over a value that is being "
                        f"differentiated; pass it as an argument instead")
    return jvp(list(primals[:k]), list(tangents[:k]))


def _custom_jvp_vjp_fwd(primals, *, call, jvp, num_captured, live=()):
    """Reverse mode evaluates the function as usual; this only refuses closures over
    differentiated values (their cotangent cannot come from the rule)."""
    if any(live[len(primals) - num_captured:]):
        raise TypeError(f"the custom_jvp function {call.name} closes over a value that is being "
                        f"differentiated; pass it as an argument instead")
    return custom_jvp_call_p.bind(*primals, call=call, jvp=jvp, num_captured=num_captured), None


def _custom_jvp_vjp(cts, primals, outs, *, call, jvp, num_captured, residuals=None):
    """Transpose the (linear in the tangents) JVP rule by reverse-mode differentiating it."""
    from .autodiff import vjp_graph
    from .passes import dce
    k = len(primals) - num_captured
    leaves = list(primals[:k])
    active = [dtypes.is_float(get_aval(x).dtype) for x in leaves]
    t_avals = [get_aval(x).strip_weak() for x, a in zip(leaves, active) if a]

    def linear(*ts):
        it = iter(ts)
        full = [next(it) if a else None for a in active]
        return jvp(leaves, full)[1]
    graph, captured = trace_flat(linear, t_avals, f"{call.name}_jvp_transpose")
    zeros = [instantiate(None, a) for a in t_avals]
    _, backward = vjp_graph(dce(graph), zeros + captured, [True] * len(zeros) + [False] * len(captured))
    in_cts = iter(backward(list(cts))[:len(zeros)])
    return [next(in_cts) if a else None for a in active] + [None] * num_captured


def _custom_jvp_batch(args, dims, *, call, jvp, num_captured):
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    args, new_call, captured = _batch_call(call, args, dims, size)

    def batched_jvp(primals, tangents):
        # symbolic-zero tangents have no batch axis: give the rule real (batched) zeros
        ts = [instantiate(t, get_aval(p).strip_weak()) if is_zero(t) else t
              for t, p in zip(tangents, primals)]
        return _vmapped(lambda ps, ts_: jvp(ps, ts_), _name(jvp))(list(primals), ts)
    batched_jvp.__name__ = f"vmap({_name(jvp)})"
    outs = custom_jvp_call_p.bind(*args, *captured, call=new_call, jvp=batched_jvp,
                                  num_captured=num_captured + len(captured))
    return outs, [0] * len(outs)


custom_jvp_call_p.jvp = _custom_jvp_jvp
custom_jvp_call_p.vjp = _custom_jvp_vjp
custom_jvp_call_p.vjp_fwd = _custom_jvp_vjp_fwd
custom_jvp_call_p.vjp_fwd_wants_live = True
custom_jvp_call_p.batch = _custom_jvp_batch


class custom_jvp:
    """A function with a user-defined forward-mode rule, as ``jax.custom_jvp``::

        @custom_jvp
        def f(x): ...
        @f.defjvp
        def f_jvp(primals, tangents):          # tuples, one entry per argument
            (x,), (t,) = primals, tangents
            return f(x), tangent_out             # tangent_out linear in the tangents

    or ``f.defjvps(lambda g, ans, x: ..., ...)`` with one rule per argument. Reverse
    mode (grad, vjp) transposes the rule. ``nondiff_argnums`` are passed first:
    ``jvp(*nondiff_args, primals, tangents)``.
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp = None
        self.symbolic_zeros = False

    def defjvp(self, jvp: Callable) -> Callable:
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps: Callable | None) -> None:
        """One rule per argument, ``jvp_i(tangent_i, ans, *args) -> tangent contribution``
        (None: that argument does not affect the output); the contributions are summed."""
        fun = self.fun

        def rule(*a):
            *nondiff, primals, tangents = a
            if len(jvps) != len(primals):
                raise TypeError(f"defjvps got {len(jvps)} rules for {len(primals)} arguments")
            full = list(primals)
            for i, v in zip(sorted(self.nondiff_argnums), nondiff):
                full.insert(i, v)
            ans = fun(*full)
            total = None
            for j, t in zip(jvps, tangents):
                if j is None or t is None:
                    continue
                part = j(t, ans, *full)
                total = part if total is None else tree_map(lambda u, v: u + v, total, part)
            if total is None:
                total = tree_map(lambda o: instantiate(None, get_aval(o).strip_weak()), ans)
            return ans, total
        rule.__name__ = "defjvps_rule"
        self.jvp = rule
        self.symbolic_zeros = True

    def __call__(self, *args):
        if self.jvp is None:
            raise TypeError(f"custom_jvp function {_name(self.fun)} has no rule: use "
                            f"@{_name(self.fun)}.defjvp or .defjvps first")
        p = _Prepared(self.fun, args, self.nondiff_argnums, "custom_jvp")
        out_avals = p.graph.out_avals
        user_jvp, symbolic = self.jvp, self.symbolic_zeros

        def jvp(leaves, tangents):
            arg_tangents = []
            for arg, ts in zip(p.diff_args(leaves), _split(tangents, p, leaves)):
                if symbolic and all(is_zero(t) for t in ts):
                    arg_tangents.append(None)
                    continue
                ts = [instantiate(t, _abstractify(l).strip_weak()) if is_zero(t) else t
                      for t, l in zip(ts, tree_flatten(arg)[0])]
                arg_tangents.append(tree_unflatten(tree_flatten(arg)[1], ts))
            res = user_jvp(*p.nondiff_vals, tuple(p.diff_args(leaves)), tuple(arg_tangents))
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(f"custom_jvp rule {_name(user_jvp)} must return a pair "
                                f"(primal_out, tangent_out)")
            what = f"custom_jvp rule {_name(user_jvp)}"
            outs = _check_outs(what, res[0], p.out_tree, out_avals)
            touts = _check_outs(what + " (tangent output)", res[1], p.out_tree,
                                [a.strip_weak() for a in out_avals])
            return outs, touts
        jvp.__name__ = _name(user_jvp)
        outs = custom_jvp_call_p.bind(*p.leaves, *p.captured, call=p.graph, jvp=jvp,
                                      num_captured=len(p.captured))
        return tree_unflatten(p.out_tree, outs)


def _split(flat: list, p: _Prepared, leaves) -> list[list]:
    """Group flat per-leaf values by differentiable argument."""
    out, pos = [], 0
    for arg in p.diff_args(leaves):
        n = len(tree_flatten(arg)[0])
        out.append(list(flat[pos:pos + n]))
        pos += n
    return out
