"""Structural primitives: broadcast_in_dim, reshape, transpose, rev, slice, pad,
concatenate, iota. All are linear: the JVP applies the primitive to the tangent,
and the VJP is the transpose (e.g. broadcast <-> sum, slice <-> pad)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ad_util import Zero, is_zero
from ..batching import batch_size, bdim_to_front, shift_axes
from ..core import Primitive, get_aval
from ..ir import ShapedArray
from .common import normalize_axes, shape_error


def linear_jvp(prim):
    """JVP of a primitive linear in every operand: apply it to the tangents."""
    def jvp(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        if all(is_zero(t) for t in tangents):
            return out, Zero(get_aval(out).strip_weak())
        from ..ad_util import instantiate
        ts = [instantiate(t, get_aval(p).strip_weak()) for t, p in zip(tangents, primals)]
        return out, prim.bind(*ts, **params)
    return jvp


# ---------------------------------------------------------------- broadcast_in_dim

broadcast_in_dim_p = Primitive("broadcast_in_dim")
broadcast_in_dim_p.stage_when_tracing = True


def _bcast_aval(x, *, shape, broadcast_dimensions):
    bd = broadcast_dimensions
    if len(bd) != x.ndim:
        raise shape_error("broadcast_in_dim", f"broadcast_dimensions {bd} must name one output "
                          f"dimension per operand dimension", x)
    if any(b < 0 or b >= len(shape) for b in bd) or list(bd) != sorted(set(bd)):
        raise shape_error("broadcast_in_dim", f"broadcast_dimensions {bd} must be increasing "
                          f"and within rank {len(shape)}", x)
    for i, b in enumerate(bd):
        if x.shape[i] not in (1, shape[b]):
            raise shape_error("broadcast_in_dim", f"cannot broadcast {x} to shape {tuple(shape)}", x)
    return ShapedArray(shape, x.dtype, x.weak_type)


def _bcast_impl(x, *, shape, broadcast_dimensions):
    expanded = np.reshape(x, [x.shape[broadcast_dimensions.index(d)] if d in broadcast_dimensions
                              else 1 for d in range(len(shape))])
    return np.broadcast_to(expanded, shape).copy()


def _bcast_vjp(ct, primals, out, *, shape, broadcast_dimensions):
    if is_zero(ct):
        return [None]
    x_shape = get_aval(primals[0]).shape
    bd = broadcast_dimensions
    summed = tuple(d for d in range(len(shape)) if d not in bd) + \
        tuple(b for i, b in enumerate(bd) if x_shape[i] == 1 and shape[b] != 1)
    from .reductions import reduce_sum
    r = reduce_sum(ct, tuple(sorted(summed))) if summed else ct
    return [reshape(r, x_shape)]


broadcast_in_dim_p.abstract_eval = _bcast_aval
broadcast_in_dim_p.impl = _bcast_impl
broadcast_in_dim_p.jvp = linear_jvp(broadcast_in_dim_p)
broadcast_in_dim_p.vjp = _bcast_vjp


def _bcast_batch(args, dims, *, shape, broadcast_dimensions):
    x = bdim_to_front(args[0], dims[0])
    size = get_aval(x).shape[0]
    return broadcast_in_dim_p.bind(x, shape=(size,) + shape, broadcast_dimensions=(0,) + tuple(
        b + 1 for b in broadcast_dimensions)), 0


broadcast_in_dim_p.batch = _bcast_batch


def broadcast_in_dim(x, shape, broadcast_dimensions):
    shape, bd = tuple(int(d) for d in shape), tuple(int(d) for d in broadcast_dimensions)
    if get_aval(x).shape == shape and bd == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=bd)


def broadcast_to_shape(x, shape):
    """numpy-style broadcast of ``x`` to ``shape`` (trailing dimensions aligned)."""
    xs = get_aval(x).shape
    shape = tuple(shape)
    if xs == shape:
        return x
    if len(xs) > len(shape):
        raise shape_error("broadcast_to", f"cannot broadcast shape {xs} to {shape}")
    lead = len(shape) - len(xs)
    for i, d in enumerate(xs):
        if d not in (1, shape[lead + i]):
            raise shape_error("broadcast_to", f"cannot broadcast shape {xs} to {shape}")
    return broadcast_in_dim(x, shape, tuple(range(lead, len(shape))))


def full(shape, fill_value, dtype):
    """An array of ``shape`` filled with a scalar (staged as a broadcast inside traces)."""
    from .elementwise import convert_element_type
    dtype = dtypes.canonical(dtype)
    if isinstance(fill_value, (int, float, bool)):
        fill_value = np.asarray(fill_value, dtype)
    else:
        fill_value = convert_element_type(fill_value, dtype)
    return broadcast_in_dim(fill_value, tuple(shape), ())


def full_like(x, fill_value, dtype=None):
    a = get_aval(x)
    return full(a.shape, fill_value, dtype or a.dtype)


# ---------------------------------------------------------------- reshape

reshape_p = Primitive("reshape")


def _reshape_aval(x, *, new_sizes):
    if int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise shape_error("reshape", f"cannot reshape {x} (size {x.size}) to {tuple(new_sizes)}", x)
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


reshape_p.abstract_eval = _reshape_aval
reshape_p.impl = lambda x, *, new_sizes: np.reshape(x, new_sizes).copy()
reshape_p.jvp = linear_jvp(reshape_p)
reshape_p.vjp = lambda ct, primals, out, *, new_sizes: [
    None if is_zero(ct) else reshape(ct, get_aval(primals[0]).shape)]


def _reshape_batch(args, dims, *, new_sizes):
    x = bdim_to_front(args[0], dims[0])  # row-major order: the batch axis must lead
    return reshape_p.bind(x, new_sizes=(get_aval(x).shape[0],) + new_sizes), 0


reshape_p.batch = _reshape_batch


def reshape(x, new_sizes):
    new_sizes = tuple(int(d) for d in new_sizes)
    if get_aval(x).shape == new_sizes:
        return x
    return reshape_p.bind(x, new_sizes=new_sizes)


# ---------------------------------------------------------------- transpose

transpose_p = Primitive("transpose")


def _transpose_aval(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise shape_error("transpose", f"permutation {permutation} is not a permutation of "
                          f"{x.ndim} axes", x)
    return ShapedArray([x.shape[p] for p in permutation], x.dtype, x.weak_type)


transpose_p.abstract_eval = _transpose_aval
transpose_p.impl = lambda x, *, permutation: np.transpose(x, permutation).copy()
transpose_p.jvp = linear_jvp(transpose_p)
transpose_p.vjp = lambda ct, primals, out, *, permutation: [
    None if is_zero(ct) else transpose(ct, tuple(np.argsort(permutation)))]


def _transpose_batch(args, dims, *, permutation):
    d = dims[0]  # the batch axis stays where it is; the others permute around it
    perm = list(shift_axes(permutation, d))
    perm.insert(d, d)
    return transpose_p.bind(args[0], permutation=tuple(perm)), d


transpose_p.batch = _transpose_batch


def transpose(x, permutation):
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return transpose_p.bind(x, permutation=permutation)


def moveaxis(x, src: int, dst: int):
    nd = get_aval(x).ndim
    src, dst = src % nd, dst % nd
    if src == dst:
        return x
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return transpose(x, perm)


# ---------------------------------------------------------------- rev

rev_p = Primitive("rev")


def _rev_aval(x, *, dimensions):
    normalize_axes("rev", dimensions, x.ndim)
    return x


rev_p.abstract_eval = _rev_aval
rev_p.impl = lambda x, *, dimensions: np.flip(x, dimensions).copy() if dimensions else np.array(x)
rev_p.jvp = linear_jvp(rev_p)
rev_p.vjp = lambda ct, primals, out, *, dimensions: [None if is_zero(ct) else rev(ct, dimensions)]
rev_p.batch = lambda args, dims, *, dimensions: (
    rev_p.bind(args[0], dimensions=shift_axes(dimensions, dims[0])), dims[0])


def rev(x, dimensions):
    dimensions = tuple(sorted(int(d) for d in dimensions))
    return rev_p.bind(x, dimensions=dimensions) if dimensions else x


# ---------------------------------------------------------------- slice

slice_p = Primitive("slice")


def _slice_aval(x, *, start_indices, limit_indices, strides):
    if not (len(start_indices) == len(limit_indices) == len(strides) == x.ndim):
        raise shape_error("slice", "start, limit and strides need one entry per dimension", x)
    shape = []
    for d, (s, l, st) in enumerate(zip(start_indices, limit_indices, strides)):
        if not (0 <= s <= l <= x.shape[d]) or st < 1:
            raise shape_error("slice", f"slice {s}:{l}:{st} is out of bounds for dimension {d} "
                              f"of size {x.shape[d]}", x)
        shape.append(max(0, -(-(l - s) // st)))
    return ShapedArray(shape, x.dtype, x.weak_type)


def _slice_impl(x, *, start_indices, limit_indices, strides):
    import builtins  # this module's `slice` shadows the builtin
    return np.asarray(x)[tuple(builtins.slice(s, l, st) for s, l, st in
                               zip(start_indices, limit_indices, strides))].copy()


def _slice_vjp(ct, primals, out, *, start_indices, limit_indices, strides):
    if is_zero(ct):
        return [None]
    x_shape = get_aval(primals[0]).shape
    out_shape = get_aval(out).shape
    config = []
    for d in range(len(x_shape)):
        lo = start_indices[d]
        used = lo + (out_shape[d] - 1) * strides[d] + 1 if out_shape[d] else lo
        config.append((lo, x_shape[d] - used, strides[d] - 1 if out_shape[d] > 1 else 0))
    zero = np.zeros((), get_aval(ct).dtype)
    return [pad(ct, zero, tuple(config))]


slice_p.abstract_eval = _slice_aval
slice_p.impl = _slice_impl
slice_p.jvp = linear_jvp(slice_p)
slice_p.vjp = _slice_vjp


def _slice_batch(args, dims, *, start_indices, limit_indices, strides):
    x, d = args[0], dims[0]

    def ins(t, v):
        return tuple(t[:d]) + (v,) + tuple(t[d:])
    return slice_p.bind(x, start_indices=ins(start_indices, 0),
                        limit_indices=ins(limit_indices, get_aval(x).shape[d]),
                        strides=ins(strides, 1)), d


slice_p.batch = _slice_batch


def slice(x, start_indices, limit_indices, strides=None):
    nd = get_aval(x).ndim
    strides = tuple(strides) if strides is not None else (1,) * nd
    start_indices, limit_indices = tuple(map(int, start_indices)), tuple(map(int, limit_indices))
    if start_indices == (0,) * nd and limit_indices == get_aval(x).shape and strides == (1,) * nd:
        return x
    return slice_p.bind(x, start_indices=start_indices, limit_indices=limit_indices,
                        strides=tuple(map(int, strides)))


# ---------------------------------------------------------------- pad

pad_p = Primitive("pad")


def _pad_aval(x, padval, *, padding_config):
    if padval.shape != () or padval.dtype != x.dtype:
        raise shape_error("pad", "padding value must be a 0-d array of the operand's dtype", x, padval)
    if len(padding_config) != x.ndim:
        raise shape_error("pad", "padding_config needs one (low, high, interior) per dimension", x)
    shape = []
    for d, (lo, hi, interior) in zip(x.shape, padding_config):
        if lo < 0 or hi < 0 or interior < 0:
            raise shape_error("pad", f"negative padding {padding_config}", x)
        shape.append(lo + hi + d + max(0, d - 1) * interior)
    return ShapedArray(shape, x.dtype, x.weak_type and padval.weak_type)


def _pad_impl(x, padval, *, padding_config):
    x = np.asarray(x)
    out = np.full(_pad_aval(ShapedArray(x.shape, x.dtype), ShapedArray((), x.dtype),
                            padding_config=padding_config).shape, padval, x.dtype)
    idx = tuple(np.s_[lo: lo + (d - 1) * (it + 1) + 1 if d else lo: it + 1]
                for d, (lo, hi, it) in zip(x.shape, padding_config))
    out[idx] = x
    return out


def _pad_vjp(ct, primals, out, *, padding_config):
    if is_zero(ct):
        return [None, None]
    x = primals[0]
    x_shape = get_aval(x).shape
    start = [lo for lo, _, _ in padding_config]
    limit = [lo + (d - 1) * (it + 1) + 1 if d else lo for d, (lo, _, it) in zip(x_shape, padding_config)]
    strides = [it + 1 for _, _, it in padding_config]
    ct_x = slice(ct, start, limit, strides)
    from .elementwise import sub
    from .reductions import reduce_sum
    everything = tuple(range(len(x_shape)))
    ct_pad = sub(reduce_sum(ct, everything), reduce_sum(ct_x, everything))
    return [ct_x, ct_pad]


pad_p.abstract_eval = _pad_aval
pad_p.impl = _pad_impl
pad_p.jvp = linear_jvp(pad_p)
pad_p.vjp = _pad_vjp


def _pad_batch(args, dims, *, padding_config):
    (x, padval), (dx, dp) = args, dims
    if dp is None:
        cfg = tuple(padding_config[:dx]) + ((0, 0, 0),) + tuple(padding_config[dx:])
        return pad_p.bind(x, padval, padding_config=cfg), dx
    # one padding value per member: pad with zero, then select by a mask of the padding
    from .elementwise import select
    size = get_aval(padval).shape[dp]
    x = bdim_to_front(x, dx, size)
    aval = get_aval(x)
    padded = pad_p.bind(x, np.zeros((), aval.dtype), padding_config=((0, 0, 0),) + padding_config)
    inside = pad_p.bind(full(aval.shape[1:], True, dtypes.bool_), np.asarray(False),
                        padding_config=padding_config)
    shape = get_aval(padded).shape
    inside = broadcast_in_dim(inside, shape, tuple(range(1, len(shape))))
    return select(inside, padded, broadcast_in_dim(padval, shape, (0,))), 0


pad_p.batch = _pad_batch


def pad(x, padding_value, padding_config):
    config = tuple((int(a), int(b), int(c)) for a, b, c in padding_config)
    return pad_p.bind(x, padding_value, padding_config=config)


# ---------------------------------------------------------------- concatenate

concatenate_p = Primitive("concatenate")


def _concat_aval(*xs, dimension):
    if not xs:
        raise shape_error("concatenate", "needs at least one operand")
    nd = xs[0].ndim
    if not 0 <= dimension < nd:
        raise shape_error("concatenate", f"dimension {dimension} out of range for rank {nd}", *xs)
    for x in xs:
        if x.ndim != nd or any(a != b for i, (a, b) in enumerate(zip(x.shape, xs[0].shape))
                               if i != dimension):
            raise shape_error("concatenate", f"operands must match except in dimension {dimension}", *xs)
        if x.dtype != xs[0].dtype:
            raise shape_error("concatenate", "operands must have the same dtype", *xs)
    shape = list(xs[0].shape)
    shape[dimension] = sum(x.shape[dimension] for x in xs)
    return ShapedArray(shape, xs[0].dtype, all(x.weak_type for x in xs))


def _concat_vjp(ct, primals, out, *, dimension):
    if is_zero(ct):
        return [None] * len(primals)
    outs, start = [], 0
    shape = get_aval(ct).shape
    for p in primals:
        n = get_aval(p).shape[dimension]
        lo = [0] * len(shape)
        hi = list(shape)
        lo[dimension], hi[dimension] = start, start + n
        outs.append(slice(ct, lo, hi))
        start += n
    return outs


concatenate_p.abstract_eval = _concat_aval
concatenate_p.impl = lambda *xs, dimension: np.concatenate(xs, axis=dimension)
concatenate_p.jvp = linear_jvp(concatenate_p)
concatenate_p.vjp = _concat_vjp


def _concat_batch(args, dims, *, dimension):
    size = batch_size(args, dims)
    xs = [bdim_to_front(x, d, size) for x, d in zip(args, dims)]
    return concatenate_p.bind(*xs, dimension=dimension + 1), 0


concatenate_p.batch = _concat_batch


def concatenate(xs, dimension: int):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return concatenate_p.bind(*xs, dimension=int(dimension))


# ---------------------------------------------------------------- iota

iota_p = Primitive("iota")
iota_p.stage_when_tracing = True


def _iota_aval(*, dtype, shape, dimension):
    if not 0 <= dimension < len(shape):
        raise shape_error("iota", f"dimension {dimension} out of range for shape {shape}")
    return ShapedArray(shape, dtype)


def _iota_impl(*, dtype, shape, dimension):
    r = np.arange(shape[dimension], dtype=dtype)
    return np.broadcast_to(r.reshape([-1 if i == dimension else 1 for i in range(len(shape))]),
                           shape).copy()


iota_p.abstract_eval = _iota_aval
iota_p.impl = _iota_impl
iota_p.jvp = lambda primals, tangents, **params: (iota_p.bind(**params),
                                                  Zero(_iota_aval(**params)))
iota_p.vjp = lambda ct, primals, out, **params: []
iota_p.batch = lambda args, dims, **params: (iota_p.bind(**params), None)  # no operands


def iota(dtype, shape, dimension: int = 0):
    return iota_p.bind(dtype=dtypes.canonical(dtype), shape=tuple(int(d) for d in shape),
                       dimension=int(dimension))
