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


# ---------------------------------------------------------------- output fusion (epilogues)

def scratch_bytes(fn, *args):
    return tr.jit(fn).lower(*args).compile().executable.scratch_bytes


@pytest.mark.parametrize("m,k,n", [(40, 600, 290), (21, 601, 300), (13, 33, 10), (5, 7, 9), (64, 256, 64)])
def test_sgd_update_epilogue(m, k, n):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((k, m)).astype(np.float32)
    g = rng.standard_normal((k, n)).astype(np.float32)
    w = rng.standard_normal((m, n)).astype(np.float32)
    f = lambda w, x, g: w - 0.01 * lax.dot_general(x, g, TN)  # noqa: E731
    check(f, w, x, g, rtol=1e-4)
    # the product never gets a buffer of its own (the update is applied per tile): as
    # much scratch as the bare product, whose result goes straight to the output
    assert scratch_bytes(f, w, x, g) == scratch_bytes(lambda w, x, g: lax.dot_general(x, g, TN), w, x, g)


def test_relu_bias_epilogue_and_batched():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((37, 50)).astype(np.float32)
    w = rng.standard_normal((50, 70)).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    check(lambda x, w, b: tr.nn.relu(x @ w + b), x, w, b, rtol=1e-4)
    xb = rng.standard_normal((3, 9, 20)).astype(np.float64)
    wb = rng.standard_normal((3, 20, 33)).astype(np.float64)
    bb = rng.standard_normal(33)
    check(lambda x, w, b: tr.numpy.tanh(lax.dot_general(x, w, (((2,), (1,)), ((0,), (0,)))) + b),
          xb, wb, bb, rtol=1e-12)


def test_epilogue_integer_and_empty_contraction():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    check(lambda x: x @ x.T * 2 - 1, x, rtol=0)
    z = np.zeros((9, 0), np.float32)
    check(lambda a, b: a @ b + 1.0, z, np.zeros((0, 40), np.float32), rtol=0)


def test_no_fusion_when_product_read_elsewhere_or_operand_later():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((24, 30)).astype(np.float32)
    w = rng.standard_normal((30, 40)).astype(np.float32)
    # the product is also reduced: it keeps its buffer
    check(lambda x, w: (x @ w - 1.0, (x @ w).sum(axis=0)), x, w, rtol=1e-4)
    # the epilogue's other operand is a reduction computed after the product
    check(lambda x, w: [(h := x @ w) * tr.numpy.sum(x * x), h.T * 0 + 1][0], x, w, rtol=1e-4)
    # the same fused value returned twice, and the product as an output too
    check(lambda x, w: (x @ w * 2.0, x @ w * 2.0), x, w, rtol=1e-4)
    check(lambda x, w: (x @ w, x @ w * 2.0), x, w, rtol=1e-4)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 5, 16, 23, 40])
def test_transposed_and_strided_b_with_short_and_ragged_k(dt, k):
    """B stored k-contiguous ("cols" packing, incl. k < 16 and k % 16 != 0) and B whose
    contracting axis is neither first nor last (the scalar "any" packing)."""
    rng = np.random.default_rng(k)
    a = rng.standard_normal((9, k)).astype(dt)
    bt = rng.standard_normal((37, k)).astype(dt)          # a @ bt.T
    b3 = rng.standard_normal((5, k, 7)).astype(dt)        # contract the middle axis
    rtol = 1e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(tr.jit(lambda a, b: a @ b.T)(a, bt), a @ bt.T, rtol=rtol, atol=rtol)
    f = tr.jit(lambda a, b: lax.dot_general(a, b, (((1,), (1,)), ((), ()))))
    np.testing.assert_allclose(f(a, b3), np.einsum("ik,jkl->ijl", a, b3), rtol=rtol, atol=rtol)
