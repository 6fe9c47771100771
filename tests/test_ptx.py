"""PTX without a GPU: every case of the CUDA table (every primitive, its dtypes, and the
examples) is lowered through LLVM's NVPTX target and assembled with ``ptxas`` for sm_80
and sm_90. One case per primitive runs by default; the full dtype sweep for both
architectures is marked slow. Skips cleanly where ptxas or libdevice is missing."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp
from codegen.cuda import lowered_text, libdevice, program_for
from tests.test_cuda_cases import CASES, POLY_ARGS, _poly_loss

PTXAS = shutil.which("ptxas") or next((p for p in ("/usr/local/cuda/bin/ptxas",) if os.path.exists(p)), None)
needs_ptxas = pytest.mark.skipif(PTXAS is None, reason="ptxas is not installed")


def _have_libdevice():
    try:
        libdevice.find()
        return True
    except libdevice.LibdeviceNotFound:
        return False


needs_libdevice = pytest.mark.skipif(not _have_libdevice(), reason="libdevice.10.bc not found")


def ptxas(ptx: str, arch: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        r = subprocess.run([PTXAS, f"-arch={arch}", src, "-o", os.path.join(d, "k.cubin")],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"ptxas -arch={arch} failed:\n{r.stderr[:3000]}"


def lowered(fun, args):
    return tr.jit(fun, backend="cuda").lower(*args)


SM90_QUICK = {"exp-float32", "log1p-float64", "pow-float32", "reduce_sum-long", "argmax-nan",
              "dot_general-batch", "scatter_add", "scatter-set", "gather-fill", "cumsum-reverse",
              "softmax-fusion", "poly-grad", "mlp-step"}


def _first_per_primitive(cases):
    seen, out = set(), []
    for c in cases:
        key = c.id.split("-")[0]
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


QUICK = _first_per_primitive(CASES)


def _sm80(fun, args):
    ptx = lowered(fun, args).as_text("ptx")
    assert ".target sm_80" in ptx
    ptxas(ptx, "sm_80")


@needs_ptxas
@needs_libdevice
@pytest.mark.parametrize("fun,args", QUICK)
def test_ptx_assembles_sm80(fun, args):
    _sm80(fun, args)


@pytest.mark.slow
@needs_ptxas
@needs_libdevice
@pytest.mark.parametrize("fun,args", [c for c in CASES if c.id not in {q.id for q in QUICK}])
def test_ptx_assembles_sm80_all_dtypes(fun, args):
    _sm80(fun, args)


def _sm90(fun, args):
    lw = lowered(fun, args)
    ptx = lowered_text(lw.optimized_graph, lw.name, "ptx", arch="sm_90")
    assert ".target sm_90" in ptx
    ptxas(ptx, "sm_90")


@needs_ptxas
@needs_libdevice
@pytest.mark.parametrize("fun,args", [c for c in CASES if c.id in SM90_QUICK])
def test_ptx_assembles_sm90(fun, args):
    _sm90(fun, args)


@pytest.mark.slow
@needs_ptxas
@needs_libdevice
@pytest.mark.parametrize("fun,args", [c for c in CASES if c.id not in SM90_QUICK])
def test_ptx_assembles_sm90_all(fun, args):
    _sm90(fun, args)


@needs_libdevice
def test_ptx_has_only_kernels_no_libdevice_bloat():
    """libdevice is linked in and internalised: only the kernels are left, and the
    transcendental code is inlined (no __nv_ function survives)."""
    f = lambda x: tnp.sum(tnp.exp(x) * tnp.sin(x) + tnp.log1p(tnp.abs(x)) + tnp.tanh(x), axis=0)  # noqa: E731
    lw = lowered(f, (np.ones((64, 8), np.float32),))
    ptx = lw.as_text("ptx")
    prog = program_for(lw.optimized_graph, lw.name)
    entries = re.findall(r"\.entry\s+(\w+)", ptx)
    assert sorted(entries) == sorted(k.name for k in prog.kernels)
    assert ".func" not in ptx and "__nv_" not in ptx
    assert len(ptx.splitlines()) < 2000   # all of libdevice would be ~20000 lines


def test_ptx_without_gpu_or_driver():
    """Lowering works with no driver; calling raises a clear error naming the driver."""
    import codegen.cuda_runtime as rt
    f = tr.jit(lambda x: x * 2.0 + 1.0, backend="cuda")
    assert ".entry" in f.lower(np.ones(4, np.float32)).as_text("ptx")
    if rt.available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="libcuda|driver|device"):
        f(np.ones(4, np.float32))


def test_stages_for_cuda():
    lw = lowered(_poly_loss, POLY_ARGS)
    assert "ptx_kernel" in lw.as_text("llvm")
    assert lw.as_text("asm") == lw.as_text("ptx")
    assert "reduce_sum" in lw.as_text("optimized_ir")


def test_fusion_makes_few_kernels():
    """An elementwise chain with broadcasts is one kernel; a softmax is reductions plus
    one fused elementwise kernel."""
    f = lambda x, b: tnp.tanh(x * 2.0 + b) - b * b  # noqa: E731
    lw = lowered(f, (np.ones((32, 8), np.float32), np.ones(8, np.float32)))
    prog = program_for(lw.optimized_graph, lw.name)
    assert len(prog.launches) == 1, prog.describe()
    lw = lowered(lambda x: tr.nn.softmax(x, axis=1), (np.ones((32, 300), np.float32),))
    prog = program_for(lw.optimized_graph, lw.name)
    assert len(prog.launches) == 3, prog.describe()   # max, sum of exp, exp / sum
    # an expensive value read through an expanding broadcast is stored once
    lw = lowered(lambda x, b: x + tnp.exp(tnp.sin(b)), (np.ones((32, 8), np.float32), np.ones(8, np.float32)))
    prog = program_for(lw.optimized_graph, lw.name)
    assert len(prog.launches) == 2, prog.describe()
    # outputs of different shapes (an optimiser's parameter updates) share one launch
    f = lambda w, b, gw, gb: (w - 0.1 * gw, b - 0.1 * gb)  # noqa: E731
    args = (np.ones((8, 16), np.float32), np.ones(16, np.float32)) * 2
    lw = lowered(f, args)
    assert len(program_for(lw.optimized_graph, lw.name).launches) == 1


def test_missing_libdevice_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACER_LIBDEVICE", str(tmp_path / "nope.bc"))
    with pytest.raises(libdevice.LibdeviceNotFound, match="TRACER_LIBDEVICE"):
        libdevice.find()
    # without any transcendental function, libdevice is not needed at all
    f = tr.jit(lambda x: x * 3.0, backend="cuda")
    assert ".entry" in f.lower(np.ones(4, np.float32)).as_text("ptx")


def test_unknown_arch_and_unsupported_primitive():
    from codegen.cuda import plan, target
    from tracer.ir import Eqn, Graph, ShapedArray, Var
    with pytest.raises(ValueError, match="sm_999"):
        target.check_arch("sm_999")

    class Fancy:  # not registered: the registry must not see it
        name = "fancy_op"
    x = Var(ShapedArray((3,), np.float32))
    y = Var(ShapedArray((3,), np.float32))
    g = Graph([x], [], [], [Eqn(Fancy(), [x], [y], {})], [y], "g")
    with pytest.raises(NotImplementedError, match="fancy_op"):
        plan.lower(g)


def test_forbidden_intrinsic_is_an_exception_not_an_abort():
    from codegen.cuda import target
    from llvmlite import ir
    m = target.new_module("m")
    fn, b = target.kernel(m, "k", 1)
    f32 = ir.FloatType()
    ex = ir.Function(m, ir.FunctionType(f32, [f32]), "llvm.exp.f32")
    b.call(ex, [ir.Constant(f32, 1.0)])
    b.ret_void()
    with pytest.raises(target.PTXError, match="libdevice"):
        target.compile_ptx(m, ["k"])


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_ptx_with_polynomial_math_needs_no_libdevice(monkeypatch, arch):
    """TRACER_CUDA_MATH=mathlib: the CPU back end's polynomials, which use only
    intrinsics NVPTX selects directly (fma, rint, ...), so no libdevice is needed."""
    monkeypatch.setenv("TRACER_CUDA_MATH", "mathlib")
    monkeypatch.setenv("TRACER_LIBDEVICE", "/nonexistent/libdevice.10.bc")
    f = lambda x, y: tnp.exp(x) * tnp.sin(y) + tnp.log1p(tnp.abs(x)) ** y + tnp.tanh(x) * tr.nn.gelu(y)  # noqa: E731
    lw = lowered(f, (np.ones((64,), np.float32), np.ones((64,), np.float32)))
    ptx = lowered_text(lw.optimized_graph, lw.name, "ptx", arch=arch)
    assert "__nv_" not in ptx
    ptxas(ptx, arch)
