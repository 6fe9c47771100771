"""Shared helpers for defining primitives: type rules, error messages, rule factories."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import dtypes
from ..core import where
from ..errors import DTypeError, ShapeError
from ..ir import ShapedArray

KIND_NAMES = {"f": "floating", "i": "integer", "b": "bool"}


def shape_error(op: str, msg: str, *avals) -> ShapeError:
    shapes = ", ".join(str(a) for a in avals)
    return ShapeError(f"{op}: {msg}" + (f" (operands {shapes})" if avals else "") + where())


def dtype_error(op: str, msg: str, *avals) -> DTypeError:
    types = ", ".join(str(a) for a in avals)
    return DTypeError(f"{op}: {msg}" + (f" (operands {types})" if avals else "") + where())


def dtype_kind(dt) -> str:
    k = np.dtype(dt).kind
    return "i" if k in "iu" else k


def check_kinds(op: str, avals: Sequence[ShapedArray], kinds: str) -> None:
    for a in avals:
        if dtype_kind(a.dtype) not in kinds:
            allowed = " or ".join(KIND_NAMES[k] for k in kinds)
            raise dtype_error(op, f"needs {allowed} operands, got {a.dtype.name}", *avals)


def elementwise_aval(op: str, avals: Sequence[ShapedArray], kinds: str = "fib",
                     out_dtype=None) -> ShapedArray:
    """Operands have one dtype and equal shapes, or are 0-d (broadcast as scalars)."""
    shapes = {a.shape for a in avals if a.shape != ()}
    if len(shapes) > 1:
        raise shape_error(op, "elementwise operands must have equal shapes (or be 0-d)", *avals)
    if len({a.dtype for a in avals}) > 1:
        raise dtype_error(op, "operands must have the same dtype", *avals)
    check_kinds(op, avals, kinds)
    shape = shapes.pop() if shapes else ()
    weak = all(a.weak_type for a in avals) and out_dtype is None
    return ShapedArray(shape, out_dtype if out_dtype is not None else avals[0].dtype, weak)


def is_float(aval) -> bool:
    return dtypes.is_float(aval.dtype)


def normalize_axes(op: str, axes, ndim: int) -> tuple[int, ...]:
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise shape_error(op, f"axis {a} is out of range for an array of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise shape_error(op, f"repeated axis in {tuple(axes)}")
    return tuple(out)
