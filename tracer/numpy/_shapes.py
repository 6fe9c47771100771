"""Shape-manipulating functions built from slice / broadcast / reshape / gather:
split, array_split, tile, repeat, flip, roll, diag, diagonal, triu, tril, meshgrid,
pad, diff, append, take_along_axis, atleast_2d/3d, column_stack."""
from __future__ import annotations

import builtins
from typing import Sequence

import numpy as np

from .. import dtypes
from .. import lax
from ..core import Tracer, get_aval, where
from ..errors import ShapeError
from ._core import asarray_operand, cast


def _axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of bounds for an array of dimension {ndim}")
    return int(axis) % ndim


def _slice_axis(x, axis, start, stop, step=1):
    shape = get_aval(x).shape
    starts = [0] * len(shape)
    limits = list(shape)
    strides = [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start, stop, step
    return lax.slice(x, starts, limits, strides)


# ---------------------------------------------------------------- split

def array_split(ary, indices_or_sections, axis: int = 0) -> list:
    """Split into pieces along ``axis``; an int need not divide the axis evenly."""
    x = asarray_operand(ary)
    shape = get_aval(x).shape
    axis = _axis(axis, len(shape), "array_split")
    n = shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError("number of sections must be larger than 0")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
        bounds = np.cumsum([0] + sizes).tolist()
    else:
        cuts = [int(i) for i in indices_or_sections]
        bounds = [0] + cuts + [n]
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        lo, hi = builtins.min(builtins.max(lo if lo >= 0 else lo + n, 0), n), \
            builtins.min(builtins.max(hi if hi >= 0 else hi + n, 0), n)
        pieces.append(_slice_axis(x, axis, lo, builtins.max(lo, hi)))
    return pieces


def split(ary, indices_or_sections, axis: int = 0) -> list:
    """Split into equal pieces (an int must divide the axis) or at the given indices."""
    if isinstance(indices_or_sections, (int, np.integer)):
        shape = get_aval(asarray_operand(ary)).shape
        n = shape[_axis(axis, len(shape), "split")]
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(f"split: array split does not result in an equal division "
                             f"({n} into {indices_or_sections} sections)")
    return array_split(ary, indices_or_sections, axis)


def hsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, axis=1 if get_aval(asarray_operand(ary)).ndim > 1 else 0)


def vsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, axis=0)


# ---------------------------------------------------------------- tile / repeat

def tile(A, reps):
    """Repeat the whole array ``reps`` times along each axis."""
    x = asarray_operand(A)
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    shape = get_aval(x).shape
    nd = builtins.max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + shape
    reps = (1,) * (nd - len(reps)) + reps
    x = lax.reshape(x, shape)
    # (r0, s0, r1, s1, ...) then merge each (r, s) pair
    big = []
    for r, s in zip(reps, shape):
        big += [r, s]
    x = lax.broadcast_in_dim(x, big, tuple(range(1, 2 * nd, 2)))
    return lax.reshape(x, [r * s for r, s in zip(reps, shape)])


def repeat(a, repeats, axis: int | None = None):
    """Repeat each element; ``repeats`` is an int or a concrete array (one count per element)."""
    x = asarray_operand(a)
    if axis is None:
        from . import ravel
        x, axis = ravel(x), 0
    shape = get_aval(x).shape
    axis = _axis(axis, len(shape), "repeat")
    if isinstance(repeats, Tracer):
        raise TypeError(f"repeat: traced repeat counts give a data-dependent shape{where()}; "
                        f"pass them as concrete values")
    reps = np.asarray(repeats)
    if reps.ndim == 0:
        r = int(reps)
        if r < 0:
            raise ValueError("repeat: negative repeat count")
        wide = shape[:axis + 1] + (r,) + shape[axis + 1:]
        x = lax.broadcast_in_dim(x, wide, tuple(i for i in range(len(wide)) if i != axis + 1))
        return lax.reshape(x, shape[:axis] + (shape[axis] * r,) + shape[axis + 1:])
    if reps.shape != (shape[axis],):
        raise ShapeError(f"repeat: {reps.shape[0]} repeat counts for an axis of size {shape[axis]}")
    idx = np.repeat(np.arange(shape[axis], dtype=np.int32), reps)
    from . import take
    return take(x, idx, axis=axis)


# ---------------------------------------------------------------- flip / roll

def flip(m, axis=None):
    x = asarray_operand(m)
    nd = get_aval(x).ndim
    axes = range(nd) if axis is None else ((axis,) if isinstance(axis, (int, np.integer)) else axis)
    return lax.rev(x, [_axis(a, nd, "flip") for a in axes])


def fliplr(m):
    return flip(m, 1)


def flipud(m):
    return flip(m, 0)


def roll(a, shift, axis=None):
    """Roll elements along ``axis`` (the flattened array when None). A traced
    shift is supported (it becomes a gather)."""
    x = asarray_operand(a)
    if axis is None:
        from . import ravel, reshape
        return reshape(roll(ravel(x), shift, 0), get_aval(x).shape)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    shifts = (shift,) * len(axes) if not isinstance(shift, (tuple, list)) else tuple(shift)
    if len(shifts) != len(axes):
        raise ValueError("roll: shift and axis must have the same length")
    nd = get_aval(x).ndim
    for s, ax in zip(shifts, axes):
        ax = _axis(ax, nd, "roll")
        n = get_aval(x).shape[ax]
        if n == 0:
            continue
        if isinstance(s, Tracer):
            from . import remainder, take, subtract
            idx = remainder(subtract(lax.iota(dtypes.int32, (n,), 0), cast(s, dtypes.int32)), n)
            x = take(x, idx, axis=ax)
            continue
        s = int(s) % n
        if s:
            x = lax.concatenate([_slice_axis(x, ax, n - s, n), _slice_axis(x, ax, 0, n - s)], ax)
    return x


# ---------------------------------------------------------------- diagonals and triangles

def diagonal(a, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """The diagonal over ``axis1, axis2`` as a new last axis (numpy's layout)."""
    x = asarray_operand(a)
    shape = get_aval(x).shape
    if len(shape) < 2:
        raise ValueError("diagonal requires an array of at least two dimensions")
    a1, a2 = _axis(axis1, len(shape), "diagonal"), _axis(axis2, len(shape), "diagonal")
    if a1 == a2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    r0, c0 = builtins.max(0, -offset), builtins.max(0, offset)
    n = builtins.max(0, builtins.min(shape[a1] - r0, shape[a2] - c0))
    i = np.arange(n, dtype=np.int32)
    idx = np.stack([i + r0, i + c0], axis=-1)
    if n == 0:
        rest = tuple(d for k, d in enumerate(shape) if k not in (a1, a2))
        from . import zeros
        return zeros(rest + (0,), get_aval(x).dtype)
    out = lax.gather(x, idx, (a1, a2))  # (n,) + rest
    return lax.moveaxis(out, 0, get_aval(out).ndim - 1)


def diag(v, k: int = 0):
    """1-D input: a 2-D array with ``v`` on diagonal ``k``; 2-D input: that diagonal."""
    x = asarray_operand(v)
    shape = get_aval(x).shape
    if len(shape) == 2:
        return diagonal(x, k)
    if len(shape) != 1:
        raise ValueError("diag: input must be 1-D or 2-D")
    n = shape[0] + builtins.abs(k)
    from . import where as _where, zeros
    vals = lax.pad(x, np.zeros((), get_aval(x).dtype), [(0, builtins.abs(k), 0)]) if k else x
    vals = lax.broadcast_in_dim(vals, (n, n), (0,) if k >= 0 else (1,))
    return _where(_tri_mask(n, n, k, "eq"), vals, zeros((n, n), get_aval(x).dtype))


def diagflat(v, k: int = 0):
    from . import ravel
    return diag(ravel(v), k)


def _tri_mask(n, m, k, how):
    """Bool (n, m): column - row compared with k (iota-based, so it stages as two iotas)."""
    i = lax.iota(dtypes.int32, (n, m), 0)
    j = lax.iota(dtypes.int32, (n, m), 1)
    d = lax.sub(j, i)
    kk = np.asarray(k, dtypes.int32)
    return {"eq": lax.eq, "ge": lax.ge, "le": lax.le}[how](d, kk)


def tri(N, M=None, k: int = 0, dtype=None):
    M = N if M is None else M
    return cast(_tri_mask(N, M, k, "le"), dtypes.canonical(dtype or dtypes.default_float))


def _triangle(m, k, how):
    x = asarray_operand(m)
    shape = get_aval(x).shape
    if len(shape) < 2:
        raise ValueError("triu/tril need an array of at least two dimensions")
    from . import where as _where, zeros_like
    mask = _tri_mask(shape[-2], shape[-1], k, how)
    mask = lax.broadcast_to_shape(mask, shape)
    return _where(mask, x, zeros_like(x))


def triu(m, k: int = 0):
    """Zero the elements below diagonal ``k`` (on the last two axes)."""
    return _triangle(m, k, "ge")


def tril(m, k: int = 0):
    """Zero the elements above diagonal ``k`` (on the last two axes)."""
    return _triangle(m, k, "le")


# ---------------------------------------------------------------- grids, padding, misc

def meshgrid(*xi, indexing: str = "xy", sparse: bool = False, copy: bool = True) -> list:
    if indexing not in ("xy", "ij"):
        raise ValueError("meshgrid: indexing must be 'xy' or 'ij'")
    from . import ravel
    xs = [ravel(asarray_operand(x)) for x in xi]
    shape = [get_aval(x).shape[0] for x in xs]
    nd = len(xs)
    if indexing == "xy" and nd >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, x in enumerate(xs):
        dim = i
        if indexing == "xy" and nd >= 2 and i < 2:
            dim = 1 - i
        if sparse:
            out.append(lax.reshape(x, [get_aval(x).shape[0] if d == dim else 1 for d in range(nd)]))
        else:
            out.append(lax.broadcast_in_dim(x, shape, (dim,)))
    return out


def pad(array, pad_width, mode: str = "constant", constant_values=0):
    """Constant padding (numpy's ``pad`` with ``mode='constant'``)."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    x = asarray_operand(array)
    nd = get_aval(x).ndim
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (nd, 2)) if nd else np.zeros((0, 2), np.int64)
    if (pw < 0).any():
        raise ValueError("pad: negative pad widths are not allowed")
    cv = cast(asarray_operand(constant_values), get_aval(x).dtype)
    if get_aval(cv).shape != ():
        raise NotImplementedError("pad: constant_values must be a scalar")
    return lax.pad(x, cv, [(int(lo), int(hi), 0) for lo, hi in pw])


def diff(a, n: int = 1, axis: int = -1):
    x = asarray_operand(a)
    nd = get_aval(x).ndim
    axis = _axis(axis, nd, "diff")
    from . import subtract
    for _ in range(n):
        m = get_aval(x).shape[axis]
        if m == 0:
            break
        x = subtract(_slice_axis(x, axis, 1, m), _slice_axis(x, axis, 0, m - 1))
    return x


def append(arr, values, axis=None):
    from . import concatenate, ravel
    if axis is None:
        return concatenate([ravel(asarray_operand(arr)), ravel(asarray_operand(values))], 0)
    return concatenate([arr, values], axis)


def take_along_axis(arr, indices, axis: int):
    """``out[..., i, ...] = arr[..., indices[..., i, ...], ...]`` along ``axis``."""
    x = asarray_operand(arr)
    idx = asarray_operand(indices)
    shape = get_aval(x).shape
    ishape = get_aval(idx).shape
    if len(ishape) != len(shape):
        raise ShapeError(f"take_along_axis: indices {ishape} and array {shape} must have the same rank")
    axis = _axis(axis, len(shape), "take_along_axis")
    full_idx = []
    for d in range(len(shape)):
        if d == axis:
            full_idx.append(idx)
        else:
            grid = [1] * len(shape)
            grid[d] = shape[d]
            full_idx.append(np.arange(shape[d], dtype=np.int32).reshape(grid))
    from ._indexing import getitem
    return getitem(x, tuple(full_idx))


def atleast_2d(*arys):
    from . import reshape
    out = []
    for a in arys:
        a = asarray_operand(a)
        s = get_aval(a).shape
        out.append(reshape(a, (1,) * (2 - len(s)) + s) if len(s) < 2 else a)
    return out[0] if len(out) == 1 else out


def atleast_3d(*arys):
    from . import reshape
    out = []
    for a in arys:
        a = asarray_operand(a)
        s = get_aval(a).shape
        new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)
        out.append(reshape(a, new))
    return out[0] if len(out) == 1 else out


def column_stack(tup: Sequence):
    from . import concatenate, reshape
    cols = []
    for a in tup:
        a = asarray_operand(a)
        cols.append(reshape(a, (-1, 1)) if get_aval(a).ndim < 2 else a)
    return concatenate(cols, 1)


def dstack(tup: Sequence):
    from . import concatenate
    return concatenate([atleast_3d(a) for a in tup], 2)


# ---------------------------------------------------------------- index arithmetic

def indices(dimensions, dtype=None, sparse: bool = False):
    """A grid of indices: ``out[k][i0, i1, ...] = i_k`` (numpy's ``indices``)."""
    dims = tuple(int(d) for d in dimensions)
    dt = dtypes.canonical(dtype or dtypes.default_int)
    if sparse:
        return tuple(lax.reshape(lax.iota(dt, (d,), 0), [d if j == k else 1 for j in range(len(dims))])
                     if d else np.zeros([0 if j == k else 1 for j in range(len(dims))], dt)
                     for k, d in enumerate(dims))
    from . import stack, zeros
    if 0 in dims:
        return zeros((len(dims),) + dims, dt)
    return stack([lax.iota(dt, dims, k) for k in range(len(dims))]) if dims else zeros((0,), dt)


def unravel_index(indices_, shape) -> tuple:
    """Coordinates of flat indices in an array of ``shape`` (C order)."""
    from . import floor_divide, remainder
    idx = asarray_operand(indices_)
    shape = tuple(int(d) for d in shape)
    out, stride = [], 1
    for d in reversed(shape):
        out.append(remainder(floor_divide(idx, stride), d))
        stride *= d
    return tuple(reversed(out))


def ravel_multi_index(multi_index, dims):
    """Flat C-order indices of coordinates (out-of-range coordinates are not checked)."""
    from . import add, multiply
    dims = tuple(int(d) for d in dims)
    if len(multi_index) != len(dims):
        raise ValueError("ravel_multi_index: one index array per dimension")
    out, stride = 0, 1
    for idx, d in zip(reversed(list(multi_index)), reversed(dims)):
        out = add(out, multiply(asarray_operand(idx), stride))
        stride *= d
    return out


def kron(a, b):
    """Kronecker product."""
    from . import multiply, reshape, expand_dims
    a, b = asarray_operand(a), asarray_operand(b)
    na, nb = get_aval(a).ndim, get_aval(b).ndim
    nd = builtins.max(na, nb)
    a = reshape(a, (1,) * (nd - na) + get_aval(a).shape)
    b = reshape(b, (1,) * (nd - nb) + get_aval(b).shape)
    sa, sb = get_aval(a).shape, get_aval(b).shape
    # (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...) then merge each pair
    ai = expand_dims(a, tuple(range(1, 2 * nd, 2)))
    bi = expand_dims(b, tuple(range(0, 2 * nd, 2)))
    return reshape(multiply(ai, bi), [x * y for x, y in zip(sa, sb)])


def convolve(a, v, mode: str = "full"):
    """Discrete linear convolution of two 1-D arrays (numpy's ``convolve``), as one
    gather of sliding windows and a dot product."""
    from . import dot, take, promote_operands_list
    a, v = asarray_operand(a), asarray_operand(v)
    if get_aval(a).ndim != 1 or get_aval(v).ndim != 1:
        raise ValueError("convolve: a and v must be 1-D")
    n, m = get_aval(a).shape[0], get_aval(v).shape[0]
    if n == 0 or m == 0:
        raise ValueError("convolve: inputs cannot be empty")
    if m > n:  # convolution commutes; slide the shorter one
        a, v, n, m = v, a, m, n
    a, v = promote_operands_list("convolve", [a, v])
    padded = pad(a, (m - 1, m - 1))
    starts = {"full": np.arange(n + m - 1), "same": np.arange(n) + (m - 1) // 2,
              "valid": np.arange(n - m + 1) + m - 1}.get(mode)
    if starts is None:
        raise ValueError("convolve: mode must be 'full', 'same' or 'valid'")
    windows = take(padded, (starts[:, None] + np.arange(m)[None, :]).astype(np.int32), axis=0)
    return dot(windows, flip(v))


def correlate(a, v, mode: str = "valid"):
    """Cross-correlation of two 1-D arrays: ``convolve(a, v[::-1], mode)``."""
    return convolve(a, flip(asarray_operand(v)), mode)
