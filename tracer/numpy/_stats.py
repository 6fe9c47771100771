"""Counting and statistics: bincount, isin, cov, corrcoef."""
from __future__ import annotations

from .. import dtypes
from .. import lax
from ..core import Tracer, get_aval, where
from ..errors import ConcretizationError
from ._core import asarray_operand, cast, promote_operands


def bincount(x, weights=None, minlength: int = 0, *, length: int | None = None):
    """Counts (or summed weights) of each non-negative integer in the 1-D ``x``.
    The output length must be static: pass ``length=`` for traced ``x`` (values at
    or beyond it are dropped), as in JAX."""
    x = asarray_operand(x)
    if get_aval(x).ndim != 1 or not dtypes.is_int(get_aval(x).dtype):
        raise ValueError("bincount: x must be a 1-D integer array")
    if length is None:
        if isinstance(x, Tracer):
            raise ConcretizationError(
                f"bincount of a traced array needs a static length=... (its output shape){where()}")
        length = max(int(x.max()) + 1 if x.size else 0, minlength)
        if x.size and int(x.min()) < 0:
            raise ValueError("bincount: x must be non-negative")
    if weights is None:
        w = lax.full(get_aval(x).shape, 1, dtypes.int32)
    else:
        (w,) = promote_operands("bincount", weights)
        if dtypes.is_bool(get_aval(w).dtype):
            w = cast(w, dtypes.int32)
    from . import zeros, reshape
    out = zeros((int(length),), get_aval(w).dtype)
    return lax.scatter_add(out, reshape(x, (-1, 1)), w, (0,), mode="drop")


def isin(element, test_elements, invert: bool = False):
    """Elementwise membership in ``test_elements`` (compared against each of them)."""
    from . import any as _any, equal, expand_dims, ravel, logical_not
    e = asarray_operand(element)
    t = ravel(asarray_operand(test_elements))
    hit = _any(equal(expand_dims(e, -1), t), axis=-1) if get_aval(t).size else \
        lax.full(get_aval(e).shape, False, dtypes.bool_)
    return logical_not(hit) if invert else hit


def cov(m, y=None, rowvar: bool = True, bias: bool = False, ddof=None):
    """Covariance matrix of the variables in ``m`` (rows, or columns with rowvar=False)."""
    from . import atleast_2d, concatenate, mean, subtract, matmul, transpose, squeeze
    (x,) = promote_operands("cov", m, to_float=True)
    x = atleast_2d(x)
    if not rowvar and get_aval(x).shape[0] != 1:
        x = transpose(x)
    if y is not None:
        (yy,) = promote_operands("cov", y, to_float=True)
        yy = atleast_2d(yy)
        if not rowvar and get_aval(yy).shape[0] != 1:
            yy = transpose(yy)
        x = concatenate([x, yy], 0)
    n = get_aval(x).shape[1]
    ddof = (0 if bias else 1) if ddof is None else ddof
    xc = subtract(x, mean(x, axis=1, keepdims=True))
    c = matmul(xc, transpose(xc)) / float(max(n - ddof, 0))
    return squeeze(c) if get_aval(c).shape == (1, 1) else c


def corrcoef(x, y=None, rowvar: bool = True):
    from . import diagonal, sqrt, clip, outer
    c = cov(x, y, rowvar)
    if get_aval(c).ndim == 0:
        return c / c
    d = sqrt(diagonal(c))
    return clip(c / outer(d, d), -1.0, 1.0)
