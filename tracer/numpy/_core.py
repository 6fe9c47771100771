"""Operand handling shared by the numpy-like namespace: conversion, dtype
promotion (JAX's table with weak Python scalars) and numpy broadcasting."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Tracer, concrete_aval, get_aval
from ..errors import ShapeError
from ..core import where
from .. import lax


def is_array_like(x) -> bool:
    return isinstance(x, (Tracer, np.ndarray, np.generic, bool, int, float))


def asarray_operand(x):
    """A tracer stays; anything else becomes a numpy array or a Python scalar (kept
    weakly typed until promotion)."""
    if isinstance(x, Tracer) or (isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)):
        return x
    if isinstance(x, (list, tuple)):
        from . import asarray
        return asarray(x)
    return concrete_aval(x)[0]


def type_of(x) -> tuple[np.dtype, bool]:
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        return dtypes.scalar_type(x)
    a = get_aval(x)
    return a.dtype, a.weak_type


def result_type(*xs) -> tuple[np.dtype, bool]:
    return dtypes.promote(*[type_of(x) for x in xs])


def cast(x, dtype, weak=False):
    """Convert an operand to ``dtype`` (concrete values convert at once)."""
    if isinstance(x, Tracer):
        return x if x.dtype == dtype else lax.convert_element_type(x, dtype, weak)
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        if weak and dtype == dtypes.float32:
            return float(x)  # stays a weakly typed literal
        if weak and dtype == dtypes.int32 and not isinstance(x, float):
            return int(x)
        if dtypes.is_int(dtype) and isinstance(x, float):
            raise TypeError(f"cannot cast Python float {x} to {np.dtype(dtype).name}")
        if dtypes.is_int(dtype) and not isinstance(x, bool):
            info = np.iinfo(dtype)
            if not info.min <= x <= info.max:
                raise OverflowError(f"Python int {x} is too large for {np.dtype(dtype).name}")
        return np.asarray(x, dtype)
    x = np.asarray(x)
    return x if x.dtype == dtype else lax.convert_element_type(x, dtype)


def broadcast_shapes(op: str, *shapes) -> tuple[int, ...]:
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(nd):
        dims = {s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(f"{op}: shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be "
                             f"broadcast together{where()}")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def promote_operands(op: str, *xs, to_float: bool = False):
    """Convert operands to their promoted dtype and broadcast non-scalar ones to a
    common shape (0-d operands stay 0-d: primitives accept them as scalars)."""
    xs = [asarray_operand(x) for x in xs]
    dt, weak = result_type(*xs)
    if to_float and not dtypes.is_float(dt):
        dt, weak = dtypes.default_float, weak
    xs = [cast(x, dt, weak) for x in xs]
    shapes = [np.shape(x) if not isinstance(x, Tracer) else x.shape for x in xs]
    shape = broadcast_shapes(op, *shapes)
    if shape != ():
        xs = [x if s in ((), shape) else lax.broadcast_to_shape(x, shape) for x, s in zip(xs, shapes)]
    return xs
