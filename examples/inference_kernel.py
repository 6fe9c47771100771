"""Train a small MLP on scikit-learn's bundled digits with jit(grad), export its forward
pass as a shared library with a C header, and call it from a C program.

    pip install scikit-learn          # the optional extra: pip install tracer[examples]
    python examples/inference_kernel.py [--out build/digits] [--steps 300]

The digits data (1797 8x8 images) ships inside scikit-learn: nothing is downloaded.
Needs a C compiler (cc) for the export and the C program.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tracer as tr  # noqa: E402
import tracer.numpy as tnp  # noqa: E402


def forward(params, x):
    """Logits of a 64-32-10 MLP."""
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def loss(params, x, labels_onehot):
    logp = tr.nn.log_softmax(forward(params, x), axis=-1)
    return -tnp.mean(tnp.sum(logp * labels_onehot, axis=-1))


def init(rng, sizes=(64, 32, 10)):
    p = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        p[f"w{i}"] = (rng.standard_normal((m, n)) / np.sqrt(m)).astype(np.float32)
        p[f"b{i}"] = np.zeros(n, np.float32)
    return p


def train(x, y, steps: int, lr: float = 0.5, seed: int = 0):
    params = init(np.random.default_rng(seed))
    onehot = np.eye(10, dtype=np.float32)[y]
    step_grad = tr.jit(tr.value_and_grad(loss))
    for step in range(steps):
        value, g = step_grad(params, x, onehot)
        params = {k: params[k] - lr * g[k] for k in params}
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step:4d}  loss {float(value):.4f}")
    return params


C_MAIN = r"""
/* Classify the test digits with the exported kernel; no Python involved. */
#include <stdio.h>
#include <stdlib.h>
#include "digits_forward.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s images.f32 count\n", argv[0]); return 2; }
    int n = atoi(argv[2]);
    float *images = malloc(sizeof(float) * 64 * n);
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(images, sizeof(float) * 64, n, f) != (size_t)n) { fprintf(stderr, "bad input\n"); return 2; }
    fclose(f);
    for (int i = 0; i < n; i++) {
        float logits[DIGITS_FORWARD_LOGITS_SIZE];
        if (digits_forward(images + 64 * i, logits) != 0) return 1;
        int best = 0;
        for (int k = 1; k < 10; k++) if (logits[k] > logits[best]) best = k;
        printf("%d %.9g\n", best, logits[best]);
    }
    free(images);
    return 0;
}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join("build", "digits"), help="folder for the library and C program")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install scikit-learn (or tracer[examples])")

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    perm = np.random.default_rng(0).permutation(len(x))
    x, y = x[perm], y[perm]
    n_train = 1440
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]

    print(f"training a 64-32-10 MLP on {n_train} digits with jit(value_and_grad):")
    t0 = time.perf_counter()
    params = train(xtr, ytr, args.steps)
    print(f"  trained in {time.perf_counter() - t0:.2f} s")
    py_logits = np.asarray(tr.jit(forward)(params, xte))
    py_pred = py_logits.argmax(axis=1)
    print(f"test accuracy (Python, jit): {np.mean(py_pred == yte):.4f}")

    os.makedirs(args.out, exist_ok=True)
    lib = os.path.join(args.out, "libdigits.so")

    def digits_forward(params, image):  # one image in, ten logits out
        return forward(params, image[None, :])[0]
    digits_forward.__name__ = "digits_forward"
    ex = tr.export(digits_forward, tr.ShapedArray((64,), np.float32), path=lib,
                   header=os.path.join(args.out, "digits_forward.h"), name="digits_forward",
                   params=params, result_names=["logits"])
    with open(ex.header) as f:
        text = f.read()
    print(f"exported {ex.library} and {ex.header}:")
    print("  " + [ln for ln in text.splitlines() if ln.startswith("int ")][0])

    src = os.path.join(args.out, "classify.c")
    with open(src, "w") as f:
        f.write(C_MAIN)
    exe = os.path.join(args.out, "classify")
    subprocess.run(["cc", "-O2", "-o", exe, src, f"-I{args.out}", f"-L{args.out}", "-ldigits",
                    f"-Wl,-rpath,{os.path.abspath(args.out)}"], check=True)
    images = os.path.join(args.out, "test_images.f32")
    np.ascontiguousarray(xte, np.float32).tofile(images)
    t0 = time.perf_counter()
    out = subprocess.run([exe, images, str(len(xte))], check=True, capture_output=True, text=True).stdout
    c_time = time.perf_counter() - t0
    rows = [ln.split() for ln in out.splitlines()]
    c_pred = np.array([int(r[0]) for r in rows])
    c_best = np.array([float(r[1]) for r in rows])
    print(f"C program ({exe}) classified {len(xte)} digits in {c_time * 1e3:.1f} ms (process included)")
    print(f"test accuracy (C, exported kernel): {np.mean(c_pred == yte):.4f}")
    print(f"predictions identical to Python: {bool(np.all(c_pred == py_pred))}; "
          f"max |logit difference| {np.max(np.abs(c_best - py_logits.max(axis=1))):.2e}")


if __name__ == "__main__":
    main()
