"""vmap composed with itself, with grad, with jacfwd/jacrev, with jit (if present),
and the printed IR of a vmapped function. Oracles: Python loops over the batch of
the unbatched function (numpy reference evaluation) and float64 central finite
differences for derivatives."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tracer as tr
import tracer.numpy as tnp
from tracer import core
from oracles import fd_grad, fd_jac

rng = np.random.default_rng(0)


def loss(w, b, x, y):
    """A small per-example regression loss: scalar output."""
    h = tnp.tanh(x @ w + b)
    return tnp.sum((h - y) ** 2) + 0.1 * tnp.sum(w * w)





# ---------------------------------------------------------------- nested vmap


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(0, 1), st.integers(0, 1))
def test_nested_vmap_matches_double_loop(n, m, k, ax_in, ax_out):
    x = rng.standard_normal((n, k) if ax_in == 0 else (k, n))
    y = rng.standard_normal((m, k))

    def f(a, b):
        return tnp.sum(a * b) * tnp.exp(a) - b

    inner = tr.vmap(f, in_axes=(None, 0), out_axes=ax_out)    # over y
    outer = tr.vmap(inner, in_axes=(ax_in, None))              # over x
    got = outer(x, y)
    xs = x if ax_in == 0 else x.T
    per = [np.stack([np.asarray(f(a, b)) for b in y], axis=ax_out) for a in xs]
    np.testing.assert_allclose(got, np.stack(per), rtol=1e-12)


def test_nested_vmap_inner_closes_over_outer_batched_value():
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))

    def per_x(a):
        return tr.vmap(lambda b: tnp.dot(a, b) * tnp.max(a))(y)
    got = tr.vmap(per_x)(x)
    want = np.array([[np.dot(a, b) * a.max() for b in y] for a in x])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_vmap_of_matmul_is_a_batched_dot_general():
    x, y = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 3, 5))
    ir = tr.make_ir(tr.vmap(lambda a, b: a @ b))(x, y)
    eqns = [e for e in ir.eqns if e.prim.name == "dot_general"]
    assert len(eqns) == 1 and eqns[0].params["dimension_numbers"][1] == ((0,), (0,))
    np.testing.assert_allclose(tr.vmap(lambda a, b: a @ b)(x, y), x @ y, rtol=1e-12)

# ---------------------------------------------------------------- vmap and grad


def test_per_example_gradients_equal_a_loop_of_grads():
    w, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    xs, ys = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    per_ex = tr.vmap(tr.grad(loss, argnums=(0, 1)), in_axes=(None, None, 0, 0))
    gw, gb = per_ex(w, b, xs, ys)
    assert gw.shape == (6, 3, 2) and gb.shape == (6, 2)
    for i in range(6):
        lw, lb = tr.grad(loss, argnums=(0, 1))(w, b, xs[i], ys[i])
        np.testing.assert_allclose(gw[i], lw, rtol=1e-12)
        np.testing.assert_allclose(gb[i], lb, rtol=1e-12)
    # and the loop of grads against finite differences, for one member
    np.testing.assert_allclose(gw[2], fd_grad(lambda v: loss(v, b, xs[2], ys[2]), w), rtol=1e-6, atol=1e-8)


def test_per_example_gradients_with_a_pytree_of_parameters():
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    xs, ys = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))

    def l(p, x, y):
        return loss(p["w"], p["b"], x, y)
    g = tr.vmap(tr.grad(l), in_axes=(None, 0, 0))(params, xs, ys)
    assert set(g) == {"w", "b"}
    for i in range(4):
        gi = tr.grad(l)(params, xs[i], ys[i])
        np.testing.assert_allclose(g["w"][i], gi["w"], rtol=1e-12)
        np.testing.assert_allclose(g["b"][i], gi["b"], rtol=1e-12)


def test_grad_of_vmap_equals_sum_of_per_example_grads():
    w, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    xs, ys = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))

    def total(w):
        return tnp.sum(tr.vmap(loss, in_axes=(None, None, 0, 0))(w, b, xs, ys))
    g = tr.grad(total)(w)
    want = sum(tr.grad(loss)(w, b, xs[i], ys[i]) for i in range(5))
    np.testing.assert_allclose(g, want, rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(total, w), rtol=1e-6, atol=1e-8)


def test_grad_of_vmap_through_gather_and_scatter():
    table = rng.standard_normal((5, 3))
    idx = np.array([[0], [3], [3], [1]], np.int32)

    def f(t):
        # gather with batched indices; scatter with batched operand, indices and updates
        rows = tr.vmap(lambda tt, i: tt[i[0]] * 2.0, in_axes=(None, 0))(t, idx)
        upd = tr.vmap(lambda r, i: (r * 3.0).at[i[0] % 3].set(r[0]))(rows, idx)
        return tnp.sum(tnp.sin(rows)) + tnp.sum(upd ** 2)
    np.testing.assert_allclose(tr.grad(f)(table), fd_grad(f, table), rtol=1e-6, atol=1e-8)


def test_vmap_of_grad_of_vmap():
    xs = rng.standard_normal((3, 4, 2))

    def inner(x):  # x: (4, 2) -> scalar, using an inner vmap over rows
        return tnp.sum(tr.vmap(lambda r: tnp.sin(r[0]) * r[1])(x))
    got = tr.vmap(tr.grad(inner))(xs)
    for i in range(3):
        np.testing.assert_allclose(got[i], fd_grad(inner, xs[i]), rtol=1e-6, atol=1e-8)

# ---------------------------------------------------------------- jacobians (vmap over basis vectors)


def g_tree(p, z):
    return {"o": tnp.tanh(p["w"] @ z + p["b"]), "s": tnp.sum(z ** 2) * p["b"]}


@pytest.mark.parametrize("jac", [tr.jacfwd, tr.jacrev], ids=["jacfwd", "jacrev"])
def test_jacobians_of_pytrees_with_argnums_tuple(jac):
    p = {"w": rng.standard_normal((2, 3)), "b": rng.standard_normal(2)}
    z = rng.standard_normal(3)
    J = jac(g_tree, argnums=(0, 1))(p, z)
    for out in ("o", "s"):
        jp, jz = J[out]
        np.testing.assert_allclose(jz, fd_jac(lambda v: g_tree(p, v)[out], z), rtol=1e-6, atol=1e-8)
        for k in ("w", "b"):
            def f(v, k=k):
                return g_tree({**p, k: v}, z)[out]
            np.testing.assert_allclose(jp[k], fd_jac(f, p[k]), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("jac", [tr.jacfwd, tr.jacrev], ids=["jacfwd", "jacrev"])
def test_jacobian_is_one_batched_graph_not_a_loop(jac):
    """The Jacobian's IR does not grow with the number of basis vectors."""
    def f(x):
        return tnp.sin(x) * tnp.sum(x)
    small = tr.make_ir(jac(f))(np.ones(2))
    big = tr.make_ir(jac(f))(np.ones(40))
    assert len(big.eqns) == len(small.eqns)
    np.testing.assert_allclose(jac(f)(np.arange(3.0)), fd_jac(f, np.arange(3.0)), rtol=1e-6, atol=1e-8)


def test_hessian():
    def f(x):
        return tnp.sum(tnp.sin(x) ** 3) * tnp.sum(x)
    x = rng.standard_normal(3)
    np.testing.assert_allclose(tr.hessian(f)(x), fd_jac(tr.grad(f), x), rtol=1e-6, atol=1e-8)

# ---------------------------------------------------------------- the printed IR


@pytest.mark.parametrize("fun", [
    lambda x, w: tnp.tanh(x @ w) + 1.0,
    lambda x, w: tnp.max(x[::-1] * 2.0, axis=0) + tnp.sum(w),
    lambda x, w: tnp.concatenate([x, x ** 2]).at[1].add(tnp.sum(w)),
    lambda x, w: tr.grad(lambda v: tnp.sum(tnp.sin(v @ w)))(x),
], ids=["dense", "reduce", "concat_scatter", "grad"])
def test_vmapped_ir_is_batched_not_unrolled(fun):
    w = rng.standard_normal((3, 2))

    def ir_for(n):
        return tr.make_ir(tr.vmap(fun, in_axes=(0, None)))(rng.standard_normal((n, 3)), w)
    small, big = ir_for(2), ir_for(9)
    assert len(big.eqns) == len(small.eqns)
    assert big.invars[0].aval.shape == (9, 3) and big.outvars[0].aval.shape[0] == 9
    text = str(big)
    assert "f64[9," in text or "f64[9]" in text
    xs = rng.standard_normal((4, 3))
    # oracle: the per-example graph through the reference interpreter, member by member
    want = np.stack([core.interpret(tr.make_ir(fun)(x, w), [x, w])[0] for x in xs])
    np.testing.assert_allclose(tr.vmap(fun, in_axes=(0, None))(xs, w), want, rtol=1e-12)

# ---------------------------------------------------------------- jit


jit = getattr(tr, "jit", None)
needs_jit = pytest.mark.skipif(jit is None, reason="tr.jit not available yet")


@needs_jit
def test_jit_of_vmap_and_vmap_of_jit():
    w = rng.standard_normal((3, 2)).astype(np.float32)
    xs = rng.standard_normal((5, 3)).astype(np.float32)

    def f(x, w):
        return tnp.tanh(x @ w) * tnp.sum(x)
    want = np.stack([np.asarray(f(x, w)) for x in xs])
    a = jit(tr.vmap(f, in_axes=(0, None)))(xs, w)
    b = tr.vmap(jit(f), in_axes=(0, None))(xs, w)
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, want, rtol=1e-5, atol=1e-6)


@needs_jit
def test_jit_of_per_example_grads():
    w, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    xs, ys = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    per_ex = tr.vmap(tr.grad(loss), in_axes=(None, None, 0, 0))
    np.testing.assert_allclose(jit(per_ex)(w, b, xs, ys), per_ex(w, b, xs, ys), rtol=1e-10)

# ---------------------------------------------------------------- tnp / nn programs


TNP_PROGRAMS = {
    "softmax": lambda x: tr.nn.softmax(x, axis=-1),
    "logsumexp": lambda x: tr.nn.logsumexp(x, axis=0),
    "einsum": lambda x: tnp.einsum("ij,jk->ik", x, x.T),
    "var": lambda x: tnp.var(x, axis=1),
    "where": lambda x: tnp.where(x > 0, x, -x * 2),
    "one_hot_argmax": lambda x: tr.nn.one_hot(tnp.argmax(x, axis=1), 5),
    "index_by_traced_int": lambda x: x[tnp.argmax(x[:, 0])],
    "at_max": lambda x: x.at[1:, 2].max(0.0),
    "swap_matmul": lambda x: tnp.swapaxes(x, 0, 1)[::-1] @ x,
}


@pytest.mark.parametrize("name", sorted(TNP_PROGRAMS))
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_vmap_of_tnp_programs_matches_loop(name, axis):
    f = TNP_PROGRAMS[name]
    x = rng.standard_normal((4, 3, 5))
    got = tr.vmap(f, in_axes=axis)(x)
    want = np.stack([core.interpret(tr.make_ir(f)(m), [m])[0] for m in np.moveaxis(x, axis, 0)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_per_example_gradients_through_scan_and_cond():
    def l(w, x):
        c, ys = tr.scan(lambda c, a: (tnp.tanh(c * w + a), c), 0.0, x)
        return tr.cond(c > 0, lambda v: v * v, lambda v: -v, c) + tnp.sum(ys)
    xs = rng.standard_normal((5, 4))
    g = tr.vmap(tr.grad(l), in_axes=(None, 0))(0.7, xs)
    np.testing.assert_allclose(g, [tr.grad(l)(0.7, x) for x in xs], rtol=1e-12)
    fd = [(l(0.7 + 1e-6, x) - l(0.7 - 1e-6, x)) / 2e-6 for x in xs]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    if jit is not None:
        np.testing.assert_allclose(jit(tr.vmap(tr.grad(l), in_axes=(None, 0)))(0.7, xs), g, rtol=1e-10)
