"""TRACER_PROFILE=1: cycle counters per top-level kernel of compiled code."""
import numpy as np

import tracer as tr


def test_profile_counts_kernels(monkeypatch):
    monkeypatch.setenv("TRACER_PROFILE", "1")
    a = np.ones((64, 64), np.float32)
    f = tr.jit(lambda a: (tr.numpy.tanh(a @ a) * 2.0).sum(axis=0)).lower(a).compile()
    out = f(a)
    np.testing.assert_allclose(out, np.tanh(a @ a).sum(axis=0) * 2.0, rtol=1e-5)
    ex = f.executable
    labels, counts = ex._profile
    assert any(l.startswith("dot_general") for l in labels)
    assert any(l.startswith("reduce_sum") for l in labels)
    before = counts[:len(labels)].copy()
    f(a)
    assert (counts[:len(labels)] > before).all()  # every kernel ran again and was counted
    report = ex.profile_report()
    assert "dot_general -> [64, 64]" in report and "Mcycles" in report


def test_no_profile_by_default(monkeypatch):
    monkeypatch.delenv("TRACER_PROFILE", raising=False)
    ex = tr.jit(lambda a: a @ a + 1.0).lower(np.ones((4, 4), np.float32)).compile().executable
    assert "not compiled with TRACER_PROFILE" in ex.profile_report()
    assert "readcyclecounter" not in ex.llvm_ir
