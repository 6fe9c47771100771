"""``tnp.linalg``: norms (decompositions and solvers need primitives we do not have yet)."""
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


def _missing(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"tnp.linalg.{name} is not supported yet (no decomposition primitives)")
    f.__name__ = name
    return f


inv, solve, det, slogdet, cholesky, eigh, svd, qr = (
    _missing(n) for n in ("inv", "solve", "det", "slogdet", "cholesky", "eigh", "svd", "qr"))
