"""A numpy-like namespace over the primitives (as ``jax.numpy`` is to ``jax.lax``).

Functions accept numpy arrays, Python scalars and tracers. Outside any transform
they evaluate at once and return numpy arrays; under tracing they record IR.
dtype promotion follows JAX (weak Python scalars; int / int -> float32).
"""
from __future__ import annotations

import builtins
import functools
import math
from typing import Sequence

import numpy as np

from .. import dtypes as _dt
from ..core import Tracer, concrete_aval, get_aval
from ..core import where as _at_user_line
from ..errors import DTypeError, ShapeError
from .. import lax
from ._core import asarray_operand, cast, promote_operands
from ._core import broadcast_shapes as _broadcast_shapes
from ._core import result_type as _result_type

float32, float64, int32, int64 = np.float32, np.float64, np.int32, np.int64
bool_ = np.bool_
pi, e, inf, nan = np.pi, np.e, np.inf, np.nan
newaxis = None


class _ArrayType(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, (np.ndarray, Tracer))


class ndarray(metaclass=_ArrayType):
    """For ``isinstance(x, tnp.ndarray)``: true of numpy arrays and traced values."""


Array = ndarray


# ---------------------------------------------------------------- creation

def asarray(x, dtype=None):
    """An array (a tracer stays a tracer). Nested lists may contain tracers."""
    if isinstance(x, Tracer):
        return x if dtype is None else cast(x, _dt.canonical(dtype))
    if isinstance(x, (list, tuple)) and builtins.any(isinstance(l, Tracer) for l in _flat(x)):
        return stack([asarray(e) for e in x]) if dtype is None else \
            cast(stack([asarray(e) for e in x]), _dt.canonical(dtype))
    if dtype is not None:
        return np.asarray(x, _dt.canonical(dtype))
    if isinstance(x, np.generic):  # numpy scalars keep their dtype (np.float64 is a float)
        return concrete_aval(x)[0]
    if isinstance(x, float) or (isinstance(x, (list, tuple)) and np.asarray(x).dtype == np.float64
                                and not _has_np_float64(x)):
        return np.asarray(x, _dt.default_float)
    if isinstance(x, (int, list, tuple)) and not isinstance(x, bool) and np.asarray(x).dtype == np.int64 \
            and not _has_np_int64(x):
        return np.asarray(x, _dt.default_int)
    arr = np.asarray(x)
    return arr.astype(_dt.canonical(arr.dtype)) if arr.dtype.kind in "biuf" else _bad_array(x)


def _bad_array(x):
    raise TypeError(f"{type(x).__name__} value {x!r:.60} is not a valid array")


def _flat(x):
    if isinstance(x, (list, tuple)):
        for e in x:
            yield from _flat(e)
    else:
        yield x


def _has_np_float64(x):
    return builtins.any(isinstance(l, np.ndarray) and l.dtype == np.float64 or isinstance(l, np.float64)
               for l in _flat(x))


def _has_np_int64(x):
    return builtins.any(isinstance(l, (np.ndarray, np.integer)) and np.asarray(l).dtype == np.int64 for l in _flat(x))


array = asarray


def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def zeros(shape, dtype=None):
    return lax.full(_shape_tuple(shape), 0, dtype or _dt.default_float)


def ones(shape, dtype=None):
    return lax.full(_shape_tuple(shape), 1, dtype or _dt.default_float)


def full(shape, fill_value, dtype=None):
    if dtype is None:
        dtype = _result_type(fill_value)[0]
    fill = asarray_operand(fill_value)
    if get_aval(fill).shape != ():
        return broadcast_to(cast(fill, _dt.canonical(dtype)), _shape_tuple(shape))
    return lax.full(_shape_tuple(shape), fill, dtype)


def empty(shape, dtype=None):
    return zeros(shape, dtype)


def zeros_like(x, dtype=None):
    a = get_aval(asarray_operand(x))
    return zeros(a.shape, dtype or a.dtype)


def ones_like(x, dtype=None):
    a = get_aval(asarray_operand(x))
    return ones(a.shape, dtype or a.dtype)


def full_like(x, fill_value, dtype=None):
    a = get_aval(asarray_operand(x))
    return full(a.shape, fill_value, dtype or a.dtype)


empty_like = zeros_like


def arange(start, stop=None, step=None, dtype=None):
    if builtins.any(isinstance(v, Tracer) for v in (start, stop, step)):
        raise TypeError("arange needs concrete (Python) bounds: the output shape must be static")
    r = np.arange(start, stop, step) if step is not None else (np.arange(start, stop) if stop is not None
                                                               else np.arange(start))
    if dtype is None:
        dtype = _dt.default_float if r.dtype.kind == "f" else _dt.default_int
    return r.astype(_dt.canonical(dtype))


def linspace(start, stop, num=50, endpoint=True, dtype=None):
    if isinstance(start, Tracer) or isinstance(stop, Tracer):
        n = num - 1 if endpoint else num
        t = lax.iota(_dt.default_float, (num,), 0)
        step = (stop - start) / builtins.max(n, 1)
        out = start + t * step
        return out if dtype is None else cast(out, _dt.canonical(dtype))
    return np.linspace(start, stop, num, endpoint=endpoint).astype(_dt.canonical(dtype or _dt.default_float))


def eye(N, M=None, k=0, dtype=None):
    return np.eye(N, M, k, dtype=_dt.canonical(dtype or _dt.default_float))


def identity(n, dtype=None):
    return eye(n, dtype=dtype)


# ---------------------------------------------------------------- elementwise

def _unary_float(prim_fn, name):
    def f(x):
        (x,) = promote_operands(name, x, to_float=True)
        return prim_fn(x)
    f.__name__ = name
    f.__doc__ = f"Elementwise {name} (integers are converted to float32 first)."
    return f


exp = _unary_float(lax.exp, "exp")
exp2 = _unary_float(lax.exp2, "exp2")
log = _unary_float(lax.log, "log")
log1p = _unary_float(lax.log1p, "log1p")
expm1 = _unary_float(lax.expm1, "expm1")
sin = _unary_float(lax.sin, "sin")
cos = _unary_float(lax.cos, "cos")
tan = _unary_float(lax.tan, "tan")
tanh = _unary_float(lax.tanh, "tanh")
arctan = _unary_float(lax.atan, "arctan")
sqrt = _unary_float(lax.sqrt, "sqrt")


def log2(x):
    (x,) = promote_operands("log2", x, to_float=True)
    return lax.mul(lax.log(x), 1.0 / math.log(2.0))


def log10(x):
    (x,) = promote_operands("log10", x, to_float=True)
    return lax.mul(lax.log(x), 1.0 / math.log(10.0))


def sinh(x):
    (x,) = promote_operands("sinh", x, to_float=True)
    return lax.mul(lax.sub(lax.exp(x), lax.exp(lax.neg(x))), 0.5)


def cosh(x):
    (x,) = promote_operands("cosh", x, to_float=True)
    return lax.mul(lax.add(lax.exp(x), lax.exp(lax.neg(x))), 0.5)


def arcsin(x):
    (x,) = promote_operands("arcsin", x, to_float=True)
    return lax.atan2(x, lax.sqrt(lax.mul(lax.add(x, 1.0), lax.sub(1.0, x))))


def arccos(x):
    (x,) = promote_operands("arccos", x, to_float=True)
    return lax.atan2(lax.sqrt(lax.mul(lax.add(x, 1.0), lax.sub(1.0, x))), x)


def arctan2(y, x):
    y, x = promote_operands("arctan2", y, x, to_float=True)
    return lax.atan2(y, x)


def square(x):
    (x,) = promote_operands("square", x)
    if get_aval(x).dtype == _dt.bool_:  # as JAX: int32
        x = cast(x, _dt.int32)
    return lax.integer_pow(x, 2)


def reciprocal(x):
    (x,) = promote_operands("reciprocal", x)
    return lax.div(1 if _dt.is_int(get_aval(x).dtype) else 1.0, x)


def negative(x):
    (x,) = promote_operands("negative", x)
    if get_aval(x).dtype == _dt.bool_:
        raise DTypeError(f"negative of a bool array is not supported; use logical_not{_at_user_line()}")
    return lax.neg(x)


def positive(x):
    return asarray_operand(x)


def absolute(x):
    (x,) = promote_operands("abs", x)
    return x if get_aval(x).dtype == _dt.bool_ else lax.abs(x)


abs = absolute


def sign(x):
    (x,) = promote_operands("sign", x)
    return lax.sign(x)


def _int_passthrough(fn, name):
    def f(x):
        (x,) = promote_operands(name, x)
        return x if not _dt.is_float(get_aval(x).dtype) else fn(x)
    f.__name__ = name
    return f


floor = _int_passthrough(lax.floor, "floor")
ceil = _int_passthrough(lax.ceil, "ceil")
rint = _int_passthrough(lax.round, "rint")
trunc = _int_passthrough(lambda x: lax.select(lax.lt(x, 0.0), lax.ceil(x), lax.floor(x)), "trunc")


def round(x, decimals: int = 0):
    (x,) = promote_operands("round", x)
    dt = get_aval(x).dtype
    if not _dt.is_float(dt):
        if decimals >= 0 or dt == _dt.bool_:
            return x
        f = 10.0 ** -decimals  # integers to tens, hundreds, ...: exact in float64 below 2**53
        return cast(lax.mul(lax.round(lax.div(cast(x, _dt.float64), f)), f), dt)
    if decimals == 0:
        return lax.round(x)
    f = 10.0 ** decimals
    return lax.div(lax.round(lax.mul(x, f)), f)


around = round


def add(x, y):
    x, y = promote_operands("add", x, y)
    return lax.or_(x, y) if get_aval(x).dtype == _dt.bool_ else lax.add(x, y)


def subtract(x, y):
    x, y = promote_operands("subtract", x, y)
    if get_aval(x).dtype == _dt.bool_:
        raise DTypeError(f"subtract of bool arrays is not supported; use logical_xor{_at_user_line()}")
    return lax.sub(x, y)


def multiply(x, y):
    x, y = promote_operands("multiply", x, y)
    return lax.and_(x, y) if get_aval(x).dtype == _dt.bool_ else lax.mul(x, y)


def true_divide(x, y):
    x, y = promote_operands("divide", x, y, to_float=True)
    return lax.div(x, y)


divide = true_divide


def floor_divide(x, y):
    x, y = promote_operands("floor_divide", x, y)
    dt = get_aval(x).dtype
    if dt == _dt.bool_:
        x, y = cast(x, _dt.int32), cast(y, _dt.int32)
        dt = _dt.int32
    if _dt.is_float(dt):
        return _float_floor_divide(x, y)
    q = lax.div(x, y)  # truncates toward zero; x // 0 = 0
    r = lax.rem(x, y)
    adjust = lax.and_(lax.ne(r, lax.full_like(r, 0)), lax.ne(lax.lt(r, lax.full_like(r, 0)),
                                                                 lax.lt(y, lax.full_like(y, 0))))
    return lax.select(adjust, lax.sub(q, 1), q)


def _float_floor_divide(x, y):
    """numpy's float floor division: (x - fmod(x, y)) / y, corrected to the divisor's sign
    (floor(x / y) would round 1 // 0.1 up to 10)."""
    mod = lax.rem(x, y)
    d = lax.div(lax.sub(x, mod), y)
    zero = lax.full_like(mod, 0)
    fix = lax.and_(lax.ne(mod, zero), lax.ne(lax.lt(y, lax.full_like(y, 0)), lax.lt(mod, zero)))
    d = lax.select(fix, lax.sub(d, 1.0), d)
    fl = lax.floor(d)
    fl = lax.select(lax.gt(lax.sub(d, fl), 0.5), lax.add(fl, 1.0), fl)
    return lax.select(lax.eq(y, lax.full_like(y, 0)), lax.div(x, y), fl)


def remainder(x, y):
    x, y = promote_operands("remainder", x, y)
    dt = get_aval(x).dtype
    if dt == _dt.bool_:
        x, y = cast(x, _dt.int32), cast(y, _dt.int32)
    r = lax.rem(x, y)
    zero = lax.full_like(r, 0)
    fix = lax.and_(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, lax.full_like(y, 0))))
    return lax.select(fix, lax.add(r, y), r)


mod = remainder


def fmod(x, y):
    x, y = promote_operands("fmod", x, y)
    if get_aval(x).dtype == _dt.bool_:  # as JAX: bools compute in int32
        x, y = cast(x, _dt.int32), cast(y, _dt.int32)
    return lax.rem(x, y)


def power(x, y):
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool) and not isinstance(x, bool):
        (x,) = promote_operands("power", x)
        if get_aval(x).dtype == _dt.bool_:
            x = cast(x, _dt.int32)
        if y >= 0 or _dt.is_float(get_aval(x).dtype):
            return lax.integer_pow(x, int(y))
    x, y = promote_operands("power", x, y)
    if get_aval(x).dtype == _dt.bool_:  # as JAX: bools compute in int32
        x, y = cast(x, _dt.int32), cast(y, _dt.int32)
    dt = get_aval(x).dtype
    if not _dt.is_float(dt) and not isinstance(y, Tracer) and np.any(np.asarray(y) < 0):
        raise ValueError("Integers to negative integer powers are not allowed (as numpy); "
                         "convert the base to float first")
    if _dt.is_float(dt):
        return lax.pow(x, y)
    # integer ** integer array: exact via float64 for |result| < 2**53
    r = lax.pow(cast(x, _dt.float64), cast(y, _dt.float64))
    return cast(lax.round(r), dt)


def maximum(x, y):
    x, y = promote_operands("maximum", x, y)
    return lax.max(x, y)


def minimum(x, y):
    x, y = promote_operands("minimum", x, y)
    return lax.min(x, y)


def clip(x, a_min=None, a_max=None, *, min=None, max=None):
    """numpy's clip (``min=``/``max=`` are numpy 2's names for the bounds)."""
    a_min = min if a_min is None else a_min
    a_max = max if a_max is None else a_max
    x = asarray_operand(x)
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


def _compare(fn, name):
    def f(x, y):
        x, y = promote_operands(name, x, y)
        return fn(x, y)
    f.__name__ = name
    return f


equal = _compare(lax.eq, "equal")
not_equal = _compare(lax.ne, "not_equal")
less = _compare(lax.lt, "less")
less_equal = _compare(lax.le, "less_equal")
greater = _compare(lax.gt, "greater")
greater_equal = _compare(lax.ge, "greater_equal")


def _logical(fn, name):
    def f(x, y):
        x, y = promote_operands(name, cast(asarray_operand(x), _dt.bool_) if not _is_bool(x) else x,
                                cast(asarray_operand(y), _dt.bool_) if not _is_bool(y) else y)
        return fn(x, y)
    f.__name__ = name
    return f


def _is_bool(x):
    return isinstance(x, bool) or get_aval(asarray_operand(x)).dtype == _dt.bool_


logical_and = _logical(lax.and_, "logical_and")
logical_or = _logical(lax.or_, "logical_or")
logical_xor = _logical(lax.xor, "logical_xor")


def logical_not(x):
    x = asarray_operand(x)
    return lax.not_(x if _is_bool(x) else cast(x, _dt.bool_))


def _bitwise(fn, name):
    def f(x, y):
        x, y = promote_operands(name, x, y)
        if _dt.is_float(get_aval(x).dtype):
            raise DTypeError(f"{name} needs integer or bool operands, got {get_aval(x)} and "
                             f"{get_aval(y)}{_at_user_line()}")
        return fn(x, y)
    f.__name__ = name
    return f


bitwise_and = _bitwise(lax.and_, "bitwise_and")
bitwise_or = _bitwise(lax.or_, "bitwise_or")
bitwise_xor = _bitwise(lax.xor, "bitwise_xor")


def invert(x):
    (x,) = promote_operands("invert", x)
    return lax.not_(x)


bitwise_not = invert


def isfinite(x):
    (x,) = promote_operands("isfinite", x)
    if not _dt.is_float(get_aval(x).dtype):
        return full_like(x, True, _dt.bool_)
    return lax.is_finite(x)


def isnan(x):
    (x,) = promote_operands("isnan", x)
    return lax.ne(x, x)


def isinf(x):
    (x,) = promote_operands("isinf", x)
    if not _dt.is_float(get_aval(x).dtype):
        return full_like(x, False, _dt.bool_)
    return lax.eq(lax.abs(x), math.inf)


def where(condition, x=None, y=None):
    if x is None or y is None:
        raise ValueError("where(condition) without x and y has a data-dependent shape; "
                         "pass x and y (tnp.where(cond, x, y))")
    c = asarray_operand(condition)
    if get_aval(c).dtype != _dt.bool_:
        c = cast(c, _dt.bool_)
    x, y = promote_operands("where", x, y)
    shape = _broadcast_shapes("where", get_aval(c).shape, get_aval(x).shape, get_aval(y).shape)
    c, x, y = (lax.broadcast_to_shape(v, shape) if get_aval(v).shape not in ((), shape) else v
               for v in (c, x, y))
    if get_aval(c).shape == () and shape != ():
        c = lax.broadcast_to_shape(c, shape)
    return lax.select(c, x, y)


# ---------------------------------------------------------------- reductions

def _axes(axis, ndim) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1) or (ndim == 0):
            raise ValueError(f"axis {a} is out of bounds for an array of dimension {ndim}")
        out.append(int(a) % ndim)
    return tuple(sorted(out))


def _keep(r, x_shape, axes, keepdims):
    if not keepdims:
        return r
    return lax.reshape(r, tuple(1 if i in axes else d for i, d in enumerate(x_shape)))


def _masked(a, mask, fill):
    """``a`` with the elements where ``mask`` is false replaced by ``fill`` (reductions' where=)."""
    if mask is None:
        return a
    shape = get_aval(a).shape
    m = broadcast_to(cast(asarray_operand(mask), _dt.bool_), shape)
    return lax.select(m, a, lax.full(shape, fill, get_aval(a).dtype))


def sum(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):
    (a,) = promote_operands("sum", a)
    dt = get_aval(a).dtype
    if dtype is not None:
        a = cast(a, _dt.canonical(dtype))
    elif dt == _dt.bool_:
        a = cast(a, _dt.int32)
    a = _masked(a, where, 0)
    axes = _axes(axis, get_aval(a).ndim)
    r = _keep(lax.reduce_sum(a, axes), get_aval(a).shape, axes, keepdims)
    return r if initial is None else lax.add(r, cast(asarray_operand(initial), get_aval(a).dtype))


def prod(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):
    (a,) = promote_operands("prod", a)
    if dtype is not None:
        a = cast(a, _dt.canonical(dtype))
    elif get_aval(a).dtype == _dt.bool_:
        a = cast(a, _dt.int32)
    a = _masked(a, where, 1)
    axes = _axes(axis, get_aval(a).ndim)
    r = _keep(lax.reduce_prod(a, axes), get_aval(a).shape, axes, keepdims)
    return r if initial is None else lax.mul(r, cast(asarray_operand(initial), get_aval(a).dtype))


def _extreme(name, reduce, combine, a, axis, keepdims, initial, where):
    (a,) = promote_operands(name, a)
    if where is not None and initial is None:
        raise ValueError(f"{name}: reduction with where= needs an initial value (as numpy)")
    shape = get_aval(a).shape
    axes = _axes(axis, len(shape))
    if initial is None:
        return _keep(reduce(a, axes), shape, axes, keepdims)
    init = cast(asarray_operand(initial), get_aval(a).dtype)
    if builtins.any(shape[i] == 0 for i in axes):  # empty: the initial value alone
        return full(_reduced(a, axis, keepdims), init, get_aval(a).dtype)
    a = _masked(a, where, init)
    return combine(_keep(reduce(a, axes), shape, axes, keepdims), init)


def max(a, axis=None, keepdims=False, initial=None, where=None):
    return _extreme("max", lax.reduce_max, lax.max, a, axis, keepdims, initial, where)


def min(a, axis=None, keepdims=False, initial=None, where=None):
    return _extreme("min", lax.reduce_min, lax.min, a, axis, keepdims, initial, where)


amax, amin = max, min


def any(a, axis=None, keepdims=False):
    a = asarray_operand(a)
    return max(a if _is_bool(a) else cast(a, _dt.bool_), axis, keepdims) if get_aval(a).size else \
        full(_reduced(a, axis, keepdims), False, _dt.bool_)


def all(a, axis=None, keepdims=False):
    a = asarray_operand(a)
    return min(a if _is_bool(a) else cast(a, _dt.bool_), axis, keepdims) if get_aval(a).size else \
        full(_reduced(a, axis, keepdims), True, _dt.bool_)


def _reduced(a, axis, keepdims):
    shape = get_aval(a).shape
    axes = _axes(axis, len(shape))
    return tuple(1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes)


def mean(a, axis=None, dtype=None, keepdims=False, where=None):
    (a,) = promote_operands("mean", a)
    if dtype is not None:
        a = cast(a, _dt.canonical(dtype))
    elif not _dt.is_float(get_aval(a).dtype):
        a = cast(a, _dt.default_float)
    if where is not None:
        count = sum(broadcast_to(cast(asarray_operand(where), get_aval(a).dtype), get_aval(a).shape),
                    axis, keepdims=keepdims)
        return true_divide(sum(a, axis, keepdims=keepdims, where=where), count)
    axes = _axes(axis, get_aval(a).ndim)
    n = int(np.prod([get_aval(a).shape[i] for i in axes], dtype=np.int64))
    return true_divide(sum(a, axis, keepdims=keepdims), float(n) if n else math.nan)


def var(a, axis=None, ddof=0, keepdims=False):
    (a,) = promote_operands("var", a)
    if not _dt.is_float(get_aval(a).dtype):
        a = cast(a, _dt.default_float)
    axes = _axes(axis, get_aval(a).ndim)
    n = int(np.prod([get_aval(a).shape[i] for i in axes], dtype=np.int64))
    centered = subtract(a, mean(a, axis, keepdims=True))
    return true_divide(sum(square(centered), axis, keepdims=keepdims), float(builtins.max(n - ddof, 0)))


def std(a, axis=None, ddof=0, keepdims=False):
    return sqrt(var(a, axis, ddof, keepdims))


def argmax(a, axis=None, keepdims=False):
    (a,) = promote_operands("argmax", a)
    if axis is None:
        r = argmax(ravel(a), 0)
        return reshape(r, (1,) * get_aval(a).ndim) if keepdims else r
    axis = _axes(axis, get_aval(a).ndim)[0]
    r = lax.argmax(a, axis)
    return _keep(r, get_aval(a).shape, (axis,), keepdims)


def argmin(a, axis=None, keepdims=False):
    (a,) = promote_operands("argmin", a)
    if axis is None:
        r = argmin(ravel(a), 0)
        return reshape(r, (1,) * get_aval(a).ndim) if keepdims else r
    axis = _axes(axis, get_aval(a).ndim)[0]
    r = lax.argmin(a, axis)
    return _keep(r, get_aval(a).shape, (axis,), keepdims)


def _running_operand(op, a, axis, dtype):
    """(array, axis) for cumsum/cumprod: dtype applied (bools count as int32), axis=None
    meaning the flattened array."""
    (a,) = promote_operands(op, a)
    if dtype is not None:
        a = cast(a, _dt.canonical(dtype))
    elif get_aval(a).dtype == _dt.bool_:
        a = cast(a, _dt.int32)
    if axis is None:
        a, axis = ravel(a), 0
    return a, _axes(axis, get_aval(a).ndim)[0]


def cumsum(a, axis=None, dtype=None):
    a, axis = _running_operand("cumsum", a, axis, dtype)
    return lax.cumsum(a, axis)


def cumprod(a, axis=None, dtype=None):
    """Inclusive running product. There is no primitive for it: log2(n) rounds of
    multiplying by a copy shifted k = 1, 2, 4, ... places (padded with ones), so it
    stays static-shaped and differentiable, at O(n log n) work."""
    a, ax = _running_operand("cumprod", a, axis, dtype)
    shape = get_aval(a).shape
    n, k = shape[ax], 1
    one = np.ones((), get_aval(a).dtype)
    while k < n:
        limit = tuple(n - k if i == ax else d for i, d in enumerate(shape))
        kept = lax.slice(a, (0,) * len(shape), limit)
        shifted = lax.pad(kept, one, [(k, 0, 0) if i == ax else (0, 0, 0) for i in range(len(shape))])
        a = lax.mul(a, shifted)
        k *= 2
    return a


# ---------------------------------------------------------------- shapes

def shape(a):
    return get_aval(asarray_operand(a)).shape


def ndim(a):
    return get_aval(asarray_operand(a)).ndim


def size(a):
    return get_aval(asarray_operand(a)).size


def reshape(a, newshape, order="C"):
    if order != "C":
        raise NotImplementedError("only order='C' is supported")
    a = asarray_operand(a)
    sz = get_aval(a).size
    newshape = _shape_tuple(newshape)
    if newshape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension (-1)")
    if -1 in newshape:
        known = int(np.prod([d for d in newshape if d != -1], dtype=np.int64))
        if known == 0 or sz % known:
            raise ShapeError(f"reshape: cannot reshape array of size {sz} into shape {newshape}{_at_user_line()}")
        newshape = tuple(sz // known if d == -1 else d for d in newshape)
    return lax.reshape(a, newshape)


def ravel(a):
    return reshape(a, (-1,))


def transpose(a, axes=None):
    a = asarray_operand(a)
    nd = get_aval(a).ndim
    axes = tuple(reversed(range(nd))) if axes is None else tuple(int(x) % nd for x in axes)
    return lax.transpose(a, axes)


def swapaxes(a, axis1, axis2):
    a = asarray_operand(a)
    nd = get_aval(a).ndim
    perm = list(range(nd))
    perm[axis1 % nd], perm[axis2 % nd] = perm[axis2 % nd], perm[axis1 % nd]
    return lax.transpose(a, perm)


def moveaxis(a, source, destination):
    a = asarray_operand(a)
    nd = get_aval(a).ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src, dst = [s % nd for s in src], [d % nd for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return lax.transpose(a, order)


def expand_dims(a, axis):
    a = asarray_operand(a)
    shp = get_aval(a).shape
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = len(shp) + len(axes)
    axes = sorted(x % nd for x in axes)
    out = list(shp)
    for x in axes:
        out.insert(x, 1)
    return lax.reshape(a, out)


def squeeze(a, axis=None):
    a = asarray_operand(a)
    shp = get_aval(a).shape
    if axis is None:
        axes = [i for i, d in enumerate(shp) if d == 1]
    else:
        axes = [x % len(shp) for x in ((axis,) if isinstance(axis, int) else axis)]
        for x in axes:
            if shp[x] != 1:
                raise ValueError(f"cannot squeeze axis {x} of size {shp[x]}")
    return lax.reshape(a, [d for i, d in enumerate(shp) if i not in axes])


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """The shape that arrays of ``shapes`` broadcast to (numpy's rules), or ShapeError."""
    return _broadcast_shapes("broadcast_shapes", *[_shape_tuple(s) for s in shapes])


def broadcast_arrays(*args) -> list:
    shape = _broadcast_shapes("broadcast_arrays", *[get_aval(asarray_operand(a)).shape for a in args])
    return [broadcast_to(a, shape) for a in args]


def broadcast_to(a, shape):
    return lax.broadcast_to_shape(asarray_operand(a), _shape_tuple(shape))


def atleast_1d(a):
    a = asarray_operand(a)
    return reshape(a, (1,)) if get_aval(a).ndim == 0 else a


def concatenate(arrays, axis=0):
    arrays = promote_operands_list("concatenate", arrays)
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    nd = get_aval(arrays[0]).ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    return lax.concatenate(arrays, axis % nd)


def promote_operands_list(op, arrays):
    arrays = [asarray_operand(a) for a in arrays]
    if not arrays:
        raise ValueError(f"{op} needs at least one array")
    dt, weak = _result_type(*arrays)
    return [cast(a, dt) if not isinstance(a, (bool, int, float)) else np.asarray(a, dt) for a in arrays]


def stack(arrays, axis=0):
    arrays = promote_operands_list("stack", arrays)
    shapes = {get_aval(a).shape for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(f"stack: all input arrays must have the same shape, got {sorted(shapes)}{_at_user_line()}")
    nd = get_aval(arrays[0]).ndim + 1
    return lax.concatenate([expand_dims(a, axis % nd) for a in arrays], axis % nd)


def vstack(arrays):
    return concatenate([reshape(a, (1, -1)) if ndim(a) < 2 else a for a in arrays], 0)


def hstack(arrays):
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, 0 if ndim(arrays[0]) == 1 else 1)


# ---------------------------------------------------------------- linear algebra

def _bool_products(fn):
    """Products of bool arrays are bool (any of the ands), as in numpy and JAX."""
    @functools.wraps(fn)
    def wrapped(a, b, *rest, **kw):
        a, b = asarray_operand(a), asarray_operand(b)
        if _is_bool(a) and _is_bool(b):
            r = fn(cast(a, _dt.int32), cast(b, _dt.int32), *rest, **kw)
            return lax.ne(r, lax.full_like(r, 0))
        return fn(a, b, *rest, **kw)
    return wrapped


@_bool_products
def matmul(a, b):
    a, b = promote_operands_list("matmul", [a, b])
    sa, sb = get_aval(a).shape, get_aval(b).shape
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError("matmul: operands must not be 0-d (use *)")
    a2 = a if len(sa) > 1 else reshape(a, (1,) + sa)
    b2 = b if len(sb) > 1 else reshape(b, sb + (1,))
    sa2, sb2 = get_aval(a2).shape, get_aval(b2).shape
    if sa2[-1] != sb2[-2]:
        raise ShapeError(f"matmul: contracting dimensions differ: {sa} @ {sb}{_at_user_line()}")
    batch = _broadcast_shapes("matmul", sa2[:-2], sb2[:-2])
    a3 = broadcast_to(a2, batch + sa2[-2:])
    b3 = broadcast_to(b2, batch + sb2[-2:])
    nb = len(batch)
    out = lax.dot_general(a3, b3, (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb)))))
    if len(sa) == 1:
        out = squeeze(out, -2)
    if len(sb) == 1:
        out = squeeze(out, -1)
    return out


@_bool_products
def dot(a, b):
    a, b = promote_operands_list("dot", [a, b])
    sa, sb = get_aval(a).shape, get_aval(b).shape
    if len(sa) == 0 or len(sb) == 0:
        return multiply(a, b)
    if len(sb) == 1:
        return lax.dot_general(a, b, (((len(sa) - 1,), (0,)), ((), ())))
    return lax.dot_general(a, b, (((len(sa) - 1,), (len(sb) - 2,)), ((), ())))


def vdot(a, b):
    return dot(ravel(a), ravel(b))


@_bool_products
def inner(a, b):
    a, b = promote_operands_list("inner", [a, b])
    sa, sb = get_aval(a).shape, get_aval(b).shape
    if not sa or not sb:
        return multiply(a, b)
    return lax.dot_general(a, b, (((len(sa) - 1,), (len(sb) - 1,)), ((), ())))


def outer(a, b):
    a, b = ravel(asarray_operand(a)), ravel(asarray_operand(b))
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


@_bool_products
def tensordot(a, b, axes=2):
    a, b = promote_operands_list("tensordot", [a, b])
    na, nb = get_aval(a).ndim, get_aval(b).ndim
    if isinstance(axes, int):
        ca, cb = tuple(range(na - axes, na)), tuple(range(axes))
    else:
        ca, cb = axes
        ca = (ca,) if isinstance(ca, int) else tuple(ca)
        cb = (cb,) if isinstance(cb, int) else tuple(cb)
    return lax.dot_general(a, b, ((tuple(x % na for x in ca), tuple(x % nb for x in cb)), ((), ())))





def trace(a, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None):
    """Sum along a diagonal (numpy's ``trace``)."""
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


# ---------------------------------------------------------------- dtypes

dtype = np.dtype
finfo, iinfo = np.finfo, np.iinfo
issubdtype = np.issubdtype
floating, integer, number = np.floating, np.integer, np.number
signedinteger, inexact = np.signedinteger, np.inexact


def result_type(*args) -> np.dtype:
    """The dtype operands promote to (JAX's table; Python scalars are weak)."""
    ops = [a if isinstance(a, (Tracer, builtins.bool, builtins.int, builtins.float)) else
           (np.zeros((), _dt.canonical(a)) if isinstance(a, (np.dtype, type, str)) else asarray_operand(a))
           for a in args]
    return _result_type(*ops)[0]


def promote_types(type1, type2) -> np.dtype:
    return _result_type(np.zeros((), _dt.canonical(type1)), np.zeros((), _dt.canonical(type2)))[0]


def result_type_of(*xs):
    return _result_type(*[asarray_operand(x) for x in xs])[0]


def copy(a):
    return asarray(a)


def astype(x, dtype):
    return cast(asarray_operand(x), _dt.canonical(dtype))


from ._indexing import take, getitem, AtIndexer  # noqa: E402
from ._einsum import einsum  # noqa: E402,F401
from ._shapes import (  # noqa: E402,F401
    array_split, split, hsplit, vsplit, tile, repeat, flip, fliplr, flipud, roll, diagonal, diag,
    diagflat, tri, triu, tril, meshgrid, pad, diff, append, take_along_axis, atleast_2d, atleast_3d,
    column_stack, dstack, indices, unravel_index, ravel_multi_index, kron, convolve, correlate)
from ._stats import bincount, isin, cov, corrcoef  # noqa: E402,F401
from ._math import (  # noqa: E402,F401
    logaddexp, logaddexp2, hypot, nan_to_num, heaviside, deg2rad, rad2deg, radians, degrees,
    arcsinh, arccosh, arctanh, cbrt, signbit, copysign, sinc, fabs, float_power, isclose, allclose,
    array_equal, count_nonzero, nansum, nanmax, nanmin, nanmean, average, ptp, select, sort, argsort,
    median, percentile, quantile, nonzero, flatnonzero, argwhere, unique, fmax, fmin,
    searchsorted, interp, cross, logspace, geomspace)
from ._math import divmod_ as divmod  # noqa: E402
from . import linalg  # noqa: E402,F401


def _eager_array(fn):
    """Eager mode returns numpy arrays: a Python scalar passed through unchanged (e.g.
    ``sum(2.0)``) comes back as a 0-d array of its default dtype."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        r = fn(*args, **kwargs)
        if isinstance(r, np.generic):  # numpy scalars from operators on 0-d arrays
            return np.asarray(r)
        return asarray(r) if isinstance(r, (builtins.bool, builtins.int, builtins.float)) else r
    return wrapped


for _name in ("sum", "prod", "max", "min", "amax", "amin", "ptp", "positive", "clip", "squeeze",
              "transpose", "flip", "floor", "ceil", "rint", "trunc", "round", "around", "deg2rad",
              "rad2deg", "degrees", "radians", "signbit", "nan_to_num", "nansum", "nanmax", "nanmin"):
    globals()[_name] = _eager_array(globals()[_name])
del _name
