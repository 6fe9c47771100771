"""Control flow in the CPU back end: ``cond`` becomes branches, ``while`` and ``scan``
become native loops in the same LLVM function (no Python between iterations).

Each is a kernel lowering (see ``codegen.cpu``) that emits its sub-graphs with
``fl.emit_graph``:

* ``cond``: a ``switch`` on the clamped index; every branch writes the same output
  buffers.
* ``while`` / ``scan``: each carry has two buffers, the eqn's output buffer and one
  scratch buffer, used alternately as "current" and "next" (the body reads one and
  writes the other, so a body that permutes or reverses its carry is safe; the swap
  is two pointer stores, no copy). ``scan`` knows its trip count, so it starts in the
  buffer that makes the last iteration land in the output; ``while`` copies once at
  the end (a no-op copy when it already ends there).
* ``scan`` reads ``xs[i]`` in place (a pointer into the stacked operand) and writes
  ``ys[i]`` straight into the preallocated stacked output.

Scratch memory of the bodies comes from the function's arena, planned statically:
a body is emitted once, so its buffers are reused by every iteration.
"""
from __future__ import annotations

from llvmlite import ir

from tracer.ir import Graph, ShapedArray

from . import scalar as S
from .cpu import Buffer, register_kernel
from .loops import I64, Idx, c64, for_range

PTR = ir.PointerType()


def _operand(fl, atom, owned: list) -> Buffer:
    """The buffer holding ``atom``; a fused value or literal is materialised in scratch."""
    bf = fl.buffer_of(atom)
    if bf is not None:
        return bf
    buf, off, nb = fl.scratch(atom.aval)
    owned.append((off, nb))
    fl.write_all(atom, buf)
    return buf


def _scratch(fl, aval, owned: list) -> Buffer:
    buf, off, nb = fl.scratch(aval)
    owned.append((off, nb))
    return buf


def _emit(fl, graph: Graph, ins: list[Buffer], outs: list[Buffer]) -> None:
    """Emit a sub-graph; afterwards forget its variables (a graph may be emitted again
    elsewhere, e.g. one per branch, and its buffers are only valid here)."""
    fl.memo = {}
    fl.emit_graph(graph, ins, outs)
    fl.memo = {}
    for v in graph.invars:
        fl.bufs.pop(v, None)
    for eqn in graph.eqns:
        for v in eqn.outvars:
            fl.bufs.pop(v, None)
            fl.producer.pop(v, None)


def _copy(fl, src: Buffer, dst: Buffer) -> None:
    b, n = fl.b, src.aval.size
    if n == 1:
        dst.store(b, c64(0), src.load(b, Idx(())))
    elif n > 1:
        for_range(b, n, lambda i: dst.store(b, i, src.load(b, Idx((n,), linear=i))))


def _free(fl, owned: list) -> None:
    for off, nb in owned:
        fl.arena.free(off, nb)


class _Carry:
    """A loop carry in two buffers used alternately: pointer slots for "current" and
    "next", swapped after each iteration."""

    def __init__(self, fl, aval, first: Buffer, second: Buffer):
        self.aval = aval
        self.cur_slot, self.nxt_slot = fl.alloca(PTR), fl.alloca(PTR)
        fl.b.store(first.ptr, self.cur_slot)
        fl.b.store(second.ptr, self.nxt_slot)

    def current(self, b) -> Buffer:
        return Buffer(b.load(self.cur_slot, typ=PTR), self.aval)

    def next(self, b) -> Buffer:
        return Buffer(b.load(self.nxt_slot, typ=PTR), self.aval)

    def swap(self, b, cur: Buffer, nxt: Buffer) -> None:
        b.store(nxt.ptr, self.cur_slot)
        b.store(cur.ptr, self.nxt_slot)


def _slice(b, buf: Buffer, i) -> Buffer:
    """``buf[i]`` of a stacked buffer, in place."""
    aval = ShapedArray(buf.aval.shape[1:], buf.aval.dtype)
    off = b.mul(i, c64(aval.size), flags=("nuw", "nsw")) if aval.size != 1 else i
    ptr = b.gep(buf.ptr, [off], inbounds=True, source_etype=S.mem_type(aval.dtype))
    return Buffer(ptr, aval)


# ---------------------------------------------------------------- cond

@register_kernel("cond")
def _cond(fl, eqn, outs):
    branches = eqn.params["branches"]
    owned: list = []
    b = fl.b
    fl.memo = {}
    index = fl.read(eqn.invars[0], Idx(()))
    ops = [_operand(fl, a, owned) for a in eqn.invars[1:]]
    n = len(branches)
    if index.type != I64:
        index = b.sext(index, I64)
    # out-of-range indices clamp to the first / last branch (as the reference does)
    index = b.select(b.icmp_signed("<", index, c64(0)), c64(0), index)
    blocks = [b.append_basic_block(f"branch{i}") for i in range(n)]
    merge = b.append_basic_block("cond_end")
    sw = b.switch(index, blocks[-1])
    for i in range(n - 1):
        sw.add_case(c64(i), blocks[i])
    for blk, g in zip(blocks, branches):
        b.position_at_end(blk)
        _emit(fl, g, ops, outs)
        b.branch(merge)
    b.position_at_end(merge)
    _free(fl, owned)


# ---------------------------------------------------------------- while

@register_kernel("while")
def _while(fl, eqn, outs):
    p = eqn.params
    ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
    owned: list = []
    b = fl.b
    cc = [_operand(fl, a, owned) for a in eqn.invars[:ncc]]
    bc = [_operand(fl, a, owned) for a in eqn.invars[ncc:ncc + nbc]]
    carries = []
    for atom, out in zip(eqn.invars[ncc + nbc:], outs):
        tmp = _scratch(fl, out.aval, owned)
        fl.memo = {}
        fl.write_all(atom, out)  # the carry starts in the output buffer
        carries.append(_Carry(fl, out.aval, out, tmp))
    pred = _scratch(fl, ShapedArray((), "bool"), owned)
    header = b.append_basic_block("while_cond")
    body = b.append_basic_block("while_body")
    done = b.append_basic_block("while_end")
    b.branch(header)
    b.position_at_end(header)
    cur = [c.current(b) for c in carries]
    _emit(fl, p["cond_graph"], cc + cur, [pred])
    b.cbranch(pred.load(b, Idx(())), body, done)
    b.position_at_end(body)
    nxt = [c.next(b) for c in carries]
    _emit(fl, p["body_graph"], bc + cur, nxt)
    for c, x, y in zip(carries, cur, nxt):
        c.swap(b, x, y)
    b.branch(header)
    b.position_at_end(done)
    for src, out in zip(cur, outs):  # the trip count's parity is known only at run time
        _copy(fl, src, out)
    _free(fl, owned)


# ---------------------------------------------------------------- scan

@register_kernel("scan")
def _scan(fl, eqn, outs):
    p = eqn.params
    nk, nc, length = p["num_consts"], p["num_carry"], p["length"]
    owned: list = []
    b = fl.b
    consts = [_operand(fl, a, owned) for a in eqn.invars[:nk]]
    xs = [_operand(fl, a, owned) for a in eqn.invars[nk + nc:]]
    carries = []
    for atom, out in zip(eqn.invars[nk:nk + nc], outs[:nc]):
        tmp = _scratch(fl, out.aval, owned)
        # after an even number of swaps "current" is where we started
        first, second = (out, tmp) if length % 2 == 0 else (tmp, out)
        fl.memo = {}
        fl.write_all(atom, first)
        carries.append(_Carry(fl, out.aval, first, second))
    ys = outs[nc:]

    def step(i):
        cur = [c.current(b) for c in carries]
        nxt = [c.next(b) for c in carries]
        _emit(fl, p["body"], consts + cur + [_slice(b, x, i) for x in xs],
              nxt + [_slice(b, y, i) for y in ys])
        for c, x, y in zip(carries, cur, nxt):
            c.swap(b, x, y)
    for_range(b, length, step, reverse=p["reverse"])
    _free(fl, owned)
