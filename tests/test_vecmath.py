"""Large modules call vector variants of the math functions (codegen.vecmath) instead
of inlining them: same results bitwise, and the calls really are vectorised."""
import os
import re
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tracer as tr  # noqa: E402
import tracer.numpy as tnp  # noqa: E402
from codegen import mathlib, vecmath  # noqa: E402
from tracer.core import interpret  # noqa: E402

UNARY = sorted(n for n, (_, k) in mathlib.FUNCTIONS.items() if k == 1 and hasattr(tnp, n))
BINARY = {"pow": tnp.power, "atan2": tnp.arctan2}


def _inputs(name, dtype, n=1003):  # 1003: a remainder after the vector loop
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, n)
    if name in ("log", "log2", "log1p", "sqrt", "rsqrt", "pow"):
        x = np.abs(x) + 0.01
    return x.astype(dtype)


def _compile_both(fn, args, monkeypatch):
    monkeypatch.setenv("TRACER_NO_DISK_CACHE", "1")
    inline = tr.jit(fn).lower(*args).compile()
    monkeypatch.setattr(vecmath, "MIN_CALLS", 1)
    called = tr.jit(fn).lower(*args).compile()
    return inline, called


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", UNARY)
def test_unary_called_matches_inlined(name, dtype, monkeypatch):
    x = _inputs(name, dtype)
    x[:4] = [np.nan, np.inf, -np.inf, 0.0]
    f = getattr(tnp, name)
    inline, called = _compile_both(f, (x,), monkeypatch)
    opt = called.lowered.as_text("optimized_llvm")
    used = set(re.findall(r'call \w+ @"(__mathlib_\w+)"', called.lowered.as_text("llvm")))
    assert used
    for u in used:  # every math function is called through its vector variant
        assert re.search(rf"call <\d+ x \w+> @{u}_v\d+\(", opt), u
    assert "_v" not in "".join(l for l in inline.lowered.as_text("optimized_llvm").splitlines()
                               if "__mathlib" in l)
    np.testing.assert_array_equal(called(x), inline(x))
    ref = interpret(called.lowered.graph, [x])[0]  # the numpy reference
    np.testing.assert_allclose(called(x), ref, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_called_matches_inlined(name, monkeypatch):
    x, y = _inputs(name, np.float32), _inputs("sin", np.float32)[::-1].copy()
    inline, called = _compile_both(BINARY[name], (x, y), monkeypatch)
    assert re.search(rf"call <\d+ x float> @__mathlib_{name}_f32_v\d+\(",
                     called.lowered.as_text("optimized_llvm"))
    np.testing.assert_array_equal(called(x, y), inline(x, y))


def _chain(n):
    def f(x):
        for i in range(n):
            x = tnp.sin(x) * 1.0001 + (0.001 * i)
        return tnp.sum(x)
    return f


def test_deep_chain_gradient_compiles_fast_and_right(monkeypatch):
    """jit(grad) of 150 fused sin ops: hundreds of math call sites in one function.
    Before codegen.vecmath this took several seconds in LLVM; the gradient must match
    the reference interpreter."""
    monkeypatch.setenv("TRACER_NO_DISK_CACHE", "1")
    x = np.linspace(-1, 1, 257).astype(np.float32)
    g = tr.jit(tr.grad(_chain(150)))
    t = time.perf_counter()
    out = g(x)
    elapsed = time.perf_counter() - t
    lw = g.lower(x)
    assert vecmath.call_sites(lw.as_text("llvm")) >= vecmath.MIN_CALLS
    ref = interpret(lw.graph, [x])[0]
    np.testing.assert_allclose(out, ref, rtol=2e-4, atol=1e-6)
    assert elapsed < 30, elapsed  # generous (a shared 2-core machine); ~1 s unloaded
