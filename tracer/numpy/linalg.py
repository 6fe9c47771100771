"""``tnp.linalg``: norms, and dense solve / inv / det / slogdet by unrolled Gauss-Jordan
elimination (small static sizes). Decompositions (cholesky, eigh, svd, qr) need
primitives we do not have yet."""
from __future__ import annotations

import numpy as np

from ..core import get_aval
from ._core import promote_operands


def norm(x, ord=None, axis=None, keepdims: bool = False):
    """Vector norms (ord None/2, 1, inf, -inf, 0, p) and matrix norms ('fro', 1, inf,
    -1, -inf) with numpy's conventions; ord=2 on matrices (the spectral norm) is not
    supported."""
    from . import sqrt, sum as _sum, abs as _abs, max as _max, min as _min, power, not_equal, astype
    (x,) = promote_operands("norm", x, to_float=True)
    nd = get_aval(x).ndim
    if axis is None:
        if ord is None or (ord == "fro" and nd == 2):
            return sqrt(_sum(x * x, axis=None, keepdims=keepdims))
        axis = tuple(range(nd))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(axes) == 1:
        ax = axes[0]
        if ord is None or ord == 2:
            return sqrt(_sum(x * x, axis=ax, keepdims=keepdims))
        if ord == np.inf:
            return _max(_abs(x), axis=ax, keepdims=keepdims)
        if ord == -np.inf:
            return _min(_abs(x), axis=ax, keepdims=keepdims)
        if ord == 0:
            return _sum(astype(not_equal(x, 0), get_aval(x).dtype), axis=ax, keepdims=keepdims)
        if ord == 1:
            return _sum(_abs(x), axis=ax, keepdims=keepdims)
        if isinstance(ord, str):
            raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
        return power(_sum(power(_abs(x), float(ord)), axis=ax, keepdims=keepdims), 1.0 / ord)
    if len(axes) == 2:
        r, c = (a % nd for a in axes)
        if ord is None or ord == "fro":
            return sqrt(_sum(x * x, axis=(r, c), keepdims=keepdims))
        if ord in (1, -1, np.inf, -np.inf):
            sum_ax, red_ax = (r, c) if ord in (1, -1) else (c, r)
            s = _sum(_abs(x), axis=sum_ax, keepdims=True)
            red = _max if ord in (1, np.inf) else _min
            out = red(s, axis=red_ax, keepdims=True)
            if not keepdims:
                from . import squeeze
                out = squeeze(out, (r, c))
            return out
        raise NotImplementedError(f"norm: matrix norm ord={ord!r} is not supported")
    raise ValueError("norm: axis must name one or two axes")


# ---------------------------------------------------------------- dense solvers

def _gauss_jordan(a, b):
    """Reduce ``[a | b]`` to ``[I | a^-1 b]`` by Gauss-Jordan elimination with partial
    pivoting, unrolled over the static size n (O(n) equations of O(n^2) work each).
    Returns (a^-1 b, the pivots, the sign of the row permutation). A singular matrix
    gives infinities / NaNs: a traced value cannot raise numpy's LinAlgError."""
    from . import (abs as _abs, argmax, where, take_along_axis, arange, expand_dims, ones,
                   divide, subtract, multiply, negative, not_equal, add)
    n = get_aval(a).shape[-1]
    rows = arange(n)
    batch = get_aval(a).shape[:-2]
    sign = ones(batch, get_aval(a).dtype)
    pivots = []
    for k in range(n):
        p = add(argmax(_abs(a[..., k:, k]), axis=-1), k)           # pivot row, (...,)
        pe = expand_dims(p, -1)
        perm = where(rows == k, pe, where(rows == pe, k, rows))    # swap rows k and p
        a = take_along_axis(a, expand_dims(perm, -1), axis=-2)
        b = take_along_axis(b, expand_dims(perm, -1), axis=-2)
        sign = where(not_equal(p, k), negative(sign), sign)
        pivot = a[..., k, k]
        pivots.append(pivot)
        row_a = divide(a[..., k:k + 1, :], pivot[..., None, None])
        row_b = divide(b[..., k:k + 1, :], pivot[..., None, None])
        factor = where(expand_dims(rows == k, -1), 0.0, a[..., :, k:k + 1])  # (..., n, 1)
        is_k = expand_dims(rows == k, -1)
        a = where(is_k, row_a, subtract(a, multiply(factor, row_a)))
        b = where(is_k, row_b, subtract(b, multiply(factor, row_b)))
    return b, pivots, sign


def _square(name, a):
    (a,) = promote_operands(name, a, to_float=True)
    s = get_aval(a).shape
    if len(s) < 2 or s[-1] != s[-2]:
        raise ValueError(f"linalg.{name}: expected square matrices in the last two axes, got shape {s}")
    return a


def solve(a, b):
    """x with a @ x = b. ``b`` is a vector when 1-D, else a stack of matrices (..., n, k)."""
    from . import expand_dims, squeeze, broadcast_to, promote_operands_list
    a, b = promote_operands_list("solve", [_square("solve", a), b])
    vec = get_aval(b).ndim == 1
    if vec:
        b = expand_dims(b, -1)
    batch = get_aval(a).shape[:-2]
    b = broadcast_to(b, batch + get_aval(b).shape[-2:]) if get_aval(b).shape[:-2] != batch else b
    x, _, _ = _gauss_jordan(a, b)
    return squeeze(x, -1) if vec else x


def inv(a):
    """The inverse of each square matrix in the last two axes."""
    from . import eye, broadcast_to
    a = _square("inv", a)
    n = get_aval(a).shape[-1]
    ident = broadcast_to(eye(n, dtype=get_aval(a).dtype), get_aval(a).shape)
    return _gauss_jordan(a, ident)[0]


def det(a):
    """Determinant: the product of the pivots times the permutation's sign."""
    from . import multiply
    a = _square("det", a)
    _, pivots, sign = _gauss_jordan(a, a[..., :, :0])
    out = sign
    for p in pivots:
        out = multiply(out, p)
    return out


def slogdet(a):
    """(sign, log|det|) without overflow."""
    from . import multiply, sign as _sign, log, abs as _abs, add
    a = _square("slogdet", a)
    _, pivots, sgn = _gauss_jordan(a, a[..., :, :0])
    logabs = 0.0
    for p in pivots:
        sgn = multiply(sgn, _sign(p))
        logabs = add(logabs, log(_abs(p)))
    return sgn, logabs


def _missing(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"tnp.linalg.{name} is not supported yet (no decomposition primitives)")
    f.__name__ = name
    return f


cholesky, eigh, eig, svd, qr, lstsq, pinv = (
    _missing(n) for n in ("cholesky", "eigh", "eig", "svd", "qr", "lstsq", "pinv"))
