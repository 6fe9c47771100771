"""The scalar code of every elementwise primitive, written once for every back end.

``SCALAR[name](em, dtype, *values, **params) -> value`` emits the LLVM IR for one
element. ``dtype`` is the numpy dtype of the operands (all operands of an
elementwise primitive share it); ``values`` are LLVM scalars (i1 for bool).
``em`` is the target's scalar emitter: ``em.b`` is the llvmlite IRBuilder,
``em.math(name, *values)`` emits a transcendental function (a polynomial on the
CPU, libdevice on NVPTX), ``em.intrinsic(name, [types], *values)`` calls an LLVM
intrinsic. Nothing here knows about loops, threads or calling conventions.

Numeric conventions (the same as the numpy reference implementations):
* integer ``div``/``rem`` by zero give 0, and INT_MIN / -1 gives INT_MIN (the
  division is guarded so the hardware never traps);
* float ``max``/``min`` return NaN when either operand is NaN (compare + select;
  LLVM's maxnum would drop the NaN);
* float -> int conversion truncates, saturates out of range and maps NaN to 0.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from llvmlite import ir

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()

_TYPES = {"bool": I1, "int32": I32, "int64": I64, "float32": F32, "float64": F64}
_MEM_TYPES = {"bool": I8, "int32": I32, "int64": I64, "float32": F32, "float64": F64}


def llvm_type(dtype) -> ir.Type:
    """The register type of a dtype (bool is i1)."""
    return _TYPES[np.dtype(dtype).name]


def mem_type(dtype) -> ir.Type:
    """The in-memory type of a dtype (bool is one byte, as in numpy)."""
    return _MEM_TYPES[np.dtype(dtype).name]


def const(dtype, value) -> ir.Constant:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return ir.Constant(llvm_type(dt), float(value))
    return ir.Constant(llvm_type(dt), int(value))


def _kind(dtype) -> str:
    k = np.dtype(dtype).kind
    return "i" if k in "iu" else k


SCALAR: dict[str, Callable] = {}


def scalar(*names):
    def register(fn):
        for n in names:
            SCALAR[n] = fn
        return fn
    return register


# ---------------------------------------------------------------- arithmetic

def _arith(fop, iop, bop=None):
    def emit(em, dt, x, y, **_):
        k = _kind(dt)
        if k == "f":
            return getattr(em.b, fop)(x, y)
        if k == "b" and bop is not None:
            return getattr(em.b, bop)(x, y)
        return getattr(em.b, iop)(x, y)
    return emit


SCALAR["add"] = _arith("fadd", "add", "or_")
SCALAR["sub"] = _arith("fsub", "sub", "xor")
SCALAR["mul"] = _arith("fmul", "mul", "and_")


def _int_guard(em, dt, x, y):
    """(y == 0, a divisor that can never trap): 0 and INT_MIN/-1 become division by 1."""
    b = em.b
    t = llvm_type(dt)
    zero = b.icmp_signed("==", y, ir.Constant(t, 0))
    overflow = b.and_(b.icmp_signed("==", x, ir.Constant(t, np.iinfo(dt).min)),
                      b.icmp_signed("==", y, ir.Constant(t, -1)))
    safe = b.select(b.or_(zero, overflow), ir.Constant(t, 1), y)
    return zero, safe


@scalar("div")
def _div(em, dt, x, y, **_):
    if _kind(dt) == "f":
        return em.b.fdiv(x, y)
    zero, safe = _int_guard(em, dt, x, y)
    return em.b.select(zero, ir.Constant(llvm_type(dt), 0), em.b.sdiv(x, safe))


@scalar("rem")
def _rem(em, dt, x, y, **_):
    if _kind(dt) == "f":
        return em.b.frem(x, y)
    zero, safe = _int_guard(em, dt, x, y)
    return em.b.select(zero, ir.Constant(llvm_type(dt), 0), em.b.srem(x, safe))


def _minmax(fcmp, icmp):
    def emit(em, dt, x, y, **_):
        b = em.b
        k = _kind(dt)
        if k == "f":
            # NaN in either operand gives NaN, as numpy's maximum/minimum
            r = b.select(b.fcmp_ordered(fcmp, x, y), x, y)
            return b.select(b.fcmp_unordered("uno", x, x), x, r)
        if k == "b":
            return b.select(b.icmp_unsigned(icmp, x, y), x, y)
        return b.select(b.icmp_signed(icmp, x, y), x, y)
    return emit


SCALAR["max"] = _minmax(">=", ">=")
SCALAR["min"] = _minmax("<=", "<=")


@scalar("neg")
def _neg(em, dt, x, **_):
    return em.b.fneg(x) if _kind(dt) == "f" else em.b.neg(x)


@scalar("sign")
def _sign(em, dt, x, **_):
    b = em.b
    t = llvm_type(dt)
    if _kind(dt) == "f":  # NaN and +-0 map to themselves
        one, mone = ir.Constant(t, 1.0), ir.Constant(t, -1.0)
        return b.select(b.fcmp_ordered(">", x, ir.Constant(t, 0.0)), one,
                        b.select(b.fcmp_ordered("<", x, ir.Constant(t, 0.0)), mone, x))
    pos = b.zext(b.icmp_signed(">", x, ir.Constant(t, 0)), t)
    negv = b.zext(b.icmp_signed("<", x, ir.Constant(t, 0)), t)
    return b.sub(pos, negv)


@scalar("abs")
def _abs(em, dt, x, **_):
    if _kind(dt) == "f":
        return em.intrinsic("llvm.fabs", x)
    b = em.b
    return b.select(b.icmp_signed("<", x, ir.Constant(x.type, 0)), b.neg(x), x)


SCALAR["floor"] = lambda em, dt, x, **_: em.intrinsic("llvm.floor", x)
SCALAR["ceil"] = lambda em, dt, x, **_: em.intrinsic("llvm.ceil", x)
SCALAR["round"] = lambda em, dt, x, **_: em.intrinsic("llvm.roundeven", x)
SCALAR["sqrt"] = lambda em, dt, x, **_: em.math("sqrt", x)
SCALAR["rsqrt"] = lambda em, dt, x, **_: em.math("rsqrt", x)
SCALAR["stop_gradient"] = lambda em, dt, x, **_: x


@scalar("is_finite")
def _is_finite(em, dt, x, **_):
    inf = ir.Constant(x.type, float("inf"))
    return em.b.fcmp_ordered("<", em.intrinsic("llvm.fabs", x), inf)


# Transcendentals go through the target's math library hook.
for _name in ("exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "atan",
              "logistic", "erf"):
    SCALAR[_name] = (lambda n: lambda em, dt, x, **_: em.math(n, x))(_name)
SCALAR["pow"] = lambda em, dt, x, y, **_: em.math("pow", x, y)
SCALAR["atan2"] = lambda em, dt, x, y, **_: em.math("atan2", x, y)

# ---------------------------------------------------------------- comparisons and logic

_FCMP = {"eq": ("==", False), "ne": ("!=", True), "lt": ("<", False), "le": ("<=", False),
         "gt": (">", False), "ge": (">=", False)}


def _compare(name):
    op, unordered = _FCMP[name]

    def emit(em, dt, x, y, **_):
        b = em.b
        k = _kind(dt)
        if k == "f":  # ne is true when either is NaN; the others false
            return (b.fcmp_unordered if unordered else b.fcmp_ordered)(op, x, y)
        if k == "b":
            return b.icmp_unsigned(op, x, y)
        return b.icmp_signed(op, x, y)
    return emit


for _name in _FCMP:
    SCALAR[_name] = _compare(_name)

SCALAR["and"] = lambda em, dt, x, y, **_: em.b.and_(x, y)
SCALAR["or"] = lambda em, dt, x, y, **_: em.b.or_(x, y)
SCALAR["xor"] = lambda em, dt, x, y, **_: em.b.xor(x, y)
SCALAR["not"] = lambda em, dt, x, **_: em.b.not_(x)


@scalar("select")
def _select(em, dt, pred, x, y, **_):
    """``dt`` is the dtype of the two branches; ``pred`` is i1."""
    return em.b.select(pred, x, y)


# ---------------------------------------------------------------- conversions and powers

def convert(em, src, dst, x):
    """Convert one scalar from dtype ``src`` to ``dst`` with numpy's semantics
    (float -> int saturates and maps NaN to 0; -> bool is ``x != 0``)."""
    b = em.b
    src, dst = np.dtype(src), np.dtype(dst)
    ks, kd = _kind(src), _kind(dst)
    st, dt_ = llvm_type(src), llvm_type(dst)
    if src == dst:
        return x
    if kd == "b":
        if ks == "f":
            return b.fcmp_unordered("!=", x, ir.Constant(st, 0.0))
        return b.icmp_unsigned("!=", x, ir.Constant(st, 0))
    if ks == "b":
        return b.uitofp(x, dt_) if kd == "f" else b.zext(x, dt_)
    if ks == "f" and kd == "f":
        return b.fpext(x, dt_) if dst.itemsize > src.itemsize else b.fptrunc(x, dt_)
    if ks == "i" and kd == "f":
        return b.sitofp(x, dt_)
    if ks == "f" and kd == "i":
        return em.intrinsic("llvm.fptosi.sat", x, ret=dt_)
    return b.sext(x, dt_) if dst.itemsize > src.itemsize else b.trunc(x, dt_)


@scalar("convert_element_type")
def _convert(em, dt, x, *, new_dtype, **_):
    return convert(em, dt, new_dtype, x)


@scalar("integer_pow")
def _integer_pow(em, dt, x, *, y, **_):
    """Repeated squaring in the reference implementation's order."""
    one = const(dt, 1)
    mul = SCALAR["mul"]
    if y == 0:
        return one
    r, base, n = None, x, abs(y)
    while n:
        if n & 1:
            r = base if r is None else mul(em, dt, r, base)
        n >>= 1
        if n:
            base = mul(em, dt, base, base)
    return em.b.fdiv(one, r) if y < 0 else r
