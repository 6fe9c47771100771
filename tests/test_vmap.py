"""vmap: every primitive's batch rule against the loop it replaces.

Oracle: ``vmap(f, in_axes)(*xs)`` must equal ``f`` applied to each batch member
(eager numpy reference implementations) stacked along ``out_axes``. Each case
below builds a function that exercises one primitive, with hypothesis-drawn
shapes and parameters; the test draws the batch size, which arguments are
batched and along which (possibly negative) axis, and the output axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import tracer as tr
import tracer.numpy as tnp
from tracer import control_flow, core, lax
from tracer.primitives import elementwise, indexing, linalg, reductions, shape

F64, F32, I32, I64, BOOL = np.float64, np.float32, np.int32, np.int64, np.bool_


@dataclass
class Arg:
    """A per-example argument: shape, dtype and how to draw its values."""
    shape: tuple
    dtype: type = F64
    kind: str = "normal"       # normal | positive | small | index
    high: tuple = ()           # index: exclusive upper bound per index column
    oob: bool = False          # index: also draw out-of-range values (-1, high)


def values(rng, a: Arg):
    if a.kind == "index":
        lo = -1 if a.oob else 0
        high = np.broadcast_to(np.asarray(a.high) + (1 if a.oob else 0), a.shape)
        return rng.integers(lo, high, size=a.shape).astype(a.dtype) if a.shape else \
            np.asarray(rng.integers(lo, high), a.dtype)
    if a.dtype == BOOL:
        return np.asarray(rng.random(a.shape) < 0.5)
    if np.dtype(a.dtype).kind == "i":
        return np.asarray(rng.integers(-4, 5, size=a.shape), a.dtype)
    x = rng.standard_normal(a.shape)
    if a.kind == "positive":
        x = np.abs(x) + 0.5
    elif a.kind == "small":
        x = rng.uniform(0.5, 1.5, a.shape) * rng.choice([-1, 1], a.shape)
    return np.asarray(x, a.dtype)


def shapes(min_dims=0, max_dims=3, max_side=4):
    return st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@dataclass
class Case:
    name: str
    prim: str                                  # the primitive this case exercises
    build: Callable                            # draw -> (f, [Arg, ...])
    examples: int = 25


CASES: list[Case] = []


def case(prim, name=None, examples=25):
    def deco(build):
        CASES.append(Case(name or prim, prim, build, examples))
        return build
    return deco

# ---------------------------------------------------------------- elementwise


UNARY_F = ["neg", "sign", "floor", "ceil", "round", "is_finite", "exp", "exp2", "log", "log1p",
           "expm1", "sin", "cos", "tan", "tanh", "atan", "sqrt", "rsqrt", "logistic", "erf", "abs"]
BINARY_F = ["add", "sub", "mul", "div", "rem", "pow", "max", "min", "atan2",
            "eq", "ne", "lt", "le", "gt", "ge"]
LOGIC = {"and": lax.and_, "or": lax.or_, "xor": lax.xor}


def _unary_case(name):
    fn = getattr(lax, name)
    kind = "positive" if name in ("log", "sqrt", "rsqrt", "log1p") else "normal"

    def build(draw):
        dt = draw(st.sampled_from([F64, F32]))
        return (lambda x: fn(x)), [Arg(draw(shapes()), dt, kind)]
    CASES.append(Case(name, name, build, examples=8))


def _binary_case(name, fn, dtypes_):
    def build(draw):
        dt = draw(st.sampled_from(dtypes_))
        s = draw(shapes())
        # elementwise operands have equal shapes or are 0-d (a scalar)
        sx, sy = draw(st.sampled_from([(s, s), (s, ()), ((), s)]))
        kind = "positive" if name == "pow" else "normal"
        return (lambda x, y: fn(x, y)), [Arg(sx, dt, kind), Arg(sy, dt)]
    CASES.append(Case(name, name, build, examples=8))


for _n in UNARY_F:
    _unary_case(_n)
for _n in BINARY_F:
    _binary_case(_n, getattr(lax, _n), [F64, F32] + ([I32] if _n in ("add", "div", "rem", "max") else []))
for _n, _fn in LOGIC.items():
    _binary_case(_n, _fn, [BOOL, I32])
CASES.append(Case("not", "not", lambda draw: ((lambda x: lax.not_(x)), [Arg(draw(shapes()), BOOL)]), 8))


@case("select")
def _(draw):
    s = draw(shapes())
    sp, sa, sb = draw(st.sampled_from([(s, s, s), ((), s, s), (s, (), ()), (s, s, ()), ((), (), ())]))
    return (lambda p, a, b: lax.select(p, a, b)), [Arg(sp, BOOL), Arg(sa), Arg(sb)]


@case("convert_element_type")
def _(draw):
    src, dst = draw(st.sampled_from([(F64, I32), (I32, F32), (F32, BOOL), (BOOL, F64), (F64, F32)]))
    return (lambda x: lax.convert_element_type(x, dst)), [Arg(draw(shapes()), src)]


@case("integer_pow")
def _(draw):
    y = draw(st.integers(-2, 4))
    return (lambda x: lax.integer_pow(x, y)), [Arg(draw(shapes()), F64, "small")]


@case("stop_gradient")
def _(draw):
    return (lambda x: lax.stop_gradient(lax.sin(x))), [Arg(draw(shapes()))]

# ---------------------------------------------------------------- shape


@case("broadcast_in_dim")
def _(draw):
    out = draw(shapes(0, 4))
    bd = tuple(sorted(draw(st.sets(st.integers(0, max(len(out) - 1, 0)), max_size=len(out)))))
    bd = bd if out else ()
    xs = tuple(draw(st.sampled_from([out[b], 1])) for b in bd)
    assume(xs != out)  # otherwise the wrapper binds nothing
    return (lambda x: lax.broadcast_in_dim(x, out, bd)), [Arg(xs)]


@case("reshape")
def _(draw):
    s = draw(shapes(1, 3))
    new = list(draw(st.permutations(s)))
    if draw(st.booleans()):
        new = [int(np.prod(new))]
    for _ in range(draw(st.integers(0, 2))):
        new.insert(draw(st.integers(0, len(new))), 1)
    return (lambda x: lax.reshape(x, tuple(new))), [Arg(s)]


@case("transpose")
def _(draw):
    s = draw(shapes(1, 4))
    perm = tuple(draw(st.permutations(range(len(s)))))
    if perm == tuple(range(len(s))) and len(s) > 1:
        perm = perm[::-1]
    return (lambda x: lax.transpose(x, perm)), [Arg(s)]


@case("rev")
def _(draw):
    s = draw(shapes(1, 3))
    dims = tuple(draw(st.sets(st.integers(0, len(s) - 1), min_size=1)))
    return (lambda x: lax.rev(x, dims)), [Arg(s)]


@case("slice")
def _(draw):
    s = draw(shapes(1, 3, 6))
    start, limit, strides = [], [], []
    for d in s:
        lo = draw(st.integers(0, d - 1))
        start.append(lo)
        limit.append(draw(st.integers(lo + 1, d)))
        strides.append(draw(st.integers(1, 3)))
    return (lambda x: lax.slice(x, start, limit, strides)), [Arg(s)]


@case("pad")
def _(draw):
    s = draw(shapes(1, 3))
    cfg = [tuple(draw(st.integers(0, 2)) for _ in range(3)) for _ in s]
    dt = draw(st.sampled_from([F64, I32]))
    return (lambda x, v: lax.pad(x, v, cfg)), [Arg(s, dt), Arg((), dt)]


@case("concatenate")
def _(draw):
    s = draw(shapes(1, 3))
    dim = draw(st.integers(0, len(s) - 1))
    n = draw(st.integers(2, 3))
    sizes = [draw(st.integers(1, 3)) for _ in range(n)]
    args = [Arg(s[:dim] + (k,) + s[dim + 1:]) for k in sizes]
    return (lambda *xs: lax.concatenate(xs, dim)), args


@case("iota")
def _(draw):
    s = draw(shapes(1, 3))
    dim = draw(st.integers(0, len(s) - 1))
    return (lambda x: lax.add(x, lax.iota(F64, s, dim))), [Arg(s)]

# ---------------------------------------------------------------- reductions


def _reduce_case(prim, fn, kind="normal", dts=(F64,)):
    def build(draw):
        s = draw(shapes(1, 3))
        axes = tuple(sorted(draw(st.sets(st.integers(0, len(s) - 1), min_size=1))))
        return (lambda x: fn(x, axes)), [Arg(s, draw(st.sampled_from(dts)), kind)]
    CASES.append(Case(prim, prim, build))


_reduce_case("reduce_sum", lax.reduce_sum, dts=(F64, I32))
_reduce_case("reduce_max", lax.reduce_max, dts=(F64, I32))
_reduce_case("reduce_min", lax.reduce_min, dts=(F64, BOOL))
_reduce_case("reduce_prod", lax.reduce_prod, "small")


def _arg_case(prim, fn):
    def build(draw):
        s = draw(shapes(1, 3))
        axis = draw(st.integers(0, len(s) - 1))
        return (lambda x: fn(x, axis)), [Arg(s, draw(st.sampled_from([F64, I32])))]
    CASES.append(Case(prim, prim, build))


_arg_case("argmax", lax.argmax)
_arg_case("argmin", lax.argmin)


@case("cumsum")
def _(draw):
    s = draw(shapes(1, 3))
    axis, reverse = draw(st.integers(0, len(s) - 1)), draw(st.booleans())
    return (lambda x: lax.cumsum(x, axis, reverse)), [Arg(s)]

# ---------------------------------------------------------------- dot_general


@case("dot_general")
def _(draw):
    nb, nc, nl, nr = (draw(st.integers(0, k)) for k in (2, 2, 2, 2))
    side = st.integers(1, 3)
    bs, cs = [draw(side) for _ in range(nb)], [draw(side) for _ in range(nc)]
    ls, rs = [draw(side) for _ in range(nl)], [draw(side) for _ in range(nr)]
    # logical axes of each operand (batch, contract, free), placed in a random order
    lhs = [("b", i) for i in range(nb)] + [("c", i) for i in range(nc)] + [("f", i) for i in range(nl)]
    rhs = [("b", i) for i in range(nb)] + [("c", i) for i in range(nc)] + [("f", i) for i in range(nr)]
    lhs, rhs = draw(st.permutations(lhs)), draw(st.permutations(rhs))
    size = {"b": bs, "c": cs}
    lshape = tuple(size[k][i] if k != "f" else ls[i] for k, i in lhs)
    rshape = tuple(size[k][i] if k != "f" else rs[i] for k, i in rhs)
    dn = ((tuple(lhs.index(("c", i)) for i in range(nc)), tuple(rhs.index(("c", i)) for i in range(nc))),
          (tuple(lhs.index(("b", i)) for i in range(nb)), tuple(rhs.index(("b", i)) for i in range(nb))))
    dt = draw(st.sampled_from([F64, F32]))
    return (lambda x, y: lax.dot_general(x, y, dn)), [Arg(lshape, dt), Arg(rshape, dt)]

# ---------------------------------------------------------------- gather / scatter


def _index_problem(draw, oob_ok: bool):
    s = draw(shapes(1, 3))
    k = draw(st.integers(1, len(s)))
    axes = tuple(draw(st.permutations(range(len(s))))[:k])
    ib = draw(shapes(0, 2))
    idx = Arg(ib + (k,), draw(st.sampled_from([I32, I64])), "index",
              tuple(s[a] for a in axes), oob=oob_ok and draw(st.booleans()))
    kept = tuple(d for i, d in enumerate(s) if i not in axes)
    return s, axes, idx, ib + kept


@case("gather")
def _(draw):
    s, axes, idx, _ = _index_problem(draw, True)
    mode = draw(st.sampled_from(["clip", "fill"]))
    return (lambda x, i: lax.gather(x, i, axes, mode)), [Arg(s), idx]


@case("scatter_add")
def _(draw):
    s, axes, idx, us = _index_problem(draw, True)
    mode = draw(st.sampled_from(["clip", "drop"]))
    return (lambda x, i, u: lax.scatter_add(x, i, u, axes, mode)), [Arg(s), idx, Arg(us)]


@case("scatter")
def _(draw):
    s, axes, idx, us = _index_problem(draw, True)
    mode = draw(st.sampled_from(["clip", "drop"]))
    combine = draw(st.sampled_from(["set", "set", "mul", "min", "max"]))
    return (lambda x, i, u: lax.scatter(x, i, u, axes, mode, combine)), [Arg(s), idx, Arg(us)]

# ---------------------------------------------------------------- control flow (rules in tracer/control_flow.py)


@case("cond")
def _(draw):
    s = draw(shapes())

    def f(x, y):  # a batched x gives a batched predicate: both branches run, then select
        return tr.cond(tnp.sum(x) > 0, lambda a, b: tnp.sin(a) * b, lambda a, b: a - b, x, y)
    return f, [Arg(s), Arg(s)]


@case("while")
def _(draw):
    s = draw(shapes())

    def f(x, step):  # members finish after different numbers of iterations
        v, n = tr.while_loop(lambda c: tnp.sum(c[0]) < 10.0,
                             lambda c: (c[0] * 1.5 + step, c[1] + 1), (x, 0))
        return v * n
    return f, [Arg(s, F64, "positive"), Arg((), F64, "positive")]


@case("scan")
def _(draw):
    s, n = draw(shapes()), draw(st.integers(1, 3))
    reverse = draw(st.booleans())

    def f(c0, xs):
        c, ys = tr.scan(lambda c, a: (c * a + 1.0, c - a), c0, xs, reverse=reverse)
        return tnp.sum(ys, axis=0) + c
    return f, [Arg(s, F64, "small"), Arg((n,) + s, F64, "small")]

# ---------------------------------------------------------------- the checker


def _stack_at(vals, axis):
    return np.stack([np.asarray(v) for v in vals], axis=axis)


def check_case(c: Case, data, jit: bool = False):
    f, specs = c.build(data.draw)
    size = data.draw(st.integers(1, 3), label="batch size")
    axes = [data.draw(st.one_of(st.none(), st.integers(-len(a.shape) - 1, len(a.shape))),
                      label=f"in_axes[{i}]") for i, a in enumerate(specs)]
    if all(ax is None for ax in axes):
        axes[data.draw(st.integers(0, len(specs) - 1), label="forced batched arg")] = 0
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    members = []  # members[b][i]: argument i of batch member b
    args = []
    for a, ax in zip(specs, axes):
        if ax is None:
            v = values(rng, a)
            args.append(v)
            members.append([v] * size)
        else:
            vs = [values(rng, a) for _ in range(size)]
            args.append(_stack_at(vs, ax))
            members.append(vs)
    # the primitive named by the case must be in the per-example program (a wrapper
    # may bind nothing for an identity, e.g. a full slice; hypothesis fails a case
    # whose draws never reach its primitive)
    ir = tr.make_ir(f)(*[m[0] for m in members])
    assume(c.prim in {e.prim.name for e in ir.eqns})

    per = [np.asarray(f(*[m[b] for m in members])) for b in range(size)]
    out_axis = data.draw(st.integers(-per[0].ndim - 1, per[0].ndim), label="out_axes")
    expected = _stack_at(per, out_axis)
    vf = tr.vmap(f, in_axes=tuple(axes), out_axes=out_axis)
    if jit:  # compiled code: its own math library, so a few ulps apart
        results, tol64 = [np.asarray(tr.jit(vf)(*args))], 1e-10
    else:    # eager, and staged then run in the reference interpreter
        results, tol64 = [np.asarray(vf(*args)), core.interpret(tr.make_ir(vf)(*args), args)[0]], 1e-12
    for res in results:
        assert res.shape == expected.shape and res.dtype == expected.dtype, (res, expected)
        if expected.dtype.kind == "f":
            tol = 1e-5 if expected.dtype == F32 else tol64
            np.testing.assert_allclose(res, expected, rtol=tol, atol=tol, equal_nan=True)
        else:
            np.testing.assert_array_equal(res, expected)


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_vmap_matches_loop(c):
    @settings(max_examples=c.examples)
    @given(st.data())
    def run(data):
        check_case(c, data)
    run()


def _table_primitives():
    mods = (elementwise, shape, reductions, linalg, indexing, control_flow)
    return {p.name for m in mods for p in vars(m).values() if isinstance(p, core.Primitive)}


def test_table_covers_every_primitive_of_the_core_set():
    missing = _table_primitives() - {c.prim for c in CASES}
    assert not missing, f"no vmap test case for {sorted(missing)}"


JIT_CASES = ["select", "broadcast_in_dim", "transpose", "slice", "pad", "concatenate", "reduce_max",
             "argmax", "cumsum", "dot_general", "gather", "scatter_add", "scatter"]
needs_jit = pytest.mark.skipif(not hasattr(tr, "jit"), reason="tr.jit not available")


def _run_jit(c, n):
    @settings(max_examples=n)
    @given(st.data())
    def run(data):
        check_case(c, data, jit=True)
    run()


@needs_jit
@pytest.mark.parametrize("c", [c for c in CASES if c.name in JIT_CASES],
                         ids=[c.name for c in CASES if c.name in JIT_CASES])
def test_jit_of_vmap_matches_loop(c):
    _run_jit(c, 3)


@needs_jit
@pytest.mark.slow
@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_jit_of_vmap_matches_loop_every_case(c):
    _run_jit(c, 4)
