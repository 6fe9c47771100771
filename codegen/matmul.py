"""The CPU matmul kernel: C[b] = A[b] @ B[b], C a contiguous B x M x N buffer, A and B
strided views (``View``) of their buffers, so transposed operands (``x.T @ g``,
``g @ W.T`` in a backward pass) are read in place, never copied to a transposed
array first.

Floats with at least ``MR`` rows use a register-blocked micro-kernel written with
explicit LLVM vectors: a tile of ``MR`` rows x ``NV`` vectors of C stays in registers
while k runs, each step broadcasting MR elements of A and loading NV vectors of a
packed row of B (one fused multiply-add per accumulator). For each block of ``KC``
rows of B, the columns are processed in panels of ``NC``: each panel is first copied
to a contiguous scratch area as [tile][k][W] (rows of B a power of two apart would
alias in the cache), transposing 16 x 16 blocks in registers when B is stored
k-contiguous (one packing routine per dtype, layout and width in a module, called
with run-time strides, like the register tile). The last column tile may be narrower
than a tile: its packed columns are zero and C is read and written with masked
vector accesses; the last rows use a tile of fewer rows. The first block of k starts from zero accumulators, so C is
never cleared in a separate pass. Fewer than MR rows (a matrix-vector product, where
packing B would only double the memory traffic) and integer dtypes take the plain
i-k-j loop, whose inner loop the loop vectoriser widens.

Numerics: the products are accumulated in k order with fused multiply-adds, so
results differ from numpy's BLAS in the last bits (BLAS also reorders).
"""
from __future__ import annotations

from llvmlite import ir

from . import scalar as S
from .loops import NUW, c64, for_range

MR = 8          # rows of the register tile
NV = 2          # vectors of the register tile per row
NC = 256        # column panel (elements)
KC = 256        # block of the contraction dimension

I1, I32 = ir.IntType(1), ir.IntType(32)


class View:
    """Element (b, r, c) of a 3-D operand lives at ``b*sb + r*sr + c*sc`` in ``buf``."""

    __slots__ = ("buf", "sb", "sr", "sc")

    def __init__(self, buf, sb: int, sr: int, sc: int):
        self.buf, self.sb, self.sr, self.sc = buf, sb, sr, sc


def _lanes(dt) -> int:
    return 16 if dt.itemsize == 4 else 8


def _lin(b, *terms):
    """Sum of ``value * stride`` terms (``(value, stride)`` pairs or plain values),
    skipping zero strides and constant zeros."""
    acc = None
    for t in terms:
        v, s = t if isinstance(t, tuple) else (t, 1)
        if s == 0 or (isinstance(v, ir.Constant) and v.constant == 0):
            continue
        term = v if s == 1 else b.mul(v, c64(s), flags=NUW)
        acc = term if acc is None else b.add(acc, term, flags=NUW)
    return acc if acc is not None else c64(0)


def _gep(b, buf, lin, t):
    return b.gep(buf.ptr, [lin], inbounds=True, source_etype=t)


def emit_matmul(fl, A: View, Bm: View, C, nb: int, M: int, K: int, N: int,
                epilogue=None, dims2: bool = False) -> None:
    """C = A @ B; then, when given, ``epilogue(linear, dims)`` rewrites each element of C
    in place (while a tile is in cache; ``dims`` is [row, col] when ``dims2``: C is a
    2-D output)."""
    b = fl.b
    dt = C.aval.dtype
    t = S.llvm_type(dt)
    zero = S.const(dt, 0)
    tiled = dt.kind == "f" and M >= MR and K > 0
    if not tiled:
        for_range(b, nb * M * N, lambda i: C.store(b, i, zero))
    if M * N == 0:
        return
    if K == 0:
        if epilogue is not None:
            for_range(b, nb * M * N, lambda i: epilogue(i))
        return

    def per_batch(bi):
        a0, b0, c0 = _lin(b, (bi, A.sb)), _lin(b, (bi, Bm.sb)), _lin(b, (bi, M * N))
        if tiled:
            _tiled(fl, A, Bm, C, a0, b0, c0, M, K, N, dt, epilogue, dims2 and nb == 1)
        else:
            _simple(fl, A, Bm, C, a0, b0, c0, M, K, N, t, dt.kind == "f")
            if epilogue is not None:
                for_range(b, M * N, lambda i: epilogue(_lin(b, c0, i)))
    if nb == 1:
        per_batch(c64(0))
    else:
        for_range(b, nb, per_batch)


def _simple(fl, A, Bm, C, a0, b0, c0, M, K, N, t, floaty):
    """C += A @ B in i-k-j order (C was zeroed)."""
    b = fl.b

    def row(i):
        ci = _lin(b, c0, (i, N))
        ai = _lin(b, a0, (i, A.sr))

        def kstep(k):
            a = b.load(_gep(b, A.buf, _lin(b, ai, (k, A.sc)), t), typ=t)
            bk = _lin(b, b0, (k, Bm.sr))

            def col(j):
                cp = _gep(b, C, _lin(b, ci, j), t)
                bv = b.load(_gep(b, Bm.buf, _lin(b, bk, (j, Bm.sc)), t), typ=t)
                cur = b.load(cp, typ=t)
                if floaty:
                    new = b.fadd(cur, b.fmul(a, bv, flags=("contract",)), flags=("contract",))
                else:
                    new = b.add(cur, b.mul(a, bv))
                b.store(new, cp)
            for_range(b, N, col)
        for_range(b, K, kstep)
    for_range(b, M, row)


def _masked(fl, name, vt, lanes):
    """The ``llvm.masked.load`` / ``store`` intrinsic for ``vt`` and a constant mask of
    the first ``lanes`` lanes."""
    L = vt.count
    suffix = f"v{L}{'f32' if vt.element == S.F32 else 'f64'}.p0"
    mask = ir.Constant(ir.VectorType(I1, L), [1 if i < lanes else 0 for i in range(L)])
    full = f"llvm.masked.{name}.{suffix}"
    fn = fl.module.globals.get(full)
    if fn is None:
        ptr = ir.PointerType()
        ft = (ir.FunctionType(vt, [ptr, I32, mask.type, vt]) if name == "load"
              else ir.FunctionType(ir.VoidType(), [vt, ptr, I32, mask.type]))
        fn = ir.Function(fl.module, ft, name=full)
    return fn, mask


def _vload(fl, ptr, vt, lanes, align):
    """A vector load of the first ``lanes`` lanes (the others are zero)."""
    b = fl.b
    if lanes == vt.count:
        return b.load(ptr, typ=vt, align=align)
    if lanes == 0:
        return ir.Constant(vt, [0.0] * vt.count)
    fn, mask = _masked(fl, "load", vt, lanes)
    return b.call(fn, [ptr, ir.Constant(I32, align), mask, ir.Constant(vt, [0.0] * vt.count)])


def _vstore(fl, val, ptr, lanes, align):
    b = fl.b
    if lanes == val.type.count:
        b.store(val, ptr, align=align)
    elif lanes:
        fn, mask = _masked(fl, "store", val.type, lanes)
        b.call(fn, [val, ptr, ir.Constant(I32, align), mask])


def _tiled(fl, A, Bm, C, a0, b0, c0, M, K, N, dt, epilogue, dims2):
    """C = A @ B for one batch, K in blocks of KC (full blocks in a loop, then the
    remainder), columns in panels of whole tiles, then the last narrow tile."""
    from tracer.ir import ShapedArray
    b = fl.b
    L = _lanes(dt)
    W = L * NV
    TP = NC // W                     # tiles per panel
    ntf, tw = divmod(N, W)           # full tiles, width of the last one
    kc = -(-K // -(-K // KC))        # blocks of k as even as possible (784: 4 x 196)
    full, rest = divmod(K, kc)
    slots = max(1, min(TP, ntf))
    packed, off, nbytes = fl.scratch(ShapedArray((min(K, kc) * slots * W,), dt))
    g = dict(fl=fl, A=A, Bm=Bm, C=C, a0=a0, b0=b0, c0=c0, M=M, N=N, dt=dt, packed=packed,
             epilogue=epilogue, dims2=dims2)

    def kblock(k0, klen, first, last):
        if ntf:
            def panel(jp):
                def each_tile(body):
                    def tile(jt):
                        jtile = _lin(b, (jp, TP), jt)
                        if ntf % TP:  # the last panel is short
                            with b.if_then(b.icmp_signed("<", jtile, c64(ntf))):
                                body(jt, _lin(b, (jtile, W)))
                        else:
                            body(jt, _lin(b, (jtile, W)))
                    for_range(b, slots, tile, unroll=False)
                each_tile(lambda jt, j: _pack(g, k0, klen, j, W, _lin(b, (jt, klen * W))))

                j_panel = _lin(b, (jp, NC // W * W))
                if ntf % TP and ntf > TP:  # the last panel is short
                    tiles = b.sub(c64(ntf), _lin(b, (jp, TP)))
                    tiles = b.select(b.icmp_signed("<", tiles, c64(TP)), tiles, c64(TP))
                    width = _lin(b, (tiles, W))
                else:
                    width = slots * W

                def rows(i0, mr):
                    each_tile(lambda jt, j: _micro(g, i0, mr, j, NV, L, _lin(b, (jt, klen * W)),
                                                   k0, klen, first, last, False))
                    _epilogue_rows(g, i0, mr, j_panel, width, last)
                _row_tiles(b, M, rows)
            for_range(b, -(-ntf // TP), panel, unroll=False)
        if tw:
            j = c64(ntf * W)
            _pack(g, k0, klen, j, tw, c64(0))
            nv = -(-tw // L)
            _row_tiles(b, M, lambda i0, mr: _micro(g, i0, mr, j, nv, tw - (nv - 1) * L, c64(0),
                                                   k0, klen, first, last, True))

    if full:
        for_range(b, full, lambda kb: kblock(
            _lin(b, (kb, kc)), kc, b.icmp_signed("==", kb, c64(0)),
            ir.Constant(I1, 0) if rest else b.icmp_signed("==", kb, c64(full - 1))), unroll=False)
    if rest:
        kblock(c64(full * kc), rest, ir.Constant(I1, 1 if full == 0 else 0), ir.Constant(I1, 1))
    fl.arena.free(off, nbytes)


def _row_tiles(b, M, rows):
    """``rows(i0, mr)`` for the full tiles of MR rows (a loop), then the remaining rows."""
    if M // MR:
        for_range(b, M // MR, lambda ib: rows(_lin(b, (ib, MR)), MR), unroll=False)
    if M % MR:
        rows(c64(M // MR * MR), M % MR)


def _pack(g, k0, klen, j, width, dst):
    """Copy B[k0:k0+klen, j:j+width] to ``packed`` at ``dst`` as [klen][W] (columns past
    ``width`` are zero), by a call of the packing routine shared by every panel of this
    dtype, layout and width in the module."""
    fl, Bm, dt, packed = g["fl"], g["Bm"], g["dt"], g["packed"]
    b = fl.b
    t = S.llvm_type(dt)
    L = _lanes(dt)
    layout = "rows" if Bm.sc == 1 else ("cols" if Bm.sr == 1 and width == L * NV else "any")
    fn = _pack_fn(fl, dt, layout, width)
    src = _gep(b, Bm.buf, _lin(b, g["b0"], (k0, Bm.sr), (j, Bm.sc)), t)
    b.call(fn, [src, _gep(b, packed, dst, t), c64(Bm.sr), c64(Bm.sc), c64(klen)])


def _shared_function(fl, name: str, argtypes) -> tuple[ir.Function, bool]:
    """The module's internal, never-inlined ``void name(argtypes)``, emitted once per
    module; returns (function, whether it still needs a body)."""
    fn = fl.module.globals.get(name)
    if fn is not None:
        return fn, False
    fn = ir.Function(fl.module, ir.FunctionType(ir.VoidType(), argtypes), name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    return fn, True


def _pack_fn(fl, dt, layout, width):
    """``pack(src, dst, sr, sc, klen)``: dst[kk*W + w] = src[kk*sr + w*sc] for kk < klen,
    w < width, and 0 for width <= w < W. ``layout`` "rows": sc == 1 (vector copies);
    "cols": sr == 1 and width == W (L x L transposes in registers, then scalar rows
    for the last klen % L); "any": scalar copies."""
    t = S.llvm_type(dt)
    L = _lanes(dt)
    W = L * NV
    vt = ir.VectorType(t, L)
    isz = dt.itemsize
    I64 = ir.IntType(64)
    ptr = ir.PointerType()
    fn, new = _shared_function(fl, f"__tracer_pack_{t}_{layout}_{width}", [ptr, ptr, I64, I64, I64])
    if not new:
        return fn
    fn.attributes.add("nounwind")
    src0, dst, sr, sc, klen = fn.args
    src0.add_attribute("noalias")   # B and the packing scratch never overlap
    dst.add_attribute("noalias")
    saved = fl.b
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    fl.b = b
    gep = lambda p, lin: b.gep(p, [lin], inbounds=True, source_etype=t)  # noqa: E731
    try:
        if layout == "rows":
            def row(kk):
                src = b.mul(kk, sr, flags=NUW)
                dp = b.mul(kk, c64(W), flags=NUW)
                for v in range(NV):
                    lanes = max(0, min(L, width - v * L))
                    val = _vload(fl, gep(src0, _lin(b, src, c64(v * L))), vt, lanes, isz) \
                        if lanes else ir.Constant(vt, [0.0] * L)
                    b.store(val, gep(dst, _lin(b, dp, c64(v * L))), align=64)
            _for_value(b, klen, row)
            b.ret_void()
            return fn
        k_done = c64(0)
        if layout == "cols":
            nblk = b.udiv(klen, c64(L))
            k_done = b.mul(nblk, c64(L), flags=NUW)

            def block(kb):
                def group(gv):  # a loop, not unrolled: one copy of the transpose
                    col0 = b.mul(gv, c64(L), flags=NUW)
                    src = _lin(b, (kb, L), b.mul(col0, sc, flags=NUW))
                    rows = [b.load(gep(src0, _lin(b, src, b.mul(c64(c), sc, flags=NUW))),
                                   typ=vt, align=isz) for c in range(L)]
                    for r, col in enumerate(_transpose(b, rows, L)):
                        b.store(col, gep(dst, _lin(b, (kb, L * W), c64(r * W), col0)), align=64)
                for_range(b, NV, group, unroll=False)
            with b.if_then(b.icmp_unsigned(">", nblk, c64(0))):
                _for_value(b, nblk, block)

        def scalar_row(kk):
            src = b.mul(kk, sr, flags=NUW)
            dp = b.mul(kk, c64(W), flags=NUW)
            for_range(b, width, lambda w: b.store(
                b.load(gep(src0, _lin(b, src, b.mul(w, sc, flags=NUW))), typ=t),
                gep(dst, _lin(b, dp, w))))
            for_range(b, W, lambda w: b.store(S.const(dt, 0), gep(dst, _lin(b, dp, w))),
                      start=width)
        with b.if_then(b.icmp_unsigned("<", k_done, klen)):
            _for_range_value(b, k_done, klen, scalar_row)
        b.ret_void()
    finally:
        fl.b = saved
    return fn


def _for_range_value(b, lo, hi, body):
    """``for i in range(lo, hi): body(i)`` for i64 values with ``lo < hi``."""
    pre = b.block
    loop = b.append_basic_block("loop")
    after = b.append_basic_block("endloop")
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(ir.IntType(64), name="i")
    i.add_incoming(lo, pre)
    body(i)
    nxt = b.add(i, c64(1), flags=NUW)
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed(">=", nxt, hi), after, loop)
    b.position_at_end(after)


def _epilogue_rows(g, i0, mr, j, width, last):
    """The epilogue on C[i0:i0+mr, j:j+width] (``width`` an int or an i64 value), when
    ``last``. A loop over rows around a loop over columns long enough that LLVM
    vectorises it rather than unrolling it and vectorising the rows with gathers."""
    epi, b = g["epilogue"], g["fl"].b
    if epi is None or (isinstance(last, ir.Constant) and not last.constant):
        return

    def row(r):
        i = _lin(b, i0, r)
        crow = _lin(b, g["c0"], (i, g["N"]), j)
        col = lambda w: epi(_lin(b, crow, w), [i, _lin(b, j, w)] if g["dims2"] else None)  # noqa: E731
        if isinstance(width, int):
            for_range(b, width, col)
        else:
            _for_value(b, width, col)

    if isinstance(last, ir.Constant):
        for_range(b, mr, row, unroll=False)
    else:
        with b.if_then(last):
            for_range(b, mr, row, unroll=False)


def _for_value(b, n, body):
    """``for i in range(n): body(i)`` for an i64 value ``n`` >= 1."""
    pre = b.block
    loop = b.append_basic_block("loop")
    after = b.append_basic_block("endloop")
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(ir.IntType(64), name="i")
    i.add_incoming(c64(0), pre)
    body(i)
    nxt = b.add(i, c64(1), flags=NUW)
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed(">=", nxt, n), after, loop)
    b.position_at_end(after)


def _prefetch(fl, buf, lin, nbytes, write):
    """Prefetch the cache lines of ``nbytes`` from element ``lin`` of ``buf``."""
    b = fl.b
    name = "llvm.prefetch.p0"
    fn = fl.module.globals.get(name) or ir.Function(
        fl.module, ir.FunctionType(ir.VoidType(), [ir.PointerType(), I32, I32, I32]), name=name)
    base = b.gep(buf.ptr, [lin], inbounds=True, source_etype=S.mem_type(buf.aval.dtype))
    for off in list(range(0, nbytes, 64)) + ([nbytes - 1] if nbytes % 64 else []):
        p = b.gep(base, [c64(off)], source_etype=ir.IntType(8))
        b.call(fn, [p, ir.Constant(I32, write), ir.Constant(I32, 3), ir.Constant(I32, 1)])


def _transpose(b, rows, L):
    """Transpose an L x L block held as L vectors: log2(L) stages, stage s swapping bit s
    of the row and column indices (two two-source shuffles per pair of vectors)."""
    v = list(rows)
    vmask = ir.VectorType(I32, L)
    s = 1
    while s < L:
        lo = ir.Constant(vmask, [i if not i & s else L + i - s for i in range(L)])
        hi = ir.Constant(vmask, [i | s if not i & s else L + i for i in range(L)])
        new = list(v)
        for r in range(L):
            if not r & s:
                new[r] = b.shuffle_vector(v[r], v[r | s], lo)
                new[r | s] = b.shuffle_vector(v[r], v[r | s], hi)
        v = new
        s <<= 1
    return v


def _micro_fn(fl, dt, mr, nv, last_lanes):
    """The register-tile kernel shared by every tile of this shape and dtype in the
    module (one copy instead of one per call site: the unrolled tile is most of a
    matmul's code): ``tile(A, P, C, a_sr, a_sc, ldc, klen, first)`` sets C[r, 0:width]
    (row r at ``C + r*ldc``; the last vector ``last_lanes`` wide) to
    ``(first ? 0 : C) + sum_k A[r*a_sr + k*a_sc] * P[k*W:(k+1)*W]`` for r < mr. (A
    variant for k-contiguous A, ``a_sc`` == 1, was no faster and doubled this code.)"""
    t = S.llvm_type(dt)
    L = _lanes(dt)
    W = L * NV
    vt = ir.VectorType(t, L)
    isz = dt.itemsize
    I64 = ir.IntType(64)
    ptr = ir.PointerType()
    fn, new = _shared_function(fl, f"__tracer_mm_{t}_{mr}x{nv}_{last_lanes}",
                               [ptr, ptr, ptr, I64, I64, I64, I64, I1])
    if not new:
        return fn
    fn.attributes.add("nounwind")
    Ap, Pp, Cp, a_sr, a_sc, ldc, klen, first = fn.args
    entry, body = fn.append_basic_block("entry"), fn.append_basic_block("body")
    saved = fl.b, fl._alloca_b
    b = ir.IRBuilder(body)
    fl.b, fl._alloca_b = b, ir.IRBuilder(entry)
    try:
        fma_name = f"llvm.fma.v{L}{'f32' if isz == 4 else 'f64'}"
        fma = fl.module.globals.get(fma_name) or ir.Function(
            fl.module, ir.FunctionType(vt, [vt, vt, vt]), name=fma_name)
        undef = ir.Constant(vt, None)
        bmask = ir.Constant(ir.VectorType(I32, L), [0] * L)
        lanes = [L] * (nv - 1) + [last_lanes]
        accs = [[fl.alloca(vt) for _ in range(nv)] for _ in range(mr)]
        arows = [b.mul(a_sr, c64(r), flags=NUW) for r in range(mr)]
        cptr = [[b.gep(Cp, [_lin(b, (b.mul(ldc, c64(r), flags=NUW), 1), c64(v * L))], inbounds=True,
                       source_etype=t) for v in range(nv)] for r in range(mr)]
        with b.if_else(first) as (then, otherwise):
            with then:
                for r in range(mr):
                    for v in range(nv):
                        b.store(ir.Constant(vt, [0.0] * L), accs[r][v])
            with otherwise:
                for r in range(mr):
                    for v in range(nv):
                        b.store(_vload(fl, cptr[r][v], vt, lanes[v], isz), accs[r][v])

        def kstep(kk):
            brow = b.mul(kk, c64(W), flags=NUW)
            bvs = [b.load(b.gep(Pp, [_lin(b, brow, c64(v * L))], inbounds=True, source_etype=t),
                          typ=vt, align=64) for v in range(nv)]
            ak = b.mul(kk, a_sc, flags=NUW)
            for r in range(mr):
                a = b.load(b.gep(Ap, [_lin(b, arows[r], ak)], inbounds=True, source_etype=t), typ=t)
                av = b.shuffle_vector(b.insert_element(undef, a, ir.Constant(I32, 0)), undef, bmask)
                for v in range(nv):
                    b.store(b.call(fma, [av, bvs[v], b.load(accs[r][v], typ=vt)]), accs[r][v])
        _for_value(b, klen, kstep)
        for r in range(mr):
            for v in range(nv):
                _vstore(fl, b.load(accs[r][v], typ=vt), cptr[r][v], lanes[v], isz)
        b.ret_void()
        fl._alloca_b.branch(body)
    finally:
        fl.b, fl._alloca_b = saved
    return fn


def _micro(g, i0, mr, j, nv, last_lanes, pbase, k0, klen, first, last, epilogue_here):
    """C[i0:i0+mr, j:j+nv*L] (the last vector ``last_lanes`` wide) = (first ? 0 : C) +
    A[i0:i0+mr, k0:k0+klen] @ packed tile at ``pbase``; then, if ``last`` (the last
    block of k) and ``epilogue_here``, the epilogue on that tile (else the caller runs
    it on a row of tiles)."""
    fl, A, C, dt, packed = g["fl"], g["A"], g["C"], g["dt"], g["packed"]
    b = fl.b
    t = S.llvm_type(dt)
    L = _lanes(dt)
    isz = dt.itemsize
    crows = [_lin(b, g["c0"], (_lin(b, i0, c64(r)), g["N"]), j) for r in range(mr)]
    epi = g["epilogue"]
    width = (nv - 1) * L + last_lanes
    if epi is not None and not (isinstance(last, ir.Constant) and not last.constant):
        # the epilogue's same-shape operands, fetched while the k loop runs (else each
        # tile's epilogue stalls on cache misses)
        for buf in getattr(epi, "prefetch", ()):
            for r in range(mr):
                _prefetch(fl, buf, crows[r], width * isz, 0)
    with b.if_then(first):
        for r in range(mr):  # C is about to be written: fetch its lines for writing
            _prefetch(fl, C, crows[r], width * isz, 1)
    fn = _micro_fn(fl, dt, mr, nv, last_lanes)
    a_tile = _gep(b, A.buf, _lin(b, g["a0"], (i0, A.sr), (k0, A.sc)), t)
    b.call(fn, [a_tile, _gep(b, packed, pbase, t), _gep(b, C, crows[0], t), c64(A.sr), c64(A.sc),
                c64(g["N"]), klen if isinstance(klen, ir.Value) else c64(klen), first])
    if epi is None or (isinstance(last, ir.Constant) and not last.constant) or not epilogue_here:
        return

    def tile_epilogue():  # one loop per row, each over contiguous columns (vectorised)
        for r in range(mr):
            i = _lin(b, i0, c64(r))
            for_range(b, width, lambda w: epi(_lin(b, crows[r], w),
                                              [i, _lin(b, j, w)] if g["dims2"] else None))
    if isinstance(last, ir.Constant):
        tile_epilogue()
    else:
        with b.if_then(last):
            tile_epilogue()
