"""First call of the MLP training step in a fresh process, with a cold and with a warm
persistent compile cache (TRACER_CACHE_DIR).

    python benchmarks/first_call.py [--reps 3]

Each row runs a new Python process: "cold" with an empty cache folder (trace, graph
passes, lowering, LLVM -O3 and code generation, then the object is stored), "warm"
with the folder the cold run filled (trace, passes and lowering still run: they
produce the key; LLVM is skipped). The process reports the time of its first call
(compile + run) and of a second call (run only); the table also shows the whole
process's wall time (Python start and imports included). Medians over --reps.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, time
t_start = time.perf_counter()
import numpy as np
import tracer as tr
import tracer.numpy as tnp
t_import = time.perf_counter()

# the MLP of compare.py's mlp_train_b128 row (784-512-512-10, batch 128, SGD step);
# compare.py itself is not imported: it loads JAX and PyTorch
rng = np.random.default_rng(0)
sizes = [784, 512, 512, 10]
params = [(rng.standard_normal((m, n)).astype(np.float32) * np.float32(np.sqrt(2.0 / m)),
           np.zeros(n, np.float32)) for m, n in zip(sizes[:-1], sizes[1:])]
x = rng.standard_normal((128, 784)).astype(np.float32)
labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 128)]

def loss(params, x, labels):
    for w, b in params[:-1]:
        x = tr.nn.relu(x @ w + b)
    w, b = params[-1]
    z = tr.nn.log_softmax(x @ w + b, axis=-1)
    return -tnp.mean(tnp.sum(z * labels, axis=1))

grad = tr.grad(loss)

def sgd(params, x, labels):
    g = grad(params, x, labels)
    return [(w - 1e-3 * gw, b - 1e-3 * gb) for (w, b), (gw, gb) in zip(params, g)]

step = tr.jit(sgd)
t0 = time.perf_counter()
step(params, x, labels)
t1 = time.perf_counter()
step(params, x, labels)
t2 = time.perf_counter()
ex = next(iter(step._cache.values())).executable
print(json.dumps({"imports_s": t_import - t_start, "first_call_s": t1 - t0,
                  "second_call_s": t2 - t1, "from_disk": ex.from_disk}))
"""


def run(cache: str) -> dict:
    env = {**os.environ, "TRACER_CACHE_DIR": cache, "PYTHONPATH": ROOT}
    env.pop("TRACER_NO_DISK_CACHE", None)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                       text=True, timeout=600, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(r.stderr[-3000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    rows = {"cold": [], "warm": []}
    for _ in range(args.reps):
        cache = tempfile.mkdtemp(prefix="tracer-cache-")
        try:
            rows["cold"].append(run(cache))
            rows["warm"].append(run(cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    for name, rs in rows.items():
        want = name == "warm"
        assert all(r["from_disk"] == want for r in rs), (name, rs)
    print("| cache | first call (ms) | second call (ms) | imports (ms) | whole process (ms) |")
    print("|---|---|---|---|---|")
    med = {}
    for name, rs in rows.items():
        m = {k: statistics.median(r[k] for r in rs) * 1e3 for k in
             ("first_call_s", "second_call_s", "imports_s", "process_s")}
        med[name] = m
        print(f"| {name} | {m['first_call_s']:.0f} | {m['second_call_s']:.2f} | "
              f"{m['imports_s']:.0f} | {m['process_s']:.0f} |")
    print(json.dumps(med))


if __name__ == "__main__":
    main()
