"""Symbolic zeros for derivative rules: a ``Zero`` stands for an all-zero tangent or
cotangent without materialising it, so rules never add or multiply by zero arrays."""
from __future__ import annotations

from .core import get_aval
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
