"""Every primitive's reference implementation (``prim.impl``, reached through the eager
``tracer.lax`` wrappers) against numpy itself, on hypothesis-generated shapes and
values (0-d and zero-size arrays included), per dtype. The result's dtype and shape
must also be what the primitive's typing rule (``abstract_eval``) says.

The last test checks that every registered primitive is covered here (or, for the
higher-order control-flow primitives, by their own tests).
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tracer  # noqa: F401  (registers every primitive)
from tracer import core, lax

F32, F64, I32, I64, BOOL = (np.dtype(d) for d in ("float32", "float64", "int32", "int64", "bool"))
FLOATS, INTS = [F32, F64], [I32, I64]


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def values(dtype, shape, lo=-10.0, hi=10.0):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        el = st.floats(float(dtype.type(lo)), float(dtype.type(hi)), width=dtype.itemsize * 8)
    elif dtype.kind == "b":
        el = st.booleans()
    else:
        el = st.integers(int(lo), int(hi))
    return hnp.arrays(dtype, shape, elements=el)


def run(prim_name, fn, *args, **params):
    """Call the eager wrapper (which runs the primitive's impl); it must give a numpy array."""
    out = fn(*args, **params)
    assert isinstance(out, np.ndarray), f"eager {prim_name} returned {type(out).__name__}"
    return out


def assert_close(got, want, dtype=None, rtol=None):
    want = np.asarray(want)
    dtype = np.dtype(dtype) if dtype is not None else want.dtype
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {dtype}"
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    if dtype.kind == "f":
        rtol = rtol if rtol is not None else (2e-6 if dtype == F32 else 1e-14)
        np.testing.assert_allclose(got, want.astype(dtype), rtol=rtol, atol=rtol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


def typed_by_rule(prim_name, out, *operands, **params):
    """The eager result's type equals abstract_eval's."""
    aval = core.PRIMITIVES[prim_name].abstract_eval(*[core.get_aval(o) for o in operands], **params)
    assert (out.shape, out.dtype) == (aval.shape, aval.dtype), (prim_name, out.shape, aval)


# ---------------------------------------------------------------- unary elementwise

UNARY = [  # (primitive, wrapper, numpy reference, dtypes, low, high)
    ("neg", lax.neg, np.negative, FLOATS + INTS, -10, 10),
    ("sign", lax.sign, np.sign, FLOATS + INTS, -10, 10),
    ("floor", lax.floor, np.floor, FLOATS, -10, 10),
    ("ceil", lax.ceil, np.ceil, FLOATS, -10, 10),
    ("round", lax.round, np.round, FLOATS, -10, 10),  # half to even
    ("is_finite", lax.is_finite, np.isfinite, FLOATS, -10, 10),
    ("exp", lax.exp, np.exp, FLOATS, -20, 20),
    ("exp2", lax.exp2, np.exp2, FLOATS, -20, 20),
    ("log", lax.log, np.log, FLOATS, 1e-3, 100),
    ("log1p", lax.log1p, np.log1p, FLOATS, -0.99, 100),
    ("expm1", lax.expm1, np.expm1, FLOATS, -20, 20),
    ("sin", lax.sin, np.sin, FLOATS, -10, 10),
    ("cos", lax.cos, np.cos, FLOATS, -10, 10),
    ("tan", lax.tan, np.tan, FLOATS, -1.5, 1.5),
    ("tanh", lax.tanh, np.tanh, FLOATS, -10, 10),
    ("atan", lax.atan, np.arctan, FLOATS, -10, 10),
    ("sqrt", lax.sqrt, np.sqrt, FLOATS, 0, 100),
    ("rsqrt", lax.rsqrt, lambda x: 1 / np.sqrt(x), FLOATS, 1e-3, 100),
    ("logistic", lax.logistic, lambda x: 1 / (1 + np.exp(-x.astype(np.float64))), FLOATS, -30, 30),
    ("erf", lax.erf, np.vectorize(math.erf, otypes=[np.float64]), FLOATS, -4, 4),
    ("abs", lax.abs, np.abs, FLOATS + INTS, -10, 10),
    ("not", lax.not_, np.invert, INTS + [BOOL], -10, 10),
    ("stop_gradient", lax.stop_gradient, lambda x: x, FLOATS, -10, 10),
]


@pytest.mark.parametrize("name,fn,ref,dts,lo,hi", UNARY, ids=[u[0] for u in UNARY])
@given(data=st.data())
def test_unary(name, fn, ref, dts, lo, hi, data):
    dtype = data.draw(st.sampled_from(dts))
    x = data.draw(values(dtype, shapes(), lo, hi))
    out = run(name, fn, x)
    if name == "stop_gradient":  # the eager wrapper is the identity; call the primitive itself
        out = core.PRIMITIVES[name].bind(x)
    typed_by_rule(name, out, x)
    with np.errstate(all="ignore"):
        want = np.asarray(ref(x))
    rtol = {"erf": 1e-6, "logistic": 1e-6}.get(name) if dtype == F32 else None
    assert_close(out, want.astype(out.dtype), out.dtype, rtol)
    assert out.dtype == (BOOL if name == "is_finite" else dtype)


def test_unary_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, -2.5, 0.5], F32)
    assert_close(lax.round(x), np.round(x))
    assert_close(lax.is_finite(x), np.isfinite(x))
    assert_close(lax.sign(x), np.sign(x))
    assert_close(lax.logistic(np.array([-1000.0, 1000.0], F32)), np.array([0.0, 1.0], F32))
    assert_close(lax.exp(x), np.exp(x))


# ---------------------------------------------------------------- binary elementwise

def _c_div(x, y):
    """C-style integer division: truncate toward zero; x / 0 = 0."""
    x, y = x.astype(np.int64), y.astype(np.int64)
    safe = np.where(y == 0, 1, y)
    q = np.abs(x) // np.abs(safe) * np.sign(x) * np.sign(safe)
    return np.where(y == 0, 0, q)


def _c_rem(x, y):
    safe = np.where(y == 0, 1, y)
    return np.where(y == 0, 0, x.astype(np.int64) - _c_div(x, y) * safe)


BINARY = [  # (primitive, wrapper, numpy reference, dtypes)
    ("add", lax.add, np.add, FLOATS + INTS),
    ("sub", lax.sub, np.subtract, FLOATS + INTS),
    ("mul", lax.mul, np.multiply, FLOATS + INTS + [BOOL]),
    ("div", lax.div, np.true_divide, FLOATS),
    ("div", lax.div, _c_div, INTS),
    ("rem", lax.rem, np.fmod, FLOATS),
    ("rem", lax.rem, _c_rem, INTS),
    ("pow", lax.pow, np.power, FLOATS),
    ("max", lax.max, np.maximum, FLOATS + INTS + [BOOL]),
    ("min", lax.min, np.minimum, FLOATS + INTS + [BOOL]),
    ("atan2", lax.atan2, np.arctan2, FLOATS),
    ("eq", lax.eq, np.equal, FLOATS + INTS + [BOOL]),
    ("ne", lax.ne, np.not_equal, FLOATS + INTS + [BOOL]),
    ("lt", lax.lt, np.less, FLOATS + INTS + [BOOL]),
    ("le", lax.le, np.less_equal, FLOATS + INTS + [BOOL]),
    ("gt", lax.gt, np.greater, FLOATS + INTS + [BOOL]),
    ("ge", lax.ge, np.greater_equal, FLOATS + INTS + [BOOL]),
    ("and", lax.and_, np.bitwise_and, INTS + [BOOL]),
    ("or", lax.or_, np.bitwise_or, INTS + [BOOL]),
    ("xor", lax.xor, np.bitwise_xor, INTS + [BOOL]),
]


@pytest.mark.parametrize("name,fn,ref,dts", BINARY, ids=[f"{b[0]}-{b[3][0].name}" for b in BINARY])
@given(data=st.data())
def test_binary(name, fn, ref, dts, data):
    dtype = data.draw(st.sampled_from(dts))
    shape = data.draw(shapes())
    lo = 0.0 if name == "pow" else -10.0
    # operands have equal shapes, or one is 0-d (a scalar)
    sx, sy = data.draw(st.sampled_from([(shape, shape), ((), shape), (shape, ())]))
    x = data.draw(values(dtype, sx, lo, 10))
    y = data.draw(values(dtype, sy, lo if name != "pow" else -3, 10 if name != "pow" else 3))
    out = run(name, fn, x, y)
    typed_by_rule(name, out, x, y)
    with np.errstate(all="ignore"):
        want = np.asarray(ref(x, y))
    rtol = 1e-5 if (name == "pow" and dtype == F32) else None
    assert_close(out, want.astype(out.dtype), out.dtype, rtol)


def test_integer_division_edge_cases():
    x = np.array([7, -7, 7, -7, 0, np.iinfo(np.int32).min], I32)
    y = np.array([2, 2, -2, -2, 0, -1], I32)
    assert_close(lax.div(x, y), np.array([3, -3, -3, 3, 0, np.iinfo(np.int32).min], I32))
    assert_close(lax.rem(x, y), np.array([1, -1, 1, -1, 0, 0], I32))


@given(data=st.data())
def test_select(data):
    shape = data.draw(shapes())
    dtype = data.draw(st.sampled_from(FLOATS + INTS + [BOOL]))
    p = data.draw(values(BOOL, data.draw(st.sampled_from([shape, ()]))))
    a, b = data.draw(values(dtype, shape)), data.draw(values(dtype, shape))
    out = lax.select(p, a, b)
    typed_by_rule("select", out, p, a, b)
    assert_close(out, np.where(p, a, b))


@given(data=st.data())
def test_convert_element_type(data):
    src = data.draw(st.sampled_from(FLOATS + INTS + [BOOL]))
    dst = data.draw(st.sampled_from(FLOATS + INTS + [BOOL]))
    x = data.draw(values(src, shapes(), -1e3, 1e3))
    out = lax.convert_element_type(x, dst)
    if src == dst:
        assert out is x or np.array_equal(out, x)
        return
    typed_by_rule("convert_element_type", out, x, new_dtype=dst, weak_type=False)
    want = (x != 0) if dst == BOOL else (np.trunc(x).astype(dst) if src.kind == "f" and dst.kind == "i"
                                        else x.astype(dst))
    assert_close(out, want, dst)


def test_convert_float_to_int_saturates():
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, -2.7, 2.7], F32)
    out = lax.convert_element_type(x, I32)
    info = np.iinfo(np.int32)
    assert_close(out, np.array([0, info.max, info.min, info.max, info.min, -2, 2], I32))


@given(data=st.data(), y=st.integers(-4, 6))
def test_integer_pow(data, y):
    dtype = data.draw(st.sampled_from(FLOATS + (INTS if y >= 0 else [])))
    x = data.draw(values(dtype, shapes(), 0.5 if y < 0 else -5, 5))
    out = lax.integer_pow(x, y)
    typed_by_rule("integer_pow", out, x, y=y)
    assert_close(out, np.power(x.astype(np.float64), y).astype(dtype), dtype, rtol=1e-5 if dtype == F32 else 1e-13)


# ---------------------------------------------------------------- structural

@given(data=st.data())
def test_broadcast_in_dim(data):
    out_shape = data.draw(shapes(max_dims=4))
    dims = sorted(data.draw(st.lists(st.integers(0, len(out_shape) - 1), unique=True)) if out_shape else [])
    in_shape = tuple(data.draw(st.sampled_from([out_shape[d], 1])) for d in dims)
    x = data.draw(values(F32, in_shape))
    out = lax.broadcast_in_dim(x, out_shape, dims)
    typed_by_rule("broadcast_in_dim", out, x, shape=tuple(out_shape), broadcast_dimensions=tuple(dims))
    expanded = x.reshape([x.shape[dims.index(d)] if d in dims else 1 for d in range(len(out_shape))])
    assert_close(out, np.broadcast_to(expanded, out_shape))


@given(data=st.data())
def test_reshape_transpose_rev(data):
    x = data.draw(values(data.draw(st.sampled_from(FLOATS + INTS + [BOOL])), shapes(max_dims=4)))
    new = data.draw(st.permutations(list(x.shape) + [1]))
    assert_close(lax.reshape(x, new), x.reshape(new))
    perm = data.draw(st.permutations(range(x.ndim)))
    assert_close(lax.transpose(x, perm), np.transpose(x, perm))
    dims = data.draw(st.lists(st.integers(0, max(x.ndim - 1, 0)), unique=True)) if x.ndim else []
    assert_close(lax.rev(x, dims), np.flip(x, dims) if dims else x)
    if x.ndim:
        out = core.PRIMITIVES["rev"].bind(x, dimensions=tuple(sorted(dims)))
        typed_by_rule("rev", out, x, dimensions=tuple(sorted(dims)))


@given(data=st.data())
def test_slice(data):
    x = data.draw(values(F32, shapes(min_dims=1)))
    starts, limits, strides = [], [], []
    for n in x.shape:
        s = data.draw(st.integers(0, n))
        starts.append(s)
        limits.append(data.draw(st.integers(s, n)))
        strides.append(data.draw(st.integers(1, 3)))
    out = core.PRIMITIVES["slice"].bind(x, start_indices=tuple(starts), limit_indices=tuple(limits),
                                        strides=tuple(strides))
    assert_close(out, x[tuple(slice(a, b, c) for a, b, c in zip(starts, limits, strides))])
    typed_by_rule("slice", out, x, start_indices=tuple(starts), limit_indices=tuple(limits),
                  strides=tuple(strides))


@given(data=st.data())
def test_pad(data):
    x = data.draw(values(F32, shapes(min_dims=1, max_side=3)))
    config = [tuple(data.draw(st.integers(0, 2)) for _ in range(3)) for _ in x.shape]
    out = lax.pad(x, np.float32(-1), config)
    typed_by_rule("pad", out, x, np.float32(-1), padding_config=tuple(config))
    # reference: interior padding by placing x on a strided grid of -1s
    shape = [lo + hi + n + max(n - 1, 0) * it for n, (lo, hi, it) in zip(x.shape, config)]
    want = np.full(shape, -1, F32)
    want[tuple(slice(lo, lo + max(n - 1, 0) * (it + 1) + 1, it + 1) if n else slice(lo, lo)
               for n, (lo, hi, it) in zip(x.shape, config))] = x
    assert_close(out, want)


@given(data=st.data())
def test_concatenate(data):
    base = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(0, len(base) - 1))
    parts = []
    for _ in range(data.draw(st.integers(2, 3))):
        s = list(base)
        s[axis] = data.draw(st.integers(0, 3))
        parts.append(data.draw(values(I32, tuple(s))))
    out = lax.concatenate(parts, axis)
    typed_by_rule("concatenate", out, *parts, dimension=axis)
    assert_close(out, np.concatenate(parts, axis))


@given(shape=shapes(min_dims=1), data=st.data())
def test_iota(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    dtype = data.draw(st.sampled_from(INTS + FLOATS))
    out = lax.iota(dtype, shape, dim)
    r = np.arange(shape[dim]).reshape([-1 if i == dim else 1 for i in range(len(shape))])
    assert_close(out, np.broadcast_to(r, shape).astype(dtype))


# ---------------------------------------------------------------- reductions

@st.composite
def array_and_axes(draw, dtypes, nonempty=False):
    dtype = draw(st.sampled_from(dtypes))
    x = draw(values(dtype, shapes(min_side=1 if nonempty else 0), -5, 5))
    axes = tuple(sorted(draw(st.lists(st.integers(0, x.ndim - 1), unique=True)))) if x.ndim else ()
    return x, axes


@pytest.mark.parametrize("name,fn,ref,dts", [
    ("reduce_sum", lax.reduce_sum, np.sum, FLOATS + INTS),
    ("reduce_prod", lax.reduce_prod, np.prod, FLOATS + INTS),
    ("reduce_max", lax.reduce_max, np.max, FLOATS + INTS + [BOOL]),
    ("reduce_min", lax.reduce_min, np.min, FLOATS + INTS + [BOOL]),
])
@given(data=st.data())
def test_reductions(name, fn, ref, dts, data):
    x, axes = data.draw(array_and_axes(dts, nonempty=name in ("reduce_max", "reduce_min")))
    if not axes:
        return
    out = fn(x, axes)
    typed_by_rule(name, out, x, axes=axes)
    want = ref(x, axis=axes).astype(x.dtype)
    assert_close(out, want, x.dtype, rtol=1e-5 if x.dtype == F32 else 1e-12)


@given(data=st.data())
def test_argmax_argmin(data):
    x, _ = data.draw(array_and_axes(FLOATS + INTS + [BOOL], nonempty=True))
    if not x.ndim:
        return
    axis = data.draw(st.integers(0, x.ndim - 1))
    for name, fn, ref in (("argmax", lax.argmax, np.argmax), ("argmin", lax.argmin, np.argmin)):
        out = fn(x, axis)
        typed_by_rule(name, out, x, axis=axis, index_dtype=I32)
        assert_close(out, ref(x, axis=axis).astype(I32))  # first occurrence on ties, as numpy


@given(data=st.data(), reverse=st.booleans())
def test_cumsum(data, reverse):
    x, _ = data.draw(array_and_axes(FLOATS + INTS))
    if not x.ndim:
        return
    axis = data.draw(st.integers(0, x.ndim - 1))
    out = lax.cumsum(x, axis, reverse)
    typed_by_rule("cumsum", out, x, axis=axis, reverse=reverse)
    want = np.flip(np.cumsum(np.flip(x, axis), axis), axis) if reverse else np.cumsum(x, axis)
    assert_close(out, want.astype(x.dtype), x.dtype, rtol=1e-5 if x.dtype == F32 else 1e-12)


# ---------------------------------------------------------------- dot_general

@given(data=st.data())
def test_dot_general(data):
    letters = "abcdefgh"  # up to 2 batch + 2 contracting + 2 + 2 free dimensions
    nb, nc, fx, fy = (data.draw(st.integers(0, 2)) for _ in range(4))
    sizes = [data.draw(st.integers(0, 3)) for _ in range(nb + nc + fx + fy)]
    b, c = list(range(nb)), list(range(nb, nb + nc))
    xf, yf = list(range(nb + nc, nb + nc + fx)), list(range(nb + nc + fx, nb + nc + fx + fy))
    xl = data.draw(st.permutations(b + c + xf))
    yl = data.draw(st.permutations(b + c + yf))
    dtype = data.draw(st.sampled_from(FLOATS + INTS))
    x = data.draw(values(dtype, tuple(sizes[i] for i in xl), -3, 3))
    y = data.draw(values(dtype, tuple(sizes[i] for i in yl), -3, 3))
    dn = ((tuple(xl.index(i) for i in c), tuple(yl.index(i) for i in c)),
          (tuple(xl.index(i) for i in b), tuple(yl.index(i) for i in b)))
    out = lax.dot_general(x, y, dn)
    typed_by_rule("dot_general", out, x, y, dimension_numbers=dn)
    # output order: batch, x's free dims in x's order, y's free dims in y's order
    spec = (f"{''.join(letters[i] for i in xl)},{''.join(letters[i] for i in yl)}->"
            f"{''.join(letters[i] for i in b)}{''.join(letters[i] for i in xl if i in xf)}"
            f"{''.join(letters[i] for i in yl if i in yf)}")
    want = np.einsum(spec, x.astype(np.float64), y.astype(np.float64)).astype(dtype)
    assert_close(out, want, dtype, rtol=1e-5 if dtype == F32 else 1e-12)


# ---------------------------------------------------------------- gather / scatter

@st.composite
def gather_case(draw):
    shape = draw(shapes(min_dims=1, min_side=1))
    k = draw(st.integers(1, len(shape)))
    axes = tuple(draw(st.permutations(range(len(shape))))[:k])
    batch = draw(shapes(max_dims=2, max_side=3))
    x = draw(values(F32, shape))
    idx = draw(values(I32, batch + (k,), -2, max(shape) + 1))  # some out of range
    return x, idx, axes


def _rows(x, idx, axes):
    dims = np.array([x.shape[a] for a in axes])
    valid = np.all((idx >= 0) & (idx < dims), axis=-1)
    clamped = np.clip(idx, 0, dims - 1)
    return tuple(clamped[..., i] for i in range(len(axes))), valid


@given(case=gather_case(), mode=st.sampled_from(["clip", "fill"]))
def test_gather(case, mode):
    x, idx, axes = case
    out = lax.gather(x, idx, axes, mode)
    typed_by_rule("gather", out, x, idx, axes=axes, mode=mode)
    front = np.moveaxis(x, axes, range(len(axes)))
    rows, valid = _rows(x, idx, axes)
    want = front[rows]
    if mode == "fill":
        want = np.where(valid.reshape(valid.shape + (1,) * (want.ndim - valid.ndim)), want, 0)
    assert_close(out, want)


@given(case=gather_case(), kind=st.sampled_from(["add", "set", "mul", "min", "max"]),
       mode=st.sampled_from(["clip", "drop"]), data=st.data())
def test_scatters(case, kind, mode, data):
    x, idx, axes = case
    front_shape = tuple(x.shape[a] for a in axes) + tuple(d for i, d in enumerate(x.shape) if i not in axes)
    upd = data.draw(values(F32, idx.shape[:-1] + front_shape[len(axes):]))
    if kind == "add":
        out = lax.scatter_add(x, idx, upd, axes, mode)
        typed_by_rule("scatter_add", out, x, idx, upd, axes=axes, mode=mode)
    else:
        out = lax.scatter(x, idx, upd, axes, mode, combine=kind)
        typed_by_rule("scatter", out, x, idx, upd, axes=axes, mode=mode, combine=kind)
    want = x.copy()
    front = np.moveaxis(want, axes, range(len(axes)))  # a view into want
    rows, valid = _rows(x, idx, axes)
    if mode == "drop":
        rows, u = tuple(r[valid] for r in rows), upd[valid]
    else:
        u = upd
    if kind == "set":  # sequential semantics: the last write wins
        for i in np.ndindex(*rows[0].shape):
            front[tuple(r[i] for r in rows)] = u[i]
    else:
        {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}[kind].at(front, rows, u)
    assert_close(out, want, rtol=1e-5)


# ---------------------------------------------------------------- coverage

# Higher-order primitives hold sub-graphs; their reference semantics are tested
# with their transforms (tests/test_control_flow.py, tests/test_autodiff.py).
HIGHER_ORDER = {"cond", "while", "scan", "custom_jvp_call", "custom_vjp_call"}


def test_every_primitive_has_a_reference_test():
    names = set(core.PRIMITIVES)
    covered = {u[0] for u in UNARY} | {b[0] for b in BINARY} | {
        "select", "convert_element_type", "integer_pow", "broadcast_in_dim", "reshape", "transpose",
        "rev", "slice", "pad", "concatenate", "iota", "reduce_sum", "reduce_prod", "reduce_max",
        "reduce_min", "argmax", "argmin", "cumsum", "dot_general", "gather", "scatter", "scatter_add"}
    missing = sorted(names - covered - HIGHER_ORDER)
    assert not missing, f"primitives with no reference test here: {missing}"
