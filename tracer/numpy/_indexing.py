"""numpy indexing on arrays and tracers: ``x[idx]`` and ``x.at[idx].set/add/...``.

Basic indices (static ints, slices with any step, None, Ellipsis) become slice /
rev / reshape. Integer arrays (and traced integer scalars) are advanced indices:
they broadcast together and become one ``gather``; as in numpy, the indexed
dimensions go where the first advanced index stood when the advanced indices are
adjacent, else to the front. Negative indices wrap; concrete out-of-range indices
raise IndexError, traced ones are clamped (gather) or dropped (scatter). Boolean
masks are accepted only when concrete (their result shape must be static).

``x.at[idx]`` updates: integer indices (scalars or arrays, traced or not) on the
leading axes followed by full slices become one scatter over those axes; any other
index selects the flat positions of an iota through ``getitem`` and scatters there.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .. import lax
from ..core import Tracer, get_aval, where
from ..errors import ConcretizationError
from ._core import asarray_operand, cast, broadcast_shapes


def _is_int_scalar(i) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def _expand_index(idx, shape):
    """Turn an index into a list with no Ellipsis and concrete bool masks replaced
    by their integer coordinates (``shape``: the indexed array's shape)."""
    ndim = len(shape)
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if isinstance(i, list):
            i = np.asarray(i)
            if i.dtype == np.float64 and i.size == 0:
                i = i.astype(np.int64)
        if isinstance(i, (np.ndarray, np.bool_, bool)) and np.asarray(i).dtype == np.bool_:
            i = np.asarray(i)
            if i.ndim == 0:
                raise IndexError("boolean scalar indices are not supported")
        elif isinstance(i, Tracer) and i.dtype == dtypes.bool_:
            raise ConcretizationError(
                f"boolean mask indexing with a traced mask has a data-dependent shape{where()}; use "
                f"tnp.where(mask, x, other) instead")
        elif isinstance(i, Tracer) and not dtypes.is_int(i.dtype):
            raise IndexError(f"indices must be integers, got a traced {i.aval}")
        elif isinstance(i, np.ndarray) and i.dtype.kind not in "iu":
            raise IndexError(f"indices must be integers or bools, got an array of {i.dtype}")
        elif isinstance(i, float):
            raise IndexError("indices must be integers, got a float")
        out.append(i)
    n_ell = sum(1 for i in out if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")

    def width(i):  # how many array dimensions an entry consumes
        if i is None or i is Ellipsis or i is _SPLIT:
            return 0
        return i.ndim if isinstance(i, np.ndarray) and i.dtype == np.bool_ else 1
    used = sum(width(i) for i in out)
    if used > ndim:
        raise IndexError(f"too many indices: array is {ndim}-dimensional, but {used} were indexed")
    if n_ell:
        k = next(j for j, i in enumerate(out) if i is Ellipsis)  # (== would compare arrays)
        # numpy quirk: an Ellipsis between advanced indices separates them even when it
        # stands for no dimension (the broadcast dimensions then go first)
        adv = [j for j, i in enumerate(out) if _is_advanced(i) or _is_int_scalar(i)]
        split = ndim == used and any(j < k for j in adv) and any(j > k for j in adv)
        out[k:k + 1] = [_SPLIT] if split else [slice(None)] * (ndim - used)
    else:
        out += [slice(None)] * (ndim - used)
    expanded, d = [], 0
    for i in out:
        w = width(i)
        if w and isinstance(i, np.ndarray) and i.dtype == np.bool_:
            empty = 0 in shape  # numpy skips the check on empty arrays
            if not empty and any(m != n and not (m == 0 and n == 1) for m, n in zip(i.shape, shape[d:d + w])):
                raise IndexError(f"boolean index of shape {i.shape} does not match the indexed "
                                 f"dimensions {tuple(shape[d:d + w])}")
            expanded.extend(np.nonzero(i))
        else:
            expanded.append(i)
        d += w
    return expanded


_SPLIT = object()  # marks an empty Ellipsis between advanced indices


def _is_advanced(i) -> bool:
    return isinstance(i, (np.ndarray, Tracer))


def _wrap_negative(idx, dim):
    """Negative indices count from the end (concrete: at once; traced: select).
    Index arrays are dynamic indices, as in JAX: out-of-range entries are not an
    error here; gather clamps them and the scatters drop them."""
    if isinstance(idx, Tracer):
        return lax.select(lax.lt(idx, lax.full_like(idx, 0)), lax.add(idx, lax.full_like(idx, dim)), idx)
    idx = np.asarray(idx)
    return np.where(idx < 0, idx + dim, idx).astype(idx.dtype)


def _prepare(x, idx):
    """Apply None and basic indices. Returns (array, list of (axis, advanced index),
    list of output axes that are adjacent-advanced-eligible)."""
    x = asarray_operand(x)
    shape = get_aval(x).shape
    entries = _expand_index(idx, shape)
    split = any(i is _SPLIT for i in entries)
    entries = [i for i in entries if i is not _SPLIT]
    has_adv = any(_is_advanced(i) for i in entries)
    # None -> a new size-1 axis indexed by a full slice
    new_shape, dim_entries, d = [], [], 0
    for i in entries:
        if i is None:
            new_shape.append(1)
            dim_entries.append(slice(None))
        else:
            new_shape.append(shape[d])
            dim_entries.append(i)
            d += 1
    if tuple(new_shape) != shape:
        x = lax.reshape(x, new_shape)
    shape = tuple(new_shape)
    starts, limits, strides, flips, squeeze, advanced = [], [], [], [], [], []
    for ax, (i, n) in enumerate(zip(dim_entries, shape)):
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step < 0:
                flips.append(ax)
                # reversed view: element k of x[start:stop:step] is rev(x)[n-1-start + k*(-step)]
                count = len(range(start, stop, step))
                rstart = n - 1 - start
                starts.append(rstart if count else 0)
                limits.append(rstart + (count - 1) * (-step) + 1 if count else 0)
                strides.append(-step)
            else:
                count = len(range(start, stop, step))
                starts.append(start if count else 0)
                limits.append(start + (count - 1) * step + 1 if count else 0)
                strides.append(step)
        elif _is_int_scalar(i) and not has_adv:
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {ax} with size {n}")
            i = int(i) % n
            starts.append(i), limits.append(i + 1), strides.append(1)
            squeeze.append(ax)
        else:
            if _is_int_scalar(i):
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for axis {ax} with size {n}")
                i = np.asarray(int(i) % n, dtypes.int32)
            starts.append(0), limits.append(n), strides.append(1)
            advanced.append((ax, _wrap_negative(i, n)))
    if flips:
        x = lax.rev(x, flips)
    x = lax.slice(x, starts, limits, strides)
    return x, squeeze, advanced, split


def getitem(x, idx):
    """``x[idx]`` with numpy semantics (see the module docstring)."""
    x, squeeze, advanced, split = _prepare(x, idx)
    shape = get_aval(x).shape
    if squeeze:
        x = lax.reshape(x, [d for a, d in enumerate(shape) if a not in squeeze])
        return x
    if not advanced:
        return x
    axes = [a for a, _ in advanced]
    idxs = [i for _, i in advanced]
    bshape = broadcast_shapes("indexing", *[get_aval(i).shape for i in idxs])
    it = dtypes.int64 if any(get_aval(i).dtype == dtypes.int64 for i in idxs) else dtypes.int32
    cols = [lax.broadcast_to_shape(cast(i, it), bshape) for i in idxs]
    from . import stack
    index = stack(cols, axis=-1) if cols else None
    out = lax.gather(x, index, tuple(axes), mode="clip")
    adjacent = axes == list(range(axes[0], axes[0] + len(axes))) and not split
    if adjacent and axes[0] != 0:
        # move the broadcast index dims to where the first advanced index was
        nb = len(bshape)
        rest = list(range(nb, get_aval(out).ndim))
        perm = rest[:axes[0]] + list(range(nb)) + rest[axes[0]:]
        out = lax.transpose(out, perm)
    return out


def take(a, indices, axis=None):
    a = asarray_operand(a)
    if axis is None:
        from . import ravel
        a, axis = ravel(a), 0
    nd = get_aval(a).ndim
    idx = [slice(None)] * nd
    idx[axis % nd] = indices if isinstance(indices, Tracer) else np.asarray(indices)
    return getitem(a, tuple(idx))


class _IndexUpdate:
    def __init__(self, x, idx):
        self.x, self.idx = x, idx

    def get(self):
        return getitem(self.x, self.idx)

    def set(self, values):
        return _update(self.x, self.idx, values, "set")

    def add(self, values):
        return _update(self.x, self.idx, values, "add")

    def subtract(self, values):
        from . import negative
        return _update(self.x, self.idx, negative(values), "add")

    def mul(self, values):
        return _update(self.x, self.idx, values, "mul")

    multiply = mul

    def divide(self, values):
        from . import reciprocal
        return _update(self.x, self.idx, reciprocal(values), "mul")

    def min(self, values):
        return _update(self.x, self.idx, values, "min")

    def max(self, values):
        return _update(self.x, self.idx, values, "max")


class AtIndexer:
    """``x.at[idx]``: functional updates, as in JAX."""

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _IndexUpdate(self.x, idx)


def _leading_int_indices(shape, idx):
    """The index entries when ``idx`` is integer scalars / integer arrays on leading
    axes followed only by full slices (the common case, a direct scatter); else None."""
    try:
        entries = _expand_index(idx, shape)
    except IndexError:
        return None
    k = 0
    while k < len(entries) and (_is_int_scalar(entries[k]) or
                                (_is_advanced(entries[k]) and dtypes.is_int(get_aval(entries[k]).dtype))):
        k += 1
    if k == 0 or any(not (isinstance(e, slice) and e == slice(None)) for e in entries[k:]):
        return None
    return entries[:k]


def _update(x, idx, values, kind):
    x = asarray_operand(x)
    aval = get_aval(x)
    lead = _leading_int_indices(aval.shape, idx)
    if lead is not None:
        return _scatter_leading(x, lead, values, kind)
    # General case. Flat positions of the selected elements: index an iota of the array's size.
    pos = getitem(lax.iota(dtypes.int32 if aval.size < 2**31 else dtypes.int64, (aval.size,), 0)
                  if aval.size else np.zeros((0,), np.int32), ())
    pos = getitem(lax.reshape(pos, aval.shape), idx)
    sel_shape = get_aval(pos).shape
    vals = asarray_operand(values)
    vals = cast(vals, aval.dtype)
    vals = lax.broadcast_to_shape(vals, sel_shape)
    flat = lax.reshape(x, (aval.size,))
    index = lax.reshape(pos, (int(np.prod(sel_shape, dtype=np.int64)), 1))
    upd = lax.reshape(vals, (int(np.prod(sel_shape, dtype=np.int64)),))
    return lax.reshape(_scatter(flat, index, upd, (0,), kind), aval.shape)


def _scatter(operand, index, updates, axes, kind):
    if kind == "add":
        return lax.scatter_add(operand, index, updates, axes, mode="drop")
    return lax.scatter(operand, index, updates, axes, mode="drop", combine=kind)


def _scatter_leading(x, lead, values, kind):
    """Integer indices on the first k axes: one scatter with axes (0, ..., k-1)."""
    shape = get_aval(x).shape
    k = len(lead)
    wrapped = []
    for ax, i in enumerate(lead):
        if _is_int_scalar(i):  # an out-of-range update is dropped, as in JAX
            i = np.asarray(int(i), dtypes.int64 if not -2**31 <= int(i) < 2**31 else dtypes.int32)
        wrapped.append(_wrap_negative(i, shape[ax]))
    bshape = broadcast_shapes("indexing", *[get_aval(i).shape for i in wrapped])
    it = dtypes.int64 if any(get_aval(i).dtype == dtypes.int64 for i in wrapped) else dtypes.int32
    cols = [lax.broadcast_to_shape(cast(i, it), bshape) for i in wrapped]
    from . import stack
    index = stack(cols, axis=-1)
    rest = shape[k:]
    vals = lax.broadcast_to_shape(cast(asarray_operand(values), get_aval(x).dtype), bshape + rest)
    if bshape == ():  # scatter wants at least one batch dimension
        index = lax.reshape(index, (1, k))
        vals = lax.reshape(vals, (1,) + rest)
    return _scatter(x, index, vals, tuple(range(k)), kind)
