"""GPU tests (marked ``gpu``; they skip without an NVIDIA driver and device): every
case of the CUDA table against the numpy reference and the CPU back end, larger
sizes (many blocks, split reductions, multi-tile matmuls), the polynomial fit and an
MLP trained with jit(grad) on the device. Run them with scripts/gpu_check.sh."""
from __future__ import annotations

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp
import codegen.cuda_runtime as rt
from tests.test_cuda_cases import CASES, MLP_ARGS, POLY_ARGS, _mlp_step, _poly_loss

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not rt.available(), reason="no CUDA driver or GPU")]


def close(got, want, what="", scale=1.0):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, \
        f"{what}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}"
    if want.dtype.kind == "f":
        tol = (1e-4 if want.dtype == np.float32 else 1e-11) * scale
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _first_per_primitive(cases):
    seen, out = set(), []
    for c in cases:
        if c.id.split("-")[0] not in seen:
            seen.add(c.id.split("-")[0])
            out.append(c)
    return out


@pytest.mark.parametrize("fun,args", CASES)
def test_case_against_numpy(fun, args):
    want = tr.tree_leaves(fun(*args))
    got = tr.tree_leaves(tr.jit(fun, backend="cuda")(*args))
    assert all(isinstance(g, rt.DeviceArray) for g in got)
    for i, (g, w) in enumerate(zip(got, want)):
        close(g, w, f"output {i} vs numpy")


@pytest.mark.parametrize("fun,args", _first_per_primitive(CASES))
def test_case_against_cpu_backend(fun, args):
    """One case per primitive (and each example) against the CPU back end."""
    got = tr.tree_leaves(tr.jit(fun, backend="cuda")(*args))
    cpu = tr.tree_leaves(tr.jit(fun)(*args))
    for i, (g, c) in enumerate(zip(got, cpu)):
        close(g, c, f"output {i} vs the CPU back end")


@pytest.mark.parametrize("n", [1, 255, 257, 1 << 20, (1 << 22) + 3])
def test_large_elementwise_and_sum(n):
    x = np.random.default_rng(n % 97).uniform(-1, 1, n).astype(np.float32)
    f = tr.jit(lambda v: (tnp.exp(v) * 2.0 - v, tnp.sum(v), tnp.max(v), tnp.argmax(v)), backend="cuda")
    e, s, m, a = f(x)
    close(e, (np.exp(x) * 2 - x).astype(np.float32), "elementwise")
    np.testing.assert_allclose(float(s), x.astype(np.float64).sum(), rtol=1e-4, atol=1e-3)
    assert float(m) == x.max() and int(a) == int(np.argmax(x))


@pytest.mark.parametrize("shape", [((1, 1), (1, 1)), ((129, 65), (65, 31)), ((512, 512), (512, 512)),
                                   ((1000, 3), (3, 700))])
def test_matmul_sizes(shape):
    rng = np.random.default_rng(0)
    a, b = (rng.normal(size=s).astype(np.float32) for s in shape)
    got = tr.jit(lambda x, y: x @ y, backend="cuda")(a, b)
    close(got, (a.astype(np.float64) @ b).astype(np.float32), "matmul", scale=20)


def test_rows_reduction_many_outputs():
    x = np.random.default_rng(1).normal(size=(10000, 37)).astype(np.float64)
    f = tr.jit(lambda v: (tnp.sum(v, axis=1), tnp.min(v, axis=0), tnp.argmin(v, axis=1)), backend="cuda")
    s, mn, am = f(x)
    close(s, x.sum(1), "sum")
    close(mn, x.min(0), "min")
    close(am, np.argmin(x, 1).astype(np.int32), "argmin")


def test_polynomial_fit_on_device():
    w, x, y = POLY_ARGS
    step = tr.jit(lambda w, x, y: w - 0.1 * tr.grad(_poly_loss)(w, x, y), backend="cuda")
    loss = tr.jit(_poly_loss, backend="cuda")
    dw, dx, dy = tr.device_put(w), tr.device_put(x), tr.device_put(y)
    hw = w
    first = float(loss(dw, dx, dy))
    for _ in range(200):
        dw = step(dw, dx, dy)
        hw = hw - 0.1 * tr.grad(_poly_loss)(hw, x, y)
    close(dw, hw, "weights after 200 steps", scale=10)
    assert float(loss(dw, dx, dy)) < 0.5 * first


def test_mlp_training_on_device():
    params, x, y = MLP_ARGS
    step = tr.jit(_mlp_step, backend="cuda")
    dp = tr.tree_map(tr.device_put, params)
    dx, dy = tr.device_put(x), tr.device_put(y)
    host = params
    for _ in range(20):
        dp = step(dp, dx, dy)
        host = _mlp_step(host, x, y)
    for k in host:
        close(dp[k], host[k], k, scale=10)
    assert step.compile_count == 1


def test_driver_errors_are_exceptions():
    with pytest.raises(rt.CudaError, match="CUDA_ERROR"):
        rt.device(0).driver.load_module("this is not PTX")
