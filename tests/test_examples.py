"""The runnable examples reproduce their reference computations."""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import tracer as tr

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


poly = _load("polynomial")


def numpy_fit(steps, lr=poly.LEARNING_RATE, seed=0):
    """The same fit with the hand-derived gradients, in float32 numpy (PyTorch's
    numpy version of the example)."""
    x, y = poly.make_data()
    a, b, c, d = poly.init_weights(seed)
    lr = np.float32(lr)
    losses = []
    for _ in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        losses.append(np.sum((y_pred - y) ** 2))
        grad_y_pred = np.float32(2.0) * (y_pred - y)
        grads = (grad_y_pred.sum(), (grad_y_pred * x).sum(), (grad_y_pred * x ** 2).sum(),
                 (grad_y_pred * x ** 3).sum())
        a, b, c, d = (w - lr * g for w, g in zip((a, b, c, d), grads))
        assert a.dtype == np.float32
    return (a, b, c, d), losses


def _check(w, ref):
    for got, want in zip(w, ref):
        assert np.asarray(got).dtype == np.float32
        np.testing.assert_allclose(float(got), float(want), rtol=1e-4, atol=1e-4 * max(abs(float(r)) for r in ref))


def test_polynomial_eager_matches_numpy_gradients():
    steps = 150
    logged = []
    w = poly.fit(steps, use_jit=False, log=logged.append)
    ref, losses = numpy_fit(steps)
    _check(w, ref)
    assert logged and logged[0].startswith("99 ")
    np.testing.assert_allclose(float(logged[0].split()[1]), losses[99], rtol=1e-4)


@pytest.mark.skipif(not hasattr(tr, "jit"), reason="tr.jit not available")
def test_polynomial_full_fit_matches_numpy_gradients(capsys):
    w = poly.fit(poly.STEPS, use_jit=True)
    ref, losses = numpy_fit(poly.STEPS)
    _check(w, ref)
    out = capsys.readouterr().out.splitlines()
    assert [l.split()[0] for l in out] == [str(t) for t in range(99, 2000, 100)]
    np.testing.assert_allclose([float(l.split()[1]) for l in out], [losses[t] for t in range(99, 2000, 100)],
                               rtol=1e-3)
    assert float(out[-1].split()[1]) < 20.0  # the cubic fits sin(x) on [-pi, pi]


def test_polynomial_main_prints_result_line(capsys):
    poly.main(["--steps", "100", "--no-jit"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("99 ")
    assert out[-1].startswith("Result: y = ") and out[-1].endswith(" x^3")
