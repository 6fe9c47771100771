"""More elementwise math and reductions composed from the primitives: logaddexp,
hypot, nan_to_num, heaviside, angle conversions, inverse hyperbolics, cbrt,
copysign/signbit, sinc, isclose/allclose, nan-reductions, average, ptp, and
clear errors for the data-dependent functions (sort, unique, nonzero, ...)."""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from .. import lax
from ..core import Tracer, get_aval, where
from ..errors import ConcretizationError
from ._core import asarray_operand, cast, promote_operands


def _f(name, *xs):
    return promote_operands(name, *xs, to_float=True)


def _dtype(x):
    return get_aval(x).dtype


def logaddexp(x1, x2):
    """log(exp(x1) + exp(x2)) without overflow; exact at equal infinities."""
    from . import where as _where, isnan, maximum, log1p, exp, abs as _abs, subtract
    x1, x2 = _f("logaddexp", x1, x2)
    d = subtract(x1, x2)
    bad = isnan(d)  # inf - inf, or a NaN operand: the (NaN-propagating) max is the answer
    safe = _where(bad, 0.0, d)
    # select, not maximum: at a tie the gradient is then 1/2 for each operand (JAX's value),
    # where maximum's split tie rule combined with |d|'s would give 0
    larger = _where(x1 >= x2, x1, x2)
    return _where(bad, maximum(x1, x2), larger + log1p(exp(-_abs(safe))))


def logaddexp2(x1, x2):
    x1, x2 = _f("logaddexp2", x1, x2)
    ln2 = math.log(2.0)
    return logaddexp(x1 * ln2, x2 * ln2) / ln2


def hypot(x1, x2):
    """sqrt(x1**2 + x2**2) scaled to avoid overflow and underflow."""
    from . import where as _where, maximum, minimum, abs as _abs, sqrt, isinf
    x1, x2 = _f("hypot", x1, x2)
    a1, a2 = _abs(x1), _abs(x2)
    big, small = maximum(a1, a2), minimum(a1, a2)
    zero = big == 0.0
    r = small / _where(zero, 1.0, big)
    out = _where(zero, 0.0, big * sqrt(1.0 + r * r))
    return _where(isinf(a1) | isinf(a2), np.inf, out)


def nan_to_num(x, copy: bool = True, nan=0.0, posinf=None, neginf=None):
    """Replace NaN by ``nan`` and infinities by ``posinf``/``neginf`` (default: the
    dtype's largest / smallest finite value). Integers pass through."""
    from . import where as _where, isnan
    (x,) = promote_operands("nan_to_num", x)
    dt = _dtype(x)
    if not dtypes.is_float(dt):
        return x
    info = np.finfo(dt)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    x = _where(isnan(x), np.asarray(nan, dt), x)
    x = _where(x == np.inf, np.asarray(posinf, dt), x)
    return _where(x == -np.inf, np.asarray(neginf, dt), x)


def heaviside(x1, x2):
    """0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0."""
    from . import where as _where
    x1, x2 = promote_operands("heaviside", x1, x2)
    dt = _dtype(x1)
    zero, one = np.zeros((), dt), np.ones((), dt)
    return _where(x1 < 0, zero, _where(x1 > 0, one, x2))


def deg2rad(x):
    (x,) = _f("deg2rad", x)
    return x * (math.pi / 180.0)


def rad2deg(x):
    (x,) = _f("rad2deg", x)
    return x * (180.0 / math.pi)


radians, degrees = deg2rad, rad2deg


def arcsinh(x):
    from . import log, sqrt, sign, abs as _abs
    (x,) = _f("arcsinh", x)
    a = _abs(x)
    return sign(x) * log(a + sqrt(a * a + 1.0))


def arccosh(x):
    from . import log, sqrt
    (x,) = _f("arccosh", x)
    return log(x + sqrt(x * x - 1.0))


def arctanh(x):
    from . import log1p
    (x,) = _f("arctanh", x)
    return 0.5 * (log1p(x) - log1p(-x))


def cbrt(x):
    from . import sign, abs as _abs, power
    (x,) = _f("cbrt", x)
    return sign(x) * power(_abs(x), 1.0 / 3.0)


def signbit(x):
    """True where the sign bit is set (-0.0 included)."""
    (x,) = promote_operands("signbit", x)
    if not dtypes.is_float(_dtype(x)):
        return x < 0
    with np.errstate(divide="ignore"):
        return (x < 0) | ((x == 0) & (lax.div(np.ones((), _dtype(x)), x) < 0))


def copysign(x1, x2):
    from . import where as _where, abs as _abs
    x1, x2 = _f("copysign", x1, x2)
    a = _abs(x1)
    return _where(signbit(x2), -a, a)


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0."""
    from . import where as _where, sin
    (x,) = _f("sinc", x)
    zero = x == 0.0
    px = _where(zero, 1.0, x) * math.pi
    return _where(zero, 1.0, sin(px) / px)


def fabs(x):
    from . import abs as _abs
    (x,) = _f("fabs", x)
    return _abs(x)


def float_power(x1, x2):
    from . import power
    x1, x2 = promote_operands("float_power", x1, x2)
    return power(cast(x1, dtypes.float64), cast(x2, dtypes.float64))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan: bool = False):
    from . import where as _where, abs as _abs, isfinite, isnan
    a, b = promote_operands("isclose", a, b)
    if not dtypes.is_float(_dtype(a)):
        a, b = cast(a, dtypes.default_float), cast(b, dtypes.default_float)
    fin = isfinite(a) & isfinite(b)
    diff = _where(fin, _abs(a - b), 0.0)
    close = _where(fin, diff <= atol + rtol * _abs(_where(fin, b, 0.0)), a == b)
    if equal_nan:
        close = close | (isnan(a) & isnan(b))
    return close


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan: bool = False):
    """A Python bool for concrete inputs (as numpy), a traced bool otherwise."""
    from . import all as _all
    r = _all(isclose(a, b, rtol, atol, equal_nan))
    return r if isinstance(r, Tracer) else bool(r)


def array_equal(a1, a2):
    from . import all as _all, equal
    s1, s2 = get_aval(asarray_operand(a1)).shape, get_aval(asarray_operand(a2)).shape
    if s1 != s2:
        return False
    r = _all(equal(a1, a2))
    return r if isinstance(r, Tracer) else bool(r)


def count_nonzero(a, axis=None, keepdims: bool = False):
    from . import sum as _sum, not_equal
    return _sum(cast(not_equal(a, 0), dtypes.int32), axis=axis, keepdims=keepdims)


def _nan_fill(a, fill):
    from . import where as _where, isnan
    (a,) = promote_operands("nan-reduction", a)
    if not dtypes.is_float(_dtype(a)):
        return a
    return _where(isnan(a), np.asarray(fill, _dtype(a)), a)


def nansum(a, axis=None, dtype=None, keepdims: bool = False):
    from . import sum as _sum
    return _sum(_nan_fill(a, 0), axis=axis, dtype=dtype, keepdims=keepdims)


def nanmax(a, axis=None, keepdims: bool = False):
    from . import max as _max
    return _max(_nan_fill(a, -np.inf), axis=axis, keepdims=keepdims)


def nanmin(a, axis=None, keepdims: bool = False):
    from . import min as _min
    return _min(_nan_fill(a, np.inf), axis=axis, keepdims=keepdims)


def nanmean(a, axis=None, keepdims: bool = False):
    from . import sum as _sum, isnan, logical_not
    (a,) = promote_operands("nanmean", a)
    if not dtypes.is_float(_dtype(a)):
        a = cast(a, dtypes.default_float)
    n = _sum(cast(logical_not(isnan(a)), _dtype(a)), axis=axis, keepdims=keepdims)
    return nansum(a, axis=axis, keepdims=keepdims) / n


def average(a, axis=None, weights=None, returned: bool = False, keepdims: bool = False):
    from . import mean, sum as _sum, broadcast_to, multiply
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        if not returned:
            return avg
        a = asarray_operand(a)
        from . import full_like
        n = get_aval(a).size // max(get_aval(avg).size, 1)
        return avg, full_like(avg, float(n))
    a, w = promote_operands("average", a, weights, to_float=True)
    wsum = _sum(w, axis=axis, keepdims=keepdims)
    avg = _sum(multiply(a, w), axis=axis, keepdims=keepdims) / wsum
    return (avg, broadcast_to(wsum, get_aval(avg).shape)) if returned else avg


def ptp(a, axis=None, keepdims: bool = False):
    from . import max as _max, min as _min
    return _max(a, axis=axis, keepdims=keepdims) - _min(a, axis=axis, keepdims=keepdims)


def select(condlist, choicelist, default=0):
    """The first choice whose condition holds, elementwise (``numpy.select``)."""
    from . import where as _where
    if len(condlist) != len(choicelist):
        raise ValueError("select: condlist and choicelist must have the same length")
    out = default
    for c, v in reversed(list(zip(condlist, choicelist))):
        out = _where(c, v, out)
    return asarray_operand(out)


# ---------------------------------------------------------------- data-dependent: clear errors

def _not_supported(name: str, why: str):
    def f(*args, **kwargs):
        raise NotImplementedError(f"tnp.{name} is not supported: {why}")
    f.__name__ = name
    f.__doc__ = f"Not supported: {why}"
    return f


sort = _not_supported("sort", "there is no sort primitive yet (compute it outside the traced "
                      "function, or use max/min/argmax for the extremes)")
argsort = _not_supported("argsort", "there is no sort primitive yet")
median = _not_supported("median", "it needs a sort, and there is no sort primitive yet")
percentile = _not_supported("percentile", "it needs a sort, and there is no sort primitive yet")
quantile = _not_supported("quantile", "it needs a sort, and there is no sort primitive yet")


def _concrete_only(name, npfn):
    def f(a, *args, **kwargs):
        if isinstance(a, Tracer):
            raise ConcretizationError(
                f"tnp.{name} of a traced value {a.aval} has a data-dependent output shape{where()}; "
                f"use tnp.where(cond, x, y) with a static shape instead")
        return npfn(np.asarray(a), *args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"numpy.{name} on concrete arrays; a traced input raises ConcretizationError."
    return f


nonzero = _concrete_only("nonzero", np.nonzero)
flatnonzero = _concrete_only("flatnonzero", np.flatnonzero)
argwhere = _concrete_only("argwhere", np.argwhere)
unique = _concrete_only("unique", np.unique)


def divmod_(x1, x2):
    from . import floor_divide, remainder
    return floor_divide(x1, x2), remainder(x1, x2)


def fmax(x1, x2):
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    from . import where as _where, isnan, maximum
    x1, x2 = promote_operands("fmax", x1, x2)
    return _where(isnan(x1), x2, _where(isnan(x2), x1, maximum(x1, x2)))


def fmin(x1, x2):
    from . import where as _where, isnan, minimum
    x1, x2 = promote_operands("fmin", x1, x2)
    return _where(isnan(x1), x2, _where(isnan(x2), x1, minimum(x1, x2)))


def searchsorted(a, v, side: str = "left"):
    """Insertion indices into the sorted 1-D ``a`` (int32), by counting comparisons:
    O(len(a) * v.size) work with static shapes."""
    from . import sum as _sum, less, less_equal, expand_dims
    if side not in ("left", "right"):
        raise ValueError("searchsorted: side must be 'left' or 'right'")
    a, v = asarray_operand(a), asarray_operand(v)
    if get_aval(a).ndim != 1:
        raise ValueError("searchsorted: a must be 1-D")
    from . import result_type_of
    dt = result_type_of(a, v)
    a, v = cast(a, dt), cast(v, dt)
    cmp = less if side == "left" else less_equal
    return _sum(cast(cmp(a, expand_dims(v, -1)), dtypes.int32), axis=-1)


def interp(x, xp, fp, left=None, right=None):
    """Piecewise-linear interpolation (``numpy.interp``) with increasing ``xp``."""
    from . import where as _where, clip, take, searchsorted as _ss
    x, xp, fp = (promote_operands("interp", v, to_float=True)[0] for v in (x, xp, fp))
    n = get_aval(xp).shape[0]
    if n == 0:
        raise ValueError("interp: xp must not be empty")
    if n == 1:
        from . import full_like
        return _where(x < take(xp, 0), fp[0] if left is None else left,
                      _where(x > take(xp, 0), fp[0] if right is None else right, full_like(x, 0.0) + take(fp, 0)))
    i = clip(_ss(xp, x, side="right"), 1, n - 1)
    x0, x1 = take(xp, i - 1), take(xp, i)
    y0, y1 = take(fp, i - 1), take(fp, i)
    dx = x1 - x0
    t = (x - x0) / _where(dx == 0, 1.0, dx)
    out = y0 + t * (y1 - y0)
    out = _where(x < take(xp, 0), take(fp, 0) if left is None else left, out)
    return _where(x > take(xp, n - 1), take(fp, n - 1) if right is None else right, out)


def cross(a, b, axis: int = -1):
    """Cross product of 3-vectors along ``axis``."""
    from . import moveaxis, stack
    a, b = promote_operands("cross", a, b)
    a, b = moveaxis(a, axis, -1), moveaxis(b, axis, -1)
    if get_aval(a).shape[-1] != 3:
        raise ValueError("cross: only 3-vectors are supported")
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def logspace(start, stop, num: int = 50, endpoint: bool = True, base=10.0, dtype=None):
    from . import linspace, power
    out = power(float(base) if not isinstance(base, Tracer) else base,
                linspace(start, stop, num, endpoint=endpoint))
    return out if dtype is None else cast(out, dtypes.canonical(dtype))


def geomspace(start, stop, num: int = 50, endpoint: bool = True, dtype=None):
    if isinstance(start, Tracer) or isinstance(stop, Tracer):
        raise TypeError("geomspace needs concrete bounds")
    out = np.geomspace(start, stop, num, endpoint=endpoint)
    return out.astype(dtypes.canonical(dtype or dtypes.default_float))
