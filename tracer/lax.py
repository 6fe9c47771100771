"""Thin wrappers that bind primitives (as ``jax.lax`` is to ``jax.numpy``).
Operands must already agree in dtype; shapes must be equal or 0-d for elementwise ops."""
from .primitives.elementwise import (  # noqa: F401
    add, sub, mul, div, rem, pow, max, min, atan2, neg, sign, floor, ceil, round, is_finite,
    exp, exp2, log, log1p, expm1, sin, cos, tan, tanh, atan, sqrt, rsqrt, logistic, erf, abs,
    eq, ne, lt, le, gt, ge, and_, or_, xor, not_, select, convert_element_type, integer_pow,
    stop_gradient)
from .primitives.shape import (  # noqa: F401
    broadcast_in_dim, broadcast_to_shape, full, full_like, reshape, transpose, moveaxis, rev,
    slice, pad, concatenate, iota)
from .primitives.reductions import (  # noqa: F401
    reduce_sum, reduce_max, reduce_min, reduce_prod, argmax, argmin, cumsum)
from .primitives.linalg import dot_general  # noqa: F401
from .primitives.indexing import gather, scatter_add, scatter  # noqa: F401
