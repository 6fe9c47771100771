"""Every primitive's JVP and VJP rule against float64 central finite differences.

One spec line per primitive (how to build a call of it from float64 inputs drawn
in a domain that avoids its singularities) and one shared checker:

* jvp(f)(x; t)            == (f(x + eps t) - f(x - eps t)) / 2 eps
* <J t, c>                == <t, J^T c>        (jvp against vjp: the dot-product test)
* second order: grad of x -> <J(x)^T c, t> and jvp of x -> <c, J(x) t> against
  finite differences of those functions (rules of rules: grad of grad).
* float32: the same derivatives in float32 carry float32 dtypes and agree with float64.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracer as tr
from tracer import core, lax
from tracer.primitives import elementwise, indexing, linalg, reductions, shape as shape_mod

F64 = np.float64
EPS = 1e-6


@dataclasses.dataclass
class Spec:
    name: str                 # the primitive under test
    build: Callable           # build(shape, rng) -> (f, [float64 inputs])
    order2: bool = True       # check second derivatives too
    f32: bool = True          # also check float32


def _uniform(rng, shape, dom):
    lo, hi, signed = dom
    x = rng.uniform(lo, hi, shape)
    if signed:
        x = x * rng.choice([-1.0, 1.0], shape)
    return np.asarray(x, F64)


ANY = (-2.0, 2.0, False)
POS = (0.5, 2.5, False)
AWAY0 = (0.5, 2.0, True)   # either sign, away from zero


def unary(name, f, dom=ANY, **kw):
    return Spec(name, lambda s, rng: (f, [_uniform(rng, s, dom)]), **kw)


def binary(name, f, dx=ANY, dy=ANY, **kw):
    def build(s, rng):
        sx, sy = [(s, s), ((), s), (s, ())][rng.integers(3)]
        return f, [_uniform(rng, sx, dx), _uniform(rng, sy, dy)]
    return Spec(name, build, **kw)


def structural(name, make, **kw):
    """make(shape, rng) -> (f, [input shapes]); inputs drawn from ANY."""
    def build(s, rng):
        f, shapes = make(s, rng)
        return f, [_uniform(rng, sh, ANY) for sh in shapes]
    return Spec(name, build, **kw)


def _same(x, like):
    return lax.convert_element_type(x, core.get_aval(like).dtype)


def _indices(rng, n, rows, allow_out=False):
    hi = n + 2 if allow_out else n
    return rng.integers(0, hi, (rows, 1)).astype(np.int32)


def _gather(mode):
    def make(s, rng):
        idx = _indices(rng, 4, 5, allow_out=mode == "fill")
        return (lambda x: lax.gather(x, idx, (0,), mode=mode)), [(4,) + s]
    return make


def _scatter_add(mode):
    def make(s, rng):
        idx = _indices(rng, 4, 5, allow_out=mode == "drop")
        return (lambda x, u: lax.scatter_add(x, idx, u, (0,), mode=mode)), [(4,) + s, (5,) + s]
    return make


def _scatter_set(s, rng):
    idx = _indices(rng, 4, 6)  # six rows into four slots: duplicates, last write wins
    return (lambda x, u: lax.scatter(x, idx, u, (0,), mode="drop")), [(4,) + s, (6,) + s]


def _select(s, rng):
    pred = rng.random(s) < 0.5
    return (lambda a, b: lax.select(pred, a, b)), [s, s]


def _select_scalars(s, rng):
    """A 0-d predicate with array operands, or an array predicate with a 0-d operand."""
    if rng.integers(2):
        pred = np.bool_(rng.random() < 0.5)
        return (lambda a, b: lax.select(pred, a, b)), [s, s]
    pred = rng.random(s) < 0.5
    return (lambda a, b: lax.select(pred, a, b)), [(), s]


def _slice(s, rng):
    if not s:
        return (lambda x: lax.slice(x, (1,), (5,), (2,))), [(5,)]
    start = tuple(int(rng.integers(0, d)) for d in s)
    strides = tuple(int(rng.integers(1, 3)) for _ in s)
    return (lambda x: lax.slice(x, start, s, strides)), [s]


def _pad(s, rng):
    cfg = tuple((int(rng.integers(0, 2)), int(rng.integers(0, 3)), int(rng.integers(0, 2))) for _ in s)
    return (lambda x, v: lax.pad(x, v, cfg)), [s, ()]


def _dot(kind):
    def make(s, rng):
        m, k, n = (list(s) + [2, 3, 2])[:3]
        if kind == "matmul":
            return (lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ())))), [(m, k), (k, n)]
        if kind == "vector":
            return (lambda a, b: lax.dot_general(a, b, (((0,), (0,)), ((), ())))), [(k,), (k,)]
        if kind == "batch":  # contract lhs axis 2 with rhs axis 0, batch lhs 0 with rhs 2
            return (lambda a, b: lax.dot_general(a, b, (((2,), (0,)), ((0,), (2,))))), \
                [(2, m, k), (k, n, 2)]
        if kind == "mixed":  # batch axis in the middle, contracting axis first / last
            return (lambda a, b: lax.dot_general(a, b, (((0,), (2,)), ((1,), (1,))))), \
                [(k, 2, m), (n, 2, k)]
        if kind == "two":  # two contracting axes, paired in opposite orders
            return (lambda a, b: lax.dot_general(a, b, (((0, 1), (1, 0)), ((), ())))), \
                [(2, k, m), (k, 2, n)]
        return (lambda a, b: lax.dot_general(a, b, (((), ()), ((), ())))), [(m,), (n, k)]  # outer
    return make


def _reduce(fn, all_axes):
    def make(s, rng):
        axes = tuple(range(len(s))) if all_axes or not s else (int(rng.integers(len(s))),)
        return (lambda x: fn(x, axes)), [s]
    return make


def _minmax_reduce(fn):
    def build(s, rng):
        x = rng.permutation(np.linspace(-2, 2, int(np.prod(s)) or 1))[:int(np.prod(s))]
        axes = tuple(range(len(s)))  # distinct values: no ties, so finite differences apply
        return (lambda v: fn(v, axes)), [np.asarray(x, F64).reshape(s)]
    return build


def _cmp(fn):
    # compare, then use the bool: d/dx [x * (x < y)] = (x < y), the comparison adds nothing
    return lambda x, y: lax.mul(x, _same(fn(x, y), x))


SPECS = [
    # arithmetic
    binary("add", lax.add), binary("sub", lax.sub), binary("mul", lax.mul),
    binary("div", lax.div, ANY, AWAY0),
    binary("rem", lax.rem, (-3.0, 3.0, False), (0.7, 2.0, True)),
    binary("pow", lax.pow, POS, (-2.0, 2.0, False)),
    binary("max", lax.max), binary("min", lax.min),
    binary("atan2", lax.atan2, ANY, POS),
    # unary math
    unary("neg", lax.neg), unary("exp", lax.exp), unary("exp2", lax.exp2),
    unary("log", lax.log, POS), unary("log1p", lax.log1p, (-0.5, 2.0, False)),
    unary("expm1", lax.expm1), unary("sin", lax.sin), unary("cos", lax.cos),
    unary("tan", lax.tan, (-1.2, 1.2, False)), unary("tanh", lax.tanh), unary("atan", lax.atan),
    unary("sqrt", lax.sqrt, POS), unary("rsqrt", lax.rsqrt, POS), unary("logistic", lax.logistic),
    unary("erf", lax.erf), unary("abs", lax.abs, AWAY0),
    *[unary("integer_pow", (lambda y: lambda x: lax.integer_pow(x, y))(y), AWAY0)
      for y in (-3, -1, 0, 1, 2, 3, 6)],
    # piecewise constant: zero derivative (finite differences agree away from the jumps)
    unary("sign", lambda x: lax.mul(x, lax.sign(x)), AWAY0),
    unary("floor", lambda x: lax.add(lax.floor(x), lax.mul(x, x)), (0.1, 0.9, True)),
    unary("ceil", lambda x: lax.add(lax.ceil(x), lax.mul(x, x)), (0.1, 0.9, True)),
    unary("round", lambda x: lax.add(lax.round(x), lax.mul(x, x)), (0.1, 0.4, True)),
    unary("is_finite", lambda x: lax.mul(x, _same(lax.is_finite(x), x))),
    *[binary(n, _cmp(f)) for n, f in [("eq", lax.eq), ("ne", lax.ne), ("lt", lax.lt),
                                      ("le", lax.le), ("gt", lax.gt), ("ge", lax.ge)]],
    structural("select", _select), structural("select", _select_scalars),
    unary("convert_element_type",
          lambda x: elementwise.convert_element_type_p.bind(x, new_dtype=np.dtype(F64), weak_type=False)),
    # structural (linear)
    structural("broadcast_in_dim", lambda s, rng: (
        lambda x: lax.broadcast_in_dim(x, (2,) + s + (3,), tuple(range(1, len(s) + 1))), [s])),
    structural("broadcast_in_dim", lambda s, rng: (
        lambda x: lax.broadcast_in_dim(x, (3,) + s, tuple(range(1, len(s) + 1))),
        [tuple(1 if i == 0 else d for i, d in enumerate(s))])),
    structural("reshape", lambda s, rng: (lambda x: lax.reshape(x, (int(np.prod(s)),)), [s])),
    structural("transpose", lambda s, rng: (lambda x: lax.transpose(x, tuple(reversed(range(len(s) + 1)))),
                                            [s + (2,)])),
    structural("rev", lambda s, rng: (lambda x: lax.rev(x, (0,)), [s + (2,)])),
    structural("slice", _slice), structural("pad", _pad),
    structural("concatenate", lambda s, rng: (lambda a, b: lax.concatenate([a, b], 0),
                                              [(2,) + s, (3,) + s])),
    # reductions
    structural("reduce_sum", _reduce(lax.reduce_sum, False)),
    structural("reduce_sum", _reduce(lax.reduce_sum, True)),
    Spec("reduce_max", _minmax_reduce(lax.reduce_max)),
    Spec("reduce_min", _minmax_reduce(lax.reduce_min)),
    structural("reduce_prod", _reduce(lax.reduce_prod, False)),
    structural("reduce_prod", _reduce(lax.reduce_prod, True)),
    structural("argmax", lambda s, rng: (lambda x: lax.mul(lax.reduce_sum(x, (0,)),
                                                           _same(lax.argmax(x, 0), x)), [(4,)])),
    structural("argmin", lambda s, rng: (lambda x: lax.mul(lax.reduce_sum(x, (0,)),
                                                           _same(lax.argmin(x, 0), x)), [(4,)])),
    structural("cumsum", lambda s, rng: (lambda x: lax.cumsum(x, 0), [(4,) + s])),
    structural("cumsum", lambda s, rng: (lambda x: lax.cumsum(x, 0, reverse=True), [(4,) + s])),
    # contractions and indexing
    *[structural("dot_general", _dot(k)) for k in ("matmul", "vector", "batch", "outer", "mixed", "two")],
    structural("gather", _gather("clip")), structural("gather", _gather("fill")),
    structural("scatter_add", _scatter_add("clip")), structural("scatter_add", _scatter_add("drop")),
    structural("scatter", _scatter_set),
]

# Primitives with no floating-point operand to differentiate: checked elsewhere
# (stop_gradient: zero derivative by definition, see test_stop_gradient_is_zero).
NOT_HERE = {"iota": "no operands", "and": "bool/int only", "or": "bool/int only",
            "xor": "bool/int only", "not": "bool/int only", "stop_gradient": "zero by definition"}

SHAPES = st.sampled_from([(), (3,), (2, 3), (1, 4)])


def _fd(f, xs, ts):
    plus = f(*[x + EPS * t for x, t in zip(xs, ts)])
    minus = f(*[x - EPS * t for x, t in zip(xs, ts)])
    return (np.asarray(plus, F64) - np.asarray(minus, F64)) / (2 * EPS)


def _close(got, want, rtol=1e-5, what=""):
    got, want = np.asarray(got, F64), np.asarray(want, F64)
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _vdot(a, b):
    return float(np.sum(np.asarray(a, F64) * np.asarray(b, F64)))


def check_rules(f, xs, rng, order2=True, f32=True):
    out = np.asarray(f(*xs))
    ts = [rng.standard_normal(np.shape(x)) for x in xs]
    c = rng.standard_normal(out.shape)
    fd = _fd(f, xs, ts)

    # forward mode against finite differences
    y, jt = tr.jvp(f, tuple(xs), tuple(ts))
    _close(y, out, 1e-12, "jvp primal output")
    assert np.asarray(jt).dtype == out.dtype
    _close(jt, fd, 1e-5, "jvp vs finite differences")

    # reverse mode: <J t, c> == <t, J^T c>, against both jvp and finite differences
    y2, pull = tr.vjp(f, *xs)
    _close(y2, out, 1e-12, "vjp primal output")
    cts = pull(c)
    assert len(cts) == len(xs)
    for ct, x in zip(cts, xs):
        assert np.shape(ct) == np.shape(x) and np.asarray(ct).dtype == x.dtype
    lhs = sum(_vdot(t, ct) for t, ct in zip(ts, cts))
    np.testing.assert_allclose(lhs, _vdot(jt, c), rtol=1e-10, atol=1e-10, err_msg="dot-product test")
    np.testing.assert_allclose(lhs, _vdot(fd, c), rtol=1e-5, atol=1e-5 * max(1.0, abs(lhs)))

    if order2:
        # reverse over reverse: d/dx <J(x)^T c, t>
        def g(*xs_):
            return sum(tr.numpy.sum(ct_ * t) for ct_, t in zip(tr.vjp(f, *xs_)[1](c), ts))
        t2 = [rng.standard_normal(np.shape(x)) for x in xs]
        gg = tr.grad(g, argnums=tuple(range(len(xs))))(*xs)
        _close(sum(_vdot(a, b) for a, b in zip(gg, t2)), _fd(g, xs, t2), 1e-4, "grad of vjp")

        # forward over forward: d/dx <c, J(x) t>
        def h(*xs_):
            return tr.numpy.sum(tr.jvp(f, xs_, tuple(ts))[1] * c)
        _, hh = tr.jvp(h, tuple(xs), tuple(t2))
        _close(hh, _fd(h, xs, t2), 1e-4, "jvp of jvp")

    if f32:
        xs32 = [x.astype(np.float32) for x in xs]
        g32 = np.asarray(f(*xs32))
        if g32.dtype == np.float32:
            _, jt32 = tr.jvp(f, tuple(xs32), tuple(t.astype(np.float32) for t in ts))
            assert np.asarray(jt32).dtype == np.float32
            _close(jt32, jt, 2e-3, "float32 jvp")
            cts32 = tr.vjp(f, *xs32)[1](c.astype(np.float32))
            for a, b in zip(cts32, cts):
                assert np.asarray(a).dtype == np.float32
                _close(a, b, 2e-3, "float32 vjp")


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.name}-{i}" for i, s in enumerate(SPECS)])
@settings(max_examples=10)
@given(shape=SHAPES, seed=st.integers(0, 2**31 - 1))
def test_rules_match_finite_differences(spec, shape, seed):
    rng = np.random.default_rng(seed)
    f, xs = spec.build(shape, rng)
    check_rules(f, xs, rng, spec.order2, spec.f32)


def _defined_here():
    mods = [elementwise, shape_mod, reductions, linalg, indexing]
    return {v.name for m in mods for v in vars(m).values() if isinstance(v, core.Primitive)}


def test_every_primitive_has_a_spec():
    covered = {s.name for s in SPECS} | set(NOT_HERE)
    missing = sorted(_defined_here() - covered)
    assert missing == [], f"primitives without a derivative spec: {missing}"


def test_stop_gradient_is_zero():
    x = np.array([0.5, -1.0])
    g = tr.grad(lambda v: tr.numpy.sum(lax.mul(lax.stop_gradient(v), v)))(x)
    np.testing.assert_allclose(g, x)  # d/dv [sg(v) * v] = sg(v)
    _, t = tr.jvp(lambda v: lax.stop_gradient(lax.sin(v)), (x,), (np.ones(2),))
    np.testing.assert_array_equal(t, np.zeros(2))
