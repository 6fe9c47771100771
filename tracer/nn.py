"""Neural-network functions (as ``jax.nn``), composed from ``tracer.numpy``.

Everything here is sugar over the primitives, so it traces, differentiates and
batches like any other numpy code. ``logsumexp``, ``softmax`` and ``log_softmax``
subtract the maximum first (under ``stop_gradient``), so they stay finite at large
inputs and their derivatives are exact.
"""
from __future__ import annotations

import math

import numpy as np

from . import dtypes
from . import lax
from . import numpy as tnp
from .core import get_aval
from .numpy._core import asarray_operand, cast, promote_operands
from .primitives.elementwise import stop_gradient


def _float(name, x):
    (x,) = promote_operands(name, x, to_float=True)
    return x


def relu(x):
    """max(x, 0); the derivative at 0 is 0 (as JAX)."""
    (x,) = promote_operands("relu", x)
    return tnp.where(tnp.greater(x, 0), x, tnp.zeros_like(x))


def relu6(x):
    return tnp.minimum(relu(x), 6.0)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed by the stable ``logistic`` primitive."""
    return lax.logistic(_float("sigmoid", x))


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x)."""
    return tnp.negative(softplus(tnp.negative(_float("log_sigmoid", x))))


def softplus(x):
    """log(1 + exp(x)) without overflow."""
    x = _float("softplus", x)
    return tnp.logaddexp(x, 0.0)


def silu(x):
    """x * sigmoid(x) (also called swish)."""
    x = _float("silu", x)
    return tnp.multiply(x, sigmoid(x))


swish = silu


def elu(x, alpha=1.0):
    x = _float("elu", x)
    safe = tnp.where(tnp.greater(x, 0), tnp.zeros_like(x), x)  # no overflow in the unused branch
    return tnp.where(tnp.greater(x, 0), x, tnp.multiply(alpha, tnp.expm1(safe)))


def leaky_relu(x, negative_slope=0.01):
    x = _float("leaky_relu", x)
    return tnp.where(tnp.greater_equal(x, 0), x, tnp.multiply(negative_slope, x))


def gelu(x, approximate: bool = True):
    """Gaussian error linear unit. ``approximate=True``: the tanh form;
    ``approximate=False``: x * Phi(x) with erf."""
    x = _float("gelu", x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        inner = tnp.multiply(c, tnp.add(x, tnp.multiply(0.044715, tnp.power(x, 3))))
        return tnp.multiply(tnp.multiply(0.5, x), tnp.add(1.0, tnp.tanh(inner)))
    return tnp.multiply(tnp.multiply(0.5, x), tnp.add(1.0, lax.erf(tnp.multiply(x, 1.0 / math.sqrt(2.0)))))


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(a) % ndim for a in axes) if ndim else ()


def logsumexp(a, axis=None, b=None, keepdims: bool = False, return_sign: bool = False):
    """log(sum(b * exp(a))) over ``axis``, stable at large inputs (``jax.nn.logsumexp``'s
    signature). With ``return_sign`` returns (log|s|, sign(s)); otherwise a negative
    sum gives NaN."""
    a = _float("logsumexp", a)
    if b is not None:
        a, b = promote_operands("logsumexp", a, b, to_float=True)
    nd = get_aval(a).ndim
    axes = _axes(axis, nd)
    if get_aval(a).size == 0 or any(get_aval(a).shape[i] == 0 for i in axes):
        m = tnp.zeros([1 if i in axes else d for i, d in enumerate(get_aval(a).shape)], get_aval(a).dtype)
    else:
        m = stop_gradient(tnp.max(a, axis=axes, keepdims=True))
        m = tnp.where(tnp.isfinite(m), m, tnp.zeros_like(m))  # all -inf (or inf) slices: no shift
    e = tnp.exp(tnp.subtract(a, m))
    if b is not None:
        e = tnp.multiply(b, e)
    s = tnp.sum(e, axis=axes, keepdims=True)
    sign = tnp.sign(s)
    if return_sign:
        s = tnp.abs(s)
    out = tnp.add(tnp.log(s), m)
    if not keepdims:
        out = tnp.squeeze(out, axes) if axes else out
        sign = tnp.squeeze(sign, axes) if axes else sign
    return (out, sign) if return_sign else out


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis``, computed stably."""
    x = _float("log_softmax", x)
    axes = _axes(axis, get_aval(x).ndim)
    m = stop_gradient(tnp.max(x, axis=axes, keepdims=True))
    m = tnp.where(tnp.isfinite(m), m, tnp.zeros_like(m))
    shifted = tnp.subtract(x, m)
    return tnp.subtract(shifted, tnp.log(tnp.sum(tnp.exp(shifted), axis=axes, keepdims=True)))


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, computed stably."""
    x = _float("softmax", x)
    axes = _axes(axis, get_aval(x).ndim)
    m = stop_gradient(tnp.max(x, axis=axes, keepdims=True))
    m = tnp.where(tnp.isfinite(m), m, tnp.zeros_like(m))
    e = tnp.exp(tnp.subtract(x, m))
    return tnp.divide(e, tnp.sum(e, axis=axes, keepdims=True))


def standardize(x, axis=-1, mean=None, variance=None, epsilon=1e-5):
    """(x - mean) / sqrt(variance + epsilon), the statistics taken along ``axis``."""
    x = _float("standardize", x)
    if mean is None:
        mean = tnp.mean(x, axis=axis, keepdims=True)
    if variance is None:
        variance = tnp.var(x, axis=axis, keepdims=True)
    return tnp.multiply(tnp.subtract(x, mean), lax.rsqrt(tnp.add(variance, epsilon)))


def one_hot(x, num_classes: int, *, dtype=dtypes.float32, axis=-1):
    """``out[..., k, ...] = (x[...] == k)`` with the class axis at ``axis`` (JAX's signature)."""
    x = asarray_operand(x)
    if not isinstance(num_classes, (int, np.integer)):
        raise TypeError("one_hot: num_classes must be a Python int (it sets the output shape)")
    shape = get_aval(x).shape
    nd = len(shape) + 1
    ax = int(axis) % nd
    out_shape = shape[:ax] + (int(num_classes),) + shape[ax:]
    classes = lax.iota(get_aval(x).dtype if dtypes.is_int(get_aval(x).dtype) else dtypes.int32,
                       out_shape, ax)
    xb = lax.broadcast_in_dim(x, out_shape, tuple(i for i in range(nd) if i != ax))
    if get_aval(xb).dtype != get_aval(classes).dtype:
        xb = cast(xb, get_aval(classes).dtype) if dtypes.is_int(get_aval(xb).dtype) else xb
        classes = cast(classes, get_aval(xb).dtype)
    return cast(lax.eq(xb, classes), dtypes.canonical(dtype))
