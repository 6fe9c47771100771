"""Time codegen.mathlib map loops against numpy (a measurement, not a test).

    python3 benchmarks/bench_mathlib.py [N] [repeats] [name,name,...]

For every function and dtype: one O3-compiled loop ``out[i] = f(x[i][, y[i]])``
over N elements (default 1e7), median wall time of `repeats` runs, against the
equivalent numpy call writing into a preallocated array.  Prints a markdown
table; "speed-up" is numpy time / mathlib time.
"""

import ctypes
import os
import sys
import time

import numpy as np
import llvmlite.binding as llvm
from llvmlite import ir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from codegen import mathlib  # noqa: E402

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()

_TM = llvm.Target.from_default_triple().create_target_machine(
    cpu=llvm.get_host_cpu_name(),
    features=llvm.get_host_cpu_features().flatten(), opt=3, jit=True)
_JIT = llvm.create_lljit_compiler(_TM)
_KEEP = []


def compile_map(name, dtype):
    """ctypes function f(x, y, out, n) for the loop out[i] = name(x[i][, y[i]])."""
    ty = ir.FloatType() if dtype == np.float32 else ir.DoubleType()
    i64 = ir.IntType(64)
    mod = ir.Module()
    mod.triple = llvm.get_process_triple()
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(),
                                          [ty.as_pointer()] * 3 + [i64]), "f")
    for a in fn.args[:3]:
        a.add_attribute("noalias")
    px, py, po, n = fn.args
    entry, loop, done = (fn.append_basic_block(s) for s in ("e", "l", "d"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, i64(0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(i64(0), entry)
    args = [b.load(b.gep(p, [i])) for p in (px, py)[:mathlib.FUNCTIONS[name][1]]]
    b.store(mathlib.emit(b, name, *args), b.gep(po, [i]))
    nxt = b.add(i, i64(1))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
    b.position_at_end(done)
    b.ret_void()

    ref = llvm.parse_assembly(str(mod))
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(_TM, pto)
    pb.getModulePassManager().run(ref, pb)
    rt = (llvm.JITLibraryBuilder().add_ir(str(ref)).export_symbol("f")
          .link(_JIT, "bench_%s_%s" % (name, np.dtype(dtype).name)))
    _KEEP.append(rt)
    return ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_int64)(rt["f"])


def _erf_numpy():
    try:
        from scipy.special import erf
        return erf
    except ImportError:
        return None


def inputs(name, dtype, n, rng):
    """(x, y) in a typical domain for the function."""
    u = lambda lo, hi: rng.uniform(lo, hi, n).astype(dtype)  # noqa: E731
    dom = {
        "exp": (-80, 80), "exp2": (-120, 120), "expm1": (-10, 10),
        "log": (1e-3, 1e3), "log2": (1e-3, 1e3), "log1p": (-0.9, 1e3),
        "sin": (-100, 100), "cos": (-100, 100), "tan": (-100, 100),
        "tanh": (-10, 10), "logistic": (-20, 20), "atan": (-50, 50),
        "atan2": (-10, 10), "pow": (0.01, 10), "erf": (-4, 4),
        "sqrt": (0, 1e4), "rsqrt": (1e-3, 1e4),
    }[name]
    x = u(*dom)
    y = u(-10, 10) if name in ("atan2", "pow") else x
    return x, y


NUMPY = {
    "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log,
    "log2": np.log2, "log1p": np.log1p, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "tanh": np.tanh, "atan": np.arctan,
    "sqrt": np.sqrt,
    "logistic": lambda x, out: np.divide(
        1, np.add(1, np.exp(np.negative(x, out=out), out=out), out=out), out=out),
    "rsqrt": lambda x, out: np.divide(1, np.sqrt(x, out=out), out=out),
    "atan2": lambda x, y, out: np.arctan2(x, y, out=out),
    "pow": lambda x, y, out: np.power(x, y, out=out),
}


def median_ms(fns, repeats):
    """Median wall time (ms) of each function; the runs are interleaved so
    that background load affects all of them alike."""
    for fn in fns:
        fn()                                       # warm-up (page faults)
    ts = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, ts):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [1e3 * float(np.median(t)) for t in ts]


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    names = sys.argv[3].split(",") if len(sys.argv) > 3 else list(mathlib.FUNCTIONS)
    erf = _erf_numpy()
    if erf is not None:
        NUMPY["erf"] = lambda x, out: erf(x, out=out)
    rng = np.random.default_rng(0)
    print("N = %d, median of %d interleaved runs, single thread; speed-up = "
          "numpy / mathlib; erf: scipy.special.erf (numpy has none); "
          "logistic, rsqrt: numpy expressions\n" % (n, repeats))
    print("| function | dtype | mathlib ms | numpy ms | speed-up |")
    print("|---|---|---:|---:|---:|")
    for name in names:
        for dtype in (np.float32, np.float64):
            f = compile_map(name, dtype)
            x, y = inputs(name, dtype, n, rng)
            out = np.empty_like(x)
            px, py, po = x.ctypes.data, y.ctypes.data, out.ctypes.data
            ref = NUMPY.get(name)
            fns = [lambda: f(px, py, po, n)]
            if ref is not None and mathlib.FUNCTIONS[name][1] == 2:
                fns.append(lambda: ref(x, y, out=out))
            elif ref is not None:
                fns.append(lambda: ref(x, out=out))
            t_ml, t_np = (median_ms(fns, repeats) + [float("nan")])[:2]
            np_s = "n/a" if t_np != t_np else "%.1f" % t_np
            sp = "n/a" if t_np != t_np else "%.2f" % (t_np / t_ml)
            print("| %s | %s | %.1f | %s | %s |"
                  % (name, np.dtype(dtype).name, t_ml, np_s, sp), flush=True)


if __name__ == "__main__":
    main()
