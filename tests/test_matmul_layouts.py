"""The CPU matmul on every operand layout it reads in place (row-major, transposed,
batched, merged axes) and on tile edges, against the reference interpreter."""
import numpy as np
import pytest

import tracer as tr
from tracer import lax
from tracer.core import interpret

NN = (((1,), (0,)), ((), ()))   # x @ y
NT = (((1,), (1,)), ((), ()))   # x @ y.T  (y read k-contiguous)
TN = (((0,), (0,)), ((), ()))   # x.T @ y
TT = (((0,), (1,)), ((), ()))   # x.T @ y.T


def check(fn, *args, rtol):
    ref = interpret(tr.make_ir(fn)(*args), list(args))
    got = tr.jit(fn)(*args)
    got = got if isinstance(got, (list, tuple)) else [got]
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == r.dtype
        if r.dtype.kind == "f":
            np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol * np.abs(r).max())
        else:
            np.testing.assert_array_equal(g, r)


def operands(dn, m, k, n, dt, seed=0):
    rng = np.random.default_rng(seed)
    xs = (k, m) if dn in (TN, TT) else (m, k)
    ys = (n, k) if dn in (NT, TT) else (k, n)
    if np.dtype(dt).kind == "i":
        return rng.integers(-5, 5, xs).astype(dt), rng.integers(-5, 5, ys).astype(dt)
    return rng.standard_normal(xs).astype(dt), rng.standard_normal(ys).astype(dt)


@pytest.mark.parametrize("dn", [NN, NT, TN, TT], ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,k,n", [(128, 300, 70), (8, 16, 32), (13, 33, 10), (40, 600, 290),
                                   (9, 5, 1), (3, 20, 40), (64, 17, 47)])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_layouts_and_edges(dn, m, k, n, dt):
    x, y = operands(dn, m, k, n, dt)
    check(lambda p, q: lax.dot_general(p, q, dn), x, y, rtol=1e-4 if dt == "float32" else 1e-12)


@pytest.mark.parametrize("dn", [NN, NT, TN], ids=["NN", "NT", "TN"])
def test_integer_layouts(dn):
    x, y = operands(dn, 11, 7, 5, "int32")
    check(lambda p, q: lax.dot_general(p, q, dn), x, y, rtol=0)


def test_batched_transposed():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 40, 24)).astype(np.float32)   # (b, k, m)
    y = rng.standard_normal((3, 50, 40)).astype(np.float32)   # (b, n, k)
    check(lambda p, q: lax.dot_general(p, q, (((1,), (2,)), ((0,), (0,)))), x, y, rtol=1e-4)
    # batch axis not leading in one operand
    z = rng.standard_normal((40, 3, 50)).astype(np.float32)   # (k, b, n)
    check(lambda p, q: lax.dot_general(p, q, (((1,), (0,)), ((0,), (1,)))), x, z, rtol=1e-4)


def test_merged_and_unmergeable_axes():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 4, 6)).astype(np.float32)
    y = rng.standard_normal((4, 6, 33)).astype(np.float32)
    # two contracting axes, adjacent in both operands: merged into one stride
    check(lambda p, q: lax.dot_general(p, q, (((1, 2), (0, 1)), ((), ()))), x, y, rtol=1e-4)
    # contracting axes in swapped order in y: not one stride, packed copy
    y2 = np.ascontiguousarray(y.transpose(1, 0, 2))
    check(lambda p, q: lax.dot_general(p, q, (((1, 2), (1, 0)), ((), ()))), x, y2, rtol=1e-4)


def test_fused_operands_and_transpose_of_result():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 36)).astype(np.float32)
    w = rng.standard_normal((50, 36)).astype(np.float32)
    # operands computed elementwise (fused, no buffer of their own) and transposed
    check(lambda a, b: lax.dot_general(a * 2.0, (b + 1.0).T, NN), x, w, rtol=1e-4)
    check(lambda a, b: (a @ b.T).T, x, w, rtol=1e-4)


def test_mlp_step_against_interpreter():
    """The backward pass of a dense layer: every transposed layout at once."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, 40)).astype(np.float32)
    w = (rng.standard_normal((40, 24)) * 0.2).astype(np.float32)

    def loss(w, x):
        return (tr.nn.relu(x @ w) ** 2).sum()
    check(tr.grad(loss, argnums=(0, 1)), w, x, rtol=1e-4)
