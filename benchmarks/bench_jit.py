"""jit (CPU) against numpy: fused elementwise math, sum of squares, matmul, per-call
dispatch latency and compile time. Prints a markdown table.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_jit.py

(single-threaded BLAS, so the matmul rows compare one core with one core; the jit
code is single-threaded). Each figure is the best of several timed repetitions.
"""
from __future__ import annotations

import os
import sys
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tracer as tr  # noqa: E402
import tracer.numpy as tnp  # noqa: E402


def timeit(fn, *args, reps: int = 7, number: int = 1) -> float:
    fn(*args)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(number):
            fn(*args)
        ts.append((time.perf_counter() - t) / number)
    return float(np.min(ts))  # the machine is shared: the fastest run is the least disturbed


def row(name, t_jit, t_np, unit="ms"):
    scale = {"ms": 1e3, "us": 1e6}[unit]
    return f"| {name} | {t_jit * scale:.3f} {unit} | {t_np * scale:.3f} {unit} | {t_np / t_jit:.2f}x |"


def main():
    rng = np.random.default_rng(0)
    rows = []
    x = rng.standard_normal(10_000_000).astype(np.float32)
    y = rng.standard_normal(10_000_000).astype(np.float32)

    def fused(a, b):
        return tnp.tanh(a) * tnp.exp(-b * b) + 0.5 * a

    def fused_np(a, b):
        return np.tanh(a) * np.exp(-b * b) + 0.5 * a
    rows.append(row("fused tanh(a)*exp(-b*b)+0.5*a, 1e7 f32", timeit(tr.jit(fused), x, y),
                    timeit(fused_np, x, y)))
    rows.append(row("exp, 1e7 f32", timeit(tr.jit(tnp.exp), x), timeit(np.exp, x)))
    rows.append(row("sum of squares, 1e7 f32", timeit(tr.jit(lambda a: tnp.sum(a * a)), x),
                    timeit(lambda a: np.sum(a * a), x)))
    rows.append(row("sum of squares (np.dot), 1e7 f32", timeit(tr.jit(lambda a: tnp.sum(a * a)), x),
                    timeit(lambda a: np.dot(a, a), x)))
    rows.append(row("max, 1e7 f32 (NaN-propagating, vectorised)", timeit(tr.jit(lambda a: tnp.max(a)), x),
                    timeit(np.max, x)))
    for n in (256, 512, 1024):
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        tj = timeit(tr.jit(lambda p, q: p @ q), a, b, reps=5)
        tn = timeit(np.matmul, a, b, reps=5)
        rows.append(row(f"matmul {n}x{n} f32 ({2 * n ** 3 / tj / 1e9:.0f} GFLOP/s jit)", tj, tn))
    a64 = rng.standard_normal((512, 512))
    t64 = timeit(tr.jit(lambda p, q: p @ q), a64, a64, reps=5)
    rows.append(row(f"matmul 512x512 f64 ({2 * 512 ** 3 / t64 / 1e9:.0f} GFLOP/s jit)", t64,
                    timeit(np.matmul, a64, a64, reps=5)))
    tiny = np.ones(4, np.float32)
    tf = tr.jit(lambda a: a + 1.0)
    rows.append(row("dispatch: jit(a + 1) on 4 floats", timeit(tf, tiny, number=20000),
                    timeit(lambda a: a + 1.0, tiny, number=20000), "us"))
    ex = tf.lower(tiny).compile().executable
    rows.append(row("  of which the native call (Executable.call)", timeit(ex.call, tiny, number=20000),
                    timeit(lambda a: a + 1.0, tiny, number=20000), "us"))

    def compile_time(fn, *args):
        t = time.perf_counter()
        tr.jit(fn)(*args)
        return time.perf_counter() - t
    small = rng.standard_normal((64, 64)).astype(np.float32)
    t_c1 = compile_time(lambda a: tnp.tanh(a) * 2 + 1, small)
    t_c2 = compile_time(tr.grad(lambda a: tnp.sum(tnp.tanh(a @ a) ** 2)), small)
    print("| benchmark | jit | numpy | speed-up |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"compile time (trace + passes + LLVM -O3 + JIT): elementwise {t_c1 * 1e3:.0f} ms, "
          f"grad of tanh(a@a)**2 {t_c2 * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
