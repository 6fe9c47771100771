"""Large modules call their transcendental functions instead of inlining them.

``codegen.mathlib`` defines each function once per module as an ``alwaysinline``
scalar function; after inlining, the loop vectoriser widens the polynomial. That is
the fastest code, but every call site becomes ~50-100 instructions that LLVM then
optimises, vectorises and compiles several times over (vector body, vectorised
epilogue, scalar remainder), and LLVM's loop vectoriser and register allocator take
time superlinear in the size of a loop body. A module with hundreds of call sites
(e.g. ``jit(grad)`` of a deep chain of ``sin``) spent seconds to minutes in -O3.

Above ``MIN_CALLS`` call sites, ``rewrite`` turns each function ``__mathlib_F`` into

* ``__mathlib_F_inl``: the original body (still ``alwaysinline``);
* ``__mathlib_F``: a ``noinline``, ``memory(none)`` wrapper that calls it, carrying a
  ``vector-function-abi-variant`` attribute that names
* ``__mathlib_F_vN``: a ``noinline`` function on ``<N x T>`` whose body is a loop of N
  calls to the inlined scalar body, which the loop vectoriser turns into one
  straight-line vector polynomial.

The loop vectoriser then widens each scalar call site into a call of the vector
variant, so each polynomial is compiled once (per width) per module. Results are
bitwise the same (no fast-math flags anywhere, so nothing is contracted
differently). The cost is a call per vector of elements, only paid by large modules.
"""
from __future__ import annotations

import re

MIN_CALLS = 24  # call sites of mathlib functions in a module before they are called

_DEFINE = re.compile(
    r'define internal (float|double) @"__mathlib_(\w+?)_(f32|f64)"\(([^)]*)\) alwaysinline nounwind')
_CALL = re.compile(r'call (?:float|double) @"__mathlib_')


def call_sites(ir_text: str) -> int:
    return len(_CALL.findall(ir_text))


def rewrite(ir_text: str, widths: dict) -> str:
    """``ir_text`` with its mathlib functions called through vector variants (see the
    module doc). ``widths``: {"float": (16, 8), "double": (8, 4)}, the vector widths
    the loop vectoriser may choose on this host. Returns the text unchanged if it has
    no mathlib function or already uses ``llvm.compiler.used``."""
    if "@llvm.compiler.used" in ir_text:
        return ir_text
    extra: list[str] = []
    keep: list[str] = []

    def one(m):
        t, name, suffix, params = m.groups()
        nargs = len([p for p in params.split(",") if p.strip()])
        base = f"__mathlib_{name}_{suffix}"
        formal = ", ".join(f"{t} %x{i}" for i in range(nargs))
        variants = ",".join(f"_ZGV_LLVM_N{n}{'v' * nargs}_{base}({base}_v{n})" for n in widths[t])
        extra.append(f'''
define internal {t} @"{base}"({formal}) noinline nounwind memory(none) "vector-function-abi-variant"="{variants}" {{
  %r = call {t} @"{base}_inl"({formal})
  ret {t} %r
}}''')
        for n in widths[t]:
            vt = f"<{n} x {t}>"
            lines = [f'define internal {vt} @"{base}_v{n}"({", ".join(f"{vt} %x{i}" for i in range(nargs))}) '
                     f"noinline nounwind {{", "entry:", f"  %out = alloca [{n} x {t}], align 64"]
            for i in range(nargs):
                lines += [f"  %in{i} = alloca [{n} x {t}], align 64", f"  store {vt} %x{i}, ptr %in{i}"]
            lines += ["  br label %loop", "loop:", "  %i = phi i64 [0, %entry], [%next, %loop]"]
            for i in range(nargs):
                lines += [f"  %p{i} = getelementptr {t}, ptr %in{i}, i64 %i", f"  %a{i} = load {t}, ptr %p{i}"]
            lines += [f'  %y = call {t} @"{base}_inl"({", ".join(f"{t} %a{i}" for i in range(nargs))})',
                      f"  %q = getelementptr {t}, ptr %out, i64 %i", f"  store {t} %y, ptr %q",
                      "  %next = add i64 %i, 1", f"  %done = icmp eq i64 %next, {n}",
                      "  br i1 %done, label %exit, label %loop", "exit:",
                      f"  %res = load {vt}, ptr %out", f"  ret {vt} %res", "}"]
            extra.append("\n".join(lines))
            keep.append(f'ptr @"{base}_v{n}"')  # only the attribute refers to it: keep it
        return f'define internal {t} @"{base}_inl"({params}) alwaysinline nounwind'

    out = _DEFINE.sub(one, ir_text)
    if not keep:
        return ir_text
    return (out + "\n" + "\n".join(extra) + f"\n@llvm.compiler.used = appending global "
            f"[{len(keep)} x ptr] [{', '.join(keep)}], section \"llvm.metadata\"\n")
