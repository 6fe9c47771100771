"""Lower an IR graph to one LLVM function for the host CPU.

The function has a C ABI: ``i32 f(ptr in0, ..., ptr const0, ..., ptr out0, ...)``,
one pointer per graph input, graph constant and output (contiguous row-major
buffers), and returns 0, or 1 when its scratch arena could not be allocated.

How a graph becomes loops (the elemental approach of XLA's CPU back end):

* Every primitive has an entry in ``LOWERINGS`` (keyed by primitive name). An
  *elemental* lowering computes one element of its output at an index, reading
  its operands at derived indices (``fl.read``): elementwise math, broadcasts,
  reshape, transpose, rev, slice, pad, concatenate, iota, gather, select,
  convert. A *kernel* lowering writes whole output buffers with its own loops:
  reductions, argmax/argmin, cumsum, dot_general, scatters (and control flow,
  which other modules register here with ``register_kernel``).
* A value is *materialised* in a buffer when it is a graph input, constant or
  output, the output of a kernel, or an elemental value that several kernels
  would otherwise recompute (see ``_plan``). Every other value is *fused*: its
  consumer's loop computes it in registers, so a chain of elementwise ops and
  broadcasts is one loop nest with no intermediate arrays, and a reduction
  computes its elementwise producers inside its own loop.
* Scratch buffers live in one arena allocated at entry; their offsets are planned
  statically from the buffers' lifetimes (a freed block is reused by a later
  buffer that fits).
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
from llvmlite import ir

from tracer import dtypes
from tracer.ir import Graph, Literal, Var

from . import scalar as S
from .loops import I64, NUW, Idx, c64, for_range, loop_metadata, loop_nest

try:
    from . import mathlib as _mathlib
except ImportError:  # pragma: no cover - the math library is a sibling module
    _mathlib = None

I1, I8, I32 = ir.IntType(1), ir.IntType(8), ir.IntType(32)
PTR = ir.PointerType()


class Lowering:
    """``kind`` is "elemental" (``fn(fl, eqn, idx) -> value``) or "kernel"
    (``fn(fl, eqn, out_buffers) -> None``)."""

    def __init__(self, kind: str, fn: Callable):
        self.kind, self.fn = kind, fn


LOWERINGS: dict[str, Lowering] = {}


def register_elemental(*names):
    def reg(fn):
        for n in names:
            LOWERINGS[n] = Lowering("elemental", fn)
        return fn
    return reg


def register_kernel(*names):
    """Register a kernel lowering ``fn(fl, eqn, outs)``: ``outs`` are ``Buffer``s for
    ``eqn.outvars``; read inputs with ``fl.read(atom, Idx)`` or ``fl.buffer_of(atom)``,
    emit sub-graphs with ``fl.emit_graph(graph, in_buffers, out_buffers)``."""
    def reg(fn):
        for n in names:
            LOWERINGS[n] = Lowering("kernel", fn)
        return fn
    return reg


class Buffer:
    """A contiguous row-major array in memory."""

    __slots__ = ("ptr", "aval")

    def __init__(self, ptr, aval):
        self.ptr, self.aval = ptr, aval

    def address(self, b, linear):
        return b.gep(self.ptr, [linear], inbounds=True, source_etype=S.mem_type(self.aval.dtype))

    def load(self, b, idx: Idx):
        v = b.load(self.address(b, idx.linear(b)), typ=S.mem_type(self.aval.dtype))
        return b.trunc(v, I1) if self.aval.dtype == dtypes.bool_ else v

    def store(self, b, linear, value):
        if self.aval.dtype == dtypes.bool_:
            value = b.zext(value, I8)
        b.store(value, self.address(b, linear))


class _Arena:
    """Static offsets of scratch buffers; freed blocks are reused (best fit)."""

    def __init__(self):
        self.top = 0
        self.free_blocks: list[tuple[int, int]] = []

    def alloc(self, nbytes: int) -> int:
        need = max(64, -(-nbytes // 64) * 64)
        fits = [blk for blk in self.free_blocks if blk[1] >= need]
        if fits:
            blk = min(fits, key=lambda t: t[1])
            self.free_blocks.remove(blk)
            if blk[1] > need:
                self.free_blocks.append((blk[0] + need, blk[1] - need))
            return blk[0]
        off = self.top
        self.top += need
        return off

    def free(self, off: int, nbytes: int):
        self.free_blocks.append((off, max(64, -(-nbytes // 64) * 64)))


ELEMENTWISE = set(S.SCALAR)


class FunctionLowering:
    """State while one LLVM function is emitted; also the scalar emitter (``em``)
    that ``codegen.scalar`` rules receive."""

    def __init__(self, graph: Graph, name: str):
        self.graph = graph
        self.module = ir.Module(name=name)
        self.module.triple = ""
        n = len(graph.invars) + len(graph.constvars) + len(graph.outvars)
        self.fn = ir.Function(self.module, ir.FunctionType(I32, [PTR] * n), name=name)
        for a in self.fn.args:
            a.add_attribute("noalias")
        self.entry = self.fn.append_basic_block("entry")
        body = self.fn.append_basic_block("body")
        self.b = ir.IRBuilder(body)
        self._alloca_b = ir.IRBuilder(self.entry)
        self.arena = _Arena()
        self.arena_size = ir.GlobalVariable(self.module, I64, name="arena_size")
        self.arena_size.global_constant = True
        self.arena_size.linkage = "internal"
        self.arena_ptr = None
        self.bufs: dict = {}
        self.producer: dict = {}
        self.memo: dict = {}
        self._needs_dims: dict = {}
        self.depth = 0
        self.epilogue = None  # see _epilogues
        self._outlined: list = []  # functions of outlined kernel groups
        # TRACER_PROFILE: cycles per top-level kernel group, accumulated into ``counters``
        self.profile_labels: list | None = None
        self.counters = None

    # ---------------------------------------------------------------- scalar emitter hooks

    def math(self, name: str, *args):
        if _mathlib is not None and name in getattr(_mathlib, "FUNCTIONS", ()):
            return _mathlib.emit(self.b, name, *args)
        return self._libm(name, *args)

    def _libm(self, name, *args):
        t = args[0].type
        if name == "sqrt":
            return self.intrinsic("llvm.sqrt", *args)
        if name == "rsqrt":
            return self.b.fdiv(ir.Constant(t, 1.0), self.intrinsic("llvm.sqrt", *args))
        if name == "logistic":
            e = self._libm("exp", self.b.fneg(args[0]))
            return self.b.fdiv(ir.Constant(t, 1.0), self.b.fadd(ir.Constant(t, 1.0), e))
        cname = name + ("f" if t == S.F32 else "")
        fn = self.module.globals.get(cname) or ir.Function(
            self.module, ir.FunctionType(t, [t] * len(args)), name=cname)
        return self.b.call(fn, args)

    def intrinsic(self, name: str, *args, ret=None):
        """Call an overloaded LLVM intrinsic (suffixes derived from the types)."""
        def suffix(t):
            return {S.F32: "f32", S.F64: "f64"}.get(t) or f"i{t.width}"
        t = args[0].type
        rt = ret or t
        full = f"{name}.{suffix(rt)}.{suffix(t)}" if ret is not None else f"{name}.{suffix(t)}"
        fn = self.module.globals.get(full)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(rt, [a.type for a in args]), name=full)
        return self.b.call(fn, args)

    def alloca(self, typ):
        """A stack slot in the entry block (promoted to a register by mem2reg)."""
        return self._alloca_b.alloca(typ)

    # ---------------------------------------------------------------- reading values

    def buffer_of(self, atom) -> Buffer | None:
        return self.bufs.get(atom) if isinstance(atom, Var) else None

    def read(self, atom, idx: Idx):
        """The value of ``atom`` at ``idx`` (a register value; bool is i1)."""
        if isinstance(atom, Literal):
            return S.const(atom.aval.dtype, atom.val.item())
        buf = self.bufs.get(atom)
        if buf is not None:
            return buf.load(self.b, idx)
        key = (atom, id(idx))
        hit = self.memo.get(key)
        if hit is not None and hit[0] is idx:
            return hit[1]
        eqn = self.producer[atom]
        val = LOWERINGS[eqn.prim.name].fn(self, eqn, idx)
        self.memo[key] = (idx, val)
        return val

    def needs_dims(self, atom) -> bool:
        """Whether computing ``atom`` elementally needs per-dimension indices (else a
        flat loop over the linear index serves)."""
        if not isinstance(atom, Var) or atom in self.bufs or atom.aval.shape == ():
            return False
        if atom not in self._needs_dims:
            eqn = self.producer[atom]
            name = eqn.prim.name
            if name in ELEMENTWISE or name == "reshape":
                r = any(self.needs_dims(a) for a in eqn.invars)
            elif name == "broadcast_in_dim":
                r = eqn.invars[0].aval.shape != ()
            else:
                r = True
            self._needs_dims[atom] = r
        return self._needs_dims[atom]

    def write_all(self, atoms, outs):
        """One loop nest computing ``atoms`` (one or several values of one shape)
        everywhere and storing them into ``outs``; values they share are computed once
        per element."""
        if not isinstance(atoms, list):
            atoms, outs = [atoms], [outs]
        shape = outs[0].aval.shape
        b = self.b

        def store_all(idx):
            for a, o in zip(atoms, outs):
                o.store(b, idx.linear(b), self.read(a, idx))
        self.memo = {}
        if shape == ():
            store_all(Idx(()))
        elif not any(self.needs_dims(a) for a in atoms):
            for_range(b, outs[0].aval.size, lambda i: store_all(Idx(shape, linear=i)))
        else:
            loop_nest(b, shape, lambda dims: store_all(Idx(shape, dims=dims)))
        self.memo = {}


    # ---------------------------------------------------------------- scratch memory

    def scratch(self, aval) -> tuple[Buffer, int, int]:
        """A scratch buffer for ``aval``: (buffer, arena offset, bytes); give it back with
        ``fl.arena.free(offset, bytes)`` after the last kernel that reads it."""
        nbytes = aval.size * aval.dtype.itemsize
        off = self.arena.alloc(nbytes)
        self._arena_base()  # the arena is allocated on entry, only if needed
        ptr = self._alloca_b.gep(self.arena_ptr, [c64(off)], inbounds=True, source_etype=I8)
        return Buffer(ptr, aval), off, nbytes

    # ---------------------------------------------------------------- graphs

    def emit_graph(self, graph: Graph, in_bufs: list[Buffer], out_bufs: list[Buffer]):
        """Emit code computing ``graph`` from ``in_bufs`` into ``out_bufs``. A graph may
        be emitted more than once (e.g. a sub-graph called twice): what an earlier
        emission knew about its variables is forgotten first."""
        for eqn in graph.eqns:
            for v in eqn.outvars:
                self.bufs.pop(v, None)
                self.producer.pop(v, None)
        self._needs_dims = {}
        for v, bf in zip(graph.invars, in_bufs):
            self.bufs[v] = bf
        materialise, kernels, group_info = _plan(graph)
        out_first = {}
        for v, bf in zip(graph.outvars, out_bufs):
            if isinstance(v, Var) and v not in self.bufs and v not in out_first:
                out_first[v] = bf
        for eqn in graph.eqns:
            low = LOWERINGS.get(eqn.prim.name)
            if low is None:
                raise NotImplementedError(f"the CPU back end has no lowering for primitive "
                                          f"{eqn.prim.name!r}")
            if low.kind == "elemental" and eqn.outvars[0] not in materialise:
                self.producer[eqn.outvars[0]] = eqn
        reads = [self._buffers_read(eqn, materialise) for eqn in kernels]
        kernels, reads, epilogues, group_info = self._epilogues(graph, kernels, reads, group_info)
        assert all(len(x) == len(kernels) for x in group_info)  # one entry per kernel
        # last kernel position reading each buffer, for arena reuse
        last_use: dict = {}
        for pos, rd in enumerate(reads):
            for v in rd:
                last_use[v] = pos
        for v in graph.outvars:
            if isinstance(v, Var):
                last_use[v] = len(kernels)
        owned: dict = {}
        self.depth += 1
        groups = list(_groups(kernels, reads, *group_info))
        outline = self.depth == 1 and sum(
            _outlinable(kernels[f]) for f, _ in groups) >= OUTLINE_MIN_GROUPS
        if outline:
            rank = {v: i for i, v in enumerate(
                [*graph.invars, *graph.constvars, *(o for e in graph.eqns for o in e.outvars)])}
        for first, last in groups:
            group = kernels[first:last + 1]
            t0 = self._tick() if self.depth == 1 else None
            outs = []
            epi = epilogues.get(first)
            for eqn in group:
                outs.append([])
                for v in (eqn.outvars if epi is None else epi.outvars):
                    if v in out_first:
                        bf = out_first[v]
                    else:
                        bf, off, nb = self.scratch(v.aval)
                        owned[v] = (off, nb)
                    outs[-1].append(bf)
            low = LOWERINGS[group[0].prim.name]
            outer = None
            if outline and _outlinable(group[0]):
                read = sorted(set().union(*reads[first:last + 1]), key=lambda v: rank.get(v, -1))
                outer, outs = self._enter_outlined(read, outs)
            if low.kind == "elemental":
                for eqn in group:
                    self.producer[eqn.outvars[0]] = eqn
                self.write_all([e.outvars[0] for e in group], [o[0] for o in outs])
                for eqn in group:
                    del self.producer[eqn.outvars[0]]
            else:
                self.memo = {}
                self.epilogue = epi
                low.fn(self, group[0], outs[0])
                self.epilogue = None
                self.memo = {}
            if outer is not None:
                outs = self._leave_outlined(outer)
            for eqn, bfs in zip(group, outs):
                for v, bf in zip(eqn.outvars if epi is None else epi.outvars, bfs):
                    self.bufs[v] = bf
            if t0 is not None:
                self._tock(t0, group)
            for v, (off, nb) in list(owned.items()):
                if last_use.get(v, -1) <= last:
                    self.arena.free(off, nb)
                    del owned[v]
        self.depth -= 1
        # outputs that are inputs, constants, literals or repeated: copy
        for v, bf in zip(graph.outvars, out_bufs):
            if isinstance(v, Var) and out_first.get(v) is bf:
                continue
            self.write_all(v, bf)
        for off, nb in owned.values():
            self.arena.free(off, nb)

    def _enter_outlined(self, read, outs):
        """Start emitting one top-level kernel group as its own ``noinline`` function
        (LLVM's function-level analyses and register allocation then grow with the
        group, not with the whole graph), called from the entry function. Its
        parameters are the distinct buffers the group reads or writes, all
        ``noalias``: at the top level a buffer is an entry argument (``noalias``
        there too) or an arena block, and the arena gives a group's outputs blocks
        disjoint from every block still live (a block is freed only after the last
        group reading it, never reused in place), so two distinct parameters never
        overlap; a buffer both read and written by the group (a loop reading a value
        it wrote earlier, at the same index) is one parameter. The arena's base is a
        last parameter (not ``noalias``) for scratch the kernel allocates itself
        (packed matmul panels), also disjoint from the live blocks. Returns the
        caller's state and ``outs`` with the function's buffers."""
        ptrs: dict = {}  # id(pointer in the caller) -> (pointer, index)
        # a fixed parameter order (the IR should not depend on set order): outputs, then
        # what is read in graph order
        bufs = {v: self.bufs[v] for v in read if v in self.bufs}
        for bf in [bf for o in outs for bf in o] + [bufs[v] for v in read if v in bufs]:
            ptrs.setdefault(id(bf.ptr), (bf.ptr, len(ptrs)))
        self._arena_base()
        n = len(ptrs)
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR] * (n + 1)),
                         name=f"{self.fn.name}.k{len(self._outlined)}")
        self._outlined.append(fn)
        fn.linkage = "internal"
        fn.attributes.add("noinline")
        fn.attributes.add("nounwind")
        for a in fn.args[:n]:
            a.add_attribute("noalias")
        entry = fn.append_basic_block("entry")
        body = fn.append_basic_block("body")
        self.b.call(fn, [p for p, _ in ptrs.values()] + [self.arena_ptr])
        outer = (self.b, self._alloca_b, self.arena_ptr, dict(bufs), outs)
        self.b, self._alloca_b = ir.IRBuilder(body), ir.IRBuilder(entry)
        self.arena_ptr = fn.args[n]
        inner = lambda bf: Buffer(fn.args[ptrs[id(bf.ptr)][1]], bf.aval)  # noqa: E731
        for v, bf in bufs.items():
            self.bufs[v] = inner(bf)
        return outer, [[inner(bf) for bf in o] for o in outs]

    def _leave_outlined(self, outer):
        """Finish the function ``_enter_outlined`` started; back to the caller."""
        self.b.ret_void()
        self._alloca_b.branch(self._alloca_b.function.blocks[1])
        self.b, self._alloca_b, self.arena_ptr, bufs, outs = outer
        self.bufs.update(bufs)
        return outs

    def _arena_base(self):
        """Allocate the arena on entry now if nothing has yet (outlined kernels take its
        base as an argument)."""
        if self.arena_ptr is None:
            ab = self._alloca_b
            self.arena_ptr = ab.call(_declare(self.module, "aligned_alloc", PTR, [I64, I64]),
                                     [c64(64), ab.load(self.arena_size, typ=I64)])

    def _epilogues(self, graph, kernels, reads, per_kernel=()):
        """Output fusion: a ``dot_general`` whose result ``v`` is read only by one
        materialised elementwise value ``o`` of the same shape and dtype (e.g. the SGD
        update ``w - lr * (x.T @ g)``, or a ReLU of ``x @ w + b``) computes ``o`` itself,
        applying ``o``'s elementwise code to each tile of ``v`` while it is in cache
        (``epilogue_fn``), so ``v`` gets no buffer and ``o`` no pass of its own. Needs
        everything else ``o`` reads to be written before the matmul. Returns the kernels
        and their reads without the fused ``o``s, {position of the dot: o's eqn}, and the
        lists in ``per_kernel`` (one entry per kernel) without the ``o``s' entries."""
        outs = {v for v in graph.outvars if isinstance(v, Var)}
        written = {v: p for p, e in enumerate(kernels) for v in e.outvars}
        readers: dict = {}
        for p, rd in enumerate(reads):
            for v in rd:
                readers.setdefault(v, []).append(p)
        fused: dict = {}  # dot position -> o position
        for p, eqn in enumerate(kernels):
            v = eqn.outvars[0]
            if eqn.prim.name != "dot_general" or v in outs or not v.aval.shape:
                continue
            rd = readers.get(v, [])
            if len(rd) != 1 or rd[0] in fused.values():
                continue
            q = rd[0]
            o_eqn = kernels[q]
            o = o_eqn.outvars[0]
            if (LOWERINGS[o_eqn.prim.name].kind != "elemental" or o.aval.shape != v.aval.shape
                    or o.aval.dtype != v.aval.dtype
                    or any(written.get(r, -1) >= p for r in reads[q] if r is not v)
                    or not self._pointwise_of(o_eqn, v)):
                continue
            fused[p] = q
        if not fused:
            return kernels, reads, {}, per_kernel
        gone = set(fused.values())
        new_k, new_r, epi = [], [], {}
        for p, (eqn, rd) in enumerate(zip(kernels, reads)):
            if p in gone:
                continue
            if p in fused:
                epi[len(new_k)] = kernels[fused[p]]
                rd = rd | (reads[fused[p]] - {eqn.outvars[0]})
            new_k.append(eqn)
            new_r.append(rd)
        kept = tuple([x for p, x in enumerate(lst) if p not in gone] for lst in per_kernel)
        return new_k, new_r, epi, kept

    def _pointwise_of(self, o_eqn, v) -> bool:
        """Whether every path from ``o_eqn`` back to ``v`` runs through elementwise
        equations of ``v``'s shape (so ``o`` at an index reads ``v`` at that index only)."""
        memo: dict = {}

        def walk(a):  # None: reads v other than pointwise; else whether it depends on v
            if a is v:
                return True
            if not isinstance(a, Var) or a not in self.producer:
                return False
            if a not in memo:
                memo[a] = check(self.producer[a], a)
            return memo[a]

        def check(eqn, out):
            deps = [walk(x) for x in eqn.invars]
            if any(d is None for d in deps):
                return None
            if not any(deps):
                return False
            ok = eqn.prim.name in ELEMENTWISE and out.aval.shape == v.aval.shape
            return True if ok else None
        return bool(check(o_eqn, o_eqn.outvars[0]))

    def epilogue_fn(self, v, out: Buffer):
        """For the kernel computing ``v`` when ``fl.epilogue`` is set (an elementwise eqn
        ``o`` of ``v``, see ``_epilogues``): ``apply(linear, dims=None)`` replaces ``v`` at
        that element of ``out`` by ``o``. None when there is no epilogue."""
        o_eqn, self.epilogue = self.epilogue, None
        if o_eqn is None:
            return None
        o = o_eqn.outvars[0]
        shape = o.aval.shape

        def apply(lin, dims=None):
            b = self.b
            idx = Idx(shape, dims=dims, linear=lin)
            self.memo[(v, id(idx))] = (idx, out.load(b, idx))
            self.producer[o] = o_eqn
            val = self.read(o, idx)
            del self.producer[o]
            out.store(b, lin, val)
        # buffers o reads at the same index (the matmul prefetches them per tile)
        apply.prefetch, seen, stack = [], set(), list(o_eqn.invars)
        while stack:  # (in a fixed order: the LLVM IR is a cache key)
            a = stack.pop()
            if not isinstance(a, Var) or a in seen or a is v:
                continue
            seen.add(a)
            if a in self.bufs:
                if a.aval.shape == shape:
                    apply.prefetch.append(self.bufs[a])
            elif a in self.producer:
                stack.extend(self.producer[a].invars)
        return apply

    def _tick(self):
        if self.profile_labels is None:
            return None
        return self.b.call(_declare(self.module, "llvm.readcyclecounter", I64, []), [])

    def _tock(self, t0, group):
        """Add the cycles since ``t0`` to this group's counter (TRACER_PROFILE)."""
        import numpy as _np
        k = len(self.profile_labels)
        shapes = ",".join(str(list(v.aval.shape)) for v in group[0].outvars)
        self.profile_labels.append(f"{'+'.join(e.prim.name for e in group)} -> {shapes}")
        if self.counters is None:
            self.counters = _np.zeros(4096, _np.int64)  # kept alive by the executable
        if k >= len(self.counters):
            return
        b = self.b
        dt = b.sub(self.b.call(_declare(self.module, "llvm.readcyclecounter", I64, []), []), t0)
        slot = b.inttoptr(c64(self.counters.ctypes.data + 8 * k), PTR)
        b.store(b.add(b.load(slot, typ=I64), dt), slot)

    def _buffers_read(self, eqn, materialise):
        seen, out, stack = set(), set(), [a for a in eqn.invars if isinstance(a, Var)]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in self.bufs or v in materialise:
                out.add(v)
            elif v in self.producer:
                stack.extend(a for a in self.producer[v].invars if isinstance(a, Var))
            else:
                out.add(v)
        return out


def _groups(kernels, reads, calls=None, remapped=None):
    """Runs of consecutive kernels emitted as one loop (multi-output fusion): elemental
    values of one shape, none reading a buffer written earlier in its run at another
    index (``remapped``: per kernel, the buffers it reads through an index remapping;
    ``reads`` when not given: any read), with at most ``MAX_LOOP_CALLS`` transcendental
    functions (``calls``: per kernel). Yields (first, last) positions."""
    start = 0
    written: set = set()
    total = 0
    conflicts = reads if remapped is None else remapped
    for pos, eqn in enumerate(kernels):
        c = calls[pos] if calls is not None else 0
        if pos > start:
            prev = kernels[start]
            if not (LOWERINGS[eqn.prim.name].kind == "elemental" == LOWERINGS[prev.prim.name].kind
                    and eqn.outvars[0].aval.shape == prev.outvars[0].aval.shape
                    and not (conflicts[pos] & written) and total + c <= MAX_LOOP_CALLS):
                yield start, pos - 1
                start, written, total = pos, set(), 0
        written.update(eqn.outvars)
        total += c
    if kernels:
        yield start, len(kernels) - 1


# A graph with at least this many top-level kernel groups that can be outlined emits each
# as its own function (``_enter_outlined``): -O3 and code generation then grow linearly
# with the graph instead of with the size of one function holding every loop.
OUTLINE_MIN_GROUPS = 8
_OUTLINE_KERNELS = {"reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax", "argmin",
                    "cumsum", "scatter", "scatter_add", "dot_general"}


def _outlinable(eqn) -> bool:
    """Kernels that ``_enter_outlined`` may emit as a function of their own (not control
    flow or calls, which emit sub-graphs with their own buffer bookkeeping)."""
    return LOWERINGS[eqn.prim.name].kind == "elemental" or eqn.prim.name in _OUTLINE_KERNELS


MAX_FUSION_DEPTH = 64
# At most this many transcendental functions in one fused loop (a loop of several
# kernels is cut there): LLVM's loop vectoriser and register allocator take time
# superlinear in the size of a loop body.
MAX_LOOP_CALLS = 32
_TRANSCENDENTAL = {"exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "atan",
                   "logistic", "erf", "pow", "atan2"}


_REMAP = {"reshape", "transpose", "rev", "slice", "broadcast_in_dim", "convert_element_type",
          "stop_gradient"}


def _plan(graph: Graph):
    """Which elemental values get a buffer, the ordered list of kernels (equations whose
    outputs are written to buffers) and, for ``_groups``, per kernel the number of
    transcendental functions it computes and the buffers it reads at remapped indices.

    A transcendental value fused into kernels of several loops would be computed again
    in each (with everything it depends on): such values get a buffer, and the plan is
    made again (a few rounds at most)."""
    producer = {v: e for e in graph.eqns for v in e.outvars}
    force: set = set()
    for _ in range(4):
        materialise, kernels = _plan_once(graph, force)
        fused = {v for v, e in producer.items() if v not in materialise
                 and LOWERINGS[e.prim.name].kind == "elemental"}
        cones, calls, remapped = [], [], []
        for eqn in kernels:
            cone, rem, seen = set(), set(), set()
            stack = [(a, eqn.prim.name not in ELEMENTWISE) for a in eqn.invars if isinstance(a, Var)]
            while stack:
                v, remap = stack.pop()
                if (v, remap) in seen:
                    continue
                seen.add((v, remap))
                if v in fused:
                    cone.add(v)
                    e = producer[v]
                    r = remap or e.prim.name not in ELEMENTWISE
                    stack.extend((a, r) for a in e.invars if isinstance(a, Var))
                elif remap:
                    rem.add(v)
            cones.append(cone)
            remapped.append(rem)
            calls.append(sum(producer[v].prim.name in _TRANSCENDENTAL for v in cone)
                         + (eqn.prim.name in _TRANSCENDENTAL))
        owner: dict = {}
        shared = set()
        for gi, (first, last) in enumerate(_groups(kernels, None, calls, remapped)):
            for k in range(first, last + 1):
                for v in cones[k]:
                    if owner.setdefault(v, gi) != gi and producer[v].prim.name in _TRANSCENDENTAL:
                        shared.add(v)
        if not shared - force:
            break
        force |= shared
    return materialise, kernels, (calls, remapped)


def _plan_once(graph: Graph, force: set):
    """One round of ``_plan``: the values in ``force`` get a buffer whatever else holds."""
    consumers: dict = {}
    for eqn in graph.eqns:
        for a in eqn.invars:
            if isinstance(a, Var):
                consumers.setdefault(a, []).append(eqn)
    outs = {v for v in graph.outvars if isinstance(v, Var)}
    producer = {v: e for e in graph.eqns for v in e.outvars}

    cheap_memo: dict = {}

    def trivial(v) -> bool:
        """Cheap to recompute at every use: a buffer, a 0-d value, an iota, or index
        remapping (reshape, transpose, ...) of cheap values."""
        if not isinstance(v, Var):
            return True
        e = producer.get(v)
        if e is None or v.aval.shape == () or v in materialise or LOWERINGS[e.prim.name].kind == "kernel":
            return True
        if v not in cheap_memo:
            cheap_memo[v] = e.prim.name == "iota" or (e.prim.name in _REMAP and all(
                trivial(a) for a in e.invars))
        return cheap_memo[v]

    materialise = set()
    kernels = []
    depth: dict = {}  # length of the fused chain ending at a value
    for eqn in graph.eqns:
        low = LOWERINGS.get(eqn.prim.name)
        if low is None:
            raise NotImplementedError(f"the CPU back end has no lowering for primitive {eqn.prim.name!r}")
        if low.kind == "kernel":
            kernels.append(eqn)
            continue
        v = eqn.outvars[0]
        depth[v] = 1 + max((depth.get(a, 0) for a in eqn.invars if isinstance(a, Var)), default=0)
        if depth[v] > MAX_FUSION_DEPTH:  # bound the recursion (and code size) of one loop body
            depth[v] = 0
            materialise.add(v)
            kernels.append(eqn)
            continue
        cs = consumers.get(v, [])
        expand = any(c.prim.name == "broadcast_in_dim" and c.outvars[0].aval.size > v.aval.size
                     for c in cs)
        elementwise_only = all(c.prim.name in ELEMENTWISE and c.outvars[0].aval.shape == v.aval.shape
                               for c in cs)
        if v in outs or v in force or (not trivial(v) and (expand or (len(cs) > 1 and not elementwise_only))):
            materialise.add(v)
            kernels.append(eqn)
            depth[v] = 0
    return materialise, kernels


# ---------------------------------------------------------------- top level

def _profiling() -> bool:
    import os
    return os.environ.get("TRACER_PROFILE", "").strip() not in ("", "0")


def _symbol(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name) or "f"
    return s if not s[0].isdigit() else "f_" + s


def lower(graph: Graph, name: str, info: dict | None = None) -> str:
    """LLVM IR text of the function ``name`` computing ``graph`` (see module doc).
    ``info``, when given, receives ``scratch_bytes``: the size of the planned arena."""
    fl = FunctionLowering(graph, _symbol(name))
    if info is not None and _profiling():  # (never for export: counters are in this process)
        fl.profile_labels = []
    args = list(fl.fn.args)
    nin, nc = len(graph.invars), len(graph.constvars)
    ab = fl._alloca_b
    in_bufs = [Buffer(a, v.aval) for a, v in zip(args[:nin], graph.invars)]
    for a, v in zip(args[nin:nin + nc], graph.constvars):
        fl.bufs[v] = Buffer(a, v.aval)
    out_bufs = [Buffer(a, v.aval) for a, v in zip(args[nin + nc:], graph.outvars)]
    fl.emit_graph(graph, in_bufs, out_bufs)
    aa = fl.arena_ptr
    if aa is not None:
        fl.b.call(_declare(fl.module, "free", ir.VoidType(), [PTR]), [aa])
    fl.b.ret(ir.Constant(I32, 0))
    size = fl.arena.top
    if info is not None:
        info["scratch_bytes"] = size
        if fl.profile_labels:
            info["profile"] = (fl.profile_labels, fl.counters)
    fl.arena_size.initializer = c64(size)
    if aa is None:
        ab.branch(fl.fn.blocks[1])
        return loop_metadata(str(fl.module))
    # entry: fail cleanly when the arena cannot be allocated
    fail = fl.fn.append_basic_block("oom")
    ir.IRBuilder(fail).ret(ir.Constant(I32, 1))
    isnull = ab.icmp_unsigned("==", aa, ir.Constant(PTR, None))
    ab.cbranch(ab.and_(isnull, ir.Constant(I1, 1 if size > 0 else 0)), fail, fl.fn.blocks[1])
    return loop_metadata(str(fl.module))


def _declare(module, name, ret, args):
    fn = module.globals.get(name)
    return fn or ir.Function(module, ir.FunctionType(ret, args), name=name)


# ---------------------------------------------------------------- elemental lowerings

def _fresh(aval, idx):
    return idx if aval.shape != () else Idx(())


@register_elemental(*[n for n in S.SCALAR if n not in ("select", "convert_element_type")])
def _elementwise(fl, eqn, idx):
    vals = [fl.read(a, _fresh(a.aval, idx)) for a in eqn.invars]
    return S.SCALAR[eqn.prim.name](fl, eqn.invars[0].aval.dtype, *vals, **eqn.params)


@register_elemental("select")
def _select(fl, eqn, idx):
    vals = [fl.read(a, _fresh(a.aval, idx)) for a in eqn.invars]
    return fl.b.select(*vals)


@register_elemental("convert_element_type")
def _convert(fl, eqn, idx):
    x = eqn.invars[0]
    return S.convert(fl, x.aval.dtype, eqn.params["new_dtype"], fl.read(x, _fresh(x.aval, idx)))


@register_elemental("broadcast_in_dim")
def _broadcast(fl, eqn, idx):
    x = eqn.invars[0]
    if x.aval.shape == ():
        return fl.read(x, Idx(()))
    dims = idx.dims(fl.b)
    bd = eqn.params["broadcast_dimensions"]
    return fl.read(x, Idx(x.aval.shape, dims=[dims[d] if n != 1 else c64(0)
                                              for d, n in zip(bd, x.aval.shape)]))


@register_elemental("reshape")
def _reshape(fl, eqn, idx):
    x = eqn.invars[0]
    return fl.read(x, Idx(x.aval.shape, linear=idx.linear(fl.b)) if x.aval.shape else Idx(()))


@register_elemental("transpose")
def _transpose(fl, eqn, idx):
    x = eqn.invars[0]
    dims = idx.dims(fl.b)
    inv = [0] * len(dims)
    for i, p in enumerate(eqn.params["permutation"]):
        inv[p] = dims[i]
    return fl.read(x, Idx(x.aval.shape, dims=inv))


@register_elemental("rev")
def _rev(fl, eqn, idx):
    x = eqn.invars[0]
    dims = list(idx.dims(fl.b))
    for d in eqn.params["dimensions"]:
        dims[d] = fl.b.sub(c64(x.aval.shape[d] - 1), dims[d])
    return fl.read(x, Idx(x.aval.shape, dims=dims))


@register_elemental("slice")
def _slice(fl, eqn, idx):
    x = eqn.invars[0]
    b = fl.b
    dims = []
    for v, s, st in zip(idx.dims(b), eqn.params["start_indices"], eqn.params["strides"]):
        if st != 1:
            v = b.mul(v, c64(st), flags=NUW)
        dims.append(b.add(v, c64(s), flags=NUW) if s else v)
    return fl.read(x, Idx(x.aval.shape, dims=dims))


def _clamp(b, v, n):
    """``v`` clamped into [0, n-1] (n > 0): a safe address whatever ``v`` is."""
    v = b.select(b.icmp_signed("<", v, c64(0)), c64(0), v)
    return b.select(b.icmp_signed(">", v, c64(n - 1)), c64(n - 1), v)


@register_elemental("pad")
def _pad(fl, eqn, idx):
    x, padval = eqn.invars
    b = fl.b
    pv = fl.read(padval, Idx(()))
    if x.aval.size == 0:
        return pv
    valid = ir.Constant(I1, 1)
    dims = []
    for v, n, (lo, _hi, it) in zip(idx.dims(b), x.aval.shape, eqn.params["padding_config"]):
        t = b.sub(v, c64(lo))
        ok = b.icmp_signed(">=", t, c64(0))
        if it:
            ok = b.and_(ok, b.icmp_signed("==", b.srem(t, c64(it + 1)), c64(0)))
            t = b.sdiv(t, c64(it + 1))
        ok = b.and_(ok, b.icmp_signed("<", t, c64(n)))
        valid = b.and_(valid, ok)
        dims.append(_clamp(b, t, n))
    return b.select(valid, fl.read(x, Idx(x.aval.shape, dims=dims)), pv)


@register_elemental("concatenate")
def _concatenate(fl, eqn, idx):
    b = fl.b
    d = eqn.params["dimension"]
    dims = idx.dims(b)
    pieces, off = [], 0
    for x in eqn.invars:
        n = x.aval.shape[d]
        if n:
            pieces.append((x, off, n))
        off += n
    result = None
    for x, start, n in reversed(pieces):
        sub = list(dims)
        sub[d] = _clamp(b, b.sub(dims[d], c64(start)), n)
        val = fl.read(x, Idx(x.aval.shape, dims=sub))
        if result is None:
            result = val
        else:
            result = b.select(b.icmp_signed("<", dims[d], c64(start + n)), val, result)
    return result


@register_elemental("iota")
def _iota(fl, eqn, idx):
    v = idx.dims(fl.b)[eqn.params["dimension"]]
    return S.convert(fl, dtypes.int64, eqn.params["dtype"], v)


def _index_rows(fl, indices, batch_dims, axes, operand_shape):
    """Per indexed axis: (clamped index, in-range flag), reading ``indices``."""
    b = fl.b
    rows = []
    for j, a in enumerate(axes):
        ix = fl.read(indices, Idx(indices.aval.shape, dims=list(batch_dims) + [c64(j)]))
        if ix.type != I64:
            ix = b.sext(ix, I64)
        n = operand_shape[a]
        ok = b.icmp_unsigned("<", ix, c64(n))
        rows.append((_clamp(b, ix, max(n, 1)), ok))
    return rows


@register_elemental("gather")
def _gather(fl, eqn, idx):
    operand, indices = eqn.invars
    axes, mode = eqn.params["axes"], eqn.params["mode"]
    b = fl.b
    nb = indices.aval.ndim - 1
    dims = idx.dims(b)
    rows = _index_rows(fl, indices, dims[:nb], axes, operand.aval.shape)
    rest = iter(dims[nb:])
    odims = [rows[axes.index(d)][0] if d in axes else next(rest) for d in range(operand.aval.ndim)]
    val = fl.read(operand, Idx(operand.aval.shape, dims=odims))
    if mode == "fill":
        ok = ir.Constant(I1, 1)
        for _, r in rows:
            ok = b.and_(ok, r)
        val = b.select(ok, val, S.const(operand.aval.dtype, 0))
    return val


# ---------------------------------------------------------------- kernels: reductions

def _identity(prim, dt):
    dt = np.dtype(dt)
    if prim == "reduce_sum":
        return 0
    if prim == "reduce_prod":
        return 1
    big = {"f": float("inf"), "b": 1}.get(dt.kind)
    if big is None:
        info = np.iinfo(dt)
        return info.min if prim == "reduce_max" else info.max
    if dt.kind == "b":
        return 0 if prim == "reduce_max" else 1
    return -big if prim == "reduce_max" else big


_COMBINE = {"reduce_sum": "add", "reduce_prod": "mul", "reduce_max": "max", "reduce_min": "min"}


def _combine(fl, name, dt, acc, v):
    """One reduction step; float sums and products carry ``reassoc`` so they vectorise."""
    if dt.kind == "f" and name in ("add", "mul"):
        return (fl.b.fadd if name == "add" else fl.b.fmul)(acc, v, flags=("reassoc",))
    if dt.kind == "f":  # NaN-propagating, and a form the loop vectoriser reduces
        return fl.intrinsic("llvm.maximum" if name == "max" else "llvm.minimum", acc, v)
    return S.SCALAR[name](fl, dt, acc, v)


@register_kernel("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")
def _reduce(fl, eqn, outs):
    x = eqn.invars[0]
    out = outs[0]
    axes = eqn.params["axes"]
    dt = x.aval.dtype
    op = _COMBINE[eqn.prim.name]
    init = S.const(dt, _identity(eqn.prim.name, dt))
    shape = x.aval.shape
    kept = [d for d in range(len(shape)) if d not in axes]
    b = fl.b
    if not shape or (shape[-1] != 1 and (len(shape) - 1) in axes) or not kept:
        # the innermost axis is reduced: accumulate in a register
        red_shape = [shape[d] for d in axes]
        acc = fl.alloca(S.llvm_type(dt))

        def per_out(odims):
            b.store(init, acc)

            def step(rdims):
                full = [None] * len(shape)
                for d, v in zip(kept, odims):
                    full[d] = v
                for d, v in zip(axes, rdims):
                    full[d] = v
                v = fl.read(x, Idx(shape, dims=full))
                b.store(_combine(fl, op, dt, b.load(acc), v), acc)
            loop_nest(b, red_shape, step)
            out.store(b, Idx(out.aval.shape, dims=odims).linear(b), b.load(acc))
        if out.aval.shape:
            loop_nest(b, out.aval.shape, per_out)
        else:
            per_out([])
        return
    # the innermost axis is kept: sweep the input in order, accumulating into the output
    for_range(b, out.aval.size, lambda i: out.store(b, i, init))

    def step(dims):
        oidx = Idx(out.aval.shape, dims=[dims[d] for d in kept]).linear(b)
        cur = out.load(b, Idx(out.aval.shape, linear=oidx))
        out.store(b, oidx, _combine(fl, op, dt, cur, fl.read(x, Idx(shape, dims=dims))))
    loop_nest(b, shape, step)


@register_kernel("argmax", "argmin")
def _argminmax(fl, eqn, outs):
    """Two vectorisable passes per output: the extreme value m (NaN if any element is
    NaN), then the smallest index holding m (or holding a NaN): numpy's first-occurrence
    and first-NaN rules."""
    x = eqn.invars[0]
    out = outs[0]
    axis = eqn.params["axis"]
    dt = x.aval.dtype
    shape = x.aval.shape
    n = shape[axis]
    b = fl.b
    op = "max" if eqn.prim.name == "argmax" else "min"
    best = fl.alloca(S.llvm_type(dt))
    besti = fl.alloca(I64)

    def per_out(odims):
        def at(i):
            full = list(odims[:axis]) + [i] + list(odims[axis:])
            return fl.read(x, Idx(shape, dims=full))
        b.store(at(c64(0)), best)
        for_range(b, n, lambda i: b.store(_combine(fl, op, dt, b.load(best), at(i)), best), start=1)
        m = b.load(best)
        b.store(c64(n), besti)

        def find(i):
            v = at(i)
            if dt.kind == "f":
                hit = b.or_(b.fcmp_ordered("==", v, m),
                            b.and_(b.fcmp_unordered("uno", m, m), b.fcmp_unordered("uno", v, v)))
            else:
                hit = b.icmp_unsigned("==", v, m)
            cand = b.select(hit, i, c64(n))
            cur = b.load(besti)
            b.store(b.select(b.icmp_signed("<", cand, cur), cand, cur), besti)
        for_range(b, n, find)
        r = S.convert(fl, dtypes.int64, eqn.params["index_dtype"], b.load(besti))
        out.store(b, Idx(out.aval.shape, dims=odims).linear(b), r)
    if out.aval.shape:
        loop_nest(b, out.aval.shape, per_out)
    else:
        per_out([])


@register_kernel("cumsum")
def _cumsum(fl, eqn, outs):
    x = eqn.invars[0]
    out = outs[0]
    axis, reverse = eqn.params["axis"], eqn.params["reverse"]
    shape = x.aval.shape
    n = shape[axis]
    if x.aval.size == 0:
        return
    b = fl.b
    dt = x.aval.dtype
    outer, inner = shape[:axis], shape[axis + 1:]
    first = n - 1 if reverse else 0

    def body(odims):
        def at_pos(p):
            def inner_body(idims):
                dims = list(odims) + [p] + list(idims)
                idx = Idx(shape, dims=dims)
                v = fl.read(x, idx)
                if p is pos0:
                    out.store(b, idx.linear(b), v)
                    return
                prev = b.add(p, c64(1)) if reverse else b.sub(p, c64(1))
                pidx = Idx(shape, dims=list(odims) + [prev] + list(idims))
                out.store(b, idx.linear(b), S.SCALAR["add"](fl, dt, out.load(b, pidx), v))
            loop_nest(b, inner, inner_body)
        pos0 = c64(first)
        at_pos(pos0)
        for_range(b, n - 1 if reverse else n, at_pos, start=0 if reverse else 1, reverse=reverse)
    loop_nest(b, outer, body)


# ---------------------------------------------------------------- kernels: scatter

@register_kernel("scatter", "scatter_add")
def _scatter(fl, eqn, outs):
    operand, indices, updates = eqn.invars
    out = outs[0]
    axes, mode = eqn.params["axes"], eqn.params["mode"]
    combine = "add" if eqn.prim.name == "scatter_add" else eqn.params["combine"]
    b = fl.b
    # copy the operand (unless it is already this buffer)
    if fl.buffer_of(operand) is not out:
        prev_memo = fl.memo
        fl.write_all(operand, out)
        fl.memo = prev_memo
    if updates.aval.size == 0 or any(operand.aval.shape[a] == 0 for a in axes):
        return
    nb = indices.aval.ndim - 1
    dt = operand.aval.dtype

    def body(udims):
        rows = _index_rows(fl, indices, udims[:nb], axes, operand.aval.shape)
        rest = iter(udims[nb:])
        odims = [rows[axes.index(d)][0] if d in axes else next(rest)
                 for d in range(operand.aval.ndim)]

        def update():
            lin = Idx(operand.aval.shape, dims=odims).linear(b)
            u = fl.read(updates, Idx(updates.aval.shape, dims=udims))
            if combine != "set":
                u = S.SCALAR[combine](fl, dt, out.load(b, Idx(out.aval.shape, linear=lin)), u)
            out.store(b, lin, u)
        if mode == "drop":
            ok = ir.Constant(I1, 1)
            for _, r in rows:
                ok = b.and_(ok, r)
            with b.if_then(ok):
                update()
        else:
            update()
    loop_nest(b, updates.aval.shape, body)


# ---------------------------------------------------------------- kernels: dot_general

def _packed(fl, x, perm, shape3):
    """``x`` transposed by ``perm`` as a contiguous buffer of ``shape3`` (B, rows, cols):
    the operand's own buffer when that is already its layout, else a scratch copy."""
    from tracer.ir import ShapedArray
    bf = fl.buffer_of(x)
    if bf is not None and list(perm) == sorted(perm):
        return bf, None
    tshape = [x.aval.shape[p] for p in perm]
    buf, off, nb = fl.scratch(ShapedArray(shape3, x.aval.dtype))

    def body(dims):
        src = [None] * len(dims)
        for i, p in enumerate(perm):
            src[p] = dims[i]
        idx = Idx(tshape, dims=dims)
        buf.store(fl.b, idx.linear(fl.b), fl.read(x, Idx(x.aval.shape, dims=src)))
    fl.memo = {}
    if tshape:
        loop_nest(fl.b, tshape, body)
    else:
        body([])
    fl.memo = {}
    return buf, (off, nb)


def _view(fl, x, groups):
    """``x`` as a strided (batch, rows, cols) ``View``, each group of axes merged into
    one (no copy when ``x`` is a buffer, even a transposed one); a fused value is first
    written to scratch in its own layout. Returns (view, scratch block or None)."""
    from .loops import strides
    from .matmul import View
    shape = x.aval.shape
    st = strides(shape)

    def merged(axes):
        axes = [a for a in axes if shape[a] != 1]
        if any(st[a] != st[n] * shape[n] for a, n in zip(axes, axes[1:])):
            return None
        return st[axes[-1]] if axes else 1
    ss = [merged(g) for g in groups]
    if None in ss:  # axes of a group not adjacent in memory: a packed copy
        size = lambda g: int(np.prod([shape[a] for a in g], dtype=np.int64))  # noqa: E731
        dims = [size(g) for g in groups]
        buf, blk = _packed(fl, x, [a for g in groups for a in g], tuple(dims))
        return View(buf, dims[1] * dims[2], dims[2], 1), blk
    buf, blk = fl.buffer_of(x), None
    if buf is None:
        buf, off, nb = fl.scratch(x.aval)
        blk = (off, nb)
        fl.write_all(x, buf)
    return View(buf, *ss), blk


@register_kernel("dot_general")
def _dot_general(fl, eqn, outs):
    x, y = eqn.invars
    out = outs[0]
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    xf = [i for i in range(x.aval.ndim) if i not in lc and i not in lb]
    yf = [i for i in range(y.aval.ndim) if i not in rc and i not in rb]
    prod = lambda ds: int(np.prod(ds, dtype=np.int64))  # noqa: E731
    B = prod([x.aval.shape[a] for a in lb])
    M = prod([x.aval.shape[a] for a in xf])
    K = prod([x.aval.shape[a] for a in lc])
    N = prod([y.aval.shape[a] for a in yf])
    if out.aval.size == 0:
        return
    a_view, a_blk = _view(fl, x, (list(lb), xf, list(lc)))
    b_view, b_blk = _view(fl, y, (list(rb), list(rc), yf))
    fl.memo = {}
    from .matmul import emit_matmul
    epi = fl.epilogue_fn(eqn.outvars[0], out)
    emit_matmul(fl, a_view, b_view, out, B, M, K, N, epi, out.aval.ndim == 2)
    for blk in (a_blk, b_blk):
        if blk is not None:
            fl.arena.free(*blk)


# ---------------------------------------------------------------- kernels: calls

@register_kernel("custom_vjp_call", "custom_jvp_call")
def _call(fl, eqn, outs):
    """A primitive that calls the graph in its ``call`` param: the graph is emitted inline
    (its custom derivative rules matter only to the transforms, not to the machine code)."""
    owned, ins = [], []
    for a in eqn.invars:
        bf = fl.buffer_of(a)
        if bf is None:
            bf, off, nb = fl.scratch(a.aval)
            owned.append((off, nb))
            fl.write_all(a, bf)
        ins.append(bf)
    fl.emit_graph(eqn.params["call"], ins, outs)
    for blk in owned:
        fl.arena.free(*blk)


def lowering_for(name: str) -> Lowering | None:
    return LOWERINGS.get(name)


from . import control_flow as _control_flow  # noqa: E402,F401  (registers cond, while, scan)
