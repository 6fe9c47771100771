"""Side-by-side benchmarks: this library's jit against numpy and, when installed,
JAX and PyTorch, in one process, single-threaded everywhere.

    python benchmarks/compare.py [--quick] [--json out.json] [--only NAME ...]

Prints a markdown table of medians (ms) and ratios (other / tracer: > 1 means
tracer is faster), plus JSON. Thread counts are pinned to 1 for every system
before any of them is imported, so the comparison is per core.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Pin the whole process (every thread of every library) to one core: the flags above
# are advisory for some thread pools (XLA's Eigen pool ignored them in our runs).
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tracer as tr  # noqa: E402
import tracer.numpy as tnp  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", False)
except Exception:  # optional
    jax = None
try:
    import torch
    torch.set_num_threads(1)
except Exception:  # optional
    torch = None


def timeit(fn, *, min_time=0.2, max_reps=200, warmup=2):
    """Median seconds per call of ``fn()`` (results are forced to host memory by fn)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (time.perf_counter() - start < min_time or len(times) < 5):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timeit_batched(fn, inner: int, **kw):
    """For very cheap calls: time ``inner`` calls per sample."""
    def many():
        for _ in range(inner):
            fn()
    return timeit(many, **kw) / inner


# ---------------------------------------------------------------- workloads

def memory_bandwidth():
    """Read+write bandwidth of a large copy: the ceiling for bandwidth-bound rows."""
    n = 1 << 26  # 256 MiB of float32
    a = np.ones(n, np.float32)
    b = np.empty_like(a)
    t = timeit(lambda: np.copyto(b, a), min_time=0.5, max_reps=20)
    return 2 * a.nbytes / t / 1e9  # GB/s, read + write


def w_dispatch():
    f = lambda x: x + 1.0  # noqa: E731
    x = np.ones(4, np.float32)
    out = {"tracer": (tr.jit(f), (x,))}
    if jax:
        xj = jnp.asarray(x)
        jf = jax.jit(f)
        out["jax"] = (lambda a: jf(a).block_until_ready(), (xj,))
    if torch:
        xt = torch.from_numpy(x)
        out["torch"] = (f, (xt,))
    out["numpy"] = (f, (x,))
    return {k: timeit_batched(lambda fn=fn, a=a: fn(*a), 200) for k, (fn, a) in out.items()}


def w_dispatch_pytree():
    """A call with 6 arrays in a pytree (a list of (w, b) tuples and a dict)."""
    def f(params, d):
        return [(w * d["s"], b + d["t"]) for w, b in params]
    params = [(np.ones((4, 4), np.float32), np.ones(4, np.float32)) for _ in range(2)]
    d = {"s": np.ones((4, 4), np.float32), "t": np.ones(4, np.float32)}
    tf = tr.jit(f)
    out = {"tracer": lambda: tf(params, d)}
    if jax:
        jf = jax.jit(f)
        jp, jd = jax.tree_util.tree_map(jnp.asarray, (params, d))
        out["jax"] = lambda: jax.block_until_ready(jf(jp, jd))
    return {k: timeit_batched(fn, 50) for k, fn in out.items()}


def _elementwise(n):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)

    def f(m):
        return lambda x: m.tanh(x) * m.exp(-x * x) + 0.5 * x

    res = {"numpy": timeit(lambda: f(np)(x)), "tracer": _time_tr(f(tnp), x)}
    if jax:
        jf = jax.jit(f(jnp))
        xj = jnp.asarray(x)
        res["jax"] = timeit(lambda: jf(xj).block_until_ready())
    if torch:
        xt = torch.from_numpy(x)
        res["torch"] = timeit(lambda: f(torch)(xt))
    return res


def _time_tr(fn, *args):
    j = tr.jit(fn)
    return timeit(lambda: j(*args))


def w_elementwise_1e6():
    return _elementwise(10**6)


def w_elementwise_1e7():
    return _elementwise(10**7)


def w_axpy_1e7():
    """Bandwidth-bound elementwise: 2 reads + 1 write of 1e7 float32 (120 MB)."""
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal(10**7).astype(np.float32) for _ in range(2))
    f = lambda x, y: 2.0 * x + y  # noqa: E731
    res = {"numpy": timeit(lambda: f(x, y)), "tracer": _time_tr(f, x, y)}
    if jax:
        jf = jax.jit(f)
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        res["jax"] = timeit(lambda: jf(xj, yj).block_until_ready())
    if torch:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        res["torch"] = timeit(lambda: f(xt, yt))
    return res


def w_reduction_1e7():
    x = np.random.default_rng(0).standard_normal(10**7).astype(np.float32)
    res = {"numpy": timeit(lambda: np.dot(x, x)), "tracer": _time_tr(lambda x: tnp.sum(x * x), x)}
    if jax:
        jf = jax.jit(lambda x: jnp.sum(x * x))
        xj = jnp.asarray(x)
        res["jax"] = timeit(lambda: jf(xj).block_until_ready())
    if torch:
        xt = torch.from_numpy(x)
        res["torch"] = timeit(lambda: torch.sum(xt * xt))
    return res


def _matmul(n):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    res = {"numpy": timeit(lambda: a @ b), "tracer": _time_tr(lambda a, b: a @ b, a, b)}
    if jax:
        jf = jax.jit(lambda a, b: a @ b)
        aj, bj = jnp.asarray(a), jnp.asarray(b)
        res["jax"] = timeit(lambda: jf(aj, bj).block_until_ready())
    if torch:
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        res["torch"] = timeit(lambda: at @ bt)
    return res


def w_matmul_256():
    return _matmul(256)


def w_matmul_512():
    return _matmul(512)


def w_matmul_1024():
    return _matmul(1024)


# -- the seed polynomial fit

def _poly_data():
    x = np.linspace(-math.pi, math.pi, 2000, dtype=np.float32)
    return x, np.sin(x), np.random.default_rng(0).standard_normal(4).astype(np.float32)


def _poly_loss(m, x, y):
    def loss(w):
        y_pred = w[0] + w[1] * x + w[2] * x ** 2 + w[3] * x ** 3
        return m.sum((y_pred - y) ** 2)
    return loss


def w_poly_fit_steps():
    """2000 gradient steps, one compiled call per step."""
    x, y, w0 = _poly_data()
    loss = _poly_loss(tnp, x, y)
    step = tr.jit(lambda w: w - 1e-6 * tr.grad(loss)(w))

    def run_tr():
        w = w0
        for _ in range(2000):
            w = step(w)
        return w
    res = {"tracer": timeit(run_tr, min_time=0.5, max_reps=5)}
    if jax:
        jl = _poly_loss(jnp, jnp.asarray(x), jnp.asarray(y))
        jstep = jax.jit(lambda w: w - 1e-6 * jax.grad(jl)(w))

        def run_jax():
            w = jnp.asarray(w0)
            for _ in range(2000):
                w = jstep(w)
            return w.block_until_ready()
        res["jax"] = timeit(run_jax, min_time=0.5, max_reps=5)
    if torch:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def run_torch():
            w = torch.tensor(w0, requires_grad=True)
            for _ in range(2000):
                l = ((w[0] + w[1] * xt + w[2] * xt ** 2 + w[3] * xt ** 3 - yt) ** 2).sum()
                l.backward()
                with torch.no_grad():
                    w -= 1e-6 * w.grad
                    w.grad = None
            return w
        res["torch"] = timeit(run_torch, min_time=0.5, max_reps=5)
    return res


def w_poly_fit_whole_loop():
    """The whole 2000-step loop as one compiled call (fori_loop)."""
    x, y, w0 = _poly_data()
    loss = _poly_loss(tnp, x, y)
    fit = tr.jit(lambda w: tr.fori_loop(0, 2000, lambda i, w: w - 1e-6 * tr.grad(loss)(w), w))
    res = {"tracer": timeit(lambda: fit(w0), min_time=0.5, max_reps=20)}
    if jax:
        jl = _poly_loss(jnp, jnp.asarray(x), jnp.asarray(y))
        jfit = jax.jit(lambda w: jax.lax.fori_loop(0, 2000, lambda i, w: w - 1e-6 * jax.grad(jl)(w), w))
        w0j = jnp.asarray(w0)
        res["jax"] = timeit(lambda: jfit(w0j).block_until_ready(), min_time=0.5, max_reps=20)
    return res


# -- the MLP

def _mlp_params(rng, dtype=np.float32):
    sizes = [784, 512, 512, 10]
    return [(rng.standard_normal((m, n)).astype(dtype) * np.sqrt(2.0 / m).astype(dtype),
             np.zeros(n, dtype)) for m, n in zip(sizes[:-1], sizes[1:])]


def _mlp(m, relu, log_softmax):
    def predict(params, x):
        for w, b in params[:-1]:
            x = relu(x @ w + b)
        w, b = params[-1]
        return x @ w + b

    def loss(params, x, labels):
        return -m.mean(m.sum(log_softmax(predict(params, x)) * labels, axis=1))
    return predict, loss


def _mlp_data(batch):
    rng = np.random.default_rng(0)
    params = _mlp_params(rng)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return params, x, labels


def _tr_mlp():
    return _mlp(tnp, tr.nn.relu, lambda z: tr.nn.log_softmax(z, axis=-1))


def _sgd(grad_fn, lr=1e-3):
    def step(params, x, labels):
        g = grad_fn(params, x, labels)
        return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, g)]
    return step


def w_mlp_train_b128():
    params, x, labels = _mlp_data(128)
    _, loss = _tr_mlp()
    step = tr.jit(_sgd(tr.grad(loss)))
    res = {"tracer": timeit(lambda: step(params, x, labels))}
    if jax:
        _, jloss = _mlp(jnp, jax.nn.relu, lambda z: jax.nn.log_softmax(z, axis=-1))
        jstep = jax.jit(_sgd(jax.grad(jloss)))
        jp = jax.tree_util.tree_map(jnp.asarray, params)
        xj, lj = jnp.asarray(x), jnp.asarray(labels)
        res["jax"] = timeit(lambda: jax.block_until_ready(jstep(jp, xj, lj)))
    if torch:
        tp = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in params]
        xt, lt = torch.from_numpy(x), torch.from_numpy(labels)
        _, tloss = _mlp(torch, torch.relu, lambda z: torch.log_softmax(z, dim=-1))

        def tstep():
            l = tloss(tp, xt, lt)
            l.backward()
            with torch.no_grad():
                for w, b in tp:
                    w -= 1e-3 * w.grad
                    b -= 1e-3 * b.grad
                    w.grad = b.grad = None
        res["torch"] = timeit(tstep)
    return res


def _mlp_infer(batch):
    params, x, _ = _mlp_data(batch)
    predict, _ = _tr_mlp()
    npredict, _ = _mlp(np, lambda z: np.maximum(z, 0), None)
    res = {"numpy": timeit(lambda: npredict(params, x)),
           "tracer": timeit(lambda f=tr.jit(predict): f(params, x))}
    if jax:
        jpredict, _ = _mlp(jnp, jax.nn.relu, None)
        jf = jax.jit(jpredict)
        jp = jax.tree_util.tree_map(jnp.asarray, params)
        xj = jnp.asarray(x)
        res["jax"] = timeit(lambda: jf(jp, xj).block_until_ready())
    if torch:
        tpredict, _ = _mlp(torch, torch.relu, None)
        tp = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in params]
        xt = torch.from_numpy(x)
        with torch.no_grad():
            res["torch"] = timeit(lambda: tpredict(tp, xt))
    return res


def w_mlp_infer_b1():
    return _mlp_infer(1)


def w_mlp_infer_b128():
    return _mlp_infer(128)


# -- compile time

def _compile_time(make_fn, args, jax_fn=None, reps=3):
    """Cold compile time: the on-disk object cache is bypassed for these rows, and so is
    the in-memory one (loaded code shared per LLVM module, which a previous repetition's
    not yet collected executable would otherwise serve). The garbage collection that
    ensures this runs outside the timed region (with JAX and PyTorch loaded it takes
    ~0.1 s)."""
    from codegen import executable as _ex

    def tr_once():
        os.environ["TRACER_NO_DISK_CACHE"] = "1"
        try:
            tr.jit(make_fn()).lower(*args).compile()
        finally:
            del os.environ["TRACER_NO_DISK_CACHE"]

    def median_time(fn):
        times = []
        for _ in range(reps):
            gc.collect()
            _ex._JIT_CACHE.clear()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    res = {"tracer": median_time(tr_once)}
    if jax and jax_fn is not None:
        res["jax"] = median_time(lambda: jax.jit(jax_fn()).lower(*args).compile())
    return res


def w_compile_mlp_train():
    params, x, labels = _mlp_data(128)
    _, loss = _tr_mlp()
    jf = None
    if jax:
        _, jloss = _mlp(jnp, jax.nn.relu, lambda z: jax.nn.log_softmax(z, axis=-1))
        jf = lambda: _sgd(jax.grad(jloss))  # noqa: E731
    return _compile_time(lambda: _sgd(tr.grad(loss)), (params, x, labels), jf)


def _chain(m, n_ops):
    def f(x):
        for i in range(n_ops):
            x = m.sin(x) * 1.0001 + (0.001 * i)
        return m.sum(x)
    return f


def _w_compile_chain(n_ops):
    x = np.ones(1000, np.float32)
    jf = (lambda: jax.grad(_chain(jnp, n_ops))) if jax else None
    return _compile_time(lambda: tr.grad(_chain(tnp, n_ops)), (x,), jf)


def w_compile_grad_chain_10():
    return _w_compile_chain(10)


def w_compile_grad_chain_100():
    return _w_compile_chain(100)


def w_compile_grad_chain_1000():
    return _w_compile_chain(1000)


WORKLOADS = {name[2:]: fn for name, fn in globals().items() if name.startswith("w_")}
QUICK = ["dispatch", "elementwise_1e6", "reduction_1e7", "matmul_256", "mlp_infer_b1"]


def machine() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "threads": 1}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except Exception:
        pass
    if jax:
        info["jax"] = jax.__version__
    if torch:
        info["torch"] = torch.__version__
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few fast workloads only")
    ap.add_argument("--only", nargs="*", help="workload names")
    ap.add_argument("--json", help="write results to this file")
    args = ap.parse_args(argv)
    names = args.only or (QUICK if args.quick else list(WORKLOADS))
    bw = memory_bandwidth()
    results = {}
    for name in names:
        try:
            results[name] = WORKLOADS[name]()
        except Exception as e:  # report, keep going
            results[name] = {"error": f"{type(e).__name__}: {e}"[:200]}
        print(f"  done {name}", file=sys.stderr, flush=True)
    systems = ["tracer", "numpy", "jax", "torch"]
    print(f"\nMachine: {machine()}\nMeasured copy bandwidth: {bw:.1f} GB/s (read+write), 1 thread\n")
    print("| workload | " + " | ".join(f"{s} ms" for s in systems) + " | numpy/tracer | jax/tracer | torch/tracer |")
    print("|---" * (len(systems) + 4) + "|")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | error: {r['error']} |")
            continue
        cells = [f"{r[s] * 1e3:.4g}" if s in r else "-" for s in systems]
        ratios = [f"{r[s] / r['tracer']:.2f}" if s in r and "tracer" in r else "-" for s in systems[1:]]
        print(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    out = {"machine": machine(), "bandwidth_GBps": bw, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
