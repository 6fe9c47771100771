"""Index arithmetic and loop emission for the CPU back end.

An ``Idx`` is a position in an array of a static shape, held lazily as a list of
per-dimension i64 values and/or one linear (row-major) i64 value; whichever form
a reader asks for is derived on demand. Elementwise chains pass one ``Idx``
through unchanged, so a fused loop over contiguous arrays never computes
per-dimension indices at all.
"""
from __future__ import annotations

import re

from llvmlite import ir

I64 = ir.IntType(64)
NUW = ("nuw", "nsw")


def c64(v: int) -> ir.Constant:
    return ir.Constant(I64, int(v))


def strides(shape) -> list[int]:
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return out[::-1]


class Idx:
    """A position in an array of ``shape``."""

    __slots__ = ("shape", "_dims", "_linear")

    def __init__(self, shape, dims=None, linear=None):
        self.shape = tuple(shape)
        if not self.shape:
            dims, linear = [], c64(0)
        self._dims = dims
        self._linear = linear

    def dims(self, b: ir.IRBuilder) -> list:
        if self._dims is None:
            lin, out = self._linear, []
            for d, s in zip(self.shape, strides(self.shape)):
                if d == 1:
                    out.append(c64(0))
                    continue
                q = b.udiv(lin, c64(s)) if s != 1 else lin
                out.append(q if s * d == _total(self.shape) else b.urem(q, c64(d)))
            self._dims = out
        return self._dims

    def linear(self, b: ir.IRBuilder):
        if self._linear is None:
            acc = None
            for v, s, d in zip(self._dims, strides(self.shape), self.shape):
                if d == 1:
                    continue
                term = v if s == 1 else b.mul(v, c64(s), flags=NUW)
                acc = term if acc is None else b.add(acc, term, flags=NUW)
            self._linear = acc if acc is not None else c64(0)
        return self._linear


def _total(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


NO_UNROLL_TAG = "tracer.nounroll."


def no_unroll(br, b: ir.IRBuilder) -> None:
    """Tag the back edge ``br`` of a loop so that LLVM does not unroll it: a placeholder
    node, one per loop, that ``loop_metadata`` turns into a self-referential loop ID
    (llvmlite cannot build one)."""
    mod = b.module
    k = getattr(mod, "_tracer_nounroll", 0)
    mod._tracer_nounroll = k + 1
    br.set_metadata("llvm.loop", mod.add_metadata([ir.MetaDataString(mod, f"{NO_UNROLL_TAG}{k}")]))


def loop_metadata(text: str) -> str:
    """Module text with the ``no_unroll`` placeholders made loop IDs
    (``!N = distinct !{!N, !{!"llvm.loop.unroll.disable"}}``)."""
    if NO_UNROLL_TAG not in text:
        return text
    nums = [int(x) for x in re.findall(r"^!(\d+) = ", text, re.M)]
    dis = f"!{max(nums) + 1}"
    text = re.sub(r'^!(\d+) = !\{ !"' + re.escape(NO_UNROLL_TAG) + r'\d+" \}$',
                  lambda m: f"!{m.group(1)} = distinct !{{!{m.group(1)}, {dis}}}", text, flags=re.M)
    return text + f'\n{dis} = !{{!"llvm.loop.unroll.disable"}}\n'


def for_range(b: ir.IRBuilder, n: int, body, start: int = 0, reverse: bool = False,
              unroll: bool = True) -> None:
    """``for i in range(start, n): body(i)`` (``reverse``: from n-1 down to start), with
    static bounds; nothing is emitted for an empty range. ``unroll=False``: LLVM must
    not unroll it (a loop around calls whose full unrolling only makes code)."""
    if n <= start:
        return
    pre = b.block
    loop = b.append_basic_block("loop")
    after = b.append_basic_block("endloop")
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(I64, name="i")
    i.add_incoming(c64(n - 1 if reverse else start), pre)
    body(i)
    if reverse:
        nxt = b.sub(i, c64(1), flags=("nsw",))
        done = b.icmp_signed("<", nxt, c64(start))
    else:
        nxt = b.add(i, c64(1), flags=NUW)
        done = b.icmp_signed(">=", nxt, c64(n))
    i.add_incoming(nxt, b.block)
    br = b.cbranch(done, after, loop)
    if not unroll:
        no_unroll(br, b)
    b.position_at_end(after)


def loop_nest(b: ir.IRBuilder, shape, body) -> None:
    """Nested loops over ``shape`` (last dimension innermost); ``body(dims)``."""
    shape = tuple(shape)
    if any(d == 0 for d in shape):
        return

    def level(k, dims):
        if k == len(shape):
            body(list(dims))
            return
        if shape[k] == 1:
            level(k + 1, dims + [c64(0)])
            return
        for_range(b, shape[k], lambda i: level(k + 1, dims + [i]))
    level(0, [])
