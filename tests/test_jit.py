"""jit semantics: caching per signature, weak types, static arguments, pytrees,
composition with grad/vmap, stages, errors and awkward inputs."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp
from tracer import lax


def test_results_are_numpy_arrays_and_scalars_are_0d():
    f = tr.jit(lambda x: (tnp.sum(x), x * 2))
    s, y = f(np.arange(4, dtype=np.float32))
    assert isinstance(s, np.ndarray) and s.shape == () and s.dtype == np.float32 and s == 6
    np.testing.assert_array_equal(y, np.arange(4) * 2)


def test_cache_per_signature_and_retrace_on_new_shape_dtype_rank():
    f = tr.jit(lambda x: x * 2 + 1)
    x = np.ones((3,), np.float32)
    f(x)
    f(x + 1)
    assert (f.trace_count, f.compile_count) == (1, 1)
    np.testing.assert_array_equal(f(np.ones((4,), np.float32)), np.full(4, 3, np.float32))
    assert f.compile_count == 2
    assert f(np.ones((4,), np.float64)).dtype == np.float64
    assert f(np.ones((2, 2), np.float32)).shape == (2, 2)
    assert f.compile_count == 4
    f(np.ones((4,), np.float64))
    assert f.compile_count == 4


def test_python_scalars_are_weakly_typed():
    f = tr.jit(lambda x, s: x * s)
    x = np.ones(3, np.float32)
    assert f(x, 2.0).dtype == np.float32
    assert f(x, 3).dtype == np.float32
    assert f.compile_count == 2  # float and int scalars are different signatures
    f(x, 5.0)
    assert f.compile_count == 2
    # a float64 0-d array is not weak: it promotes
    assert f(x, np.float64(2.0)).dtype == np.float64
    assert tr.jit(lambda s: s + 1)(1.5).dtype == np.float32


def test_static_argnums():
    def f(x, n, mode):
        return x ** n if mode == "pow" else x * n
    g = tr.jit(f, static_argnums=(1, 2))
    x = np.arange(3.0, dtype=np.float32)
    np.testing.assert_allclose(g(x, 3, "pow"), x ** 3)
    np.testing.assert_allclose(g(x, 3, "mul"), x * 3)
    g(x, 3, "pow")
    assert g.compile_count == 2
    np.testing.assert_allclose(g(x, 2, "pow"), x ** 2)
    assert g.compile_count == 3
    with pytest.raises(TypeError, match="hashable"):
        g(x, [1], "pow")


def test_pytrees_in_and_out():
    @tr.jit
    def f(p, xs):
        return {"y": p["w"] * xs[0] + p["b"], "z": (xs[1].sum(), None)}
    p = {"w": np.float32(2.0) * np.ones(2, np.float32), "b": np.ones(2, np.float32)}
    out = f(p, (np.ones(2, np.float32), np.arange(3, dtype=np.int32)))
    np.testing.assert_array_equal(out["y"], [3, 3])
    assert out["z"][0] == 3 and out["z"][1] is None


def test_closure_constants_are_passed_not_baked():
    w = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    f = tr.jit(lambda x: x @ w)
    x = np.ones((2, 64), np.float32)
    np.testing.assert_allclose(f(x), x @ w, rtol=1e-4, atol=1e-4)
    text = f.lower(x).as_text("llvm")
    assert "64 x float" not in text and len(text) < 100_000


def test_jit_of_jit_grad_of_jit_vmap_of_jit():
    def f(x):
        return tnp.sum(tnp.sin(x) * x)
    x = np.linspace(-1, 1, 7).astype(np.float32)
    ref = tr.grad(f)(x)
    np.testing.assert_allclose(tr.jit(tr.jit(f))(x), f(x), rtol=1e-6)
    np.testing.assert_allclose(tr.grad(tr.jit(f))(x), ref, rtol=1e-6)
    np.testing.assert_allclose(tr.jit(tr.grad(f))(x), ref, rtol=1e-5, atol=1e-6)
    xs = np.stack([x, 2 * x])
    np.testing.assert_allclose(tr.vmap(tr.jit(f))(xs), [f(x), f(2 * x)], rtol=1e-5)
    np.testing.assert_allclose(tr.jit(tr.vmap(f))(xs), [f(x), f(2 * x)], rtol=1e-5)


def test_jit_of_grad_matches_eager_grad_on_a_model():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((32, 5)).astype(np.float32)
    y = rng.standard_normal(32).astype(np.float32)

    def loss(params):
        w, b = params
        pred = tnp.tanh(X @ w + b)
        return tnp.mean((pred - y) ** 2) + 0.01 * tnp.sum(w * w)
    params = (rng.standard_normal(5).astype(np.float32), np.float32(0.3))
    eager = tr.grad(loss)(params)
    jitted = tr.jit(tr.grad(loss))(params)
    for e, j in zip(eager, jitted):
        np.testing.assert_allclose(j, e, rtol=1e-4, atol=1e-6)
    vg = tr.jit(tr.value_and_grad(loss))(params)
    np.testing.assert_allclose(vg[0], loss(params), rtol=1e-5)


def test_lower_stages_and_compile():
    f = tr.jit(lambda x, y: tnp.exp(x) * 1.0 + y)
    x = np.ones((8,), np.float32)
    lw = f.lower(x, x)
    assert "exp" in lw.as_text("ir") and "mul" in lw.as_text("ir")
    assert "mul" not in lw.as_text("optimized_ir")  # x * 1 simplified away
    assert "define" in lw.as_text("llvm")
    assert "define" in lw.as_text("optimized_llvm")
    assert "ret" in lw.as_text("asm")
    with pytest.raises(ValueError, match="cuda"):
        lw.as_text("ptx")
    with pytest.raises(ValueError, match="unknown stage"):
        lw.as_text("nope")
    c = lw.compile()
    np.testing.assert_allclose(c(x, x), np.exp(x) + x, rtol=1e-6)
    with pytest.raises(TypeError):
        c(np.ones(3, np.float32), x)


def test_lower_accepts_shaped_arrays():
    f = tr.jit(lambda x: x + 1)
    lw = f.lower(tr.ShapedArray((3,), np.float32))
    np.testing.assert_array_equal(lw.compile()(np.zeros(3, np.float32)), np.ones(3))


def test_dump_dir_writes_every_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACER_DUMP_DIR", str(tmp_path))

    def my_function(x):
        return x * 3
    tr.jit(my_function)(np.ones(4, np.float32))
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 5 and all(n.startswith("my_function.") for n in names), names
    suffixes = {n.split(".", 2)[2] for n in names}
    assert suffixes == {"ir.txt", "optimized_ir.txt", "ll", "opt.ll", "s"}


def test_bad_arguments_raise_type_errors():
    f = tr.jit(lambda x: x + 1)
    with pytest.raises(TypeError):
        f("hello")
    with pytest.raises(TypeError):
        f(object())
    with pytest.raises(TypeError):
        f(np.ones(2), np.ones(2))
    with pytest.raises(TypeError):
        f()
    with pytest.raises(TypeError):
        tr.jit(3)


def test_awkward_inputs():
    f = tr.jit(lambda x, y: x * 2 + y)
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    y = np.ones((2, 3), np.float32)
    noncontig = base[::2, ::2]
    np.testing.assert_array_equal(f(noncontig, y), noncontig * 2 + 1)
    neg = base[::-2, ::-2]
    np.testing.assert_array_equal(f(neg, y), neg * 2 + 1)
    ro = base[:2, :3].copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(f(ro, y), ro * 2 + 1)
    raw = np.zeros(6 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(2, 3)  # misaligned
    raw[...] = 5
    assert not raw.flags.aligned
    np.testing.assert_array_equal(f(raw, y), np.full((2, 3), 11, np.float32))
    fort = np.asfortranarray(base[:2, :3])
    np.testing.assert_array_equal(f(fort, y), fort * 2 + 1)
    # inputs are never written
    before = base.copy()
    tr.jit(lambda x: x.at[0].set(0.0))(base)
    np.testing.assert_array_equal(base, before)


def test_zero_size_arrays():
    f = tr.jit(lambda x: (x * 2, tnp.sum(x), x @ x.T))
    a, s, m = f(np.ones((0, 3), np.float32))
    assert a.shape == (0, 3) and s == 0 and m.shape == (0, 0)


def test_integer_division_by_zero_never_crashes():
    """In a subprocess: a trap (SIGFPE) would kill the interpreter."""
    code = textwrap.dedent("""
        import numpy as np, tracer as tr
        from tracer import lax
        f = tr.jit(lambda x, y: (lax.div(x, y), lax.rem(x, y)))
        for dt in (np.int32, np.int64):
            mn = np.iinfo(dt).min
            x = np.array([7, -7, 5, mn, mn, 0], dt)
            y = np.array([0, 0, 2, -1, 0, 0], dt)
            q, r = f(x, y)
            assert q.tolist() == [0, 0, 2, mn, 0, 0], q
            assert r.tolist() == [0, 0, 1, 0, 0, 0], r
            # a divisor that is a compile-time constant zero
            g = tr.jit(lambda x: (lax.div(x, np.zeros((), dt)), lax.rem(x, np.zeros((), dt))))
            assert [v.tolist() for v in g(x)] == [[0] * 6, [0] * 6]
        print("ok")
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr[-2000:]


def test_out_of_range_gather_scatter_indices_stay_in_bounds():
    x = np.arange(5, dtype=np.float32)
    idx = np.array([[-100], [2], [10 ** 6], [4]], np.int32)
    got = tr.jit(lambda a, i: lax.gather(a, i, (0,), "fill"))(x, idx)
    np.testing.assert_array_equal(got, [0, 2, 0, 4])
    got = tr.jit(lambda a, i: lax.gather(a, i, (0,), "clip"))(x, idx)
    np.testing.assert_array_equal(got, [0, 2, 4, 4])
    upd = np.ones(4, np.float32)
    got = tr.jit(lambda a, i, u: lax.scatter_add(a, i, u, (0,), "drop"))(x, idx, upd)
    np.testing.assert_array_equal(got, x + [0, 0, 1, 0, 1])


def test_tracer_indexing_and_polynomial_step():
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1, 1, 50).astype(np.float32)
    ys = (1 + 2 * xs - 3 * xs ** 3).astype(np.float32)

    def loss(c):
        pred = c[0] + c[1] * xs + c[2] * xs ** 2 + c[3] * xs ** 3
        return tnp.mean((pred - ys) ** 2)

    @tr.jit
    def step(c):
        return c - 0.1 * tr.grad(loss)(c)
    c = np.zeros(4, np.float32)
    c_eager = c.copy()
    for _ in range(20):
        c = step(c)
        c_eager = c_eager - 0.1 * tr.grad(loss)(c_eager)
    np.testing.assert_allclose(c, c_eager, rtol=1e-4, atol=1e-5)
    assert step.compile_count == 1


def test_reduction_with_reassoc_is_close_to_float64():
    x = np.random.default_rng(0).random(100_001).astype(np.float32)
    s = tr.jit(lambda a: tnp.sum(a))(x)
    assert abs(float(s) - x.astype(np.float64).sum()) / x.sum() < 1e-6


def test_custom_vjp_functions_compile_and_keep_their_rule():
    @tr.custom_vjp
    def f(x):
        return tnp.sin(x) * 2
    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * 7,))
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(tr.jit(lambda x: f(x) + f(x * 2))(x), np.sin(x) * 2 + np.sin(2 * x) * 2,
                               rtol=1e-6)
    np.testing.assert_array_equal(tr.jit(tr.grad(lambda x: tnp.sum(f(x))))(x), [7, 7, 7])


def test_disk_cache_reuses_object_code_across_processes(tmp_path):
    code = textwrap.dedent("""
        import numpy as np, tracer as tr
        f = tr.jit(lambda x: x * 3 + 1)
        lw = f.lower(np.ones(5, np.float32))
        ex = lw.compile().executable
        assert (ex(np.ones(5, np.float32))[0] == 4).all()
        print("disk" if ex.from_disk else "fresh")
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TRACER_CACHE_DIR": str(tmp_path)}
    env.pop("TRACER_NO_DISK_CACHE", None)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           cwd=root, env=env) for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["fresh", "disk"], [r.stderr[-1000:] for r in runs]
    # a damaged file is recompiled, not trusted
    for name in os.listdir(tmp_path):
        (tmp_path / name).write_bytes(b"garbage")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=root, env=env)
    assert r.stdout.strip() == "fresh", r.stderr[-1000:]
    env["TRACER_NO_DISK_CACHE"] = "1"
    env["TRACER_CACHE_DIR"] = str(tmp_path / "unused")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=root, env=env)
    assert r.stdout.strip() == "fresh" and not (tmp_path / "unused").exists()


def test_concurrent_calls_from_threads():
    import threading
    f = tr.jit(lambda a: tnp.exp(a) / tnp.sum(tnp.exp(a), axis=1, keepdims=True))  # uses scratch
    xs = [np.random.default_rng(i).standard_normal((50, 40)).astype(np.float32) for i in range(4)]
    f(xs[0])
    errors = []

    def work(x):
        e = np.exp(x)
        ref = e / e.sum(1, keepdims=True)
        for _ in range(30):
            if not np.allclose(f(x), ref, rtol=1e-5):
                errors.append(1)
    threads = [threading.Thread(target=work, args=(x,)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and f.compile_count == 1


def test_keyword_arguments_and_static_argnames():
    f = tr.jit(lambda x, y=2.0: x * y)
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(f(x, y=3.0), x * 3)
    np.testing.assert_array_equal(f(x, y=4.0), x * 4)  # dynamic: same compiled code
    assert (f.trace_count, f.compile_count) == (1, 1)
    g = tr.jit(lambda x, n: x * n if n > 2 else -x, static_argnames="n")
    np.testing.assert_array_equal(g(x, n=3), x * 3)
    np.testing.assert_array_equal(g(x, 3), x * 3)
    np.testing.assert_array_equal(g(x, n=1), -x)
    assert g.compile_count == 2
    h = tr.jit(lambda x, *, scale: x * scale)
    np.testing.assert_array_equal(h(x, scale=np.float32(5)), x * 5)
    with pytest.raises(ValueError, match="static_argnames"):
        tr.jit(lambda x: x, static_argnames="nope")
