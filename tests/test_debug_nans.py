"""NaN hunting: find_first_nan, the debug_nans switch (eager and jit), adjoint-graph reports."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tracer as tr
import tracer.numpy as tnp
from tracer import core
from tracer.debug import NaNError, check_outputs, config, find_first_nan

HERE = os.path.basename(__file__)


@pytest.fixture
def debug_nans():
    before = config.debug_nans
    config.update("debug_nans", True)
    try:
        yield
    finally:
        config.update("debug_nans", before)


@pytest.fixture
def no_debug_nans():
    before = config.debug_nans
    config.update("debug_nans", False)
    try:
        yield
    finally:
        config.update("debug_nans", before)


def line_of(fn, text):
    src, start = inspect.getsourcelines(fn)
    return start + next(i for i, ln in enumerate(src) if text in ln)


def forward_loss(x):
    y = tnp.exp(x) - 2.0
    z = tnp.log(y)  # NaN where exp(x) < 2
    return tnp.sum(z * z)


def safe_sqrt_loss(x):
    r = tnp.sqrt(x)  # the backward pass of this line makes 0 * inf = NaN at x = 0
    return tnp.sum(tnp.where(x > 0, r, 0.0))


def test_forward_equation_is_named(no_debug_nans):
    g = tr.make_ir(forward_loss)(np.zeros(3, np.float32))
    x = np.array([1.0, 0.1, 2.0], np.float32)
    assert np.isnan(core.interpret(g, [x])[0])  # the oracle: the graph really gives NaN
    r = find_first_nan(g, [x])
    assert r.eqn.prim.name == "log" and not r.in_adjoint
    assert r.source.lineno == line_of(forward_loss, "tnp.log")
    assert r.operand_types == ["f32[3]"] and "= log " in r.line
    msg = r.message()
    assert "primitive `log`" in msg and f"{HERE.split('.')[0]}" in msg and str(r.source.lineno) in msg


def test_adjoint_equation_is_named_as_vjp_of_forward_line(no_debug_nans):
    g = tr.make_ir(tr.grad(safe_sqrt_loss))(np.zeros(3, np.float32))
    x = np.array([1.0, 0.0, 4.0], np.float32)
    assert not np.isnan(safe_sqrt_loss(x))  # the forward value is fine...
    assert np.isnan(core.interpret(g, [x])[0]).any()  # ...the gradient is not
    r = find_first_nan(g, [x])
    assert r.in_adjoint and r.source.lineno == line_of(safe_sqrt_loss, "tnp.sqrt")
    assert "backward (adjoint) graph" in r.message() and "VJP of `sqrt`" in r.message()


def test_clean_graph_and_nan_inputs():
    g = tr.make_ir(forward_loss)(np.zeros(3, np.float32))
    assert find_first_nan(g, [np.array([1.0, 2.0, 3.0], np.float32)]) is None
    r = find_first_nan(g, [np.array([np.nan, 2.0, 3.0], np.float32)])
    assert r.eqn is None and "input 0" in r.message()


def test_check_outputs_raises_floating_point_error(no_debug_nans):
    g = tr.make_ir(forward_loss)(np.zeros(2, np.float32))
    x = np.array([0.0, 3.0], np.float32)
    outs = core.interpret(g, [x])
    with pytest.raises(FloatingPointError, match=r"(?s)returned NaN.*primitive `log`") as e:
        check_outputs(g, [x], outs)
    assert isinstance(e.value, NaNError) and e.value.report.eqn.prim.name == "log"
    check_outputs(g, [x], [np.float32(1.0)])  # no NaN: no error
    with pytest.raises(NaNError, match="back-end bug"):  # the interpreter disagrees
        check_outputs(g, [np.array([3.0, 3.0], np.float32)], [np.float32(np.nan)])


@given(st.integers(0, 5), st.integers(6, 9))
def test_first_of_several_nans_is_reported(pos, n):
    """A chain of n safe ops with a NaN-making log at position pos (and a second NaN source later)."""
    def f(x):
        for i in range(n):
            if i == pos:
                x = tnp.log(-tnp.abs(x) - 1.0)
            elif i == n - 1:
                x = tnp.sqrt(x - 100.0)
            else:
                x = tnp.tanh(x) * 0.5
        return x
    g = tr.make_ir(f)(np.zeros(2, np.float32))
    r = find_first_nan(g, [np.array([0.3, -0.7], np.float32)])
    assert r.eqn.prim.name == "log"
    assert r.index == next(i for i, e in enumerate(g.eqns) if e.prim.name == "log")


def test_eager_operations_raise_when_on(debug_nans):
    x = np.array([-1.0, 1.0], np.float32)
    with pytest.raises(NaNError, match=rf"`log` produced NaN from operands f32\[2\].*{HERE}:\d+"):
        tnp.log(x)
    # NaN that was already there is not news
    assert np.isnan(tnp.add(np.array([np.nan], np.float32), 1.0)).all()
    # inf - inf
    with pytest.raises(FloatingPointError):
        tnp.subtract(np.array([np.inf]), np.array([np.inf]))


def test_eager_off_is_silent_and_costs_nothing():
    before = config.debug_nans  # (TRACER_DEBUG_NANS may be set for the whole run)
    config.update("debug_nans", False)
    try:
        assert core.eval_concrete is tr.debug._RAW_EVAL
        assert np.isnan(tnp.log(np.array([-1.0], np.float32))).all()
    finally:
        config.update("debug_nans", before)


def test_trace_time_constant_folding_is_checked(debug_nans):
    def f(x):
        return x + tnp.log(np.float32(-1.0))  # folded while tracing
    with pytest.raises(NaNError, match="log"):
        tr.make_ir(f)(np.zeros(2, np.float32))


def test_config_errors():
    with pytest.raises(KeyError, match="debug_nans"):
        config.update("debug_infs", True)
    config.update("jax_debug_nans", False)  # JAX's spelling is accepted
    assert "debug_nans=False" in repr(config)


def test_environment_variable():
    code = ("import numpy as np, tracer as tr, tracer.numpy as tnp\n"
            "assert tr.config.debug_nans\n"
            "try:\n    tnp.sqrt(np.array([-4.0]))\nexcept FloatingPointError as e:\n    print('caught', e)\n")
    env = dict(os.environ, TRACER_DEBUG_NANS="1",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(tr.__file__))))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "caught debug_nans: `sqrt` produced NaN" in out.stdout


def _jit():
    if not hasattr(tr, "jit"):
        pytest.skip("tr.jit not in this checkout yet")
    return tr.jit


def test_jit_forward_nan(debug_nans):
    jit = _jit()
    f = jit(forward_loss)
    with pytest.raises(NaNError, match=r"(?s)primitive `log`.*" + HERE.split(".")[0]) as e:
        f(np.array([1.0, 0.1], np.float32))
    assert e.value.report.source.lineno == line_of(forward_loss, "tnp.log")


def test_jit_grad_nan_in_adjoint(debug_nans):
    jit = _jit()
    gf = jit(tr.grad(safe_sqrt_loss))
    with pytest.raises(NaNError, match=r"VJP of `sqrt`") as e:
        gf(np.array([1.0, 0.0], np.float32))
    assert e.value.report.source.lineno == line_of(safe_sqrt_loss, "tnp.sqrt")


def test_jit_without_switch_returns_nan(no_debug_nans):
    jit = _jit()
    out = jit(tr.grad(safe_sqrt_loss))(np.array([1.0, 0.0], np.float32))
    assert np.isnan(out[1])


def test_jit_with_python_scalar_argument(debug_nans):
    jit = _jit()

    def f(x, s):
        return tnp.log(x - s)
    with pytest.raises(NaNError, match="primitive `log`"):
        jit(f)(np.array([1.0, 2.0], np.float32), 1.5)


def test_nan_constants_are_reported_as_such():
    def f(x):
        y = tnp.where(x > 0, x, np.nan)  # a NaN on purpose
        return y * 2.0
    g = tr.make_ir(f)(np.zeros(3, np.float32))
    r = find_first_nan(g, [np.array([1.0, -1.0, 2.0], np.float32)])
    assert r.eqn.prim.name == "select" and r.nan_constants
    assert "is a constant holding NaN" in r.message()
