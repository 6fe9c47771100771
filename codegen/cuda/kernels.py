"""Kernel templates: each builds one ``ptx_kernel`` into a module and returns its
launch shape. Elements are read through the fusion ``Evaluator``, so producers
(elementwise chains, broadcasts, transposes, gathers...) fuse into every kernel.

* ``elementwise``: a grid-stride loop over the output; several outputs of one shape
  share a kernel (and common sub-expressions).
* ``reduce``: one block per output element (and, for long reductions, ``splits``
  blocks per output writing partials that a second launch reduces): per-thread
  strided accumulation, then a warp-shuffle tree and a shared-memory step;
  ``reduce_serial``: one thread per output, for short reductions.
* ``dot``: shared-memory tiles; 64x64 per block with 4x4 register-blocked outputs
  per thread for larger outputs, 16x16 with one output per thread for small ones.
* ``cumsum``: one thread per line along the axis.
* ``scatter``: atomics for scatter-add; a single-thread sequential loop for the
  other combines (exact "last write wins" order) and for bool.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from ..scalar import SCALAR, llvm_type, mem_type
from . import target as T
from .fusion import Evaluator, Index, c64, clamp, constant, load, store

I1, I32, I64 = T.I1, T.I32, T.I64
BLOCK = 256
MAX_GRID = 65535
TILE = 16


@dataclass
class Kernel:
    name: str
    args: list          # buffer ids, in parameter order
    grid: tuple
    block: tuple


class Ctx:
    """The kernel being built. ``arg(buf)`` is the pointer parameter for a buffer id.
    Kernels are built twice: a recording pass (in a scratch module) finds which
    buffers the body touches, then the real pass gets exactly those parameters."""

    def __init__(self, module, name, producers, buf_of, inline, args=None):
        self.recording = args is None
        self.args = [] if args is None else list(args)
        self.fn, self.b = T.kernel(module, name, 0 if args is None else len(args))
        self.name = name
        self.buf_of = buf_of
        self.ev = Evaluator(self.b, producers, self._buffer_of_var, inline)

    def arg(self, buf: int) -> ir.Value:
        if self.recording:
            if buf not in self.args:
                self.args.append(buf)
            return ir.Constant(T.GLOBAL, None)
        return self.fn.args[self.args.index(buf)]

    def _buffer_of_var(self, var):
        buf = self.buf_of.get(var)
        return None if buf is None else self.arg(buf)

    def i64(self, reg, axis="x"):
        return self.b.zext(T.sreg(self.b, reg, axis), I64)

    # ------------------------------------------------------------ control flow helpers

    def loop(self, start, stop, step, body, carried=()):
        """``for i in range(start, stop, step)`` (i64, step > 0) with loop-carried
        values; ``body(i, *carried) -> new carried``. Returns the final carried values."""
        b = self.b
        pre = b.block
        head = b.append_basic_block("loop")
        blk = b.append_basic_block("body")
        done = b.append_basic_block("done")
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64)
        i.add_incoming(start, pre)
        phis = []
        for c in carried:
            p = b.phi(c.type)
            p.add_incoming(c, pre)
            phis.append(p)
        b.cbranch(b.icmp_signed("<", i, stop), blk, done)
        b.position_at_end(blk)
        self.ev.new_scope()
        new = body(i, *phis) or ()
        nxt = b.add(i, step)
        end = b.block
        i.add_incoming(nxt, end)
        for p, v in zip(phis, new):
            p.add_incoming(v, end)
        b.branch(head)
        b.position_at_end(done)
        self.ev.new_scope()
        return phis

    def when(self, cond, then, default=None):
        """``then()`` under ``cond``; with ``default``, returns then() or default (a phi)."""
        b = self.b
        pre = b.block
        blk = b.append_basic_block("then")
        after = b.append_basic_block("after")
        b.cbranch(cond, blk, after)
        b.position_at_end(blk)
        self.ev.new_scope()
        v = then()
        end = b.block
        b.branch(after)
        b.position_at_end(after)
        self.ev.new_scope()
        if default is None:
            return None
        phi = b.phi(default.type)
        phi.add_incoming(v, end)
        phi.add_incoming(default, pre)
        return phi

    def finish(self):
        self.b.ret_void()


def build(module, name, producers, buf_of, body, inline=frozenset()) -> Kernel:
    """Build kernel ``name`` with ``body(ctx) -> (grid, block)``."""
    rec = Ctx(T.new_module("scratch"), name, producers, buf_of, inline)
    body(rec)
    ctx = Ctx(module, name, producers, buf_of, inline, args=rec.args)
    grid, block = body(ctx)
    ctx.finish()
    return Kernel(name, ctx.args, grid, block)


def _grid_for(n: int, block: int = BLOCK) -> tuple:
    return (max(1, min(-(-n // block), MAX_GRID)), 1, 1)


def global_thread(ctx):
    b = ctx.b
    start = b.add(b.mul(ctx.i64("ctaid"), ctx.i64("ntid")), ctx.i64("tid"))
    return start, b.mul(ctx.i64("nctaid"), ctx.i64("ntid"))


# ---------------------------------------------------------------- elementwise

def elementwise(groups):
    """``groups``: list of (shape, outs), ``outs`` a list of (buffer id, atom, dtype);
    each output gets its atom's value over its group's shape. One grid-stride loop runs
    over all groups' elements back to back ("horizontal fusion": e.g. every parameter
    update of an optimiser step in one launch)."""
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape, _ in groups]
    total = sum(sizes)

    def body(ctx):
        b = ctx.b
        start, stride = global_thread(ctx)

        def write(shape, outs, i):
            idx = Index(b, shape, flat=i)
            for buf, atom, dt in outs:
                store(b, ctx.arg(buf), dt, i, ctx.ev.value(atom, idx))

        def step(i):
            if len(groups) == 1:
                return write(groups[0][0], groups[0][1], i)
            offset = 0
            for (shape, outs), n in zip(groups, sizes):
                local = b.sub(i, c64(offset))
                ctx.when(b.icmp_unsigned("<", local, c64(n)),
                         lambda shape=shape, outs=outs, local=local: write(shape, outs, local))
                offset += n
        ctx.loop(start, c64(total), stride, step)
        return _grid_for(total), (BLOCK, 1, 1)
    return body


# ---------------------------------------------------------------- reductions

def identity(op, dtype):
    dt = np.dtype(dtype)
    if op == "sum":
        return constant(dt, 0)
    if op == "prod":
        return constant(dt, 1)
    big = {"f": np.inf, "b": 1}.get(dt.kind, np.iinfo(dt).max if dt.kind in "iu" else 0)
    small = {"f": -np.inf, "b": 0}.get(dt.kind, np.iinfo(dt).min if dt.kind in "iu" else 0)
    return constant(dt, small if op in ("max", "argmax") else big)


def _is_nan(b, v):
    return b.fcmp_unordered("uno", v, v) if isinstance(v.type, (ir.FloatType, ir.DoubleType)) \
        else ir.Constant(I1, 0)


def _better(b, op, dt, av, ai, bv, bi):
    """Does (av, ai) win over (bv, bi) for argmax/argmin? First NaN wins, then the
    larger (smaller) value, ties to the lower index (numpy's rule)."""
    kind = np.dtype(dt).kind
    sym = ">" if op == "argmax" else "<"
    if kind == "f":
        strict = b.fcmp_ordered(sym, av, bv)
        eq = b.fcmp_ordered("==", av, bv)
    elif kind == "b":
        strict, eq = b.icmp_unsigned(sym, av, bv), b.icmp_unsigned("==", av, bv)
    else:
        strict, eq = b.icmp_signed(sym, av, bv), b.icmp_signed("==", av, bv)
    lower = b.icmp_signed("<", ai, bi)
    win = b.or_(strict, b.and_(eq, lower))
    an, bn = _is_nan(b, av), _is_nan(b, bv)
    both = b.and_(an, bn)
    return b.select(both, lower, b.select(an, ir.Constant(I1, 1), b.select(bn, ir.Constant(I1, 0), win)))


def _combiner(ctx, op, dt):
    if op in ("argmax", "argmin"):
        def comb(a, c):
            w = _better(ctx.b, op, dt, a[0], a[1], c[0], c[1])
            return (ctx.b.select(w, a[0], c[0]), ctx.b.select(w, a[1], c[1]))
        return comb
    fn = SCALAR[{"sum": "add", "prod": "mul", "max": "max", "min": "min"}[op]]
    return lambda a, c: (fn(ctx.ev.em, dt, a[0], c[0]),)


def _reduce_element(ctx, x, axes, k, arg):
    """``element(o, r)``: the r-th reduced element of output o, as a tuple (value,) or
    (value, r) for argmax/argmin."""
    b = ctx.b
    shape = x.aval.shape
    kept = [i for i in range(len(shape)) if i not in axes]
    kept_shape = tuple(shape[i] for i in kept)
    red_shape = tuple(shape[i] for i in axes)
    trailing = tuple(axes) == tuple(range(len(shape) - len(axes), len(shape)))

    def element(o, r):
        if trailing:
            idx = Index(b, shape, flat=b.add(b.mul(o, c64(k)), r))
        else:
            full = [None] * len(shape)
            for pos, v in zip(kept, Index(b, kept_shape, flat=o).multi()):
                full[pos] = v
            for pos, v in zip(axes, Index(b, red_shape, flat=r).multi()):
                full[pos] = v
            idx = Index(b, shape, multi=full)
        v = ctx.ev.value(x, idx)
        return (v, r) if arg else (v,)
    return element


def _store_result(ctx, v, arg, dest, out_dtype, pos):
    b = ctx.b
    res = v[1] if arg else v[0]
    if arg and np.dtype(out_dtype).itemsize < 8:
        res = b.trunc(res, llvm_type(out_dtype))
    store(b, ctx.arg(dest), out_dtype, pos, res)


def reduce_serial(op, x, axes, dest, dtype, out_dtype, nout, k):
    """One thread per output element, looping over the reduced elements: for short
    reductions or many outputs (adjacent threads read adjacent columns)."""
    def body(ctx):
        dt = np.dtype(dtype)
        arg = op in ("argmax", "argmin")
        comb = _combiner(ctx, op, dt)
        element = _reduce_element(ctx, x, axes, k, arg)
        ident = (identity(op, dt), c64(k)) if arg else (identity(op, dt),)
        start, stride = global_thread(ctx)

        def per_output(o):
            acc = ctx.loop(c64(0), c64(k), c64(1), lambda r, *a: comb(tuple(a), element(o, r)), ident)
            _store_result(ctx, tuple(acc), arg, dest, out_dtype, o)
        ctx.loop(start, c64(nout), stride, per_output)
        return _grid_for(nout), (BLOCK, 1, 1)
    return body


def reduce(op, x, axes, dest, dtype, out_dtype, nout, k, splits):
    """Reduce ``x`` (an atom) over ``axes`` into buffer ``dest`` (nout x splits
    partials when splits > 1). ``op``: sum, prod, max, min, argmax, argmin."""
    block = BLOCK if k >= BLOCK else 32
    nwarps = block // 32
    chunk = -(-k // splits)

    def body(ctx):
        b = ctx.b
        dt = np.dtype(dtype)
        arg = op in ("argmax", "argmin")
        comb = _combiner(ctx, op, dt)
        tid = ctx.i64("tid")
        smem_v = T.shared_array(b.module, f"{ctx.name}_v", mem_type(dt), nwarps)
        smem_i = T.shared_array(b.module, f"{ctx.name}_i", I64, nwarps) if arg else None
        ident = (identity(op, dt), c64(k)) if arg else (identity(op, dt),)

        element = _reduce_element(ctx, x, axes, k, arg)

        def per_output(o):
            lo = b.mul(ctx.i64("ctaid", "y"), c64(chunk))
            hi = b.add(lo, c64(chunk))
            hi = b.select(b.icmp_signed("<", hi, c64(k)), hi, c64(k))
            acc = ctx.loop(b.add(lo, tid), hi, ctx.i64("ntid"),
                           lambda r, *a: comb(tuple(a), element(o, r)), ident)
            acc = tuple(acc)
            for d in (16, 8, 4, 2, 1):
                acc = comb(acc, tuple(T.shfl_down(b, v, d) for v in acc))
            lane = b.and_(tid, c64(31))
            warp = b.lshr(tid, c64(5))
            if nwarps > 1:
                def write():
                    _smem_store(b, smem_v, warp, acc[0], dt)
                    if arg:
                        b.store(acc[1], T.shared_ptr(b, smem_i, warp))
                ctx.when(b.icmp_unsigned("==", lane, c64(0)), write)
                T.barrier(b)

                def first_warp():
                    ok = b.icmp_unsigned("<", lane, c64(nwarps))
                    sl = clamp(b, lane, 0, nwarps - 1)
                    v = (b.select(ok, _smem_load(b, smem_v, sl, dt), ident[0]),)
                    if arg:
                        v += (b.select(ok, b.load(T.shared_ptr(b, smem_i, sl)), ident[1]),)
                    for d in (16, 8, 4, 2, 1):
                        v = comb(v, tuple(T.shfl_down(b, u, d) for u in v))
                    ctx.when(b.icmp_unsigned("==", tid, c64(0)), lambda: _out(o, v))
                ctx.when(b.icmp_unsigned("==", warp, c64(0)), first_warp)
                T.barrier(b)  # the shared scratch is reused for the next output
            else:
                ctx.when(b.icmp_unsigned("==", tid, c64(0)), lambda: _out(o, acc))

        def _out(o, v):
            pos = b.add(b.mul(o, c64(splits)), ctx.i64("ctaid", "y")) if splits > 1 else o
            _store_result(ctx, v, arg, dest, out_dtype, pos)

        ctx.loop(ctx.i64("ctaid"), c64(nout), ctx.i64("nctaid"), per_output)
        return (max(1, min(nout, MAX_GRID)), splits, 1), (block, 1, 1)
    return body


def _smem_store(b, arr, i, v, dt):
    if np.dtype(dt) == np.bool_:
        v = b.zext(v, T.I8)
    b.store(v, T.shared_ptr(b, arr, i))


def _smem_load(b, arr, i, dt):
    v = b.load(T.shared_ptr(b, arr, i))
    return b.icmp_unsigned("!=", v, ir.Constant(T.I8, 0)) if np.dtype(dt) == np.bool_ else v


# ---------------------------------------------------------------- dot_general

BM = BN = 64      # the register-blocked matmul: a 64x64 output tile per block,
BK = 16           # 16x16 threads each computing 4x4 outputs, k in steps of 16
RT = 4


def dot(lhs, rhs, dimension_numbers, dest, dtype):
    """out[b, m, n] = sum_k lhs(b, m, k) rhs(b, k, n). Small outputs: 16x16 shared
    tiles, one output per thread; larger ones: 64x64 tiles with 4x4 outputs per thread
    held in registers. Operands are read through the evaluator (so transposes and
    other index maps fuse into the tile loads), bounds-checked at the edges."""
    (lc, rc), (lb, rb) = dimension_numbers
    xs, ys = lhs.aval.shape, rhs.aval.shape
    xf = [i for i in range(len(xs)) if i not in lc and i not in lb]
    yf = [i for i in range(len(ys)) if i not in rc and i not in rb]
    size = lambda sh, ax: int(np.prod([sh[i] for i in ax], dtype=np.int64))  # noqa: E731
    B, M, N, K = size(xs, lb), size(xs, xf), size(ys, yf), size(xs, lc)
    dt = np.dtype(dtype)

    def a_at(ctx, bb, m, k):
        return _operand(ctx, lhs, xs, [(bb, lb), (m, xf), (k, lc)])

    def b_at(ctx, bb, k, n):
        return _operand(ctx, rhs, ys, [(bb, rb), (k, rc), (n, yf)])
    maker = _dot_blocked if M >= BM and N >= BN else _dot_simple
    return maker(a_at, b_at, B, M, N, K, dest, dt), (B, M, N, K)


def _operand(ctx, atom, shape, groups):
    """Element of a dot operand given (flat index, axes) per group: batch, free, contract."""
    full = [None] * len(shape)
    for flat, axes in groups:
        m = Index(ctx.b, [shape[a] for a in axes], flat=flat).multi() if axes else ()
        for a, v in zip(axes, m):
            full[a] = v
    return ctx.ev.value(atom, Index(ctx.b, shape, multi=full))


def _madd(ctx, dt, a, b, acc):
    if dt.kind == "f":
        return ctx.ev.em.intrinsic("llvm.fma", a, b, acc)
    return ctx.b.add(ctx.b.mul(a, b), acc)


def _lt(b, v, n):
    return b.icmp_signed("<", v, c64(n))


def _dot_simple(a_at, b_at, B, M, N, K, dest, dt):
    ty_ = llvm_type(dt)
    nk = -(-K // TILE)

    def body(ctx):
        b = ctx.b
        tx, ty = ctx.i64("tid", "x"), ctx.i64("tid", "y")
        sa = T.shared_array(b.module, f"{ctx.name}_a", ty_, TILE * TILE)
        sb = T.shared_array(b.module, f"{ctx.name}_b", ty_, TILE * TILE)
        col = b.add(b.mul(ctx.i64("ctaid", "x"), c64(TILE)), tx)
        zero = constant(dt, 0)
        slot = b.add(b.mul(ty, c64(TILE)), tx)

        def per_tile(bb, rt):
            row = b.add(b.mul(rt, c64(TILE)), ty)

            def ktile(kt, acc):
                ka = b.add(b.mul(kt, c64(TILE)), tx)
                kb = b.add(b.mul(kt, c64(TILE)), ty)
                a = ctx.when(b.and_(_lt(b, row, M), _lt(b, ka, K)), lambda: a_at(ctx, bb, row, ka), zero)
                bv = ctx.when(b.and_(_lt(b, kb, K), _lt(b, col, N)), lambda: b_at(ctx, bb, kb, col), zero)
                b.store(a, T.shared_ptr(b, sa, slot))
                b.store(bv, T.shared_ptr(b, sb, slot))
                T.barrier(b)
                for kk in range(TILE):
                    av = b.load(T.shared_ptr(b, sa, b.add(b.mul(ty, c64(TILE)), c64(kk))))
                    bw = b.load(T.shared_ptr(b, sb, b.add(c64(kk * TILE), tx)))
                    acc = _madd(ctx, dt, av, bw, acc)
                T.barrier(b)
                return (acc,)
            acc, = ctx.loop(c64(0), c64(nk), c64(1), ktile, (zero,))
            pos = b.add(b.mul(b.add(b.mul(bb, c64(M)), row), c64(N)), col)
            ctx.when(b.and_(_lt(b, row, M), _lt(b, col, N)), lambda: store(b, ctx.arg(dest), dt, pos, acc))
        _tiles(ctx, B, -(-M // TILE), per_tile)
        return (-(-N // TILE), max(1, min(-(-M // TILE), MAX_GRID)), max(1, min(B, MAX_GRID))), (TILE, TILE, 1)
    return body


def _tiles(ctx, B, row_tiles, fn):
    """Block-uniform loops over batches (grid z) and row tiles (grid y)."""
    ctx.loop(ctx.i64("ctaid", "z"), c64(B), ctx.i64("nctaid", "z"),
             lambda bb: ctx.loop(ctx.i64("ctaid", "y"), c64(row_tiles), ctx.i64("nctaid", "y"),
                                 lambda rt: fn(bb, rt)))


def _dot_blocked(a_at, b_at, B, M, N, K, dest, dt):
    ty_ = llvm_type(dt)
    nk = -(-K // BK)
    pitch = BM + 1  # As is stored k-major with a padded row: no bank conflicts on stores

    def body(ctx):
        b = ctx.b
        tx, ty = ctx.i64("tid", "x"), ctx.i64("tid", "y")
        tid = b.add(b.mul(ty, c64(TILE)), tx)
        sa = T.shared_array(b.module, f"{ctx.name}_a", ty_, BK * pitch)
        sb = T.shared_array(b.module, f"{ctx.name}_b", ty_, BK * BN)
        col0 = b.mul(ctx.i64("ctaid", "x"), c64(BN))
        zero = constant(dt, 0)

        def per_tile(bb, rt):
            row0 = b.mul(rt, c64(BM))

            def ktile(kt, *acc):
                k0 = b.mul(kt, c64(BK))
                for r in range(BM * BK // (TILE * TILE)):
                    lin = b.add(tid, c64(r * TILE * TILE))
                    m, k = b.udiv(lin, c64(BK)), b.urem(lin, c64(BK))
                    gm, gk = b.add(row0, m), b.add(k0, k)
                    v = ctx.when(b.and_(_lt(b, gm, M), _lt(b, gk, K)), lambda: a_at(ctx, bb, gm, gk), zero)
                    b.store(v, T.shared_ptr(b, sa, b.add(b.mul(k, c64(pitch)), m)))
                for r in range(BK * BN // (TILE * TILE)):
                    lin = b.add(tid, c64(r * TILE * TILE))
                    k, n = b.udiv(lin, c64(BN)), b.urem(lin, c64(BN))
                    gk, gn = b.add(k0, k), b.add(col0, n)
                    v = ctx.when(b.and_(_lt(b, gk, K), _lt(b, gn, N)), lambda: b_at(ctx, bb, gk, gn), zero)
                    b.store(v, T.shared_ptr(b, sb, lin))
                T.barrier(b)
                acc = list(acc)
                for kk in range(BK):
                    av = [b.load(T.shared_ptr(b, sa, b.add(ty, c64(kk * pitch + TILE * i))))
                          for i in range(RT)]
                    bw = [b.load(T.shared_ptr(b, sb, b.add(tx, c64(kk * BN + TILE * j))))
                          for j in range(RT)]
                    for i in range(RT):
                        for j in range(RT):
                            acc[i * RT + j] = _madd(ctx, dt, av[i], bw[j], acc[i * RT + j])
                T.barrier(b)
                return tuple(acc)
            acc = ctx.loop(c64(0), c64(nk), c64(1), ktile, (zero,) * (RT * RT))
            for i in range(RT):
                row = b.add(row0, b.add(ty, c64(TILE * i)))
                for j in range(RT):
                    col = b.add(col0, b.add(tx, c64(TILE * j)))
                    pos = b.add(b.mul(b.add(b.mul(bb, c64(M)), row), c64(N)), col)
                    ctx.when(b.and_(_lt(b, row, M), _lt(b, col, N)),
                             lambda pos=pos, v=acc[i * RT + j]: store(b, ctx.arg(dest), dt, pos, v))
        _tiles(ctx, B, -(-M // BM), per_tile)
        return (-(-N // BN), max(1, min(-(-M // BM), MAX_GRID)), max(1, min(B, MAX_GRID))), (TILE, TILE, 1)
    return body


# ---------------------------------------------------------------- cumsum

def cumsum(x, axis, reverse, dest, dtype):
    shape = x.aval.shape
    n = shape[axis]
    lines_shape = tuple(d for i, d in enumerate(shape) if i != axis)
    lines = int(np.prod(lines_shape, dtype=np.int64))
    add = SCALAR["add"]

    def body(ctx):
        b = ctx.b
        start, stride = global_thread(ctx)

        def line(li):
            lm = list(Index(b, lines_shape, flat=li).multi())

            def step(j, acc):
                pos = b.sub(c64(n - 1), j) if reverse else j
                idx = Index(b, shape, multi=lm[:axis] + [pos] + lm[axis:])
                acc = add(ctx.ev.em, dtype, acc, ctx.ev.value(x, idx))
                store(b, ctx.arg(dest), dtype, idx.flat(), acc)
                return (acc,)
            ctx.loop(c64(0), c64(n), c64(1), step, (constant(dtype, 0),))
        ctx.loop(start, c64(lines), stride, line)
        return _grid_for(lines), (BLOCK, 1, 1)
    return body


# ---------------------------------------------------------------- scatter

def scatter(operand_aval, indices, updates, axes, mode, combine, dest, dtype):
    """Combine ``updates`` into ``dest`` (already holding the operand)."""
    ushape = updates.aval.shape
    nb = indices.aval.ndim - 1
    total = int(np.prod(ushape, dtype=np.int64))
    dt = np.dtype(dtype)
    atomic = combine == "add" and dt != np.bool_
    oshape = operand_aval.shape

    def body(ctx):
        b = ctx.b

        def one(i):
            m = Index(b, ushape, flat=i).multi()
            batch, rest = list(m[:nb]), iter(m[nb:])
            valid = ir.Constant(I1, 1)
            row = {}
            for j, ax in enumerate(axes):
                raw = ctx.ev.value(indices, Index(b, indices.aval.shape, multi=batch + [c64(j)]))
                raw = b.sext(raw, I64) if raw.type != I64 else raw
                d = oshape[ax]
                valid = b.and_(valid, b.and_(b.icmp_signed(">=", raw, c64(0)),
                                             b.icmp_signed("<", raw, c64(d))))
                row[ax] = clamp(b, raw, 0, max(d - 1, 0))
            om = [row[a] if a in row else next(rest) for a in range(len(oshape))]
            pos = Index(b, oshape, multi=om).flat()
            upd = ctx.ev.value(updates, Index(b, ushape, flat=i))

            def write():
                if atomic:
                    ptr = T.global_ptr(b, ctx.arg(dest), mem_type(dt), pos)
                    b.atomic_rmw("fadd" if dt.kind == "f" else "add", ptr, upd, "monotonic")
                    return
                if combine == "set":
                    new = upd
                else:
                    old = load(b, ctx.arg(dest), dt, pos)
                    fn = {"add": "add", "mul": "mul", "min": "min", "max": "max"}[combine]
                    new = SCALAR[fn](ctx.ev.em, dt, old, upd)
                store(b, ctx.arg(dest), dt, pos, new)
            if mode == "drop":
                ctx.when(valid, write)
            else:
                write()
        if atomic:
            start, stride = global_thread(ctx)
            ctx.loop(start, c64(total), stride, one)
            return _grid_for(total), (BLOCK, 1, 1)
        # sequential: one thread applies the updates in order (exact last-write-wins)
        ctx.loop(c64(0), c64(total), c64(1), one)
        return (1, 1, 1), (1, 1, 1)
    return body
