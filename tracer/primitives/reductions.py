"""Reductions: reduce_sum, reduce_max, reduce_min, reduce_prod, argmax, argmin, cumsum.

Conventions at non-differentiable points (as in JAX): the derivative of max/min
reductions is shared equally among tied elements; reduce_prod's derivative is
exact with zeros in the input (the product of the other elements).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ad_util import Zero, broadcast_ct, is_zero, mul_ct
from ..batching import shift_axes
from ..core import Primitive, get_aval
from ..ir import ShapedArray
from .common import check_kinds, normalize_axes, shape_error
from .elementwise import (convert_element_type, div, eq, mul, select, nondifferentiable)
from .shape import broadcast_in_dim, full_like, linear_jvp


def _reduced_shape(shape, axes):
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_aval(op, kinds):
    def rule(x, *, axes):
        normalize_axes(op, axes, x.ndim)
        check_kinds(op, [x], kinds)
        return ShapedArray(_reduced_shape(x.shape, axes), x.dtype, x.weak_type)
    return rule


def _expand(ct, x_shape, axes):
    """Broadcast a reduced value back over the reduced axes."""
    kept = tuple(i for i in range(len(x_shape)) if i not in axes)
    return broadcast_in_dim(ct, x_shape, kept)


def _expand_ct(ct, x_shape, axes):
    """``_expand`` for cotangents: remembers constant fills (see ad_util.mul_ct)."""
    return broadcast_ct(ct, x_shape, tuple(i for i in range(len(x_shape)) if i not in axes))


def _reduce_batch(prim):
    """Reduce the per-example axes; the batch axis moves left past the reduced ones."""
    def rule(args, dims, *, axes):
        d = dims[0]
        axes = shift_axes(axes, d)
        return prim.bind(args[0], axes=axes), d - sum(a < d for a in axes)
    return rule


def _arg_batch(prim):
    def rule(args, dims, *, axis, index_dtype):
        d = dims[0]
        axis = axis + (axis >= d)
        return prim.bind(args[0], axis=axis, index_dtype=index_dtype), d - (axis < d)
    return rule


# ---------------------------------------------------------------- reduce_sum

reduce_sum_p = Primitive("reduce_sum")
reduce_sum_p.abstract_eval = _reduce_aval("reduce_sum", "fi")
reduce_sum_p.impl = lambda x, *, axes: np.sum(x, axis=axes, dtype=np.asarray(x).dtype)
reduce_sum_p.jvp = linear_jvp(reduce_sum_p)
reduce_sum_p.vjp = lambda ct, primals, out, *, axes: [
    None if is_zero(ct) else _expand_ct(ct, get_aval(primals[0]).shape, axes)]
reduce_sum_p.batch = _reduce_batch(reduce_sum_p)


def reduce_sum(x, axes):
    axes = tuple(sorted(int(a) % max(get_aval(x).ndim, 1) for a in axes))
    return reduce_sum_p.bind(x, axes=axes) if axes else x


# ---------------------------------------------------------------- reduce_max / reduce_min

def _minmax_rules(prim):
    """Ties share the derivative equally (JAX's convention)."""
    def weights(x, out, axes):
        x_shape = get_aval(x).shape
        mask = convert_element_type(eq(x, _expand(out, x_shape, axes)), get_aval(x).dtype)
        count = reduce_sum(mask, axes)
        return div(mask, _expand(count, x_shape, axes))

    def jvp(primals, tangents, *, axes):
        (x,), (t,) = primals, tangents
        out = prim.bind(x, axes=axes)
        if is_zero(t):
            return out, Zero(get_aval(out).strip_weak())
        return out, reduce_sum(mul(t, weights(x, out, axes)), axes)

    def vjp(ct, primals, out, *, axes):
        if is_zero(ct):
            return [None]
        x = primals[0]
        return [mul_ct(_expand_ct(ct, get_aval(x).shape, axes), weights(x, out, axes))]
    prim.jvp, prim.vjp = jvp, vjp


reduce_max_p = Primitive("reduce_max")
reduce_max_p.abstract_eval = _reduce_aval("reduce_max", "fib")
reduce_max_p.impl = lambda x, *, axes: np.max(x, axis=axes)
_minmax_rules(reduce_max_p)
reduce_max_p.batch = _reduce_batch(reduce_max_p)

reduce_min_p = Primitive("reduce_min")
reduce_min_p.abstract_eval = _reduce_aval("reduce_min", "fib")
reduce_min_p.impl = lambda x, *, axes: np.min(x, axis=axes)
_minmax_rules(reduce_min_p)
reduce_min_p.batch = _reduce_batch(reduce_min_p)


def _check_nonempty(op, x, axes):
    shape = get_aval(x).shape
    if any(shape[a] == 0 for a in axes):
        raise shape_error(op, "zero-size reduction has no identity", get_aval(x))


def reduce_max(x, axes):
    axes = tuple(sorted(axes))
    _check_nonempty("max", x, axes)
    return reduce_max_p.bind(x, axes=axes) if axes else x


def reduce_min(x, axes):
    axes = tuple(sorted(axes))
    _check_nonempty("min", x, axes)
    return reduce_min_p.bind(x, axes=axes) if axes else x


# ---------------------------------------------------------------- reduce_prod

reduce_prod_p = Primitive("reduce_prod")
reduce_prod_p.abstract_eval = _reduce_aval("reduce_prod", "fi")
reduce_prod_p.impl = lambda x, *, axes: np.prod(x, axis=axes, dtype=np.asarray(x).dtype)


def _prod_partials(x, axes):
    """d prod / d x_i = product of the other elements, exact when x has zeros."""
    from .elementwise import and_
    x_shape, dt = get_aval(x).shape, get_aval(x).dtype
    zero, one = full_like(x, 0), full_like(x, 1)
    is0 = eq(x, zero)
    n0 = reduce_sum(convert_element_type(is0, dtypes.int32), axes)
    x1 = select(is0, one, x)
    p1 = _expand(reduce_prod_p.bind(x1, axes=axes), x_shape, axes)
    n0 = _expand(n0, x_shape, axes)
    no_zero = eq(n0, full_like(n0, 0))
    one_zero_here = and_(eq(n0, full_like(n0, 1)), is0)
    return select(no_zero, div(p1, x1), select(one_zero_here, p1, full_like(p1, 0)))


def _prod_jvp(primals, tangents, *, axes):
    (x,), (t,) = primals, tangents
    out = reduce_prod_p.bind(x, axes=axes)
    if is_zero(t):
        return out, Zero(get_aval(out).strip_weak())
    return out, reduce_sum(mul(t, _prod_partials(x, axes)), axes)


def _prod_vjp(ct, primals, out, *, axes):
    if is_zero(ct):
        return [None]
    x = primals[0]
    return [mul_ct(_expand_ct(ct, get_aval(x).shape, axes), _prod_partials(x, axes))]


reduce_prod_p.jvp, reduce_prod_p.vjp = _prod_jvp, _prod_vjp
reduce_prod_p.batch = _reduce_batch(reduce_prod_p)


def reduce_prod(x, axes):
    axes = tuple(sorted(axes))
    return reduce_prod_p.bind(x, axes=axes) if axes else x


# ---------------------------------------------------------------- argmax / argmin

def _arg_aval(op):
    def rule(x, *, axis, index_dtype):
        normalize_axes(op, (axis,), x.ndim)
        if x.shape[axis] == 0:
            raise shape_error(op, "attempt to get the index of an empty sequence", x)
        return ShapedArray(_reduced_shape(x.shape, (axis,)), index_dtype)
    return rule


argmax_p = Primitive("argmax")
argmax_p.abstract_eval = _arg_aval("argmax")
argmax_p.impl = lambda x, *, axis, index_dtype: np.argmax(x, axis=axis).astype(index_dtype)
nondifferentiable(argmax_p)
argmax_p.batch = _arg_batch(argmax_p)

argmin_p = Primitive("argmin")
argmin_p.abstract_eval = _arg_aval("argmin")
argmin_p.impl = lambda x, *, axis, index_dtype: np.argmin(x, axis=axis).astype(index_dtype)
nondifferentiable(argmin_p)
argmin_p.batch = _arg_batch(argmin_p)


def argmax(x, axis: int, index_dtype=dtypes.int32):
    return argmax_p.bind(x, axis=int(axis), index_dtype=dtypes.canonical(index_dtype))


def argmin(x, axis: int, index_dtype=dtypes.int32):
    return argmin_p.bind(x, axis=int(axis), index_dtype=dtypes.canonical(index_dtype))


# ---------------------------------------------------------------- cumsum

cumsum_p = Primitive("cumsum")


def _cumsum_aval(x, *, axis, reverse):
    normalize_axes("cumsum", (axis,), x.ndim)
    check_kinds("cumsum", [x], "fi")
    return x


def _cumsum_impl(x, *, axis, reverse):
    x = np.asarray(x)
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    return np.cumsum(x, axis=axis, dtype=x.dtype)


cumsum_p.abstract_eval = _cumsum_aval
cumsum_p.impl = _cumsum_impl
cumsum_p.jvp = linear_jvp(cumsum_p)
cumsum_p.vjp = lambda ct, primals, out, *, axis, reverse: [
    None if is_zero(ct) else cumsum_p.bind(ct, axis=axis, reverse=not reverse)]
cumsum_p.batch = lambda args, dims, *, axis, reverse: (
    cumsum_p.bind(args[0], axis=axis + (axis >= dims[0]), reverse=reverse), dims[0])


def cumsum(x, axis: int, reverse: bool = False):
    return cumsum_p.bind(x, axis=int(axis), reverse=bool(reverse))
