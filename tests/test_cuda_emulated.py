"""Values of the CUDA back end without a GPU: every case of the CUDA table runs through
the whole runtime (jit backend="cuda", DeviceArray, buffer planning, launch packing)
on the CPU SIMT emulator (codegen.cuda.emulator: one POSIX thread per CUDA thread,
real barriers and warp shuffles), and is compared with the numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

import tracer as tr
import codegen.cuda_runtime as rt
from codegen.cuda import emulator
from tests.test_cuda_cases import CASES, MLP_ARGS, _mlp_step

pytestmark = pytest.mark.skipif(not emulator.available(), reason="no C compiler for the emulator")


@pytest.fixture
def emu():
    # guard pages after every buffer: a kernel touching one element past a buffer
    # crashes (as a GPU raises CUDA_ERROR_ILLEGAL_ADDRESS) instead of passing silently
    drv = emulator.EmulatedDriver(guard=True)
    rt._driver_override.append(drv)
    try:
        yield drv
    finally:
        rt._driver_override.remove(drv)


def close(got, want, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, \
        f"{what}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}"
    if want.dtype.kind == "f":
        tol = 2e-5 if want.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol * 20, atol=tol * 20, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.parametrize("fun,args", CASES)
def test_case_matches_numpy(emu, fun, args):
    want = tr.tree_leaves(fun(*args))          # eager: the numpy reference implementations
    out = tr.jit(fun, backend="cuda")(*args)
    got = tr.tree_leaves(out)
    assert all(isinstance(g, rt.DeviceArray) for g in got)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        close(g, w, f"output {i}")


def test_fills_write_every_element(emu):
    """Outputs filled from a scalar (an empty reduction's identity) cover the whole
    buffer, whatever the recycled memory held before."""
    junk = tr.device_put(np.full(3, 7.0, np.float32))
    del junk  # its block goes back to the pool and is reused below
    out = tr.jit(lambda x: (tr.numpy.sum(x, axis=0), tr.numpy.prod(x, axis=0)), backend="cuda")(
        np.zeros((0, 3), np.float32))
    np.testing.assert_array_equal(np.asarray(out[0]), np.zeros(3, np.float32))
    np.testing.assert_array_equal(np.asarray(out[1]), np.ones(3, np.float32))


def test_device_arrays_stay_on_device(emu):
    """Results feed the next call without a host round trip; device_put uploads once."""
    params, x, y = MLP_ARGS
    step = tr.jit(_mlp_step, backend="cuda")
    dp = tr.tree_map(lambda a: tr.device_put(a), params)
    dx, dy = tr.device_put(x), tr.device_put(y)
    host = params
    for _ in range(3):
        dp = step(dp, dx, dy)
        host = _mlp_step(host, x, y)
    assert all(isinstance(v, rt.DeviceArray) for v in dp.values())
    for k in host:
        close(np.asarray(dp[k]), host[k], k)
    assert step.compile_count == 1


def test_device_put_roundtrip_and_errors(emu):
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    d = tr.device_put(a)
    assert d.shape == (3, 4) and d.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(d), a)
    np.testing.assert_array_equal(np.asarray(tr.device_put(True)), np.asarray(True))
    with pytest.raises(ValueError, match="unknown device"):
        tr.device_put(a, "tpu")
    f = tr.jit(lambda v: v + 1, backend="cuda")
    with pytest.raises(TypeError):
        f.lower(np.ones(3)).compile().executable(np.ones(3), np.ones(3))


def test_launch_sequence_matches_plan(emu):
    f = tr.jit(lambda x: tr.nn.softmax(x, axis=1), backend="cuda")
    x = np.random.default_rng(0).normal(size=(5, 9)).astype(np.float32)
    lw = f.lower(x)
    emu.launches.clear()
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(tr.nn.softmax(x, axis=1)), rtol=1e-5)
    from codegen.cuda import program_for
    prog = program_for(lw.optimized_graph, lw.name)
    assert [(k, g, b) for k, g, b in emu.launches] == [(ln.kernel, ln.grid, ln.block)
                                                        for ln in prog.launches]


def test_temporaries_share_memory():
    """Temporaries whose live ranges do not overlap get the same arena offset."""
    from codegen.cuda.plan import Buffer, Launch, Program
    from tracer.ir import ShapedArray

    class Prog(Program):
        pass
    f32 = ShapedArray((100,), np.float32)
    bufs = [Buffer(0, f32, "input"), Buffer(1, f32, "temp"), Buffer(2, f32, "temp"),
            Buffer(3, f32, "temp"), Buffer(4, f32, "output")]
    launches = [Launch("a", (1, 1, 1), (1, 1, 1), [0, 1]), Launch("b", (1, 1, 1), (1, 1, 1), [1, 2]),
                Launch("c", (1, 1, 1), (1, 1, 1), [2, 3]), Launch("d", (1, 1, 1), (1, 1, 1), [3, 4])]
    prog = Prog("p", None, [], launches, bufs, [0], [4])
    ex = rt.Executable.__new__(rt.Executable)
    ex.program = prog

    class Dev:
        driver = emulator.EmulatedDriver()
    ex.device = Dev()
    ptrs, arena = ex._plan_temps()
    assert ptrs[1] != ptrs[2] and ptrs[2] != ptrs[3]   # live at the same launch
    assert ptrs[1] == ptrs[3]                           # b1 is dead when b3 is born
    assert arena.nbytes == 2 * 512


MATH_CASES = [c for c in CASES if c.id.split("-")[0] in
              ("exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "atan", "rsqrt",
               "logistic", "erf", "pow", "atan2", "poly", "mlp")]


@pytest.mark.parametrize("fun,args", MATH_CASES)
def test_mathlib_provider_without_libdevice(emu, monkeypatch, fun, args):
    """TRACER_CUDA_MATH=mathlib: transcendentals from the CPU back end's polynomials
    (no libdevice needed); same values."""
    monkeypatch.setenv("TRACER_CUDA_MATH", "mathlib")
    monkeypatch.setenv("TRACER_LIBDEVICE", "/nonexistent/libdevice.10.bc")
    f = tr.jit(fun, backend="cuda")
    assert "__nv_" not in f.lower(*args).as_text("llvm")
    for g, w in zip(tr.tree_leaves(f(*args)), tr.tree_leaves(fun(*args))):
        close(g, w)


# ---------------------------------------------------------------- random programs

from hypothesis import given, strategies as st  # noqa: E402

import tracer.lax as lax  # noqa: E402


@st.composite
def programs(draw):
    """A random chain of index maps, elementwise ops and reductions on one input."""
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    steps = draw(st.lists(st.tuples(st.sampled_from(
        ["transpose", "slice", "pad", "rev", "broadcast", "reshape", "concat", "exp", "mul", "sum",
         "max", "gather", "cumsum", "dot", "where", "argmax", "scatter_add", "convert"]),
        st.integers(0, 2**16)), min_size=1, max_size=6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = np.random.default_rng(draw(st.integers(0, 9))).uniform(-1, 1, shape).astype(dtype)
    return x, steps


def _apply(x, steps):
    import random
    for name, seed in steps:
        rnd = random.Random(seed)  # the same choices when traced and when run eagerly
        shape = np.shape(x) if not hasattr(x, "aval") else x.aval.shape
        nd = len(shape)
        if nd == 0:
            x = lax.broadcast_in_dim(x, (3,), ())
            continue
        if name == "transpose":
            perm = list(range(nd))
            rnd.shuffle(perm)
            x = lax.transpose(x, perm)
        elif name == "slice":
            start = [rnd.randrange(d) for d in shape]
            limit = [rnd.randrange(s + 1, d + 1) for s, d in zip(start, shape)]
            x = lax.slice(x, start, limit, [rnd.randrange(1, 3) for _ in shape])
        elif name == "pad":
            x = lax.pad(x, np.asarray(0.5, _dtype(x)), [(rnd.randrange(3), rnd.randrange(3), rnd.randrange(2)) for _ in shape])
        elif name == "rev":
            x = lax.rev(x, [d for d in range(nd) if rnd.random() < 0.5])
        elif name == "broadcast" and nd < 4:
            pos = rnd.randrange(nd + 1)
            x = lax.broadcast_in_dim(x, shape[:pos] + (2,) + shape[pos:],
                                     tuple(i if i < pos else i + 1 for i in range(nd)))
        elif name == "reshape":
            x = lax.reshape(x, (int(np.prod(shape)),))
        elif name == "concat":
            x = lax.concatenate([x, lax.neg(x)], rnd.randrange(nd))
        elif name == "exp":
            x = lax.exp(lax.mul(x, 0.5))
        elif name == "mul":
            x = lax.add(lax.mul(x, x), -0.25)
        elif name == "sum" and nd > 1:
            x = lax.reduce_sum(x, (rnd.randrange(nd),))
        elif name == "max" and nd > 1:
            x = lax.reduce_max(x, (rnd.randrange(nd),))
        elif name == "gather":
            idx = np.array([[rnd.randrange(-1, shape[0] + 1)] for _ in range(3)], np.int32)
            x = lax.gather(x, idx, (0,), rnd.choice(["clip", "fill"]))
        elif name == "cumsum":
            x = lax.cumsum(x, rnd.randrange(nd), reverse=rnd.random() < 0.5)
        elif name == "dot" and nd == 2:
            x = lax.dot_general(x, lax.transpose(x, (1, 0)), (((1,), (0,)), ((), ())))
        elif name == "where":
            x = lax.select(lax.gt(x, lax.full_like(x, 0.1)), x, lax.neg(lax.mul(x, x)))
        elif name == "argmax" and nd > 1:
            ax = rnd.randrange(nd)
            x = lax.convert_element_type(lax.argmax(x, ax), _dtype(x))
        elif name == "scatter_add":
            idx = np.array([[rnd.randrange(-1, shape[0] + 1)] for _ in range(4)], np.int32)
            upd = lax.gather(x, np.array([[rnd.randrange(shape[0])] for _ in range(4)], np.int32), (0,))
            x = lax.scatter_add(x, idx, upd, (0,))
        elif name == "convert":
            dt = _dtype(x)
            x = lax.convert_element_type(lax.convert_element_type(lax.mul(x, 7.0), np.int32), dt)
    return x


def _dtype(x):
    return x.aval.dtype if hasattr(x, "aval") else np.asarray(x).dtype


@given(programs())
def test_random_programs_match_numpy(prog):
    x, steps = prog
    drv = emulator.EmulatedDriver(guard=True)
    rt._driver_override.append(drv)
    try:
        fun = lambda v: _apply(v, steps)  # noqa: E731
        want = np.asarray(fun(x))
        got = np.asarray(tr.jit(fun, backend="cuda")(x))
    finally:
        rt._driver_override.remove(drv)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_device_array_behaves_like_a_host_array(emu):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = tr.device_put(a)
    np.testing.assert_array_equal(d + 1, a + 1)
    np.testing.assert_array_equal(2 * d - d, a)
    np.testing.assert_array_equal(d @ a.T, a @ a.T)
    np.testing.assert_array_equal(d[1], a[1])
    assert float(tr.device_put(np.float32(2.5))) == 2.5 and bool(tr.device_put(True))
    assert (d < 3).sum() == 3 and len(d) == 2
    tree = tr.device_put({"w": a, "b": [np.ones(2), 3.0]})
    assert isinstance(tree["w"], rt.DeviceArray) and isinstance(tree["b"][1], rt.DeviceArray)
    np.testing.assert_array_equal(np.asarray(tree["b"][0]), np.ones(2))
