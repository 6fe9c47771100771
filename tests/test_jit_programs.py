"""Random programs (random graphs of primitives) compiled by jit against the
reference interpreter. ``programs`` is also used by tests/test_passes.py."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tracer as tr
from tracer import lax
from tracer.core import interpret

CONST = np.linspace(-1, 1, 12).reshape(3, 4)


def _unary(name):
    return {
        "exp": lambda a: lax.exp(lax.tanh(a)), "sin": lax.sin, "tanh": lax.tanh, "neg": lax.neg,
        "abs": lax.abs, "sqrt": lambda a: lax.sqrt(lax.abs(a)), "log1p": lambda a: lax.log1p(lax.abs(a)),
        "logistic": lax.logistic, "square": lambda a: lax.integer_pow(a, 2),
        "double_neg": lambda a: lax.neg(lax.neg(a)), "times_one": lambda a: a * 1.0,
        "plus_zero": lambda a: lax.add(a, lax.full(a.shape, 0.0, a.dtype)), "pow1": lambda a: lax.integer_pow(a, 1),
        "floor": lax.floor, "round": lax.round,
    }[name]


def _binary(name):
    return {
        "add": lax.add, "sub": lax.sub, "mul": lax.mul, "max": lax.max, "min": lax.min,
        "div": lambda a, b: lax.div(a, lax.add(lax.abs(b), 1.0)),
        "atan2": lax.atan2, "select": lambda a, b: lax.select(lax.lt(a, b), a, b),
    }[name]


def _shape_op(name, a):
    """A value of the same shape as ``a`` built through a structural detour."""
    m, n = a.shape
    if name == "transpose2":
        return lax.transpose(lax.transpose(a, (1, 0)), (1, 0))
    if name == "reshape2":
        return lax.reshape(lax.reshape(a, (m * n,)), (m, n))
    if name == "rowsum":
        return lax.broadcast_in_dim(lax.reduce_sum(a, (1,)), (m, n), (0,))
    if name == "colmax":
        return lax.broadcast_in_dim(lax.reduce_max(a, (0,)), (m, n), (1,))
    if name == "rev":
        return lax.rev(a, (0, 1))
    if name == "roll":
        return lax.concatenate([lax.slice(a, (0, 1), (m, n)), lax.slice(a, (0, 0), (m, 1))], 1)
    if name == "pad":
        return lax.pad(lax.slice(a, (1, 0), (m, n)), np.zeros((), a.dtype), ((0, 1, 0), (0, 0, 0)))
    if name == "cumsum":
        return lax.cumsum(a, 1, False)
    if name == "matmul":
        sq = lax.dot_general(a, a, (((0,), (0,)), ((), ())))  # n x n
        return lax.dot_general(a, lax.tanh(sq), (((1,), (0,)), ((), ())))
    if name == "const":
        return lax.add(a, CONST.astype(a.dtype))
    if name == "gather":
        idx = np.array([[2], [0], [1]], np.int32)
        return lax.gather(a, idx, (0,), "clip")
    if name == "scatter":
        idx = np.array([[1], [1], [5]], np.int32)
        return lax.scatter_add(a, idx, a, (0,), "drop")
    if name == "argmax":
        return lax.broadcast_in_dim(lax.convert_element_type(lax.argmax(a, 1), a.dtype), (m, n), (0,))
    raise KeyError(name)


UNARY = ["exp", "sin", "tanh", "neg", "abs", "sqrt", "log1p", "logistic", "square", "double_neg",
         "times_one", "plus_zero", "pow1", "floor", "round"]
BINARY = ["add", "sub", "mul", "max", "min", "div", "atan2", "select"]
SHAPE = ["transpose2", "reshape2", "rowsum", "colmax", "rev", "roll", "pad", "cumsum", "matmul",
         "const", "gather", "scatter", "argmax"]


@st.composite
def programs(draw, dtype=np.float64):
    """(function, args): a random straight-line program over three [3, 4] arrays."""
    steps = draw(st.lists(st.tuples(st.sampled_from(["u", "b", "s", "dup"]), st.integers(0, 99),
                                    st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=10))
    n_out = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    args = [rng.uniform(-2, 2, (3, 4)).astype(dtype) for _ in range(3)]

    def fun(x, y, z):
        pool = [x, y, z]
        for kind, i, j, k in steps:
            a, b = pool[i % len(pool)], pool[j % len(pool)]
            if kind == "u":
                pool.append(_unary(UNARY[k % len(UNARY)])(a))
            elif kind == "b":
                pool.append(_binary(BINARY[k % len(BINARY)])(a, b))
            elif kind == "s":
                pool.append(_shape_op(SHAPE[k % len(SHAPE)], a))
            else:  # the same expression twice (for CSE)
                pool.append(lax.add(lax.mul(a, b), lax.mul(a, b)))
        return [pool[-1 - i] for i in range(min(n_out, len(pool)))] + [lax.reduce_sum(pool[-1], (0, 1))]
    fun.__name__ = "random_program"
    return fun, args


def assert_close(got, ref, rtol):
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == r.dtype
        np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol)


@given(programs())
@settings(max_examples=30)
def test_random_programs_compile_like_the_interpreter(prog):
    fun, args = prog
    graph = tr.make_ir(fun)(*args)
    assert_close(tr.jit(fun)(*args), interpret(graph, args), 1e-9)


@given(programs(np.float32))
@settings(max_examples=15)
def test_random_float32_programs(prog):
    fun, args = prog
    graph = tr.make_ir(fun)(*args)
    ref = interpret(graph, args)
    got = tr.jit(fun)(*args)
    for g, r in zip(got, ref):
        # floor/round of values at an integer boundary may flip with last-bit differences
        np.testing.assert_allclose(g, r, rtol=2e-3, atol=2e-3 * (1 + np.abs(r).max()))


@given(programs())
@settings(max_examples=15)
def test_jit_of_grad_of_random_programs_matches_eager_grad(prog):
    fun, args = prog

    def scalar_loss(x, y, z):
        total = 0.0
        for o in fun(x, y, z):
            total = total + lax.reduce_sum(lax.tanh(o), tuple(range(o.ndim)))
        return total
    g = tr.grad(scalar_loss, argnums=(0, 1))
    eager = g(*args)
    compiled = tr.jit(g)(*args)
    for e, c in zip(eager, compiled):
        np.testing.assert_allclose(c, e, rtol=1e-9, atol=1e-9)
