"""Fit y = sin(x) with a cubic polynomial by gradient descent: PyTorch's classic
"autograd" warm-up example, with the gradients from ``tr.grad``.

    python examples/polynomial.py            # the step function runs under tr.jit
    python examples/polynomial.py --no-jit   # eager: every step traces and interprets
    python examples/polynomial.py --ir       # print the adjoint graph of the loss
    python examples/polynomial.py --whole-loop  # all steps as ONE compiled call
                                                # (tr.fori_loop under tr.jit), timed
                                                # against the step-by-step loop

x = linspace(-pi, pi, 2000) in float32, random a, b, c, d (seeded), learning rate
1e-6, 2000 steps; prints ``t loss`` every 100 steps and the fitted polynomial.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tracer as tr  # noqa: E402
import tracer.numpy as tnp  # noqa: E402

LEARNING_RATE = 1e-6
STEPS = 2000


def make_data() -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(-math.pi, math.pi, 2000, dtype=np.float32)
    return x, np.sin(x)


def init_weights(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(np.float32(v) for v in rng.standard_normal(4))


def loss_fn(w, x, y):
    """Sum of squared errors of y_pred = a + b x + c x^2 + d x^3."""
    a, b, c, d = w
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    return tnp.sum((y_pred - y) ** 2)


def make_step(lr: float = LEARNING_RATE, use_jit: bool = True) -> Callable:
    """One gradient-descent step ``(w, x, y) -> (new w, loss before the step)``; compiled
    with ``tr.jit`` when asked for and available."""
    def step(w, x, y):
        loss, g = tr.value_and_grad(loss_fn)(w, x, y)
        return tuple(wi - lr * gi for wi, gi in zip(w, g)), loss
    if use_jit and hasattr(tr, "jit"):
        return tr.jit(step)
    return step


def fit(steps: int = STEPS, lr: float = LEARNING_RATE, seed: int = 0, use_jit: bool = True,
        log: Callable[[str], None] | None = print) -> tuple[np.ndarray, ...]:
    x, y = make_data()
    w = init_weights(seed)
    step = make_step(lr, use_jit)
    for t in range(steps):
        w, loss = step(w, x, y)
        if log is not None and t % 100 == 99:
            log(f"{t} {float(loss)}")
    return w


def make_train(steps: int = STEPS, lr: float = LEARNING_RATE) -> Callable:
    """The whole training loop as one function ``(w, x, y) -> w``: ``tr.fori_loop`` with
    static bounds (a ``scan``), so under ``tr.jit`` it is one native loop."""
    def train(w, x, y):
        def body(i, w):
            g = tr.grad(loss_fn)(w, x, y)
            return tuple(wi - lr * gi for wi, gi in zip(w, g))
        return tr.fori_loop(0, steps, body, w)
    return tr.jit(train)


def compare_whole_loop(steps: int = STEPS, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Run the step-by-step loop and the one-call loop; print both timings."""
    import time
    x, y = make_data()
    t0 = time.perf_counter()
    w_steps = fit(steps, seed=seed, log=None)
    t1 = time.perf_counter()
    train = make_train(steps)
    w_whole = train(init_weights(seed), x, y)  # traces and compiles, then runs
    t2 = time.perf_counter()
    w_whole = train(init_weights(seed), x, y)
    t3 = time.perf_counter()
    diff = max(abs(float(a) - float(b)) for a, b in zip(w_steps, w_whole))
    print(f"step-by-step (jit per step, Python loop): {t1 - t0:.3f} s")
    print(f"whole loop, one compiled call: {t3 - t2:.4f} s (first call with compilation "
          f"{t2 - t1:.3f} s); max |difference| of the weights {diff:.2e}")
    print(f"final loss {float(loss_fn(w_whole, x, y))}")
    return w_whole


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-jit", action="store_true", help="run the step eagerly")
    ap.add_argument("--ir", action="store_true", help="print the adjoint graph and exit")
    ap.add_argument("--whole-loop", action="store_true",
                    help="also run all steps as one compiled call and print both timings")
    args = ap.parse_args(argv)
    if args.whole_loop:
        a, b, c, d = (float(v) for v in compare_whole_loop(args.steps, args.seed))
        print(f"Result: y = {a} + {b} x + {c} x^2 + {d} x^3")
        return
    if args.ir:
        x, y = make_data()
        print(tr.make_ir(tr.grad(loss_fn))(init_weights(args.seed), x, y))
        return
    a, b, c, d = (float(v) for v in fit(args.steps, seed=args.seed, use_jit=not args.no_jit))
    print(f"Result: y = {a} + {b} x + {c} x^2 + {d} x^3")


if __name__ == "__main__":
    sys.exit(main())
