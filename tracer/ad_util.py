"""Helpers for derivative rules.

* Symbolic zeros: a ``Zero`` stands for an all-zero tangent or cotangent without
  materialising it, so rules never add or multiply by zero arrays.
* Known fills: the seed cotangent of ``grad`` is the constant 1.0 and reduction
  rules broadcast it. ``broadcast_ct`` remembers when a broadcast cotangent is a
  constant fill and ``mul_ct`` uses that to skip multiplying by a materialised one
  (or to multiply by a scalar literal instead of a broadcast array).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .core import Tracer, get_aval
from .ir import ShapedArray


class Zero:
    """An all-zero tangent/cotangent of the given abstract value."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval})"


def is_zero(x) -> bool:
    return x is None or isinstance(x, Zero)


def zeros_like_aval(aval: ShapedArray):
    from . import lax
    return lax.full(aval.shape, 0, aval.dtype)


def instantiate(t, aval: ShapedArray | None = None):
    """A real array for a tangent that may be symbolic zero."""
    if isinstance(t, Zero):
        return zeros_like_aval(t.aval)
    if t is None:
        return zeros_like_aval(aval)
    return t


def add_tangents(a, b):
    if is_zero(a):
        return b
    if is_zero(b):
        return a
    from . import lax
    return lax.add(a, b)


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    return aval.strip_weak()


def zero_for(x) -> Zero:
    return Zero(get_aval(x).strip_weak())


# ---------------------------------------------------------------- known constant fills

# id(tracer) -> (tracer, fill value). The tracer is kept alive so its id stays unique;
# entries of finished traces are dropped as the table grows.
_FILLS: dict[int, tuple[Tracer, Any]] = {}


def known_fill(x):
    """The scalar every element of ``x`` equals, when that is known without
    looking at traced data; else None."""
    if isinstance(x, Tracer):
        entry = _FILLS.get(id(x))
        return entry[1] if entry is not None and entry[0] is x else None
    if isinstance(x, (bool, int, float)):
        return x
    arr = np.asarray(x)
    if arr.size == 0 or arr.dtype.kind not in "biuf":
        return None
    first = arr.flat[0]
    return first.item() if np.all(arr == first) else None


def _remember_fill(t, value):
    if len(_FILLS) > 512:
        for k in [k for k, (tr, _) in _FILLS.items() if not tr.builder.alive]:
            del _FILLS[k]
    _FILLS[id(t)] = (t, value)


def broadcast_ct(ct, shape, broadcast_dimensions):
    """``broadcast_in_dim`` of a cotangent, remembering constant fills."""
    from .primitives.shape import broadcast_in_dim
    out = broadcast_in_dim(ct, shape, broadcast_dimensions)
    if isinstance(out, Tracer) and out is not ct:
        v = known_fill(ct)
        if v is not None:
            _remember_fill(out, v)
    return out


def mul_ct(t, d):
    """``t * d`` for a tangent/cotangent ``t`` and a partial derivative ``d`` (either
    may be a Python scalar), skipping the product when one side is a known 1."""
    from . import lax
    ta, da = _aval_or_none(t), _aval_or_none(d)
    out_shape = ta.shape if ta is not None and ta.shape != () else (da.shape if da is not None else ())
    for a, b, b_aval in ((t, d, da), (d, t, ta)):
        v = known_fill(a)
        if v is None or b_aval is None or b_aval.shape != out_shape:
            continue
        if v == 1:
            return b
        if v == -1:
            return lax.neg(b)
        if isinstance(a, Tracer):  # a broadcast constant: multiply by the scalar instead
            return lax.mul(b, np.asarray(v, b_aval.dtype))
    return lax.mul(t, d)


def _aval_or_none(x):
    return None if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic) else get_aval(x)
