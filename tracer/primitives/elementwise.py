"""Elementwise primitives: unary math, binary arithmetic, comparisons, logic,
select, convert_element_type, integer_pow, stop_gradient.

Operands share one dtype; shapes are equal or 0-d (a 0-d operand acts as a scalar).
Each primitive is one block: type rule, numpy implementation, derivative, batching.
A unary rule is given as ``deriv(x, y) -> dy/dx`` and yields both JVP and VJP.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .. import dtypes
from ..ad_util import Zero, is_zero, instantiate, mul_ct
from ..core import Primitive, get_aval, is_tracer
from ..ir import ShapedArray
from .common import check_kinds, dtype_error, elementwise_aval


def _coerce(*args):
    """Python scalars take the dtype of the array operands (lax-level convenience)."""
    def py(a):  # np.float64 subclasses float but has a dtype of its own
        return isinstance(a, (int, float, bool)) and not isinstance(a, np.generic)
    ref = next((a for a in args if not py(a)), None)
    if ref is None:
        return args
    dt = get_aval(ref).dtype
    return tuple(np.asarray(a, dt) if py(a) else a for a in args)


def _unbroadcast(ct, aval: ShapedArray):
    """Sum a cotangent down to a 0-d operand's shape."""
    if is_zero(ct):
        return None
    if aval.shape == () and get_aval(ct).shape != ():
        from .reductions import reduce_sum
        return reduce_sum(ct, tuple(range(get_aval(ct).ndim)))
    return ct


# ---------------------------------------------------------------- batching

def elementwise_batch(prim):
    """The result keeps the batch axis of the first batched operand of the full
    per-example shape (so a chain of elementwise ops batched along any axis needs no
    transposes); other operands are moved or broadcast to match, except unbatched 0-d
    operands, which stay scalars."""
    def rule(args, dims, **params):
        from .shape import broadcast_in_dim, moveaxis
        size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
        shapes = [get_aval(a).shape if d is None else
                  get_aval(a).shape[:d] + get_aval(a).shape[d + 1:] for a, d in zip(args, dims)]
        example = next((s for s in shapes if s != ()), ())
        out_d = next((d for d, s in zip(dims, shapes) if d is not None and s == example), 0)
        full = example[:out_d] + (size,) + example[out_d:]
        rest = tuple(i for i in range(len(full)) if i != out_d)
        new = []
        for a, d, s in zip(args, dims, shapes):
            if d is None:
                new.append(a if s == () else broadcast_in_dim(a, full, rest))
            elif s == example:
                new.append(moveaxis(a, d, out_d))
            else:  # a batched 0-d operand among larger ones
                new.append(broadcast_in_dim(a, full, (out_d,)))
        return prim.bind(*new, **params), out_d
    return rule


# ---------------------------------------------------------------- factories

def _nondiff_jvp(prim):
    def jvp(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        if prim.multiple_results:
            return out, [Zero(get_aval(o).strip_weak()) for o in out]
        return out, Zero(get_aval(out).strip_weak())
    return jvp


def _nondiff_vjp(ct, primals, out, **params):
    return [None] * len(primals)


def nondifferentiable(prim):
    """Integer/bool-valued or piecewise-constant: zero derivative everywhere."""
    prim.jvp = _nondiff_jvp(prim)
    prim.vjp = _nondiff_vjp


def unary(name: str, impl, deriv=None, kinds: str = "f", out_dtype=None):
    """A unary elementwise primitive; ``deriv(x, y)`` gives dy/dx (None: zero derivative)."""
    p = Primitive(name)
    p.abstract_eval = lambda x, **_: elementwise_aval(name, [x], kinds, out_dtype)

    def run(x):
        with np.errstate(all="ignore"):
            return impl(x)
    p.impl = run
    p.batch = elementwise_batch(p)
    if deriv is None:
        nondifferentiable(p)
    else:
        def jvp(primals, tangents):
            (x,), (t,) = primals, tangents
            y = p.bind(x)
            return y, (Zero(get_aval(y).strip_weak()) if is_zero(t) else mul_ct(t, deriv(x, y)))

        def vjp(ct, primals, out):
            return [None if is_zero(ct) else mul_ct(ct, deriv(primals[0], out))]
        p.jvp, p.vjp = jvp, vjp

    def wrapper(x):
        return p.bind(x)
    wrapper.__name__ = name
    return p, wrapper


def binary(name: str, impl, derivs=None, kinds: str = "fi", out_dtype=None):
    """A binary elementwise primitive; ``derivs = (d/dx, d/dy)``, each ``f(x, y, out)``."""
    p = Primitive(name)
    p.abstract_eval = lambda x, y, **_: elementwise_aval(name, [x, y], kinds, out_dtype)

    def run(x, y):
        with np.errstate(all="ignore"):
            return impl(x, y)
    p.impl = run
    p.batch = elementwise_batch(p)
    if derivs is None:
        nondifferentiable(p)
    else:
        dx, dy = derivs

        def jvp(primals, tangents):
            x, y = primals
            out = p.bind(x, y)
            terms = [mul_ct(t, d(x, y, out)) for t, d in zip(tangents, (dx, dy)) if not is_zero(t)]
            if not terms:
                return out, Zero(get_aval(out).strip_weak())
            t_out = terms[0] if len(terms) == 1 else add(*terms)
            if get_aval(t_out).shape != get_aval(out).shape:
                from .shape import broadcast_in_dim
                t_out = broadcast_in_dim(t_out, get_aval(out).shape, ())
            return out, t_out

        def vjp(ct, primals, out):
            if is_zero(ct):
                return [None, None]
            x, y = primals
            return [_unbroadcast(mul_ct(ct, dx(x, y, out)), get_aval(x)),
                    _unbroadcast(mul_ct(ct, dy(x, y, out)), get_aval(y))]
        p.jvp, p.vjp = jvp, vjp

    def wrapper(x, y):
        return p.bind(*_coerce(x, y))
    wrapper.__name__ = name
    return p, wrapper


def linear_binary(p, sign_y: float):
    """add/sub: the derivative passes tangents through (negated for sub's y)."""
    def jvp(primals, tangents):
        out = p.bind(*primals)
        tx, ty = tangents
        shape = get_aval(out).shape
        if is_zero(tx) and is_zero(ty):
            return out, Zero(get_aval(out).strip_weak())
        if is_zero(ty):
            t = tx
        elif is_zero(tx):
            t = ty if sign_y > 0 else neg(ty)
        else:
            t = p.bind(tx, ty)
        if get_aval(t).shape != shape:
            from .shape import broadcast_in_dim
            t = broadcast_in_dim(t, shape, ())
        return out, t

    def vjp(ct, primals, out):
        if is_zero(ct):
            return [None, None]
        x, y = primals
        cy = ct if sign_y > 0 else neg(ct)
        return [_unbroadcast(ct, get_aval(x)), _unbroadcast(cy, get_aval(y))]
    p.jvp, p.vjp = jvp, vjp


# ---------------------------------------------------------------- integer semantics

def _int_div(x, y):
    """C-style division truncating toward zero; x / 0 = 0 and INT_MIN / -1 = INT_MIN."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind == "f":
        return np.true_divide(x, y)
    safe = np.where(y == 0, 1, y)
    q = np.abs(x) // np.abs(safe)
    q = np.where((x < 0) != (safe < 0), -q, q).astype(x.dtype)
    return np.where(y == 0, np.zeros_like(q), q)


def _int_rem(x, y):
    """Remainder with the sign of the dividend (C fmod); x % 0 = 0."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind == "f":
        return np.fmod(x, y)
    safe = np.where(y == 0, 1, y)
    r = np.fmod(x, safe)
    return np.where(y == 0, np.zeros_like(r), r)


def _logistic(x):
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


_erf_vec = np.vectorize(math.erf, otypes=[np.float64])


def _erf(x):
    x = np.asarray(x)
    return _erf_vec(x).astype(x.dtype) if x.size else x.copy()


def _round(x):
    return np.round(x)  # half to even, as numpy and JAX


# ---------------------------------------------------------------- arithmetic

add_p, add = binary("add", np.add)
linear_binary(add_p, +1)
sub_p, sub = binary("sub", np.subtract)
linear_binary(sub_p, -1)

mul_p, mul = binary("mul", np.multiply,
                    (lambda x, y, o: y, lambda x, y, o: x), kinds="fib")
div_p, div = binary("div", _int_div,
                    (lambda x, y, o: div(1.0, y), lambda x, y, o: neg(div(o, y))))
rem_p, rem = binary("rem", _int_rem,
                    (lambda x, y, o: 1.0,
                     lambda x, y, o: neg(mul(sign(div(x, y)), floor(abs(div(x, y)))))))


def _ones(x, like):
    from .shape import full_like
    return full_like(like, 1)


def _pow_dx(x, y, out):
    # y * x**(y-1), with 0 where y == 0 (so d/dx 0**0 = 0, as in JAX)
    d = mul(y, pow(x, sub(y, 1.0)))
    return select(eq(y, _zeros(y)), _zeros(d), d)


def _pow_dy(x, y, out):
    # log(x) * x**y, with log(0) replaced by 0 so the derivative at x = 0 is 0
    safe_x = select(eq(x, _zeros(x)), _ones(x, x), x)
    return mul(log(safe_x), out)


def _zeros(like):
    from .shape import full_like
    return full_like(like, 0)


pow_p, pow = binary("pow", np.power, (_pow_dx, _pow_dy), kinds="f")


def _tie_weight(x, y, strict):
    """1 where x wins, 0.5 at ties, 0 where y wins (JAX's convention for max/min)."""
    win = convert_element_type(strict(x, y), get_aval(x).dtype)
    tie = convert_element_type(eq(x, y), get_aval(x).dtype)
    return add(win, mul(tie, 0.5))


max_p, max = binary("max", np.maximum,
                    (lambda x, y, o: _tie_weight(x, y, gt), lambda x, y, o: _tie_weight(y, x, gt)),
                    kinds="fib")
min_p, min = binary("min", np.minimum,
                    (lambda x, y, o: _tie_weight(x, y, lt), lambda x, y, o: _tie_weight(y, x, lt)),
                    kinds="fib")
atan2_p, atan2 = binary("atan2", np.arctan2,
                        (lambda x, y, o: div(y, add(mul(x, x), mul(y, y))),
                         lambda x, y, o: neg(div(x, add(mul(x, x), mul(y, y))))), kinds="f")

# ---------------------------------------------------------------- unary math

neg_p, neg = unary("neg", np.negative, None, kinds="fi")
neg_p.jvp = lambda primals, tangents: (neg(primals[0]), tangents[0] if is_zero(tangents[0]) else neg(tangents[0]))
neg_p.vjp = lambda ct, primals, out: [None if is_zero(ct) else neg(ct)]

sign_p, sign = unary("sign", np.sign, None, kinds="fi")
floor_p, floor = unary("floor", np.floor, None)
ceil_p, ceil = unary("ceil", np.ceil, None)
round_p, round = unary("round", _round, None)
is_finite_p, is_finite = unary("is_finite", np.isfinite, None, out_dtype=dtypes.bool_)

exp_p, exp = unary("exp", np.exp, lambda x, y: y)
exp2_p, exp2 = unary("exp2", np.exp2, lambda x, y: mul(y, math.log(2.0)))
log_p, log = unary("log", np.log, lambda x, y: div(1.0, x))
log1p_p, log1p = unary("log1p", np.log1p, lambda x, y: div(1.0, add(x, 1.0)))
expm1_p, expm1 = unary("expm1", np.expm1, lambda x, y: add(y, 1.0))
sin_p, sin = unary("sin", np.sin, lambda x, y: cos(x))
cos_p, cos = unary("cos", np.cos, lambda x, y: neg(sin(x)))
tan_p, tan = unary("tan", np.tan, lambda x, y: add(mul(y, y), 1.0))
tanh_p, tanh = unary("tanh", np.tanh, lambda x, y: sub(1.0, mul(y, y)))
atan_p, atan = unary("atan", np.arctan, lambda x, y: div(1.0, add(mul(x, x), 1.0)))
sqrt_p, sqrt = unary("sqrt", np.sqrt, lambda x, y: div(0.5, y))
rsqrt_p, rsqrt = unary("rsqrt", lambda x: 1 / np.sqrt(x), lambda x, y: mul(div(y, x), -0.5))
logistic_p, logistic = unary("logistic", _logistic, lambda x, y: mul(y, sub(1.0, y)))
erf_p, erf = unary("erf", _erf, lambda x, y: mul(exp(neg(mul(x, x))), 2.0 / math.sqrt(math.pi)))
# d|x|/dx = sign(x), with 1 at 0 (JAX's convention)
abs_p, abs = unary("abs", np.abs,
                   lambda x, y: select(ge(x, _zeros(x)), _ones(x, x), neg(_ones(x, x))), kinds="fi")


def _abs_signed(x, t):
    """``t`` where x >= 0, ``-t`` elsewhere: the derivative of |x| applied without a sign array."""
    return select(ge(x, _zeros(x)), t, neg(t))


abs_p.jvp = lambda primals, tangents: (
    abs(primals[0]),
    Zero(get_aval(primals[0]).strip_weak()) if is_zero(tangents[0]) else _abs_signed(primals[0], tangents[0]))
abs_p.vjp = lambda ct, primals, out: [None if is_zero(ct) else _abs_signed(primals[0], ct)]

# ---------------------------------------------------------------- comparisons and logic

eq_p, eq = binary("eq", np.equal, kinds="fib", out_dtype=dtypes.bool_)
ne_p, ne = binary("ne", np.not_equal, kinds="fib", out_dtype=dtypes.bool_)
lt_p, lt = binary("lt", np.less, kinds="fib", out_dtype=dtypes.bool_)
le_p, le = binary("le", np.less_equal, kinds="fib", out_dtype=dtypes.bool_)
gt_p, gt = binary("gt", np.greater, kinds="fib", out_dtype=dtypes.bool_)
ge_p, ge = binary("ge", np.greater_equal, kinds="fib", out_dtype=dtypes.bool_)

and_p, and_ = binary("and", np.bitwise_and, kinds="ib")
or_p, or_ = binary("or", np.bitwise_or, kinds="ib")
xor_p, xor = binary("xor", np.bitwise_xor, kinds="ib")
not_p, not_ = unary("not", np.invert, None, kinds="ib")

# ---------------------------------------------------------------- select

select_p = Primitive("select")


def _select_aval(pred, on_true, on_false, **_):
    if pred.dtype != dtypes.bool_:
        raise dtype_error("select", f"predicate must be bool, got {pred.dtype.name}", pred)
    out = elementwise_aval("select", [on_true, on_false])
    if pred.shape not in ((), out.shape) and out.shape != ():
        raise dtype_error("select", "predicate shape must match the operands or be 0-d",
                          pred, on_true, on_false)
    shape = out.shape if out.shape != () else pred.shape
    return ShapedArray(shape, out.dtype, out.weak_type)


select_p.abstract_eval = _select_aval
select_p.impl = lambda p, a, b: np.where(p, a, b)
select_p.batch = elementwise_batch(select_p)


def _select_jvp(primals, tangents):
    p, a, b = primals
    out = select_p.bind(p, a, b)
    _, ta, tb = tangents
    if is_zero(ta) and is_zero(tb):
        return out, Zero(get_aval(out).strip_weak())
    aval = get_aval(out).strip_weak()
    ta = instantiate(ta, ShapedArray(get_aval(a).shape, aval.dtype))
    tb = instantiate(tb, ShapedArray(get_aval(b).shape, aval.dtype))
    return out, select_p.bind(p, ta, tb)


def _select_vjp(ct, primals, out):
    if is_zero(ct):
        return [None, None, None]
    p, a, b = primals
    z = _zeros(ct)
    return [None, _unbroadcast(select_p.bind(p, ct, z), get_aval(a)),
            _unbroadcast(select_p.bind(p, z, ct), get_aval(b))]


select_p.jvp, select_p.vjp = _select_jvp, _select_vjp


def select(pred, on_true, on_false):
    on_true, on_false = _coerce(on_true, on_false)
    return select_p.bind(pred, on_true, on_false)


# ---------------------------------------------------------------- convert_element_type

convert_element_type_p = Primitive("convert_element_type")


def _convert_aval(x, *, new_dtype, weak_type=False):
    return ShapedArray(x.shape, new_dtype, weak_type)


def _convert_impl(x, *, new_dtype, weak_type=False):
    x = np.asarray(x)
    nd = np.dtype(new_dtype)
    if nd.kind in "iu" and x.dtype.kind == "f":
        # float -> int: truncate; NaN -> 0, out of range saturates (defined, unlike C)
        info = np.iinfo(nd)
        with np.errstate(all="ignore"):
            # in float64, and compared before casting: float32(INT32_MAX) rounds up to 2**31
            t = np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0))
            hi, lo = t >= float(info.max), t <= float(info.min)
            out = np.where(hi | lo, 0, t).astype(nd)
            return np.where(hi, info.max, np.where(lo, info.min, out)).astype(nd)
    if nd == dtypes.bool_:
        return x != 0
    return x.astype(nd)


def _convert_jvp(primals, tangents, *, new_dtype, weak_type=False):
    (x,), (t,) = primals, tangents
    out = convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=weak_type)
    if is_zero(t) or not dtypes.is_float(new_dtype) or not dtypes.is_float(get_aval(x).dtype):
        return out, Zero(get_aval(out).strip_weak())
    return out, convert_element_type_p.bind(t, new_dtype=new_dtype, weak_type=False)


def _convert_vjp(ct, primals, out, *, new_dtype, weak_type=False):
    x = primals[0]
    if is_zero(ct) or not dtypes.is_float(get_aval(x).dtype) or not dtypes.is_float(new_dtype):
        return [None]
    return [convert_element_type_p.bind(ct, new_dtype=get_aval(x).dtype, weak_type=False)]


def _convert_batch(args, dims, **params):
    return convert_element_type_p.bind(args[0], **params), dims[0]


convert_element_type_p.abstract_eval = _convert_aval
convert_element_type_p.impl = _convert_impl
convert_element_type_p.jvp = _convert_jvp
convert_element_type_p.vjp = _convert_vjp
convert_element_type_p.batch = _convert_batch


def convert_element_type(x, dtype, weak_type: bool = False):
    dtype = dtypes.canonical(dtype)
    aval = get_aval(x)
    if aval.dtype == dtype and aval.weak_type == weak_type:
        return x
    return convert_element_type_p.bind(x, new_dtype=dtype, weak_type=weak_type)


# ---------------------------------------------------------------- integer_pow

integer_pow_p = Primitive("integer_pow")


def _integer_pow_aval(x, *, y):
    check_kinds("integer_pow", [x], "fi")
    if y < 0 and not dtypes.is_float(x.dtype):
        raise dtype_error("integer_pow", f"negative power {y} of an integer array", x)
    return x


def _integer_pow_impl(x, *, y):
    with np.errstate(all="ignore"):
        if y == 0:
            return np.ones_like(x)
        r = np.ones_like(x)
        base, n = np.asarray(x), builtins.abs(y)
        while n:  # exact repeated squaring, the same evaluation order as the lowering
            if n & 1:
                r = r * base
            base = base * base
            n >>= 1
        return 1 / r if y < 0 else r


def _integer_pow_deriv(x, y):
    if y == 1:
        return 1.0
    return mul(x if y == 2 else integer_pow(x, y - 1), float(y))


def _integer_pow_jvp(primals, tangents, *, y):
    (x,), (t,) = primals, tangents
    out = integer_pow_p.bind(x, y=y)
    if is_zero(t) or y == 0:
        return out, Zero(get_aval(out).strip_weak())
    return out, mul_ct(t, _integer_pow_deriv(x, y))


def _integer_pow_vjp(ct, primals, out, *, y):
    return [None if is_zero(ct) or y == 0 else mul_ct(ct, _integer_pow_deriv(primals[0], y))]


integer_pow_p.abstract_eval = _integer_pow_aval
integer_pow_p.impl = _integer_pow_impl
integer_pow_p.jvp = _integer_pow_jvp
integer_pow_p.vjp = _integer_pow_vjp
integer_pow_p.batch = elementwise_batch(integer_pow_p)


def integer_pow(x, y: int):
    return integer_pow_p.bind(x, y=int(y))


# ---------------------------------------------------------------- stop_gradient

stop_gradient_p = Primitive("stop_gradient")
stop_gradient_p.abstract_eval = lambda x: x
stop_gradient_p.impl = lambda x: np.array(x)
stop_gradient_p.batch = lambda args, dims: (stop_gradient_p.bind(args[0]), dims[0])
nondifferentiable(stop_gradient_p)


def stop_gradient(x):
    """The identity whose derivative is zero (applied to every leaf of a pytree)."""
    from ..pytree import tree_map
    return tree_map(lambda v: stop_gradient_p.bind(v) if is_tracer(v) else v, x)
