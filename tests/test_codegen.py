"""The CPU back end's structure: fusion (no intermediate arrays for elementwise
chains, broadcasts and reductions of them), static buffer reuse, vectorised code,
the scalar table, and the import direction codegen -> tracer.ir only."""
import ast
import os

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp

import codegen.scalar as S
from codegen.cpu import LOWERINGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _executable(fn, *args):
    return tr.jit(fn).lower(*args).compile().executable


def test_elementwise_chains_and_broadcasts_fuse_into_one_loop():
    x = np.ones((64, 32), np.float32)
    row = np.linspace(0, 1, 32).astype(np.float32)
    ex = _executable(lambda a, r: tnp.tanh(a * 2.0 + r) * tnp.exp(-a) - r + 1.0, x, row)
    assert ex.scratch_bytes == 0
    np.testing.assert_allclose(ex(x, row)[0], np.tanh(x * 2 + row) * np.exp(-x) - row + 1.0, rtol=1e-6)
    # a computed operand of a broadcast is stored once (row-sized), not recomputed per element
    ex = _executable(lambda a, r: a * tnp.sqrt(r), x, row)
    assert ex.scratch_bytes == 128
    np.testing.assert_allclose(ex(x, row)[0], x * np.sqrt(row), rtol=1e-6)


def test_reductions_fuse_their_elementwise_producers():
    x = np.random.default_rng(0).standard_normal((100, 50)).astype(np.float32)
    for fn in (lambda a: tnp.sum(tnp.exp(a) * a), lambda a: tnp.max(tnp.abs(a - 1.0), axis=0),
               lambda a: tnp.sum(a * a, axis=1), lambda a: tnp.argmax(a * a, axis=1)):
        assert _executable(fn, x).scratch_bytes == 0


def test_a_value_used_by_two_kernels_is_computed_once():
    x = np.random.default_rng(0).standard_normal((100, 50)).astype(np.float32)
    ex = _executable(lambda a: tnp.exp(a) / tnp.sum(tnp.exp(a), axis=1, keepdims=True), x)
    # exp(a) is stored once (the row sums are in the output-sized arena too)
    assert 0 < ex.scratch_bytes <= x.nbytes + 512
    e = np.exp(x)
    np.testing.assert_allclose(ex(x)[0], e / e.sum(1, keepdims=True), rtol=1e-5)


def test_intermediate_buffers_are_reused():
    x = np.ones((64, 64), np.float32)

    def chain(a):
        for _ in range(6):
            a = tnp.tanh(a @ a)  # each matmul result is a separate buffer
        return a
    ex = _executable(chain, x)
    one = x.nbytes
    assert ex.scratch_bytes <= 3 * one + 256, ex.scratch_bytes  # not 6 buffers
    ref = x
    for _ in range(6):
        ref = np.tanh(ref @ ref)
    np.testing.assert_allclose(ex(x)[0], ref, rtol=1e-4)


def test_loops_are_vectorised_for_the_host():
    x = np.ones(4096, np.float32)
    asm = tr.jit(lambda a: tnp.exp(a) * 2.0 + tnp.sin(a)).lower(x).as_text("asm")
    assert "zmm" in asm or "ymm" in asm
    assert "expf" not in asm and "sinf" not in asm  # inline polynomials, not scalar libm calls


def test_scalar_table_covers_every_elementwise_primitive():
    elementwise = {"add", "sub", "mul", "div", "rem", "pow", "max", "min", "atan2", "neg", "sign",
                   "floor", "ceil", "round", "is_finite", "exp", "exp2", "log", "log1p", "expm1", "sin",
                   "cos", "tan", "tanh", "atan", "sqrt", "rsqrt", "logistic", "erf", "abs", "eq", "ne",
                   "lt", "le", "gt", "ge", "and", "or", "xor", "not", "select", "convert_element_type",
                   "integer_pow", "stop_gradient"}
    assert elementwise <= set(S.SCALAR)
    assert all(LOWERINGS[n].kind == "elemental" for n in elementwise)


@pytest.mark.parametrize("module", ["scalar", "compile", "loops", "cpu", "matmul", "executable"])
def test_codegen_reads_only_the_ir_and_dtypes_of_tracer(module):
    tree = ast.parse(open(os.path.join(ROOT, "codegen", module + ".py")).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tracer"):
            names = {node.module + "." + a.name for a in node.names}
            assert node.module in ("tracer.ir", "tracer.dtypes") or names <= {"tracer.dtypes", "tracer.ir"}, \
                f"codegen/{module}.py imports {node.module}"


def test_sibling_outputs_share_one_loop():
    """Two outputs that use one expensive value: one loop computes it once for both."""
    x = np.linspace(0, 1, 1000).astype(np.float32)
    ex = _executable(lambda a: (tnp.exp(a) + 1, tnp.exp(a) * 2), x)
    assert ex.llvm_ir.count("call float @\"__mathlib_exp") == 1 and ex.scratch_bytes == 0
    a, b = ex(x)
    np.testing.assert_allclose(a, np.exp(x) + 1, rtol=1e-6)
    np.testing.assert_allclose(b, np.exp(x) * 2, rtol=1e-6)
    # an output read at other indices by its sibling is written first, in its own loop
    ex = _executable(lambda a: (tnp.exp(a), tnp.exp(a)[::-1] * 2), x)
    a, b = ex(x)
    np.testing.assert_allclose(b, np.exp(x)[::-1] * 2, rtol=1e-6)


def test_very_long_elementwise_chains_compile():
    def f(x):
        for _ in range(1500):
            x = x * 1.0001 + 0.001
        return x
    x = np.linspace(0, 1, 8).astype(np.float32)
    np.testing.assert_allclose(tr.jit(f)(x), f(x), rtol=1e-5)
