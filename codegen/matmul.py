"""The CPU matmul kernel: C[b] = A[b] @ B[b] on packed row-major buffers
(A: B x M x K, B: B x K x N, C: B x M x N).

Floats use a register-blocked micro-kernel written with explicit LLVM vectors:
a tile of ``MR`` rows x ``NV`` vectors of C stays in registers while k runs, each
step broadcasting MR elements of A and loading NV vectors of a row of B (one
fused multiply-add per accumulator). Columns are processed in panels of ``NC``
so the panel of B being streamed stays in L2. Edges (rows or columns that do
not fill a tile) and integer dtypes take the plain i-k-j loop, whose inner loop
the loop vectoriser widens.

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


def _lanes(dt) -> int:
    return 16 if dt.itemsize == 4 else 8


def emit_matmul(fl, A, Bm, C, nb: int, M: int, K: int, N: int) -> None:
    b = fl.b
    dt = C.aval.dtype
    t = S.llvm_type(dt)
    zero = S.const(dt, 0)
    for_range(b, nb * M * N, lambda i: C.store(b, i, zero))
    if K == 0:
        return
    floaty = dt.kind == "f"
    W = _lanes(dt) * NV if floaty else 0
    Mt = (M // MR) * MR if floaty and N >= W else 0
    Nt = (N // W) * W if Mt else 0

    def per_batch(bi):
        a0 = b.mul(bi, c64(M * K), flags=NUW)
        b0 = b.mul(bi, c64(K * N), flags=NUW)
        c0 = b.mul(bi, c64(M * N), flags=NUW)
        if Mt:
            _tiled(fl, A, Bm, C, a0, b0, c0, Mt, K, N, Nt, dt)
        # edges: rows >= Mt (all columns) and, for rows < Mt, columns >= Nt
        _simple(fl, A, Bm, C, a0, b0, c0, Mt, M, 0, N, K, N, t, floaty)
        if Mt and Nt < N:
            _simple(fl, A, Bm, C, a0, b0, c0, 0, Mt, Nt, N, K, N, t, floaty)
    for_range(b, nb, per_batch)


def _simple(fl, A, Bm, C, a0, b0, c0, r0, r1, j0, j1, K, N, t, floaty):
    """C[r0:r1, j0:j1] += A[r0:r1, :] @ B[:, j0:j1] (i-k-j order)."""
    b = fl.b
    if r1 <= r0 or j1 <= j0:
        return

    def row(i):
        ci = b.add(c0, b.mul(i, c64(N), flags=NUW), flags=NUW)
        ai = b.add(a0, b.mul(i, c64(K), flags=NUW), flags=NUW)

        def kstep(k):
            a = _ld(b, A, b.add(ai, k, flags=NUW), t)
            bk = b.add(b0, b.mul(k, c64(N), flags=NUW), flags=NUW)

            def col(j):
                cp = A_addr(b, C, b.add(ci, j, flags=NUW), t)
                bv = _ld(b, Bm, b.add(bk, j, flags=NUW), t)
                cur = b.load(cp, typ=t)
                if floaty:
                    new = b.fadd(cur, b.fmul(a, bv, flags=("contract",)), flags=("contract",))
                else:
                    new = b.add(cur, b.mul(a, bv))
                b.store(new, cp)
            for_range(b, j1, col, start=j0)
        for_range(b, K, kstep)
    for_range(b, r1, row, start=r0)


def A_addr(b, buf, lin, t):
    return b.gep(buf.ptr, [lin], inbounds=True, source_etype=t)


def _ld(b, buf, lin, t):
    return b.load(A_addr(b, buf, lin, t), typ=t)


def _tiled(fl, A, Bm, C, a0, b0, c0, Mt, K, N, Nt, dt):
    """The register-blocked part: rows [0, Mt), columns [0, Nt), K in blocks of KC
    (full blocks in a loop, then the remainder)."""
    from tracer.ir import ShapedArray
    b = fl.b
    full, rest = divmod(K, KC)
    packed, off, nbytes = fl.scratch(ShapedArray((min(K, KC) * min(NC, Nt),), dt))
    if full:
        for_range(b, full, lambda kb: _tile_pass(fl, A, Bm, C, a0, b0, c0, Mt, K, N, Nt, dt,
                                                 b.mul(kb, c64(KC), flags=NUW), KC, packed))
    if rest:
        _tile_pass(fl, A, Bm, C, a0, b0, c0, Mt, K, N, Nt, dt, c64(full * KC), rest, packed)
    fl.arena.free(off, nbytes)


def _tile_pass(fl, A, Bm, C, a0, b0, c0, Mt, K, N, Nt, dt, k_start, klen, packed):
    """C[:Mt, :Nt] += A[:Mt, k_start:k_start+klen] @ B[k_start:k_start+klen, :Nt]. Each
    column panel of this block of B is first copied to ``packed`` as [NC/W][klen][W], so
    the micro-kernel streams contiguous memory (rows of B a power of two apart would
    alias in the cache)."""
    b = fl.b
    t = S.llvm_type(dt)
    L = _lanes(dt)
    vt = ir.VectorType(t, L)
    W = L * NV
    name = f"llvm.fma.v{L}{'f32' if dt.itemsize == 4 else 'f64'}"
    fma = fl.module.globals.get(name) or ir.Function(fl.module, ir.FunctionType(vt, [vt, vt, vt]), name=name)
    undef = ir.Constant(vt, None)
    mask = ir.Constant(ir.VectorType(ir.IntType(32), L), [0] * L)
    accs = [[fl.alloca(vt) for _ in range(NV)] for _ in range(MR)]

    def add(*xs):
        r = xs[0]
        for x in xs[1:]:
            r = b.add(r, x, flags=NUW)
        return r

    def panel(jp):
        j_start = b.mul(jp, c64(NC), flags=NUW)

        def pack_tile(jb):
            j = add(j_start, b.mul(jb, c64(W), flags=NUW))
            with b.if_then(b.icmp_signed("<", j, c64(Nt))):
                def pack_row(kk):
                    src = add(b0, b.mul(add(k_start, kk), c64(N), flags=NUW), j)
                    dst = b.mul(add(b.mul(jb, c64(klen), flags=NUW), kk), c64(W), flags=NUW)
                    for v in range(NV):
                        val = b.load(A_addr(b, Bm, add(src, c64(v * L)), t), typ=vt, align=dt.itemsize)
                        b.store(val, A_addr(b, packed, add(dst, c64(v * L)), t), align=dt.itemsize)
                for_range(b, klen, pack_row)
        for_range(b, -(-min(NC, Nt) // W), pack_tile)

        def rows(ib):
            i0 = b.mul(ib, c64(MR), flags=NUW)

            def cols(jb):
                j = add(j_start, b.mul(jb, c64(W), flags=NUW))
                with b.if_then(b.icmp_signed("<", j, c64(Nt))):  # the last panel may be short
                    crows = [add(c0, b.mul(add(i0, c64(r)), c64(N), flags=NUW), j) for r in range(MR)]
                    arows = [add(a0, b.mul(add(i0, c64(r)), c64(K), flags=NUW), k_start) for r in range(MR)]
                    for r in range(MR):  # C was zeroed; each block of K adds to it
                        for v in range(NV):
                            cp = A_addr(b, C, add(crows[r], c64(v * L)), t)
                            b.store(b.load(cp, typ=vt, align=dt.itemsize), accs[r][v])

                    pbase = b.mul(jb, c64(klen * W), flags=NUW)

                    def kstep(kk):
                        brow = add(pbase, b.mul(kk, c64(W), flags=NUW))
                        bvs = [b.load(A_addr(b, packed, add(brow, c64(v * L)), t), typ=vt, align=dt.itemsize)
                               for v in range(NV)]
                        for r in range(MR):
                            a = _ld(b, A, add(arows[r], kk), t)
                            av = b.shuffle_vector(b.insert_element(undef, a, ir.Constant(ir.IntType(32), 0)),
                                                  undef, mask)
                            for v in range(NV):
                                b.store(b.call(fma, [av, bvs[v], b.load(accs[r][v], typ=vt)]), accs[r][v])
                    for_range(b, klen, kstep)
                    for r in range(MR):
                        for v in range(NV):
                            b.store(b.load(accs[r][v], typ=vt),
                                    A_addr(b, C, add(crows[r], c64(v * L)), t), align=dt.itemsize)
            for_range(b, -(-min(NC, Nt) // W), cols)
        for_range(b, Mt // MR, rows)
    for_range(b, -(-Nt // NC), panel)
