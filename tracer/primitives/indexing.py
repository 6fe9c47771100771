"""Gather and scatter with integer index arrays.

``indices`` has shape ``batch + (k,)``: each row indexes the operand's ``axes``
(k of them). ``gather`` returns ``batch + (operand dims not in axes)``; the
scatters take ``updates`` of that shape.

Out-of-range indices (documented rule, memory is never touched out of bounds):
* ``mode="clip"``: indices are clamped into range (gather's default, as JAX);
* ``mode="fill"`` (gather) / ``mode="drop"`` (scatters): out-of-range rows read
  zero / are skipped.
Negative indices are not wrapped here; ``tracer.numpy`` wraps them before indexing.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ad_util import Zero, is_zero, instantiate
from ..batching import batch_size, bdim_to_front, move_batch_axis, shift_axes
from ..core import Primitive, get_aval
from ..ir import ShapedArray
from .elementwise import select_p
from .common import dtype_error, normalize_axes, shape_error


def _index_shape(op, operand, indices, axes):
    if not dtypes.is_int(indices.dtype):
        raise dtype_error(op, f"indices must be integers, got {indices.dtype.name}", indices)
    if indices.ndim < 1 or indices.shape[-1] != len(axes):
        raise shape_error(op, f"indices need a last dimension of size {len(axes)} (one per "
                          f"indexed axis {axes})", operand, indices)
    normalize_axes(op, axes, operand.ndim)
    return indices.shape[:-1] + tuple(d for i, d in enumerate(operand.shape) if i not in axes)


def _rows(operand, indices, axes, mode):
    """Clamped index tuple into the operand (moved so indexed axes lead) and a validity mask."""
    idx = np.asarray(indices).astype(np.int64)
    dims = np.array([operand.shape[a] for a in axes], dtype=np.int64)
    valid = np.all((idx >= 0) & (idx < dims), axis=-1)
    clamped = np.clip(idx, 0, np.maximum(dims - 1, 0))
    return tuple(clamped[..., i] for i in range(len(axes))), valid


def _front(operand, axes):
    return np.moveaxis(np.asarray(operand), axes, tuple(range(len(axes))))


def _with_member_index(indices, d):
    """Batched indices (batch axis ``d``) moved to the front, with each batch member's
    own number prepended as an index column: it then indexes a leading batch axis."""
    from .shape import concatenate, iota, moveaxis
    indices = moveaxis(indices, d, 0)
    a = get_aval(indices)
    member = iota(a.dtype, a.shape[:-1] + (1,), 0)
    return concatenate([member, indices], a.ndim - 1)


def _kept_position(operand_ndim, axes, d):
    """Where operand axis ``d`` (not indexed) lands among the operand's kept axes."""
    return [i for i in range(operand_ndim) if i not in axes].index(d)


# ---------------------------------------------------------------- gather

gather_p = Primitive("gather")


def _gather_aval(operand, indices, *, axes, mode):
    if mode not in ("clip", "fill"):
        raise ValueError(f"gather mode must be 'clip' or 'fill', got {mode!r}")
    shape = _index_shape("gather", operand, indices, axes)
    if any(operand.shape[a] == 0 for a in axes) and int(np.prod(indices.shape[:-1])) > 0:
        raise shape_error("gather", "cannot index into a zero-size axis", operand, indices)
    return ShapedArray(shape, operand.dtype, operand.weak_type)


def _gather_impl(operand, indices, *, axes, mode):
    front = _front(operand, axes)
    rows, valid = _rows(operand, indices, axes, mode)
    if front.size == 0 or any(operand.shape[a] == 0 for a in axes):
        return np.zeros(_gather_aval(ShapedArray(operand.shape, operand.dtype),
                                     ShapedArray(np.shape(indices), np.asarray(indices).dtype),
                                     axes=axes, mode=mode).shape, operand.dtype)
    out = front[rows]
    if mode == "fill":
        out = np.where(valid.reshape(valid.shape + (1,) * (out.ndim - valid.ndim)), out, 0)
    return out.astype(operand.dtype)


def _gather_jvp(primals, tangents, *, axes, mode):
    operand, indices = primals
    out = gather_p.bind(operand, indices, axes=axes, mode=mode)
    if is_zero(tangents[0]):
        return out, Zero(get_aval(out).strip_weak())
    return out, gather_p.bind(tangents[0], indices, axes=axes, mode=mode)


def _gather_vjp(ct, primals, out, *, axes, mode):
    if is_zero(ct):
        return [None, None]
    operand, indices = primals
    zeros = instantiate(None, get_aval(operand).strip_weak())
    back = "clip" if mode == "clip" else "drop"
    return [scatter_add_p.bind(zeros, indices, ct, axes=axes, mode=back), None]


gather_p.abstract_eval = _gather_aval
gather_p.impl = _gather_impl
gather_p.jvp = _gather_jvp
gather_p.vjp = _gather_vjp


def _gather_batch(args, dims, *, axes, mode):
    (operand, indices), (do, di) = args, dims
    if di is None:  # the batch is one more non-indexed operand axis
        axes = shift_axes(axes, do)
        out_dim = get_aval(indices).ndim - 1 + _kept_position(get_aval(operand).ndim, axes, do)
        return gather_p.bind(operand, indices, axes=axes, mode=mode), out_dim
    if do is None:  # the batch is one more index-batch axis (never the index column)
        if di == get_aval(indices).ndim - 1:
            indices, di = move_batch_axis(indices, di, 0, None), 0
        return gather_p.bind(operand, indices, axes=axes, mode=mode), di
    operand = bdim_to_front(operand, do)
    indices = _with_member_index(indices, di)
    return gather_p.bind(operand, indices, axes=(0,) + shift_axes(axes, 0), mode=mode), 0


gather_p.batch = _gather_batch


def gather(operand, indices, axes, mode: str = "clip"):
    return gather_p.bind(operand, indices, axes=tuple(int(a) for a in axes), mode=mode)


# ---------------------------------------------------------------- scatters

def _scatter_aval(op):
    def rule(operand, indices, updates, *, axes, mode, **_):
        if mode not in ("clip", "drop"):
            raise ValueError(f"{op} mode must be 'clip' or 'drop', got {mode!r}")
        shape = _index_shape(op, operand, indices, axes)
        if updates.shape != shape:
            raise shape_error(op, f"updates must have shape {shape}", operand, indices, updates)
        if updates.dtype != operand.dtype:
            raise dtype_error(op, "updates must have the operand's dtype", operand, updates)
        return ShapedArray(operand.shape, operand.dtype, operand.weak_type)
    return rule


def _scatter_impl(combine):
    def impl(operand, indices, updates, *, axes, mode, **params):
        kind = params.get("combine", combine)
        out = np.array(operand, copy=True)
        if out.size == 0 or np.size(updates) == 0:
            return out
        front = _front(out, axes)  # a view: writes land in `out`
        rows, valid = _rows(out, indices, axes, mode)
        upd = np.asarray(updates, out.dtype)
        if mode == "drop":
            rows = tuple(r[valid] for r in rows)
            upd = upd[valid]
        ufunc = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}.get(kind)
        if ufunc is None:  # set: the last write wins, as in a sequential loop
            for i in np.ndindex(*rows[0].shape):
                front[tuple(r[i] for r in rows)] = upd[i]
        else:
            ufunc.at(front, rows, upd)
        return out
    return impl


scatter_add_p = Primitive("scatter_add")
scatter_add_p.abstract_eval = _scatter_aval("scatter_add")
scatter_add_p.impl = _scatter_impl("add")


def _scatter_add_jvp(primals, tangents, *, axes, mode):
    operand, indices, updates = primals
    out = scatter_add_p.bind(operand, indices, updates, axes=axes, mode=mode)
    t_op, _, t_up = tangents
    if is_zero(t_op) and is_zero(t_up):
        return out, Zero(get_aval(out).strip_weak())
    t_op = instantiate(t_op, get_aval(operand).strip_weak())
    t_up = instantiate(t_up, get_aval(updates).strip_weak())
    return out, scatter_add_p.bind(t_op, indices, t_up, axes=axes, mode=mode)


def _scatter_add_vjp(ct, primals, out, *, axes, mode):
    if is_zero(ct):
        return [None, None, None]
    back = "clip" if mode == "clip" else "fill"
    return [ct, None, gather_p.bind(ct, primals[1], axes=axes, mode=back)]


scatter_add_p.jvp = _scatter_add_jvp
scatter_add_p.vjp = _scatter_add_vjp


def _scatter_batch(prim):
    """Indices unbatched: the batch is one more non-indexed operand axis (the updates
    get it at the matching place). Indices batched: every member writes its own
    slice, so the batch becomes a leading indexed axis (see ``_with_member_index``)."""
    def rule(args, dims, *, axes, mode, **params):
        (operand, indices, updates), (do, di, du) = args, dims
        size = batch_size(args, dims)
        if di is None:
            if do is None:
                operand, do = bdim_to_front(operand, None, size), 0
            axes = shift_axes(axes, do)
            pos = get_aval(indices).ndim - 1 + _kept_position(get_aval(operand).ndim, axes, do)
            updates = move_batch_axis(updates, du, pos, size)
            return prim.bind(operand, indices, updates, axes=axes, mode=mode, **params), do
        operand = bdim_to_front(operand, do, size)
        indices = _with_member_index(indices, di)
        updates = bdim_to_front(updates, du, size)
        return prim.bind(operand, indices, updates, axes=(0,) + shift_axes(axes, 0), mode=mode,
                         **params), 0
    return rule


scatter_add_p.batch = _scatter_batch(scatter_add_p)


def scatter_add(operand, indices, updates, axes, mode: str = "drop"):
    return scatter_add_p.bind(operand, indices, updates, axes=tuple(int(a) for a in axes), mode=mode)


scatter_p = Primitive("scatter")
scatter_p.abstract_eval = _scatter_aval("scatter")
scatter_p.impl = _scatter_impl("set")


def _scatter_jvp(primals, tangents, *, axes, mode, combine):
    operand, indices, updates = primals
    out = scatter_p.bind(operand, indices, updates, axes=axes, mode=mode, combine=combine)
    t_op, _, t_up = tangents
    if is_zero(t_op) and is_zero(t_up):
        return out, Zero(get_aval(out).strip_weak())
    if combine != "set":
        raise NotImplementedError(f"differentiation of x.at[...].{combine}() is not supported; "
                                  f"use .set/.add, or write the update with tnp.where")
    t_op = instantiate(t_op, get_aval(operand).strip_weak())
    t_up = instantiate(t_up, get_aval(updates).strip_weak())
    return out, scatter_p.bind(t_op, indices, t_up, axes=axes, mode=mode, combine="set")


def _scatter_vjp(ct, primals, out, *, axes, mode, combine):
    if is_zero(ct):
        return [None, None, None]
    if combine != "set":
        raise NotImplementedError(f"differentiation of x.at[...].{combine}() is not supported; "
                                  f"use .set/.add, or write the update with tnp.where")
    operand, indices, updates = primals
    zeros = instantiate(None, get_aval(updates).strip_weak())
    back = "clip" if mode == "clip" else "fill"
    ct_updates = gather_p.bind(ct, indices, axes=axes, mode=back)
    return [scatter_p.bind(ct, indices, zeros, axes=axes, mode=mode, combine="set"), None,
            select_p.bind(_scatter_winners(operand, indices, updates, axes, mode), ct_updates,
                          instantiate(None, get_aval(ct_updates)))]


def _scatter_winners(operand, indices, updates, axes, mode):
    """Bool mask over ``updates``: True where that update is the one left in the
    output (with duplicate indices the last write wins, so only it has a derivative)."""
    from .elementwise import eq
    from .shape import broadcast_in_dim, full, iota, reshape
    batch = get_aval(indices).shape[:-1]
    u_shape = get_aval(updates).shape
    ids = reshape(iota(dtypes.int32, (int(np.prod(batch, dtype=np.int64)),)), batch)
    ids = broadcast_in_dim(ids, u_shape, tuple(range(len(batch))))
    slots = full(get_aval(operand).shape, -1, dtypes.int32)
    won = scatter_p.bind(slots, indices, ids, axes=axes, mode=mode, combine="set")
    return eq(gather_p.bind(won, indices, axes=axes, mode="clip" if mode == "clip" else "fill"), ids)


scatter_p.jvp, scatter_p.vjp = _scatter_jvp, _scatter_vjp
scatter_p.batch = _scatter_batch(scatter_p)


def scatter(operand, indices, updates, axes, mode: str = "drop", combine: str = "set"):
    """Write ``updates`` at ``indices`` (``combine``: set, mul, min or max). With
    duplicate indices and ``set``, the last update wins."""
    if combine not in ("set", "mul", "min", "max"):
        raise ValueError(f"scatter combine must be set, mul, min or max, got {combine!r}")
    return scatter_p.bind(operand, indices, updates, axes=tuple(int(a) for a in axes), mode=mode,
                          combine=combine)
