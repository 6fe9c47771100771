"""GPU benchmark for backend="cuda": elementwise bandwidth against the device's peak,
a reduction, and matmul against cuBLAS (through PyTorch or CuPy when installed).
Each result is checked against numpy before it is reported.

    python benchmarks/bench_gpu.py [--out DIR] [--quick]

Writes bench_gpu.json and bench_gpu.md to DIR (default: the current folder).
Times are medians of repeated calls with device-resident inputs; every call ends
with a context synchronisation, so they include the launch and Python overhead.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tracer as tr  # noqa: E402
import tracer.numpy as tnp  # noqa: E402
import codegen.cuda_runtime as rt  # noqa: E402


def median_time(fn, reps: int) -> float:
    fn()  # warm up (compiles)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def peak_bandwidth(dev) -> float | None:
    """Theoretical DRAM bandwidth (GB/s) from the memory clock and bus width attributes."""
    try:
        khz = dev.driver.attribute(dev.handle, rt.ATTR_MEM_CLOCK_KHZ)
        bits = dev.driver.attribute(dev.handle, rt.ATTR_BUS_WIDTH)
        return 2 * khz * 1e3 * bits / 8 / 1e9 if khz and bits else None
    except Exception:  # noqa: BLE001 - deprecated attributes may be refused
        return None


def bench_elementwise(n, reps):
    x = np.random.default_rng(0).uniform(-1, 1, n).astype(np.float32)
    f = tr.jit(lambda v: v * 1.5 + 0.25, backend="cuda")
    dx = tr.device_put(x)
    out = f(dx)
    ok = bool(np.allclose(np.asarray(out)[:1 << 16], x[:1 << 16] * 1.5 + 0.25))
    t = median_time(lambda: f(dx), reps)
    return {"name": "elementwise y = 1.5x + 0.25 (f32)", "n": n, "seconds": t,
            "GB/s": 2 * 4 * n / t / 1e9, "correct": ok}


def bench_fused(n, reps):
    x = np.random.default_rng(1).uniform(-1, 1, n).astype(np.float32)
    f = tr.jit(lambda v: tnp.tanh(v) * tnp.exp(-v * v) + 1.0, backend="cuda")
    dx = tr.device_put(x)
    got = np.asarray(f(dx))[:1 << 16]
    ref = (np.tanh(x) * np.exp(-x * x) + 1)[:1 << 16]
    t = median_time(lambda: f(dx), reps)
    return {"name": "fused tanh(x)*exp(-x^2)+1 (f32)", "n": n, "seconds": t,
            "GB/s": 2 * 4 * n / t / 1e9, "correct": bool(np.allclose(got, ref, rtol=1e-5, atol=1e-6))}


def bench_reduction(n, reps):
    x = np.random.default_rng(2).uniform(0, 1, n).astype(np.float32)
    f = tr.jit(lambda v: tnp.sum(v), backend="cuda")
    dx = tr.device_put(x)
    ok = bool(np.isclose(float(f(dx)), x.astype(np.float64).sum(), rtol=1e-4))
    t = median_time(lambda: f(dx), reps)
    return {"name": "sum (f32)", "n": n, "seconds": t, "GB/s": 4 * n / t / 1e9, "correct": ok}


def bench_matmul(n, reps):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(n, n)).astype(np.float32), rng.normal(size=(n, n)).astype(np.float32)
    f = tr.jit(lambda x, y: x @ y, backend="cuda")
    da, db = tr.device_put(a), tr.device_put(b)
    got = np.asarray(f(da, db))
    ok = bool(np.allclose(got[:64, :64], (a[:64].astype(np.float64) @ b[:, :64]), rtol=1e-3, atol=1e-3))
    t = median_time(lambda: f(da, db), reps)
    res = {"name": f"matmul {n}x{n} (f32)", "n": n, "seconds": t, "GFLOP/s": 2 * n ** 3 / t / 1e9,
           "correct": ok}
    ref = cublas_matmul(a, b, reps)
    if ref:
        res.update(ref)
        res["fraction_of_cublas"] = ref["cublas_seconds"] and ref["cublas_seconds"] / t
    return res


def cublas_matmul(a, b, reps):
    """The same matmul through cuBLAS via PyTorch (TF32 off) or CuPy, if installed."""
    try:
        import torch
        if torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = False
            ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()

            def run():
                torch.matmul(ta, tb)
                torch.cuda.synchronize()
            return {"cublas_via": f"torch {torch.__version__}", "cublas_seconds": median_time(run, reps)}
    except Exception as e:  # noqa: BLE001
        print("torch matmul unavailable:", e)
    try:
        import cupy
        ca, cb = cupy.asarray(a), cupy.asarray(b)

        def run():
            ca @ cb
            cupy.cuda.Device().synchronize()
        return {"cublas_via": f"cupy {cupy.__version__}", "cublas_seconds": median_time(run, reps)}
    except Exception as e:  # noqa: BLE001
        print("cupy matmul unavailable:", e)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    dev = rt.device(0)
    reps = 5 if args.quick else 20
    n = 1 << (22 if args.quick else 26)
    info = {"device": dev.name, "compute_capability": f"{dev.cc[0]}.{dev.cc[1]}", "ptx_arch": dev.arch,
            "peak_GB/s": peak_bandwidth(dev), "python": platform.python_version(),
            "numpy": np.__version__}
    results = []
    for fn, size in ((bench_elementwise, n), (bench_fused, n), (bench_reduction, n),
                     (bench_matmul, 1024), (bench_matmul, 512 if args.quick else 4096)):
        try:
            r = fn(size, reps)
        except Exception as e:  # noqa: BLE001 - record and go on: one failure must not hide the rest
            r = {"name": f"{fn.__name__}({size})", "error": f"{type(e).__name__}: {e}"}
        if info["peak_GB/s"] and "GB/s" in r:
            r["fraction_of_peak"] = r["GB/s"] / info["peak_GB/s"]
        print(json.dumps(r))
        results.append(r)
    with open(os.path.join(args.out, "bench_gpu.json"), "w") as f:
        json.dump({"info": info, "results": results}, f, indent=2)
    with open(os.path.join(args.out, "bench_gpu.md"), "w") as f:
        f.write(f"# GPU benchmark: {info['device']} (sm_{dev.cc[0]}{dev.cc[1]}, PTX for {dev.arch})\n\n")
        f.write(f"Theoretical DRAM bandwidth from the driver's attributes: {info['peak_GB/s']} GB/s\n\n")
        f.write("| benchmark | size | median time (ms) | rate | vs peak / cuBLAS | correct |\n|---|---|---|---|---|---|\n")
        for r in results:
            if "error" in r:
                f.write(f"| {r['name']} | | | error: {r['error'][:80]} | | |\n")
                continue
            rate = f"{r['GB/s']:.1f} GB/s" if "GB/s" in r else f"{r['GFLOP/s']:.1f} GFLOP/s"
            rel = f"{r['fraction_of_peak']:.0%} of peak" if "fraction_of_peak" in r else \
                (f"{r['fraction_of_cublas']:.0%} of cuBLAS ({r['cublas_via']})" if r.get("fraction_of_cublas") else "")
            f.write(f"| {r['name']} | {r['n']} | {r['seconds'] * 1e3:.3f} | {rate} | {rel} | {r['correct']} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
