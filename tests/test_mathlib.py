"""Accuracy and vectorisation tests for codegen.mathlib (numpy is the oracle).

Each function/dtype is compiled once (module-level cache) into
``void f(T* x, T* y, T* out, i64 n)`` whose loop calls ``mathlib.emit`` per
element, optimised at O3 for the host CPU and JIT-compiled with LLJIT.
Errors are measured in ulps of the result type against numpy evaluated in a
wider type (float64 for float32 inputs, x87 long double for float64 inputs;
erf, which numpy lacks, uses math.erf / mpmath).
"""

import ctypes
import math
import os
import re
import sys

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

import llvmlite.binding as llvm
from llvmlite import ir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from codegen import mathlib  # noqa: E402

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()

# --------------------------------------------------------------------------
# Harness: build, optimise, JIT.
# --------------------------------------------------------------------------

_TM = None
_LLJIT = None
_CACHE = {}
_IRTY = {np.float32: ir.FloatType(), np.float64: ir.DoubleType()}
_CTY = {np.float32: ctypes.c_float, np.float64: ctypes.c_double}


def _target_machine():
    global _TM
    if _TM is None:
        _TM = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(),
            features=llvm.get_host_cpu_features().flatten(), opt=3, jit=True)
    return _TM


def build_ir(name, dtype):
    """IR module text: void f(T* x, T* y, T* out, i64 n) { out[i] = name(...) }."""
    ty = _IRTY[dtype]
    mod = ir.Module(name="mathlib_%s_%s" % (name, dtype.__name__))
    mod.triple = llvm.get_process_triple()
    i64 = ir.IntType(64)
    fn = ir.Function(mod, ir.FunctionType(
        ir.VoidType(), [ty.as_pointer()] * 3 + [i64]), "f")
    for a in fn.args[:3]:
        a.add_attribute("noalias")
    px, py, pout, n = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, i64(0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(i64(0), entry)
    nargs = mathlib.FUNCTIONS[name][1]
    args = [b.load(b.gep(p, [i])) for p in (px, py)[:nargs]]
    b.store(mathlib.emit(b, name, *args), b.gep(pout, [i]))
    inext = b.add(i, i64(1))
    i.add_incoming(inext, loop)
    b.cbranch(b.icmp_signed("<", inext, n), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return str(mod)


def optimise(ir_text):
    """Parse, verify and run the O3 pipeline (loop vectoriser on)."""
    tm = _target_machine()
    modref = llvm.parse_assembly(ir_text)
    modref.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(modref, pb)
    return modref


class Kernel:
    """A compiled map kernel: kernel(x[, y]) -> out (numpy arrays)."""

    def __init__(self, name, dtype):
        global _LLJIT
        self.name, self.dtype = name, dtype
        self.nargs = mathlib.FUNCTIONS[name][1]
        self.modref = optimise(build_ir(name, dtype))
        self.opt_ir = str(self.modref)
        if _LLJIT is None:
            _LLJIT = llvm.create_lljit_compiler(_target_machine())
        lib = "lib_%s_%s" % (name, dtype.__name__)
        self._rt = (llvm.JITLibraryBuilder().add_ir(self.opt_ir)
                    .export_symbol("f").link(_LLJIT, lib))
        ptr = ctypes.POINTER(_CTY[dtype])
        self._f = ctypes.CFUNCTYPE(None, ptr, ptr, ptr, ctypes.c_int64)(
            self._rt["f"])

    def asm(self):
        return _target_machine().emit_assembly(self.modref)

    def __call__(self, x, y=None):
        ptr = ctypes.POINTER(_CTY[self.dtype])
        x = np.ascontiguousarray(x, dtype=self.dtype)
        y = x if y is None else np.ascontiguousarray(y, dtype=self.dtype)
        x, y = np.broadcast_arrays(x, y)
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        out = np.empty_like(x)
        self._f(x.ctypes.data_as(ptr), y.ctypes.data_as(ptr),
                out.ctypes.data_as(ptr), x.size)
        return out


def kernel(name, dtype):
    key = (name, dtype)
    if key not in _CACHE:
        _CACHE[key] = Kernel(name, dtype)
    return _CACHE[key]


# --------------------------------------------------------------------------
# Oracles and ulp errors.
# --------------------------------------------------------------------------

_WIDE = {np.float32: np.float64, np.float64: np.longdouble}


def _erf_ref(x):
    if x.dtype == np.float64:
        return np.array([math.erf(v) for v in x.tolist()], dtype=np.float64)
    import mpmath
    mpmath.mp.prec = 80
    out = np.empty(x.shape, np.longdouble)
    for i, v in enumerate(x.astype(np.float64).tolist()):
        if not math.isfinite(v) or v == 0 or abs(v) > 7:
            out[i] = math.erf(v)
        else:
            e = mpmath.erf(mpmath.mpf(v))
            hi = float(e)
            out[i] = np.longdouble(hi) + np.longdouble(float(e - hi))
    return out


def _logistic_ref(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


REFS = {
    "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log,
    "log2": np.log2, "log1p": np.log1p, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "tanh": np.tanh, "logistic": _logistic_ref,
    "atan": np.arctan, "atan2": np.arctan2, "pow": np.power,
    "erf": _erf_ref, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
}


def reference(name, dtype, *args):
    """numpy result in the wider type (not rounded to dtype)."""
    with np.errstate(all="ignore"):
        wide = [np.asarray(a, dtype=dtype).astype(_WIDE[dtype]) for a in args]
        return REFS[name](*wide)


def ulp_errors(got, ref, dtype):
    """|got - ref| in ulps of dtype at ref; 0 where both NaN or equal
    infinities; inf on a NaN/inf mismatch."""
    got = np.asarray(got, dtype=dtype)
    ref = np.asarray(ref)
    wide = ref.dtype
    with np.errstate(all="ignore"):
        fin = np.finfo(dtype)
        refr = np.clip(np.abs(ref), 0, fin.max).astype(dtype)
        ulp = np.spacing(refr).astype(wide)
        err = np.abs(got.astype(wide) - ref) / ulp
        rounded = ref.astype(dtype)          # overflows to inf as it should
    both_nan = np.isnan(got) & np.isnan(ref)
    same_inf = np.isinf(got) & (got == rounded)
    err = np.where(both_nan | same_inf, 0.0, err)
    err = np.where(np.isnan(got) != np.isnan(ref), np.inf, err)
    err = np.where(np.isinf(ref) & ~same_inf & ~np.isnan(ref), np.inf, err)
    err = np.where(np.isnan(err), np.inf, err)
    return err.astype(np.float64)


def max_ulp(name, dtype, *args):
    """(max error, argument tuple where it occurs)."""
    got = kernel(name, dtype)(*args)
    err = ulp_errors(got, reference(name, dtype, *args), dtype)
    i = int(np.argmax(err))
    return float(err[i]), tuple(np.asarray(a, dtype)[i] for a in args)


# --------------------------------------------------------------------------
# Inputs.
# --------------------------------------------------------------------------

F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]
UNARY = ["exp", "exp2", "expm1", "log", "log2", "log1p", "sin", "cos", "tan",
         "tanh", "logistic", "atan", "erf", "sqrt", "rsqrt"]
BINARY = ["atan2", "pow"]

# sin/cos/tan are accurate only for |x| < TRIG_LIMIT (see mathlib docstring)
TRIG = ("sin", "cos", "tan")
TRIG_LIMIT = {F32: 2.0 ** 44, F64: 2.0 ** 53}

# Max ulp error allowed per function (both dtypes).  The target is 4 ulp;
# the bounds below are the measured maxima (random sweeps of a few million
# arguments, see the module docstring of codegen.mathlib) plus a margin, so
# that accuracy regressions are caught.
TOL = {
    "exp": 1.5, "exp2": 1.5, "expm1": 2.5, "log": 1.5, "log2": 1.5,
    "log1p": 1.5, "sin": 1.5, "cos": 1.5, "tan": 3.0, "tanh": 2.0,
    "logistic": 3.0, "atan": 2.5, "atan2": 2.5, "pow": 1.5, "erf": 1.5,
    "sqrt": 0.51, "rsqrt": 2.0,
}
assert max(TOL.values()) <= 4.0


def whole_range(dtype, n):
    """n values spread over the whole finite range (both signs, log-uniform
    in magnitude, subnormals included) plus 0."""
    info = np.finfo(dtype)
    lo = np.log2(float(info.smallest_subnormal))
    hi = np.log2(float(info.max))
    with np.errstate(over="ignore"):
        mags = np.exp2(np.linspace(lo, hi, n // 2))
    mags = np.minimum(mags, info.max).astype(dtype)
    return np.concatenate([mags, -mags, np.zeros(1, dtype)]).astype(dtype)


def dense(dtype, lo, hi, n):
    return np.linspace(lo, hi, n).astype(dtype)


# Function-specific dense intervals (where the interesting behaviour is).
DENSE = {
    "exp": [(-110, 90), (-750, 720)],
    "exp2": [(-155, 130), (-1080, 1030)],
    "expm1": [(-2, 2), (-40, 90), (-1e-6, 1e-6)],
    "log": [(0, 4), (0.5, 2)], "log2": [(0, 4), (0.5, 2)],
    "log1p": [(-1, 3), (-1e-4, 1e-4), (-0.5, 0.5)],
    "sin": [(-10, 10), (-1e4, 1e4), (-1.6e7, 1.6e7)],
    "cos": [(-10, 10), (-1e4, 1e4), (-1.6e7, 1.6e7)],
    "tan": [(-10, 10), (-1e4, 1e4), (-1.6e7, 1.6e7)],
    "tanh": [(-1, 1), (-20, 20), (-1e-3, 1e-3)],
    "logistic": [(-20, 20), (-110, 40), (-750, 40)],
    "atan": [(-5, 5), (-100, 100)],
    "erf": [(-1.5, 1.5), (-7, 7)],
    "sqrt": [(0, 100)], "rsqrt": [(0, 100)],
}


def unary_inputs(name, dtype, n=40000):
    parts = [whole_range(dtype, n)]
    for lo, hi in DENSE[name]:
        parts.append(dense(dtype, lo, hi, n))
    x = np.concatenate(parts)
    if name in TRIG:
        # arguments next to multiples of pi/2 (catastrophic cancellation)
        k = np.concatenate([np.arange(1, 4000), np.unique(np.round(
            np.exp2(np.linspace(12, 23.5 if dtype is F32 else 52, 4000))))])
        near = (k * (np.pi / 2)).astype(dtype)
        x = np.concatenate([x, near, np.nextafter(near, dtype(0))])
    return x


def special_values(dtype):
    info = np.finfo(dtype)
    return np.array([0.0, -0.0, np.inf, -np.inf, np.nan,
                     info.smallest_subnormal, -info.smallest_subnormal,
                     info.smallest_normal, -info.smallest_normal,
                     info.max, -info.max, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0,
                     info.eps, -info.eps], dtype=dtype)


def binary_inputs(name, dtype, n=300000, seed=1):
    """(first, second) argument arrays for atan2(y, x) / pow(x, y)."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    lo = np.log2(float(info.smallest_subnormal))
    hi = np.log2(float(info.max))
    if name == "atan2":
        y = np.exp2(rng.uniform(lo, hi, n)) * rng.choice([-1, 1], n)
        x = np.exp2(rng.uniform(lo, hi, n)) * rng.choice([-1, 1], n)
        # comparable magnitudes too (the interesting region)
        y2 = rng.uniform(-4, 4, n)
        x2 = rng.uniform(-4, 4, n)
        return (np.concatenate([y, y2]).astype(dtype),
                np.concatenate([x, x2]).astype(dtype))
    # pow: |x| log-uniform, y chosen so that the result spans the range
    ax = np.exp2(rng.uniform(lo, hi, n))
    lim = hi / np.maximum(np.abs(np.log2(ax)), 1e-30)
    y = rng.uniform(-1.1, 1.1, n) * np.minimum(lim, 1e6)
    x = ax
    # integer exponents with negative bases
    xi = -np.exp2(rng.uniform(-20, 20, n // 4))
    yi = np.round(rng.uniform(-30, 30, n // 4))
    # near 1 with huge exponents (needs an accurate log)
    xn = 1 + rng.uniform(-0.3, 0.3, n // 4)
    yn = rng.uniform(-1, 1, n // 4) * (hi * 0.69) / np.abs(np.log(xn))
    return (np.concatenate([x, xi, xn]).astype(dtype),
            np.concatenate([y, yi, yn]).astype(dtype))


def _accurate(name, dtype, x):
    """Mask of arguments where the ulp bound applies (all but huge trig)."""
    if name in TRIG:
        with np.errstate(invalid="ignore"):
            return np.abs(x.astype(np.float64)) < TRIG_LIMIT[dtype]
    return np.ones(x.shape, bool)


# --------------------------------------------------------------------------
# Tests.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_grid(name, dtype):
    x = unary_inputs(name, dtype)
    if name == "erf" and dtype is F64:
        x = x[::4]                      # the mpmath oracle is slow
    got = kernel(name, dtype)(x)
    ref = reference(name, dtype, x)
    acc = _accurate(name, dtype, x)
    err = ulp_errors(got[acc], ref[acc], dtype)
    i = int(np.argmax(err))
    assert err[i] <= TOL[name], (name, x[acc][i], got[acc][i], ref[acc][i])
    if name in TRIG:   # huge arguments: not accurate, but finite and bounded
        big = got[~acc & np.isfinite(x)]
        assert np.all(np.isfinite(big))
        if name != "tan":
            assert np.all(np.abs(big) <= 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_grid(name, dtype):
    a, b = binary_inputs(name, dtype)
    err, where = max_ulp(name, dtype, a, b)
    assert err <= TOL[name], (name, where, err)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_special_values(name, dtype):
    x = special_values(dtype)
    got = kernel(name, dtype)(x)
    ref_w = reference(name, dtype, x)
    with np.errstate(over="ignore"):
        ref = ref_w.astype(dtype)
    err = ulp_errors(got, ref_w, dtype)
    ok = (err <= TOL[name]) | ~(_accurate(name, dtype, x) | ~np.isfinite(x))
    assert np.all(ok), list(zip(x, got, ref, err))
    # exact special results (inf, nan, signed zero) as numpy
    exact = ~np.isfinite(ref) | (ref == 0)
    if name in TRIG:
        exact &= np.isfinite(x)
    np.testing.assert_array_equal(got[exact], ref[exact])
    zero = exact & (ref == 0)
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(ref[zero]))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_special_values(name, dtype):
    v = special_values(dtype)
    extra = np.array([3.0, -3.0, 0.25, 1.5, -1.5, 1e3, -1e3], dtype)
    v = np.concatenate([v, extra])
    y, x = np.meshgrid(v, v)
    y, x = y.ravel(), x.ravel()
    got = kernel(name, dtype)(y, x)
    ref_w = reference(name, dtype, y, x)
    with np.errstate(over="ignore"):
        ref = ref_w.astype(dtype)
    err = ulp_errors(got, ref_w, dtype)
    bad = err > TOL[name]
    assert not bad.any(), list(zip(y[bad], x[bad], got[bad], ref[bad]))
    exact = ~np.isfinite(ref) | (ref == 0)
    np.testing.assert_array_equal(got[exact], ref[exact])
    zero = exact & (ref == 0)
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(ref[zero]))


def _floats(dtype):
    return st.floats(width=32 if dtype is F32 else 64, allow_nan=True,
                     allow_infinity=True, allow_subnormal=True)


_HYP = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_hypothesis(name, dtype):
    k = kernel(name, dtype)

    @_HYP
    @given(st.lists(_floats(dtype), min_size=1, max_size=64))
    def check(xs):
        x = np.array(xs, dtype=dtype)
        got = k(x)
        acc = _accurate(name, dtype, x) | ~np.isfinite(x)
        err = ulp_errors(got[acc], reference(name, dtype, x)[acc], dtype)
        assert np.all(err <= TOL[name]), (x[acc][err > TOL[name]])
        if name in TRIG:
            assert np.all(np.isfinite(got[np.isfinite(x)]))

    check()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_hypothesis(name, dtype):
    k = kernel(name, dtype)

    @_HYP
    @given(st.lists(st.tuples(_floats(dtype), _floats(dtype)),
                    min_size=1, max_size=64))
    def check(pairs):
        y = np.array([p[0] for p in pairs], dtype=dtype)
        x = np.array([p[1] for p in pairs], dtype=dtype)
        err = ulp_errors(k(y, x), reference(name, dtype, y, x), dtype)
        assert np.all(err <= TOL[name]), list(zip(y, x, err))

    check()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", UNARY + BINARY)
def test_vectorised(name, dtype):
    """The O3 loop does its arithmetic on 512-bit vectors (zmm) and calls
    nothing (no libm expf/logf/sinf..., no __mathlib_* helper)."""
    asm = kernel(name, dtype).asm()
    body = asm[asm.index("\nf:"):].split(".Lfunc_end")[0]
    zmm_math = [ln for ln in body.splitlines()
                if "zmm" in ln and re.match(r"\s*v(fn?m(add|sub)|mul|add|sub|"
                                            r"div|sqrt)[0-9]*p[sd]\b", ln)]
    assert zmm_math, "no 512-bit vector arithmetic in the loop"
    assert not re.search(r"\bcall", body)
    assert not re.search(r"\$(exp|log|sin|cos|tan|pow|atan|erf)\w*", body)


def test_alwaysinline_definitions_are_shared():
    """One internal definition per function/type per module, inlined at O3."""
    mod = ir.Module()
    ty = ir.FloatType()
    fn = ir.Function(mod, ir.FunctionType(ty, [ty]), "g")
    b = ir.IRBuilder(fn.append_basic_block())
    v = mathlib.emit(b, "exp", fn.args[0])
    v = mathlib.emit(b, "exp", v)
    b.ret(v)
    text = str(mod)
    assert len(re.findall(r'define internal float @"?__mathlib_exp_f32', text)) == 1
    assert "alwaysinline" in text
    opt = str(optimise(text))
    assert "__mathlib_exp_f32" not in opt


def test_bad_arguments():
    mod = ir.Module()
    ty = ir.FloatType()
    fn = ir.Function(mod, ir.FunctionType(ty, [ty, ir.DoubleType()]), "g")
    b = ir.IRBuilder(fn.append_basic_block())
    with pytest.raises(ValueError):
        mathlib.emit(b, "nope", fn.args[0])
    with pytest.raises(TypeError):
        mathlib.emit(b, "pow", fn.args[0])
    with pytest.raises(TypeError):
        mathlib.emit(b, "pow", fn.args[0], fn.args[1])
