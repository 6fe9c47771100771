"""Supported dtypes, their short names, and JAX's type-promotion lattice.

The lattice (with weakly typed Python scalars ``i*`` and ``f*``) is a chain here,
because we support no unsigned or half types yet:

    bool < i* < int32 < int64 < f* < float32 < float64

so the promoted type of several operands is the largest among them. A weak result
(``i*`` or ``f*``) materialises as the default dtype (int32, float32) and stays weak.
"""
from __future__ import annotations

import numpy as np

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

SUPPORTED = (bool_, int32, int64, float32, float64)
SHORT_NAMES = {bool_: "bool", int32: "i32", int64: "i64", float32: "f32", float64: "f64"}
FROM_SHORT = {v: k for k, v in SHORT_NAMES.items()}

default_float = float32
default_int = int32

# Rank of each (dtype, weak) in the lattice chain.
_RANK = {
    (bool_, False): 0, (bool_, True): 0,
    (int32, True): 1, (int64, True): 1,
    (int32, False): 2, (int64, False): 3,
    (float32, True): 4, (float64, True): 4,
    (float32, False): 5, (float64, False): 6,
}
_BY_RANK = {0: (bool_, False), 1: (int32, True), 2: (int32, False), 3: (int64, False),
            4: (float32, True), 5: (float32, False), 6: (float64, False)}


def canonical(dtype) -> np.dtype:
    """The supported dtype for ``dtype`` (a numpy dtype, type or name), or TypeError."""
    if isinstance(dtype, str) and dtype in FROM_SHORT:
        return FROM_SHORT[dtype]
    if dtype is float:
        return default_float
    if dtype is int:
        return default_int
    if dtype is bool:
        return bool_
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{dtype!r} is not a dtype") from None
    if d in SUPPORTED:
        return d
    if d.kind == "f" and d.itemsize < 4:
        raise TypeError(f"dtype {d} is not supported yet (float32, float64, int32, int64, bool are)")
    if d.kind in "iu":
        return int64 if d.itemsize >= 8 else int32
    raise TypeError(f"dtype {d} is not supported (float32, float64, int32, int64 and bool are)")


def short_name(dtype) -> str:
    return SHORT_NAMES[np.dtype(dtype)]


def is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_int(dtype) -> bool:
    return np.dtype(dtype).kind in "iu"


def is_bool(dtype) -> bool:
    return np.dtype(dtype) == bool_


def promote(*types: tuple[np.dtype, bool]) -> tuple[np.dtype, bool]:
    """Join (dtype, weak_type) pairs in the lattice; returns (dtype, weak_type)."""
    rank = max(_RANK[(np.dtype(d), bool(w))] for d, w in types)
    return _BY_RANK[rank]


def scalar_type(x) -> tuple[np.dtype, bool]:
    """(dtype, weak) of a Python scalar or numpy scalar/array value."""
    if isinstance(x, (bool, np.bool_)):
        return bool_, False
    if isinstance(x, int):
        return int32, True
    if isinstance(x, float):
        return float32, True
    if isinstance(x, complex):
        raise TypeError("complex numbers are not supported")
    return canonical(np.asarray(x).dtype), False


def finfo(dtype):
    return np.finfo(np.dtype(dtype))


def iinfo(dtype):
    return np.iinfo(np.dtype(dtype))
