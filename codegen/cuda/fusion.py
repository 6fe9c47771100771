"""Fused element evaluation inside a kernel: the value of any graph variable at an
index, computed by inlining its elementwise and structural producers.

A kernel asks ``ev.value(var, idx)`` for the element of ``var`` at ``idx`` (an
``Index``: a flat position and/or a multi-index, each computed lazily). Variables
that live in device buffers are loaded; the others are recomputed from their
producers: elementwise primitives through the shared scalar table
(``codegen.scalar.SCALAR``), and index-mapping primitives (broadcast_in_dim,
reshape, transpose, rev, slice, pad, concatenate, iota, gather) by mapping the
index. Everything here is straight-line code (selects, clamped indices), so a
value computed once at an index is reused within the same scope.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from tracer.ir import Literal

from .. import scalar as S
from ..scalar import SCALAR, llvm_type, mem_type
from . import target as T
from .libdevice import MATH

I1, I32, I64 = T.I1, T.I32, T.I64

# Primitives that map an output index to operand indices (no arithmetic of their own).
INDEX_MAPS = frozenset({"broadcast_in_dim", "reshape", "transpose", "rev", "slice", "pad",
                        "concatenate", "iota", "gather", "stop_gradient"})
FUSABLE = frozenset(SCALAR) | INDEX_MAPS


def c64(v: int) -> ir.Constant:
    return ir.Constant(I64, int(v))


class Index:
    """An index into an array of ``shape``: the flat (row-major) position and the
    multi-index, each derived from the other on first use (i64 values)."""

    def __init__(self, b: ir.IRBuilder, shape, flat=None, multi=None):
        assert flat is not None or multi is not None or not shape
        self.b, self.shape = b, tuple(shape)
        self._flat, self._multi = flat, (tuple(multi) if multi is not None else None)

    def flat(self) -> ir.Value:
        if self._flat is None:
            if not self.shape:
                self._flat = c64(0)
            else:
                acc = None
                for d, m in zip(self.shape, self._multi):
                    if acc is None:
                        acc = m
                    elif d == 1:  # the index along a size-1 axis is 0
                        continue
                    else:
                        acc = self.b.add(self.b.mul(acc, c64(d)), m)
                self._flat = acc
        return self._flat

    def multi(self) -> tuple:
        if self._multi is None:
            b = self.b
            # Divisions by the (constant) dimensions run in 32 bits when the array is
            # small enough: 64-bit division is several times slower on a GPU.
            narrow = int(np.prod(self.shape, dtype=np.int64)) < 2**31
            ty = I32 if narrow else I64
            rest = b.trunc(self._flat, I32) if narrow else self._flat
            out = []
            for i, d in enumerate(reversed(self.shape)):
                if d == 1:
                    out.append(ir.Constant(ty, 0))
                elif i == len(self.shape) - 1:
                    out.append(rest)
                else:
                    out.append(b.urem(rest, ir.Constant(ty, d)))
                    rest = b.udiv(rest, ir.Constant(ty, d))
            if narrow:
                out = [b.zext(v, I64) for v in out]
            self._multi = tuple(reversed(out))
        return self._multi


class NVPTXEmitter:
    """The scalar emitter the shared table expects: ``b``, ``math`` (libdevice) and
    ``intrinsic`` (overloaded on the first operand's type, plus ``ret`` when given)."""

    def __init__(self, b: ir.IRBuilder):
        self.b = b

    def math(self, name, *args):
        if name == "sqrt":  # sqrt.rn: correctly rounded, no library needed
            return self.intrinsic("llvm.sqrt", *args)
        if math_provider() == "mathlib":
            from .. import mathlib  # the CPU's polynomials: only fma/rint/... intrinsics
            return mathlib.emit(self.b, name, *args)
        return MATH.emit(self.b, name, *args)

    def intrinsic(self, name, *args, ret=None):
        tys = ([ret] if ret is not None else []) + [args[0].type]
        full = name + "".join("." + _mangle(t) for t in tys)
        fn = self.b.module.globals.get(full)
        if fn is None:
            fn = ir.Function(self.b.module, ir.FunctionType(ret or args[0].type,
                                                             [a.type for a in args]), full)
        return self.b.call(fn, list(args))


def math_provider() -> str:
    """"libdevice" (default) or "mathlib" (``TRACER_CUDA_MATH=mathlib``: the CPU back
    end's branch-free polynomials, which need no libdevice; for machines without one)."""
    import os
    v = os.environ.get("TRACER_CUDA_MATH", "libdevice")
    if v not in ("libdevice", "mathlib"):
        raise ValueError(f"TRACER_CUDA_MATH must be 'libdevice' or 'mathlib', got {v!r}")
    return v


def _mangle(t: ir.Type) -> str:
    if isinstance(t, ir.FloatType):
        return "f32"
    if isinstance(t, ir.DoubleType):
        return "f64"
    return f"i{t.width}"


def load(b: ir.IRBuilder, ptr_base, dtype, flat) -> ir.Value:
    """Element ``flat`` of a device buffer, in register type (bool: i8 -> i1)."""
    mt = mem_type(dtype)
    v = b.load(T.global_ptr(b, ptr_base, mt, flat), typ=mt)
    return b.icmp_unsigned("!=", v, ir.Constant(mt, 0)) if np.dtype(dtype) == np.bool_ else v


def store(b: ir.IRBuilder, ptr_base, dtype, flat, v) -> None:
    mt = mem_type(dtype)
    if np.dtype(dtype) == np.bool_:
        v = b.zext(v, mt)
    b.store(v, T.global_ptr(b, ptr_base, mt, flat))


def constant(dtype, val) -> ir.Constant:
    val = np.asarray(val).item()
    if np.dtype(dtype) == np.bool_:
        return ir.Constant(I1, int(bool(val)))
    return S.const(dtype, val)


def clamp(b, v, lo: int, hi: int):
    """min(max(v, lo), hi) for i64 values (signed)."""
    v = b.select(b.icmp_signed("<", v, c64(lo)), c64(lo), v)
    return b.select(b.icmp_signed(">", v, c64(hi)), c64(hi), v)


class Evaluator:
    """Values of graph variables at indices inside one kernel.

    ``producers`` maps a variable to the equation that defines it; ``buffer_of(var)``
    gives the kernel argument holding a materialised variable (or None); ``inline``
    is the set of materialised variables this kernel computes itself (they are
    recomputed rather than read back, so there is no race on them)."""

    def __init__(self, b: ir.IRBuilder, producers, buffer_of, inline=frozenset()):
        self.b = b
        self.em = NVPTXEmitter(b)
        self.producers = producers
        self.buffer_of = buffer_of
        self.inline = inline
        self.new_scope()

    def new_scope(self):
        """Forget memoised values (call when entering a block they don't dominate)."""
        self.memo: dict = {}
        self.scalar_idx = Index(self.b, (), flat=c64(0))

    def value(self, atom, idx: Index) -> ir.Value:
        if isinstance(atom, Literal):
            return constant(atom.aval.dtype, atom.val)
        if not atom.aval.shape:
            idx = self.scalar_idx
        key = (atom, id(idx))
        hit = self.memo.get(key)
        if hit is not None:
            return hit[0]
        if atom in self.inline or self.buffer_of(atom) is None:
            v = self._compute(atom, idx)
        else:
            v = load(self.b, self.buffer_of(atom), atom.aval.dtype, idx.flat())
        self.memo[key] = (v, idx)  # keep idx alive so its id stays unique
        return v

    # ------------------------------------------------------------ producers

    def _compute(self, var, idx: Index) -> ir.Value:
        eqn = self.producers.get(var)
        if eqn is None:
            raise RuntimeError(f"internal error: variable {var.aval} has no buffer and no producer")
        name, p, ins = eqn.prim.name, eqn.params, eqn.invars
        b = self.b
        if name in SCALAR and name not in INDEX_MAPS:
            shape = var.aval.shape
            args = [self.value(a, idx if a.aval.shape == shape else self.scalar_idx) for a in ins]
            dt = ins[-1].aval.dtype  # select: the branches' dtype
            return SCALAR[name](self.em, dt, *args, **p)
        return getattr(self, "_" + name)(var, idx, ins, **p)

    def _stop_gradient(self, var, idx, ins):
        return self.value(ins[0], idx)

    def _broadcast_in_dim(self, var, idx, ins, *, shape, broadcast_dimensions):
        x = ins[0]
        if x.aval.size == var.aval.size:  # only size-1 axes added: same flat position
            return self.value(x, Index(self.b, x.aval.shape, flat=idx.flat()))
        m = idx.multi()
        xm = [c64(0) if x.aval.shape[i] == 1 else m[d] for i, d in enumerate(broadcast_dimensions)]
        return self.value(x, Index(self.b, x.aval.shape, multi=xm))

    def _reshape(self, var, idx, ins, *, new_sizes):
        return self.value(ins[0], Index(self.b, ins[0].aval.shape, flat=idx.flat()))

    def _transpose(self, var, idx, ins, *, permutation):
        m = idx.multi()
        xm = [None] * len(m)
        for out_axis, in_axis in enumerate(permutation):
            xm[in_axis] = m[out_axis]
        return self.value(ins[0], Index(self.b, ins[0].aval.shape, multi=xm))

    def _rev(self, var, idx, ins, *, dimensions):
        m, shape = idx.multi(), var.aval.shape
        xm = [self.b.sub(c64(shape[i] - 1), v) if i in dimensions else v for i, v in enumerate(m)]
        return self.value(ins[0], Index(self.b, shape, multi=xm))

    def _slice(self, var, idx, ins, *, start_indices, limit_indices, strides):
        b = self.b
        xm = [b.add(c64(s), b.mul(v, c64(st)) if st != 1 else v)
              for v, s, st in zip(idx.multi(), start_indices, strides)]
        return self.value(ins[0], Index(b, ins[0].aval.shape, multi=xm))

    def _pad(self, var, idx, ins, *, padding_config):
        b = self.b
        x, pv = ins
        padval = self.value(pv, self.scalar_idx)
        if x.aval.size == 0:
            return padval
        inside = ir.Constant(I1, 1)
        xm = []
        for v, d, (lo, _, it) in zip(idx.multi(), x.aval.shape, padding_config):
            rel = b.sub(v, c64(lo))
            step = it + 1
            q = b.sdiv(rel, c64(step)) if step != 1 else rel
            ok = b.and_(b.icmp_signed(">=", rel, c64(0)), b.icmp_signed("<", q, c64(d)))
            if step != 1:
                ok = b.and_(ok, b.icmp_signed("==", b.srem(rel, c64(step)), c64(0)))
            inside = b.and_(inside, ok)
            xm.append(clamp(b, q, 0, d - 1))
        xv = self.value(x, Index(b, x.aval.shape, multi=xm))
        return b.select(inside, xv, padval)

    def _concatenate(self, var, idx, ins, *, dimension):
        b = self.b
        m = idx.multi()
        pos = m[dimension]
        result, start = None, 0
        for x in ins:
            n = x.aval.shape[dimension]
            if n == 0:
                continue
            xm = list(m)
            xm[dimension] = clamp(b, b.sub(pos, c64(start)), 0, n - 1)
            v = self.value(x, Index(b, x.aval.shape, multi=xm))
            if result is None:
                result = v
            else:
                result = b.select(b.icmp_signed(">=", pos, c64(start)), v, result)
            start += n
        return result

    def _iota(self, var, idx, ins, *, dtype, shape, dimension):
        v = idx.multi()[dimension]
        dt = np.dtype(dtype)
        if dt.kind == "f":
            return self.b.sitofp(v, llvm_type(dt))
        if dt == np.bool_:
            return self.b.icmp_unsigned("!=", v, c64(0))
        return self.b.trunc(v, llvm_type(dt)) if dt.itemsize < 8 else v

    def _gather(self, var, idx, ins, *, axes, mode):
        """out[batch, rest] = operand[indices[batch] on ``axes``, rest elsewhere];
        indices are clamped (mode clip), or out of range reads 0 (mode fill)."""
        b = self.b
        operand, indices = ins
        nb = indices.aval.ndim - 1
        m = idx.multi()
        batch, rest = list(m[:nb]), iter(m[nb:])
        valid = ir.Constant(I1, 1)
        row = {}
        for j, ax in enumerate(axes):
            raw = self.value(indices, Index(b, indices.aval.shape, multi=batch + [c64(j)]))
            raw = b.sext(raw, I64) if raw.type != I64 else raw
            d = operand.aval.shape[ax]
            valid = b.and_(valid, b.and_(b.icmp_signed(">=", raw, c64(0)),
                                         b.icmp_signed("<", raw, c64(d))))
            row[ax] = clamp(b, raw, 0, max(d - 1, 0))
        om = [row[i] if i in row else next(rest) for i in range(operand.aval.ndim)]
        v = self.value(operand, Index(b, operand.aval.shape, multi=om))
        if mode == "fill":
            v = b.select(valid, v, constant(operand.aval.dtype, 0))
        return v
