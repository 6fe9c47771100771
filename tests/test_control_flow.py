"""cond / switch / while_loop / fori_loop / scan: values against plain Python loops and
the reference interpreter, derivatives against float64 central finite differences,
vmap against per-example loops, the compiled CPU code against the interpreter, and
every user error."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tracer as tr
import tracer.numpy as tnp
from tracer import core
from oracles import fd_grad

F64 = np.float64
EPS = 1e-6




def interpret(f, *args):
    """``f`` staged to IR and run by the numpy reference interpreter."""
    g = tr.make_ir(f)(*args)
    g.verify()
    return core.interpret(g, args)


def close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a, F64), np.asarray(b, F64), rtol=tol, atol=tol)


XS = np.linspace(0.1, 1.0, 5)
XS32 = XS.astype(np.float32)


def scan_loss(w, reverse=False):
    """A scan whose carry and ys both depend on w; a scalar of both."""
    def body(c, x):
        c2 = tnp.sin(c * x) + w[1] * c
        return c2, c2 * x
    c, ys = tr.scan(body, w[0], XS, reverse=reverse)
    return c + tnp.sum(ys ** 2)


def scan_loss_py(w, reverse=False):
    c, ys = w[0], [None] * len(XS)
    order = reversed(range(len(XS))) if reverse else range(len(XS))
    for i in order:
        c = np.sin(c * XS[i]) + w[1] * c
        ys[i] = c * XS[i]
    return c + np.sum(np.asarray(ys) ** 2)


# ---------------------------------------------------------------- values

@given(st.integers(0, 6), st.booleans(), st.integers(1, 3))
def test_scan_matches_python_loop(length, reverse, n):
    rng = np.random.default_rng(length * 7 + n)
    xs = rng.normal(size=(length, n))
    init = rng.normal(size=n)

    def f(init, xs):
        return tr.scan(lambda c, x: (c[::-1] * 0.5 + x, c.sum() * x), init, xs, reverse=reverse)
    c, ys = init.copy(), np.zeros((length, n))
    for i in (reversed(range(length)) if reverse else range(length)):
        c, ys[i] = c[::-1] * 0.5 + xs[i], c.sum() * xs[i]
    got_c, got_ys = f(init, xs)
    close(got_c, c)
    close(got_ys, ys)
    ic, iys = interpret(f, init, xs)
    close(ic, c)
    close(iys, ys)


def test_scan_pytrees_and_xs_none():
    init = {"a": np.float64(1.0), "b": (np.zeros(2), np.int32(0))}

    def body(c, x):
        new = {"a": c["a"] * x["s"], "b": (c["b"][0] + x["v"], c["b"][1] + 1)}
        return new, (c["a"], None)
    xs = {"s": np.array([2.0, 3.0, 4.0]), "v": np.ones((3, 2))}
    c, (ys, none) = tr.scan(body, init, xs)
    assert none is None
    close(c["a"], 24.0)
    close(c["b"][0], [3.0, 3.0])
    assert int(c["b"][1]) == 3 and c["b"][1].dtype == np.int32
    close(ys, [1.0, 2.0, 6.0])
    c2, ys2 = tr.scan(lambda c, _: (c * 2, c), np.float64(1.0), None, length=4)
    close(c2, 16.0)
    close(ys2, [1.0, 2.0, 4.0, 8.0])


def test_cond_and_switch_values():
    def f(x):
        return tr.cond(x[0] > 0, lambda v: tnp.sin(v) * v[0], lambda v: v * v[1] ** 2, x)
    for x in (np.array([1.0, 2.0]), np.array([-1.0, 2.0])):
        want = np.sin(x) * x[0] if x[0] > 0 else x * x[1] ** 2
        close(f(x), want)
        close(interpret(f, x)[0], want)

    def s(i, x):
        return tr.switch(i, [lambda v: v, lambda v: v * 2, lambda v: v * 3], x)
    for i, k in ((-3, 1), (0, 1), (1, 2), (2, 3), (9, 3)):  # clamped like JAX's switch
        close(s(np.int32(i), np.ones(2)), np.full(2, k))
        close(interpret(s, np.int32(i), np.ones(2))[0], np.full(2, k))
    # an integer predicate is "nonzero"; operands may be pytrees; outputs too
    out = tr.cond(np.int32(3), lambda p: {"s": p[0] + p[1]}, lambda p: {"s": p[0] - p[1]},
                  (np.float64(1.0), np.float64(2.0)))
    close(out["s"], 3.0)


def test_while_and_fori_values():
    def f(n, x):
        return tr.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * x), (0, 1.0))
    for n in (0, 1, 5):
        i, v = f(np.int32(n), np.float64(1.5))
        assert int(i) == n
        close(v, 1.5 ** n)
        close(interpret(f, np.int32(n), np.float64(1.5))[1], 1.5 ** n)

    def g(x):  # static bounds: a scan; the index is int32
        return tr.fori_loop(2, 7, lambda i, v: v * x + i, 0.0)
    want = 0.0
    for i in range(2, 7):
        want = want * 1.25 + i
    close(g(np.float64(1.25)), want)
    assert "scan" in tr.make_ir(g)(np.float64(1.25)).text()
    assert "while" not in tr.make_ir(g)(np.float64(1.25)).text()

    def h(lo, hi, x):  # traced bounds: a while
        return tr.fori_loop(lo, hi, lambda i, v: v * x + i, 0.0)
    ir = tr.make_ir(h)(np.int32(2), np.int32(7), np.float64(1.25))
    assert "while" in ir.text()
    close(core.interpret(ir, [np.int32(2), np.int32(7), np.float64(1.25)])[0], want)
    close(g(np.float64(1.25)), h(np.int32(2), np.int32(7), np.float64(1.25)))
    close(tr.fori_loop(5, 2, lambda i, v: v + 1.0, 0.0), 0.0)  # an empty range


def test_weak_typed_init_takes_the_body_dtype():
    # a Python-scalar init is weakly typed: it becomes float64 here, no spurious error
    c, _ = tr.scan(lambda c, x: (c + x, None), 0.0, np.ones(3, F64))
    assert c.dtype == F64 and float(c) == 3.0
    v = tr.fori_loop(0, 3, lambda i, v: v + np.float64(0.5), 0.0)
    assert v.dtype == F64 and float(v) == 1.5
    # through nested loops too
    out = tr.scan(lambda c, x: (tr.fori_loop(0, 2, lambda i, v: v + x, c), None), 0.0,
                  np.ones(3, F64))[0]
    assert out.dtype == F64 and float(out) == 6.0
    # a weak int carry may become a (default) float, as in JAX
    c, _ = tr.scan(lambda c, x: (c + 0.5, None), 0, None, length=3)
    assert c.dtype == np.float32 and float(c) == 1.5


def test_closed_over_values_become_operands():
    w = np.arange(3.0)

    def f(x):
        return tr.scan(lambda c, _: (c * x + w, None), np.zeros(3), None, length=3)[0]
    g = tr.make_ir(f)(np.float64(2.0))
    (eqn,) = [e for e in g.eqns if e.prim.name == "scan"]
    body = eqn.params["body"]
    assert body.constvars == [] and len(body.invars) == len(eqn.invars)
    close(core.interpret(g, [np.float64(2.0)])[0], f(np.float64(2.0)))


def test_printed_ir_indents_subgraphs():
    def f(x):
        c, ys = tr.scan(lambda c, x: (tr.cond(x > 0, lambda v: v * 2.0, lambda v: -v, c), c), x,
                        XS)
        return c
    text = tr.make_ir(f)(np.float64(1.0)).text()
    lines = text.splitlines()
    scan_line = next(i for i, ln in enumerate(lines) if " = scan[" in ln)
    assert "length=5" in lines[scan_line] and "reverse=False" in lines[scan_line]
    assert lines[scan_line + 1].startswith("    body(")
    cond_line = next(i for i, ln in enumerate(lines) if " = cond " in ln)
    assert lines[cond_line].startswith("      ")
    assert lines[cond_line + 1].startswith("        branches[0](")


# ---------------------------------------------------------------- derivatives

@pytest.mark.parametrize("reverse", [False, True])
def test_grad_and_jvp_of_scan(reverse):
    w = np.array([0.3, 0.7])
    close(scan_loss(w, reverse), scan_loss_py(w, reverse))
    want = fd_grad(lambda v: scan_loss_py(v, reverse), w)
    close(tr.grad(lambda v: scan_loss(v, reverse))(w), want)
    for t in (np.array([1.0, 0.0]), np.array([0.3, -2.0])):
        close(tr.jvp(lambda v: scan_loss(v, reverse), (w,), (t,))[1], want @ t)


@pytest.mark.parametrize("x0", [1.3, -0.4])
def test_grad_of_cond_on_both_branches(x0):
    def f(x):
        return tr.cond(x[0] > 0, lambda v: tnp.sin(v[1]) * v[0] ** 2, lambda v: v[0] * v[1] ** 3, x)

    def py(x):
        return np.sin(x[1]) * x[0] ** 2 if x[0] > 0 else x[0] * x[1] ** 3
    x = np.array([x0, 0.8])
    want = fd_grad(py, x)
    close(tr.grad(f)(x), want)
    close(tr.jvp(f, (x,), (np.array([0.5, 1.0]),))[1], want @ np.array([0.5, 1.0]))
    # the derivative of a closed-over value flows through the operands it became
    y = np.float64(0.9)
    close(tr.grad(lambda y: tr.cond(x0 > 0, lambda: y ** 2, lambda: y * 3.0))(y),
          2 * 0.9 if x0 > 0 else 3.0)


def test_jvp_of_while_and_reverse_mode_error():
    def f(x):
        return tr.while_loop(lambda c: c[1] < 10.0, lambda c: (c[0] + 1, c[1] * x), (0, x))[1]
    x = np.float64(1.7)
    want = fd_grad(f, x)
    close(tr.jvp(f, (x,), (np.float64(1.0),))[1], want)
    close(tr.jacfwd(f)(x), want)
    with pytest.raises(NotImplementedError, match="fori_loop with static") as e:
        tr.grad(f)(x)
    assert "while_loop" in str(e.value) and "trip count" in str(e.value)
    # fori_loop with traced bounds is a while: the same error
    with pytest.raises(NotImplementedError, match="while_loop"):
        tr.grad(lambda x: tr.fori_loop(0, (x * 0.0 + 3.0).astype("int32"), lambda i, v: v * x,
                                       x))(x)


def test_grad_of_static_fori_loop_and_nested_loops():
    def f(w):
        return tr.fori_loop(0, 4, lambda i, v: tnp.sin(v * w) + i * 0.1, 0.5)

    def py(w):
        v = 0.5
        for i in range(4):
            v = np.sin(v * w) + i * 0.1
        return v
    w = np.float64(1.1)
    close(f(w), py(w))
    close(tr.grad(f)(w), fd_grad(py, w))

    def nested(w):
        def outer(c, x):
            return tr.fori_loop(0, 3, lambda i, v: tnp.cos(v * w + x), c), c
        c, ys = tr.scan(outer, np.float64(0.1), XS)
        return c + tnp.sum(ys)

    def nested_py(w):
        c, tot = 0.1, 0.0
        for x in XS:
            tot += c
            for _ in range(3):
                c = np.cos(c * w + x)
        return c + tot
    close(nested(w), nested_py(w))
    close(tr.grad(nested)(w), fd_grad(nested_py, w))


def test_higher_order_through_scan():
    def f(w):
        return tr.scan(lambda c, x: (tnp.sin(c * w) + x, None), np.float64(0.3), XS)[0]
    w = np.float64(0.7)
    g = tr.grad(f)
    close(tr.grad(g)(w), fd_grad(g, w), tol=1e-5)
    close(tr.hessian(f)(w), fd_grad(g, w), tol=1e-5)

    def inner(w, x):
        return tnp.sin(w * x) ** 2

    def scan_of_grad(w):  # grad inside the body, then grad of the whole
        return tr.scan(lambda c, x: (c + tr.grad(inner)(w, x) * c, None), np.float64(1.0), XS)[0]
    close(tr.grad(scan_of_grad)(w), fd_grad(scan_of_grad, w), tol=1e-5)


def test_loop_inside_grad_inside_jit():
    w = np.array([0.3, 0.7])
    jg = tr.jit(tr.grad(scan_loss))
    close(jg(w), fd_grad(scan_loss_py, w))
    jw = tr.jit(tr.grad(lambda w: tr.fori_loop(0, 3, lambda i, v: v * w[0] + w[1], 1.0)))
    close(jw(w), fd_grad(lambda w: ((1.0 * w[0] + w[1]) * w[0] + w[1]) * w[0] + w[1], w))


# ---------------------------------------------------------------- vmap

def test_vmap_cond_batched_and_unbatched_predicate():
    def f(x):
        return tr.cond(x[0] > 0, lambda v: tnp.sin(v) * v[0], lambda v: v * v[1] ** 2, x)
    X = np.array([[1.0, 2.0], [-1.0, 2.0], [0.5, -3.0]])
    close(tr.vmap(f)(X), np.stack([f(x) for x in X]))
    assert "select" in tr.make_ir(tr.vmap(f))(X).text()  # a batched predicate: both branches
    g = lambda p, x: tr.cond(p > 0, lambda v: tnp.sin(v) * 2.0, lambda v: v, x)  # noqa: E731
    close(tr.vmap(g, in_axes=(None, 0))(1.0, X), np.sin(X) * 2)
    assert " = cond " in tr.make_ir(tr.vmap(g, in_axes=(None, 0)))(1.0, X).text()
    s = lambda i, x: tr.switch(i, [lambda v: v, lambda v: v * 2, lambda v: v * 3], x)  # noqa: E731
    close(tr.vmap(s)(np.array([0, 1, 2, 5], np.int32), np.ones(4)), [1, 2, 3, 3])
    # per-example gradients through a cond
    close(tr.vmap(tr.grad(lambda x: tnp.sum(f(x))))(X), np.stack([fd_grad(lambda v: np.sum(
        np.sin(v) * v[0] if v[0] > 0 else v * v[1] ** 2), x) for x in X]))


def test_vmap_while_with_batched_condition():
    def f(n, x):
        return tr.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * x), (0, 1.0))
    ns, xs = np.array([1, 2, 3], np.int32), np.array([2.0, 3.0, 4.0])
    i, v = tr.vmap(f)(ns, xs)
    close(v, [2.0, 9.0, 64.0])  # each member stopped at its own trip count
    assert list(i) == [1, 2, 3]
    close(tr.vmap(f, in_axes=(None, 0))(np.int32(3), xs)[1], xs ** 3)
    gi = tr.make_ir(tr.vmap(f))(ns, xs)
    assert "reduce_max" in gi.text() and "select" in gi.text()
    close(core.interpret(gi, [ns, xs])[1], [2.0, 9.0, 64.0])


def test_vmap_scan():
    def f(w, xs):
        return tr.scan(lambda c, x: (tnp.sin(c * x) + w * c, c * x), np.float64(0.5), xs)
    W, XS2 = np.array([0.1, 0.2]), np.random.default_rng(0).random((2, 5))
    for axes, args in (((0, 0), (W, XS2)), ((0, None), (W, XS2[0])), ((None, 0), (0.3, XS2))):
        c, ys = tr.vmap(f, in_axes=axes)(*args)
        per = [f(*[a[k] if ax == 0 else a for a, ax in zip(args, axes)]) for k in range(2)]
        close(c, [p[0] for p in per])
        close(ys, [p[1] for p in per])
    # vmap of the grad of a scan
    g = tr.vmap(tr.grad(lambda w, xs: f(w, xs)[0]))(W, XS2)
    close(g, [fd_grad(lambda w: f(w, XS2[k])[0], W[k]) for k in range(2)])


# ---------------------------------------------------------------- compiled

@pytest.mark.parametrize("case", ["scan", "scan_rev", "cond", "switch", "while", "nested", "grad"])
def test_compiled_matches_interpreter(case):
    x = np.linspace(0.2, 1.0, 4).astype(np.float32)
    fns = {
        "scan": lambda x: tr.scan(lambda c, v: (c[::-1] * v + 1.0, c), x, tnp.outer(XS32, x)),
        "scan_rev": lambda x: tr.scan(lambda c, v: (c * v, c.sum()), x, tnp.outer(XS32, x),
                                      reverse=True),
        "cond": lambda x: tr.cond(x[0] > 0.5, lambda v: tnp.sin(v), lambda v: v[::-1] * 2.0, x),
        "switch": lambda x: tr.switch((x[0] * 4).astype("int32"), [lambda v: v, lambda v: -v,
                                                                     lambda v: v * v], x),
        "while": lambda x: tr.while_loop(lambda c: (tnp.abs(c[1]).sum() < 20.0) & (c[0] < 50),
                                         lambda c: (c[0] + 1, c[1][::-1] * 1.5 + 0.1), (0, x)),
        "nested": lambda x: tr.scan(lambda c, v: (tr.fori_loop(0, 3, lambda i, u: tnp.cos(u * v),
                                                              c), c), x, tnp.outer(XS32, x)),
        "grad": tr.grad(lambda x: tnp.sum(tr.scan(lambda c, v: (tnp.sin(c * v), c), x,
                                                  tnp.outer(XS32, x))[1])),
    }
    f = fns[case]
    for arg in (x, -x):
        want = tr.tree_leaves(interpret(f, arg))
        got = tr.tree_leaves(tr.jit(f)(arg))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_whole_training_loop_compiled_equals_python_loop():
    x = np.linspace(-np.pi, np.pi, 200).astype(np.float32)
    y = np.sin(x)

    def loss(w):
        return tnp.sum((w[0] + w[1] * x + w[2] * x ** 2 + w[3] * x ** 3 - y) ** 2)

    def step(i, w):
        return w - 1e-5 * tr.grad(loss)(w)
    w0 = np.array([0.1, -0.2, 0.3, 0.05], np.float32)
    js, w = tr.jit(step), w0
    for i in range(100):
        w = js(i, w)
    whole = tr.jit(lambda w: tr.fori_loop(0, 100, step, w))(w0)
    np.testing.assert_allclose(whole, w, rtol=1e-5, atol=1e-6)
    assert np.isfinite(whole).all() and float(loss(whole)) < float(loss(w0))


# ---------------------------------------------------------------- errors

def test_carry_type_change_names_the_leaf_and_both_types():
    init = {"n": np.int32(0), "w": np.zeros(3, np.float32)}
    with pytest.raises(TypeError, match=r"carry\['w'\].*f32\[3\].*f64\[3\]"):
        tr.scan(lambda c, x: ({"n": c["n"], "w": c["w"] * np.float64(2.0)}, None), init, None,
                length=2)
    with pytest.raises(TypeError, match=r"init_val\[1\].*f32\[3\].*f32\[4\]"):
        tr.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, tnp.zeros(4, np.float32)),
                      (0, np.zeros(3, np.float32)))
    with pytest.raises(TypeError, match=r"init_val.*f32\[\].*i32\[\]|init_val.*i32\[\].*f32\[\]"):
        tr.fori_loop(0, 3, lambda i, v: i, np.float32(0.0))
    with pytest.raises(TypeError, match="structure"):
        tr.scan(lambda c, x: ((c, c), None), np.float32(0.0), None, length=2)
    with pytest.raises(TypeError, match="pair"):
        tr.scan(lambda c, x: c, np.float32(0.0), None, length=2)


def test_branch_output_mismatch_and_bad_predicates():
    x = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match=r"output.*false_fun returns f32\[3\].*true_fun returns f32\[4\]"):
        tr.cond(True, lambda v: tnp.zeros(4, np.float32), lambda v: v, x)
    with pytest.raises(TypeError, match="f64"):
        tr.cond(True, lambda v: v.astype("float64"), lambda v: v, x)
    with pytest.raises(TypeError, match="structure"):
        tr.cond(True, lambda v: (v, v), lambda v: v, x)
    with pytest.raises(TypeError, match="scalar"):
        tr.cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="bool scalar"):
        tr.while_loop(lambda c: c, lambda c: c + 1.0, np.float32(0.0))
    with pytest.raises(ValueError, match="trip count"):
        tr.scan(lambda c, x: (c, x), 0.0, np.zeros(3), length=4)
    with pytest.raises(TypeError, match="integer"):
        tr.fori_loop(0.0, 3, lambda i, v: v, 0.0)
    # a weakly typed branch output takes the other branch's dtype: no error
    assert tr.cond(False, lambda v: v, lambda v: 1.0, np.float64(2.0)).dtype == F64


def test_every_control_flow_primitive_has_every_rule():
    for name in ("cond", "while", "scan"):
        p = core.PRIMITIVES[name]
        for rule in ("abstract_eval", "impl", "jvp", "vjp", "batch"):
            assert getattr(p, rule) is not core.MISSING, (name, rule)
    from codegen.cpu import LOWERINGS
    assert {"cond", "while", "scan"} <= set(LOWERINGS)


def test_polynomial_example_whole_loop_mode():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "polynomial.py"
    spec = importlib.util.spec_from_file_location("polynomial_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x, y = mod.make_data()
    w_steps = mod.fit(30, log=None)
    w_whole = mod.make_train(30)(mod.init_weights(0), x, y)
    for a, b in zip(w_steps, w_whole):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- compositions

def _f_cond_in_scan(w):
    def body(c, x):
        c2 = tr.cond(c > 0.5, lambda v: tnp.sin(v * w[0]), lambda v: v * w[1] + x, c)
        return c2, c2
    c, ys = tr.scan(body, F64(0.3), XS)
    return c + tnp.sum(ys ** 2)


def _f_int_carry(w):
    c, ys = tr.scan(lambda c, x: ((c[0] + x[1], c[1] * w[0] + x[0]), c[1] * w[1]),
                    (np.int32(0), F64(1.0)), (XS, np.arange(5, dtype=np.int32)))
    return c[1] + ys.sum() + c[0]


def _f_while_in_scan(w):  # forward mode only
    def body(c, x):
        v = tr.while_loop(lambda v: v[0] < 3, lambda v: (v[0] + 1, tnp.sin(v[1] * w[0]) + x), (0, c))
        return v[1], v[1]
    c, ys = tr.scan(body, F64(0.3), XS)
    return c + tnp.sum(ys) * w[1]


@pytest.mark.parametrize("f,reverse_ok", [(_f_cond_in_scan, True), (_f_int_carry, True),
                                          (_f_while_in_scan, False)])
def test_compositions_against_finite_differences(f, reverse_ok):
    w = np.array([0.4, 0.9])
    want = fd_grad(f, w)
    close(tr.jacfwd(f)(w), want)
    close(tr.jit(tr.jacfwd(f))(w), want)
    if reverse_ok:
        close(tr.grad(f)(w), want)
        close(tr.jit(tr.grad(f))(w), want)
        W = np.stack([w, 0.5 * w])
        close(tr.vmap(tr.grad(f))(W), np.stack([want, fd_grad(f, W[1])]))
        close(tr.hessian(f)(w), np.stack([fd_grad(lambda v: tr.grad(f)(v)[k], w) for k in range(2)]),
              tol=1e-4)


def test_jacrev_of_scan_ys_batches_the_backward_scan():
    def f(w):
        return tr.scan(lambda c, x: (tnp.sin(c * w[0]) + x * w[1], c * x), F64(0.2), XS)[1]
    w = np.array([0.4, 0.9])
    want = np.stack([(f(w + e) - f(w - e)) / (2 * EPS) for e in np.eye(2) * EPS], -1)
    close(tr.jacrev(f)(w), want)
    close(tr.jacfwd(f)(w), want)


def test_vmap_of_while_with_cond_inside_compiled():
    def f(n, x):
        body = lambda c: (c[0] + 1, tr.cond(c[1] > 2.0, lambda v: v * 0.5, lambda v: v * x, c[1]))  # noqa
        return tr.while_loop(lambda c: c[0] < n, body, (0, F64(1.0)))[1]

    def py(n, x):
        v = 1.0
        for _ in range(n):
            v = v * 0.5 if v > 2 else v * x
        return v
    N, X = np.array([1, 3, 6], np.int32), np.array([1.5, 2.5, 3.0])
    want = [py(n, x) for n, x in zip(N, X)]
    close(tr.vmap(f)(N, X), want)
    close(tr.jit(tr.vmap(f))(N, X), want)


# ---------------------------------------------------------------- random loop bodies

_OPS = [  # (traced, numpy) pairs of smooth binary steps of (carry, x, w)
    (lambda c, x, w: tnp.sin(c * w) + x, lambda c, x, w: np.sin(c * w) + x),
    (lambda c, x, w: c * 0.5 + tnp.tanh(x * w), lambda c, x, w: c * 0.5 + np.tanh(x * w)),
    (lambda c, x, w: c[::-1] * w + x, lambda c, x, w: c[::-1] * w + x),
    (lambda c, x, w: c - 0.1 * tnp.sum(c * c) * w + x, lambda c, x, w: c - 0.1 * np.sum(c * c) * w + x),
    (lambda c, x, w: tnp.where(c > x, c * w, x), lambda c, x, w: np.where(c > x, c * w, x)),
]


@given(st.lists(st.integers(0, len(_OPS) - 1), min_size=1, max_size=3), st.integers(0, 4),
       st.booleans(), st.integers(0, 10_000))
def test_random_scan_bodies(ops, length, reverse, seed):
    """scan of a random composition of steps: values vs a Python loop, grad vs finite
    differences, compiled vs the interpreter."""
    rng = np.random.default_rng(seed)
    xs, init = rng.uniform(-1, 1, (length, 3)), rng.uniform(-1, 1, 3)
    w0 = np.float64(rng.uniform(0.5, 1.5))

    def f(w):
        def body(c, x):
            for k in ops:
                c = _OPS[k][0](c, x, w)
            return c, c[0] * x[1]
        c, ys = tr.scan(body, init, xs, reverse=reverse)
        return tnp.sum(c * c) + tnp.sum(ys)

    def py(w):
        c, ys = init.copy(), np.zeros(length)
        for i in (reversed(range(length)) if reverse else range(length)):
            for k in ops:
                c = _OPS[k][1](c, xs[i], w)
            ys[i] = c[0] * xs[i][1]
        return np.sum(c * c) + np.sum(ys)
    close(f(w0), py(w0))
    if 4 not in ops:  # `where` has kinks where finite differences are unreliable
        close(tr.grad(f)(w0), fd_grad(py, w0), tol=1e-5)
    close(tr.jit(f)(w0), py(w0))
    close(tr.jit(tr.grad(f))(w0), tr.grad(f)(w0))


def test_loop_invariant_residuals_are_computed_once():
    def f(w):
        return tr.scan(lambda c, x: (tnp.sin(c / w[0]) + x * w[1], c), F64(0.3), XS)[0]
    w = np.array([1.3, 0.7])
    g = tr.make_ir(tr.grad(f))(w)
    # d(c / w)/dc = 1 / w is the same every iteration: computed before the loop, not stacked
    assert [e.prim.name for e in g.eqns].count("div") == 1
    fwd = next(e for e in g.eqns if e.prim.name == "scan")
    # stacked: cos(c/w) and -c/w^2 only (the unread ys are pruned by dce)
    assert sum(v.aval.shape == (len(XS),) for v in fwd.outvars) == 2
    close(tr.grad(f)(w), fd_grad(f, w))
    close(tr.jit(tr.grad(f))(w), fd_grad(f, w))
