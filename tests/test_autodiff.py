"""Composition of the autodiff transforms, the public API's contracts, conventions at
non-differentiable points, and the printed adjoint graph. Oracles: closed forms,
float64 central finite differences, and the other AD mode."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracer as tr
import tracer.numpy as tnp
from oracles import fd_grad, fd_jac

F64 = np.float64






# ---------------------------------------------------------------- higher order

THIRD_ORDER = [
    # f, (f', f'', f''') closed forms
    (tnp.sin, lambda x: (math.cos(x), -math.sin(x), -math.cos(x))),
    (lambda x: tnp.exp(x) * x ** 2,
     lambda x: (math.exp(x) * (x * x + 2 * x), math.exp(x) * (x * x + 4 * x + 2),
                math.exp(x) * (x * x + 6 * x + 6))),
    (tnp.tanh, lambda x: (1 - math.tanh(x) ** 2, -2 * math.tanh(x) * (1 - math.tanh(x) ** 2),
                          (1 - math.tanh(x) ** 2) * (6 * math.tanh(x) ** 2 - 2))),
    (tnp.log1p, lambda x: (1 / (1 + x), -1 / (1 + x) ** 2, 2 / (1 + x) ** 3)),
    (lambda x: x ** 4 / tnp.sqrt(x), lambda x: (3.5 * x ** 2.5, 8.75 * x ** 1.5, 13.125 * x ** 0.5)),
]


@pytest.mark.parametrize("f,derivs", THIRD_ORDER)
@given(x=st.floats(0.1, 2.0))
def test_third_order_matches_closed_form(f, derivs, x):
    d1, d2, d3 = tr.grad(f), tr.grad(tr.grad(f)), tr.grad(tr.grad(tr.grad(f)))
    for got, want in zip((d1(F64(x)), d2(F64(x)), d3(F64(x))), derivs(x)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # forward over reverse agrees too
    _, t3 = tr.jvp(d2, (F64(x),), (F64(1.0),))
    np.testing.assert_allclose(t3, derivs(x)[2], rtol=1e-9, atol=1e-9)


def _vec_fn(x):
    return tnp.stack([tnp.sum(tnp.sin(x) * x[::-1]), tnp.prod(tnp.tanh(x) + 2.0),
                      tnp.max(x * x) + tnp.mean(tnp.exp(x))])


def test_jacfwd_of_jacrev_equals_jacrev_of_jacfwd():
    x = np.array([0.3, -0.7, 1.1], F64)
    a = tr.jacfwd(tr.jacrev(_vec_fn))(x)
    b = tr.jacrev(tr.jacfwd(_vec_fn))(x)
    assert a.shape == (3, 3, 3)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a, fd_jac(tr.jacrev(_vec_fn), x), rtol=1e-5, atol=1e-6)


# random programs: a list of (op, operand indices) over a growing pool of values
UNARY = {"sin": tnp.sin, "cos": tnp.cos, "tanh": tnp.tanh, "square": lambda v: v * v,
         "softplus": lambda v: tnp.log1p(tnp.exp(v)), "neg": lambda v: -v,
         "rev": lambda v: v[::-1], "cumsum": lambda v: tnp.cumsum(v),
         "norm": lambda v: v / tnp.sqrt(tnp.sum(v * v) + 1.0),
         "exp": lambda v: tnp.exp(0.3 * v), "log": lambda v: tnp.log(v * v + 1.0),
         "pow": lambda v: (v * v + 1.0) ** 1.5, "roll": lambda v: tnp.concatenate([v[1:], v[:1]]),
         "rows": lambda v: tnp.repeat(tnp.sum(tnp.reshape(v, (2, 2)).T * np.array([1.0, 2.0]), axis=1), 2),
         "softmax": lambda v: tr.nn.softmax(v), "gather": lambda v: v[np.array([3, 0, 0, 2])]}
BINARY = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b,
          "outer": lambda a, b: tnp.outer(a, b) @ a, "max": tnp.maximum,
          "where": lambda a, b: tnp.where(a > b, a * b, a + b),
          "div": lambda a, b: a / (b * b + 1.0), "atan2": lambda a, b: tnp.arctan2(a, b * b + 1.0),
          "scatter": lambda a, b: tr.lax.scatter(a, np.array([[1], [1], [3]]), b[:3], (0,)),
          "matvec": lambda a, b: tnp.reshape(tnp.outer(a, b), (4, 4)) @ tnp.tanh(a)}


@st.composite
def programs(draw):
    steps = []
    for k in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(sorted(UNARY))), (draw(st.integers(0, k)),)))
        else:
            steps.append((draw(st.sampled_from(sorted(BINARY))),
                          (draw(st.integers(0, k)), draw(st.integers(0, k)))))
    return steps


def run_program(steps, x):
    pool = [x]
    for name, args in steps:
        fn = UNARY.get(name) or BINARY[name]
        pool.append(fn(*[pool[i] for i in args]))
    return pool[-1] + 0.5 * pool[len(pool) // 2]


@settings(max_examples=15)
@given(prog=programs(), seed=st.integers(0, 2**31 - 1))
def test_jacfwd_equals_jacrev_on_random_programs(prog, seed):
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, 4)
    f = lambda v: run_program(prog, v)  # noqa: E731
    jf, jr = tr.jacfwd(f)(x), tr.jacrev(f)(x)
    assert jf.shape == jr.shape == (4, 4)
    np.testing.assert_allclose(jf, jr, rtol=1e-10, atol=1e-10)
    # away from the kinks of max/where, finite differences agree
    np.testing.assert_allclose(jf, fd_jac(f, x), rtol=1e-4, atol=1e-4 * max(1, np.abs(jf).max()))


@settings(max_examples=8)
@given(prog=programs(), seed=st.integers(0, 2**31 - 1))
def test_hessians_of_random_programs_are_symmetric_and_agree(prog, seed):
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, 4)
    f = lambda v: tnp.sum(tnp.sin(run_program(prog, v)))  # noqa: E731
    H = tr.hessian(f)(x)
    np.testing.assert_allclose(H, H.T, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(H, tr.jacrev(tr.grad(f))(x), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(H, fd_jac(tr.grad(f), x), rtol=1e-4, atol=1e-4 * max(1, np.abs(H).max()))


def _scalar_fn(x):
    A = np.array([[1.0, 0.5, -0.2], [0.3, 2.0, 0.1], [-0.4, 0.0, 1.5]])
    return tnp.sum(tnp.sin(x) * x[::-1]) + x @ A @ x + tnp.log(tnp.sum(tnp.exp(x)))


@given(seed=st.integers(0, 2**31 - 1))
def test_hessian_symmetric_and_matches_finite_differences(seed):
    x = np.random.default_rng(seed).uniform(-1, 1, 3)
    H = tr.hessian(_scalar_fn)(x)
    assert H.shape == (3, 3)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, fd_jac(tr.grad(_scalar_fn), x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tr.grad(_scalar_fn)(x), fd_grad(_scalar_fn, x), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- pytrees and argnums

def _mlp_loss(params, x, y):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    out = h @ params["w2"] + params["b2"]
    return tnp.mean((out - y) ** 2)


def _mlp_params(rng):
    return {"w1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4),
            "w2": rng.standard_normal((4, 2)), "b2": rng.standard_normal(2)}


def test_grad_of_dict_parameters_matches_finite_differences():
    rng = np.random.default_rng(0)
    params, x, y = _mlp_params(rng), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    g = tr.grad(_mlp_loss)(params, x, y)
    assert sorted(g) == sorted(params)
    for k in params:
        assert g[k].shape == params[k].shape and g[k].dtype == F64

        def f_k(v, k=k):
            return _mlp_loss({**params, k: v}, x, y)
        np.testing.assert_allclose(g[k], fd_grad(f_k, params[k]), rtol=1e-6, atol=1e-8)
    # argnums tuple: gradients for (params, x) in that order
    gp, gx = tr.grad(_mlp_loss, argnums=(0, 1))(params, x, y)
    gx2, gp2 = tr.grad(_mlp_loss, argnums=(1, 0))(params, x, y)
    np.testing.assert_allclose(gx, fd_grad(lambda v: _mlp_loss(params, v, y), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gx, gx2)
    for k in params:
        np.testing.assert_allclose(gp[k], gp2[k])


def test_value_and_grad_has_aux():
    def f(w, x):
        pred = tnp.sin(w * x)
        return tnp.sum(pred ** 2), {"pred": pred, "n": tnp.sum(x > 0)}
    w, x = F64(0.7), np.array([0.5, -1.0, 2.0])
    (val, aux), g = tr.value_and_grad(f, has_aux=True)(w, x)
    np.testing.assert_allclose(val, np.sum(np.sin(w * x) ** 2))
    np.testing.assert_allclose(aux["pred"], np.sin(w * x))
    assert int(aux["n"]) == 2
    np.testing.assert_allclose(g, np.sum(2 * np.sin(w * x) * np.cos(w * x) * x))
    g2, aux2 = tr.grad(f, has_aux=True)(w, x)
    np.testing.assert_allclose(g2, g)
    np.testing.assert_allclose(aux2["pred"], aux["pred"])


def test_grad_passes_non_differentiated_arguments_as_they_are():
    def f(x, n, scale):
        return tnp.sum(tnp.ones(n) * x) * scale  # n is used as a shape: it must stay concrete
    np.testing.assert_allclose(tr.grad(f)(F64(2.0), 3, 1.5), 4.5)


def test_closures_over_outer_values():
    c = np.array([1.0, 2.0, 3.0])
    # a closure over a numpy constant
    np.testing.assert_allclose(tr.grad(lambda x: tnp.sum(tnp.sin(c * x)))(F64(0.3)),
                               np.sum(c * np.cos(c * 0.3)))

    # a closure over an outer traced value: d/dx [x cos(x y)]|_{y=x} = cos(x^2) - 2 x^2 sin(x^2)
    def outer(x):
        return tr.grad(lambda y: tnp.sin(x * y))(x)
    x = 0.8
    np.testing.assert_allclose(tr.grad(outer)(F64(x)), math.cos(x * x) - 2 * x * x * math.sin(x * x),
                               rtol=1e-10)
    np.testing.assert_allclose(tr.grad(outer)(F64(x)), fd_grad(outer, np.array(x)), rtol=1e-6)


def test_vjp_with_non_scalar_and_pytree_outputs():
    def f(x, y):
        return {"a": tnp.sin(x) * y, "b": tnp.sum(x * x)}, x[0]
    x, y = np.array([0.1, 0.5, -0.3]), F64(2.0)
    out, pull = tr.vjp(f, x, y)
    ca, cb, c0 = np.array([1.0, -2.0, 0.5]), F64(3.0), F64(-1.0)
    gx, gy = pull(({"a": ca, "b": cb}, c0))
    np.testing.assert_allclose(gx, ca * np.cos(x) * y + cb * 2 * x + np.array([c0, 0, 0]))
    np.testing.assert_allclose(gy, np.sum(ca * np.sin(x)))
    # has_aux, and calling the pullback twice
    out2, pull2, aux = tr.vjp(lambda v: (tnp.exp(v), tnp.sum(v)), x, has_aux=True)
    np.testing.assert_allclose(aux, np.sum(x))
    np.testing.assert_allclose(pull2(np.ones(3))[0], np.exp(x))
    np.testing.assert_allclose(pull2(2 * np.ones(3))[0], 2 * np.exp(x))
    with pytest.raises(ValueError, match="shape"):
        pull2(np.ones(4))


def test_jacobian_output_structure_follows_jax():
    def f(p, x):
        return {"u": p["w"] * x, "s": tnp.sum(p["w"])}
    p, x = {"w": np.array([1.0, 2.0])}, np.array([3.0, 4.0])
    for jac in (tr.jacfwd, tr.jacrev):
        J = jac(f)(p, x)  # output tree of (argument tree)
        assert J["u"]["w"].shape == (2, 2) and J["s"]["w"].shape == (2,)
        np.testing.assert_allclose(J["u"]["w"], np.diag(x))
        np.testing.assert_allclose(J["s"]["w"], np.ones(2))
        J2 = jac(f, argnums=(0, 1))(p, x)  # output tree of (tuple over argnums)
        assert isinstance(J2["u"], tuple) and len(J2["u"]) == 2
        np.testing.assert_allclose(J2["u"][1], np.diag(p["w"]))
        np.testing.assert_allclose(J2["s"][1], np.zeros(2))
    H = tr.hessian(lambda p: tnp.sum(p["w"] ** 3))(p)
    np.testing.assert_allclose(H["w"]["w"], np.diag(6 * p["w"]))
    H2 = tr.hessian(lambda u, v: tnp.sum(u ** 2 * v) + tnp.sum(v ** 3), argnums=(0, 1))(x, p["w"])
    assert [[h.shape for h in row] for row in H2] == [[(2, 2)] * 2] * 2  # ((H00, H01), (H10, H11))
    np.testing.assert_allclose(H2[0][1], np.diag(2 * x))
    np.testing.assert_allclose(H2[1][1], np.diag(6 * p["w"]))
    np.testing.assert_allclose(H2[0][1], H2[1][0].T)


# ---------------------------------------------------------------- errors

def test_clear_errors():
    f = lambda x: tnp.sum(x * x)  # noqa: E731
    with pytest.raises(TypeError, match="floating-point inputs.*int32"):
        tr.grad(f)(np.arange(3, dtype=np.int32))
    with pytest.raises(TypeError, match="floating-point inputs.*bool"):
        tr.grad(lambda b: tnp.sum(b))(np.array([True]))
    with pytest.raises(TypeError, match="scalar"):
        tr.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match="floating-point output"):
        tr.grad(lambda x: tnp.sum(x > 0))(np.ones(3))
    with pytest.raises(ValueError, match="out of range"):
        tr.grad(f, argnums=2)(np.ones(3))
    with pytest.raises(TypeError, match="argnums"):
        tr.grad(f, argnums="x")(np.ones(3))
    with pytest.raises(TypeError, match="has_aux"):
        tr.grad(f, has_aux=True)(np.ones(3))
    with pytest.raises(tr.ConcretizationError):
        tr.grad(lambda x: x if x > 0 else -x)(F64(1.0))


# ---------------------------------------------------------------- zero derivatives and conventions

def test_comparisons_and_integer_valued_ops_have_zero_derivative():
    x = np.array([0.3, -1.7, 2.2])
    for fn in (lambda v: tnp.floor(v), lambda v: tnp.round(v), lambda v: tnp.sign(v),
               lambda v: (v > 0).astype(np.float64), lambda v: tnp.argmax(v).astype(np.float64),
               lambda v: v.astype(np.int32).astype(np.float64), lambda v: tr.stop_gradient(v) * 1.0):
        np.testing.assert_array_equal(tr.grad(lambda v: tnp.sum(fn(v)))(x), np.zeros(3))
        _, t = tr.jvp(fn, (x,), (np.ones(3),))
        np.testing.assert_array_equal(t, np.zeros(np.shape(t)))


def test_conventions_at_non_differentiable_points_match_jax():
    g = lambda f, x: float(tr.grad(f)(F64(x)))  # noqa: E731
    assert g(tnp.abs, 0.0) == 1.0            # JAX: d|x|/dx at 0 is 1
    assert g(tnp.sign, 0.0) == 0.0
    assert g(tnp.sqrt, 0.0) == math.inf      # 0.5 / sqrt(0)
    assert g(tr.nn.relu, 0.0) == 0.0         # JAX: relu'(0) = 0
    assert g(lambda x: tnp.maximum(x, 1.0), 1.0) == 0.5   # ties share equally
    assert g(lambda x: tnp.minimum(x, x), 2.0) == 1.0      # 0.5 + 0.5
    gm = tr.grad(lambda v: tnp.max(v))(np.array([1.0, 3.0, 3.0, 0.0]))
    np.testing.assert_array_equal(gm, [0.0, 0.5, 0.5, 0.0])  # reduction ties share equally
    gp = tr.grad(lambda v: tnp.prod(v))(np.array([2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(gp, [0.0, 6.0, 0.0])  # exact with a zero factor
    assert g(lambda x: x ** 0.0, 0.0) == 0.0
    assert g(lambda x: 0.0 ** x, 1.0) == 0.0  # log(0) replaced by 0, as JAX


def test_grad_dtypes_follow_inputs():
    x32 = np.array([0.5, 1.0], np.float32)
    assert tr.grad(lambda v: tnp.sum(tnp.sin(v)))(x32).dtype == np.float32
    g = tr.grad(lambda v: tnp.sum(v.astype(np.float32)))(np.array([1.0, 2.0]))
    assert g.dtype == F64
    np.testing.assert_array_equal(g, [1.0, 1.0])


# ---------------------------------------------------------------- the adjoint graph

X = np.linspace(-math.pi, math.pi, 2000).astype(np.float32)
Y = np.sin(X)


def poly_loss(a, b, c, d):
    y_pred = a + b * X + c * X ** 2 + d * X ** 3
    return tnp.sum((y_pred - Y) ** 2)


def test_polynomial_adjoint_graph_is_lean():
    w = [tr.ShapedArray((), np.float32)] * 4  # traced at abstract values
    g = tr.make_ir(tr.grad(poly_loss, argnums=(0, 1, 2, 3)))(*w)
    text = str(g)
    g.verify()
    assert "broadcast_in_dim" not in text          # the seed 1.0 is never materialised
    assert " 1.0:" not in text and " 0.0:" not in text  # no multiply by one, no zero arrays
    prims = [e.prim.name for e in g.eqns]
    assert prims.count("reduce_sum") == 4           # one per gradient
    assert "integer_pow" not in prims               # the forward value nobody needs is pruned
    assert len(g.eqns) <= 16
    # the gradient w.r.t. a alone prunes the other cotangents
    ga = tr.make_ir(tr.grad(poly_loss))(*w)
    assert [e.prim.name for e in ga.eqns].count("reduce_sum") == 1
    assert len(ga.eqns) <= len(g.eqns) - 6


def test_forward_values_are_reused():
    for f, prim in ((tnp.exp, "exp"), (tnp.tanh, "tanh"), (tnp.sqrt, "sqrt"), (tr.nn.sigmoid, "logistic")):
        g = tr.make_ir(tr.grad(lambda v: tnp.sum(f(v))))(np.ones(3, np.float32))
        assert [e.prim.name for e in g.eqns].count(prim) == 1, str(g)


def test_adjoint_of_second_order_is_a_graph():
    g = tr.make_ir(tr.grad(tr.grad(lambda x: tnp.sin(x) * x)))(F64(1.0))
    g.verify()
    assert all(e.prim.name not in ("custom_vjp_call",) for e in g.eqns)
    np.testing.assert_allclose(tr.core.interpret(g, [F64(1.0)])[0],
                               2 * math.cos(1.0) - math.sin(1.0), rtol=1e-12)


# ---------------------------------------------------------------- jvp of the nn functions

NN = [tr.nn.relu, tr.nn.sigmoid, tr.nn.gelu, lambda v: tr.nn.gelu(v, approximate=False),
      tr.nn.softmax, tr.nn.log_softmax, lambda v: tr.nn.logsumexp(v), tr.nn.softplus, tr.nn.silu,
      tr.nn.elu, tr.nn.leaky_relu, tr.nn.log_sigmoid, tr.nn.standardize,
      lambda v: tnp.var(v), lambda v: tnp.std(v), lambda v: tnp.clip(v, -0.5, 0.5),
      lambda v: tnp.linalg.norm(v) if hasattr(tnp, "linalg") else tnp.sum(v)]


@pytest.mark.parametrize("fn", NN)
def test_jvp_and_grad_of_nn_functions(fn):
    x = np.array([-1.3, -0.2, 0.4, 1.7])  # away from every kink
    t = np.array([0.3, -1.0, 0.5, 2.0])
    _, jt = tr.jvp(fn, (x,), (t,))
    J = fd_jac(fn, x)
    np.testing.assert_allclose(jt, J @ t if J.ndim == 2 else J @ t, rtol=1e-6, atol=1e-8)
    c = np.linspace(-1, 1, np.size(np.asarray(fn(x)))).reshape(np.shape(np.asarray(fn(x))))
    np.testing.assert_allclose(tr.vjp(fn, x)[1](c)[0], np.tensordot(c, J, np.ndim(c)), rtol=1e-6,
                               atol=1e-8)


# ---------------------------------------------------------------- custom rules

def test_custom_vjp_uses_the_users_rule():
    @tr.custom_vjp
    def clip_gradient(x, lo, hi):
        return x

    def fwd(x, lo, hi):
        return x, (lo, hi)

    def bwd(res, g):
        lo, hi = res
        return (tnp.clip(g, lo, hi), None, None)
    clip_gradient.defvjp(fwd, bwd)
    f = lambda x: tnp.sum(clip_gradient(x, -0.5, 0.5) * 3.0)  # noqa: E731
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(f(x), 9.0)
    np.testing.assert_allclose(tr.grad(f)(x), [0.5, 0.5])  # 3.0 clipped by the rule
    np.testing.assert_allclose(tr.vmap(tr.grad(lambda v: clip_gradient(v, -0.5, 0.5) * 3.0))(x),
                               [0.5, 0.5])
    with pytest.raises(TypeError, match="forward-mode"):
        tr.jvp(f, (x,), (x,))


def test_custom_vjp_pytrees_nondiff_argnums_residuals_and_higher_order():
    calls = {"fwd": 0}

    @tr.custom_vjp
    def f(params, x):
        return {"y": tnp.sin(params["a"] * x)}

    def f_fwd(params, x):
        calls["fwd"] += 1
        c = tnp.cos(params["a"] * x)  # a residual computed once, in the forward pass
        return f(params, x), (c, params["a"], x)

    def f_bwd(res, g):
        c, a, x = res
        return ({"a": tnp.sum(g["y"] * c * x)}, g["y"] * c * a)
    f.defvjp(f_fwd, f_bwd)
    p, x = {"a": F64(0.7)}, np.array([0.2, 1.0])
    loss = lambda p, x: tnp.sum(f(p, x)["y"])  # noqa: E731
    gp, gx = tr.grad(loss, argnums=(0, 1))(p, x)
    np.testing.assert_allclose(gp["a"], np.sum(np.cos(0.7 * x) * x))
    np.testing.assert_allclose(gx, np.cos(0.7 * x) * 0.7)
    assert calls["fwd"] >= 1
    # grad of grad differentiates through bwd: d2/da2 sum sin(a x) = -sum x^2 sin(a x)
    g2 = tr.grad(lambda a: tr.grad(loss)({"a": a}, x)["a"])(F64(0.7))
    np.testing.assert_allclose(g2, -np.sum(x * x * np.sin(0.7 * x)))
    text = str(tr.make_ir(loss)(p, x))
    assert "custom_vjp_call[bwd=f_bwd, fwd=f_fwd" in text and "    call(" in text

    @functools.partial(tr.custom_vjp, nondiff_argnums=(0,))
    def apply(fn, x):
        return fn(x)
    apply.defvjp(lambda fn, x: (fn(x), x), lambda fn, x, g: (g * 2.0,))
    np.testing.assert_allclose(tr.grad(lambda v: apply(tnp.sin, v))(F64(0.3)), 2.0)


def test_custom_jvp_defjvp_defjvps_and_its_transpose():
    @tr.custom_jvp
    def log1pexp(x):
        return tnp.log1p(tnp.exp(x))

    @log1pexp.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return log1pexp(x), t * tr.nn.sigmoid(x)
    x = np.array([-1.0, 0.0, 50.0, 200.0])
    with np.errstate(over="ignore"):
        g = tr.grad(lambda v: tnp.sum(log1pexp(v)))(x)
    np.testing.assert_allclose(g, 1 / (1 + np.exp(-x)))  # finite at 200, where exp overflows
    _, t = tr.jvp(log1pexp, (x,), (np.ones(4),))
    np.testing.assert_allclose(t, g)
    np.testing.assert_allclose(tr.grad(tr.grad(log1pexp))(F64(0.3)), 0.25 - math.tanh(0.15) ** 2 / 4,
                               rtol=1e-12)
    np.testing.assert_allclose(tr.vmap(tr.grad(log1pexp))(x), g)
    np.testing.assert_allclose(tr.hessian(lambda v: tnp.sum(log1pexp(v)))(x[:3]),
                               np.diag(g[:3] * (1 - g[:3])), atol=1e-12)
    ir = str(tr.make_ir(tr.grad(lambda v: tnp.sum(log1pexp(v))))(x))
    assert "custom_jvp_call" not in ir and "logistic" in ir  # the rule's transpose, inlined

    @tr.custom_jvp
    def f(x, y):
        return x * y
    f.defjvps(lambda tx, ans, x, y: tx * y * 10.0, lambda ty, ans, x, y: ty * x)
    gx, gy = tr.grad(f, argnums=(0, 1))(F64(2.0), F64(3.0))
    assert (float(gx), float(gy)) == (30.0, 2.0)
    _, t = tr.jvp(f, (F64(2.0), F64(3.0)), (F64(1.0), F64(0.0)))
    assert float(t) == 30.0
    with pytest.raises(TypeError, match="defvjp"):
        tr.custom_vjp(lambda x: x)(1.0)


# ---------------------------------------------------------------- jit composition

@pytest.mark.skipif(not hasattr(tr, "jit"), reason="tr.jit not available")
def test_grad_and_jit_compose():
    w = [np.float32(v) for v in (0.1, -0.2, 0.3, 0.05)]
    want = tr.grad(poly_loss, argnums=(0, 1, 2, 3))(*w)
    got1 = tr.jit(tr.grad(poly_loss, argnums=(0, 1, 2, 3)))(*w)
    got2 = tr.grad(tr.jit(poly_loss), argnums=(0, 1, 2, 3))(*w)
    for a, b, c in zip(want, got1, got2):
        np.testing.assert_allclose(a, b, rtol=1e-4)
        np.testing.assert_allclose(a, c, rtol=1e-4)
    f = lambda x: tnp.sin(x) * x  # noqa: E731
    np.testing.assert_allclose(tr.jit(tr.grad(tr.grad(f)))(F64(1.0)), 2 * math.cos(1.0) - math.sin(1.0))


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1))
def test_grad_through_broadcasting_indexing_and_reductions(seed):
    rng = np.random.default_rng(seed)
    a, b, c = rng.uniform(-1, 1, (3, 1)), rng.uniform(-1, 1, (1, 4)), rng.uniform(-1, 1, 4)
    idx = rng.integers(0, 3, 5)

    def f(a, b, c):
        m = tnp.tanh(a * b + c)                       # (3, 4) by broadcasting
        r = tnp.sum(m ** 2 * tnp.mean(a, axis=0, keepdims=True), axis=1)
        return tnp.sum(r[idx] * c[:1]) + tnp.max(tnp.sum(a * b, axis=0)) + tnp.var(m[:, ::2])
    grads = tr.grad(f, argnums=(0, 1, 2))(a, b, c)
    for i, (g, x) in enumerate(zip(grads, (a, b, c))):
        def fi(v, i=i):
            args = [a, b, c]
            args[i] = v
            return f(*args)
        assert g.shape == x.shape
        np.testing.assert_allclose(g, fd_grad(fi, x), rtol=1e-5, atol=1e-7)


def test_grad_passes_keyword_arguments_through():
    np.testing.assert_allclose(tr.grad(lambda x, s=1.0: x * s)(F64(2.0), s=3.0), 3.0)


def test_custom_rules_refuse_to_differentiate_closed_over_values():
    def loss(w, x):
        @tr.custom_vjp
        def f(v):
            return v * w
        f.defvjp(lambda v: (f(v), None), lambda res, g: (g * 2.0,))

        @tr.custom_jvp
        def h(v):
            return v * w
        h.defjvp(lambda p, t: (h(p[0]), t[0] * 2.0))
        return f(x), h(x)
    w, x = F64(3.0), F64(0.5)
    for k in (0, 1):
        np.testing.assert_allclose(tr.grad(lambda w, x: loss(w, x)[k], argnums=1)(w, x), 2.0)
        with pytest.raises(TypeError, match="closes over a value"):
            tr.grad(lambda w, x: loss(w, x)[k])(w, x)  # w is differentiated: refused
    with pytest.raises(TypeError, match="closes over a value"):
        tr.jvp(lambda w: loss(w, x)[1], (w,), (F64(1.0),))


def test_stop_gradient_on_pytrees():
    def f(p):
        q = tr.stop_gradient(p)
        return tnp.sum(q["a"] * p["a"]) + q["b"] * p["b"]
    g = tr.grad(f)({"a": np.array([1.0, 2.0]), "b": F64(3.0)})
    np.testing.assert_allclose(g["a"], [1.0, 2.0])
    np.testing.assert_allclose(g["b"], 3.0)


def test_gradients_do_not_alias_inputs_or_constants():
    c, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    g = tr.grad(lambda x: tnp.sum(x * c))(np.zeros(2))
    gx = tr.grad(lambda x, y: tnp.sum(x * y))(np.zeros(2), y)
    g *= 10.0
    gx *= 10.0
    np.testing.assert_array_equal(c, [1.0, 2.0])
    np.testing.assert_array_equal(y, [3.0, 4.0])


def test_per_example_gradients_with_vmap():
    rng = np.random.default_rng(1)
    params, xs, ys = _mlp_params(rng), rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    per_ex = tr.vmap(tr.grad(_mlp_loss), in_axes=(None, 0, 0))(params, xs[:, None], ys[:, None])
    mean_g = tr.grad(_mlp_loss)(params, xs, ys)
    for k in params:
        assert per_ex[k].shape == (6,) + params[k].shape
        np.testing.assert_allclose(per_ex[k].mean(axis=0), mean_g[k], rtol=1e-10, atol=1e-12)
        single = tr.grad(_mlp_loss)(params, xs[2:3], ys[2:3])[k]
        np.testing.assert_allclose(per_ex[k][2], single, rtol=1e-10, atol=1e-12)


def test_jacobians_and_hessian_with_aux():
    def f(x):
        return tnp.sin(x) * x[0], {"norm": tnp.sum(x * x)}
    x = np.array([0.5, -1.0])
    want = np.diag(np.sin(x) * 0 + np.cos(x) * x[0])
    want[:, 0] += np.sin(x)
    for jac in (tr.jacfwd, tr.jacrev):
        J, aux = jac(f, has_aux=True)(x)
        np.testing.assert_allclose(J, want, rtol=1e-12)
        np.testing.assert_allclose(aux["norm"], 1.25)
    H, aux = tr.hessian(lambda v: (tnp.sum(v ** 3), v[0]), has_aux=True)(x)
    np.testing.assert_allclose(H, np.diag(6 * x))
    np.testing.assert_allclose(aux, 0.5)
