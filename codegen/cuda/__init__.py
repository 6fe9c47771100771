"""The CUDA back end: the optimised graph partitioned into kernels, lowered through
LLVM's NVPTX target to PTX (libdevice for transcendentals), and launched through the
CUDA driver API (``codegen.cuda_runtime``). See docs/cuda.md."""
from __future__ import annotations

import weakref

from .plan import Program, UnsupportedOnGPU, lower  # noqa: F401
from .target import DEFAULT_ARCH, PTXError, compile_ptx  # noqa: F401
from .libdevice import LibdeviceNotFound  # noqa: F401

_programs: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def program_for(graph, name: str = "kernel") -> Program:
    """The (cached) CUDA program of an optimised graph."""
    prog = _programs.get(graph)
    if prog is None:
        prog = _programs[graph] = lower(graph, _c_name(name))
    return prog


def _c_name(name: str) -> str:
    s = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "kernel"
    return s if not s[0].isdigit() else "k" + s


def lowered_text(graph, name: str, stage: str, arch: str = DEFAULT_ARCH) -> str:
    """A stage of the CUDA lowering, without a GPU: "llvm" (the NVPTX module as
    built), "optimized_llvm" (after libdevice linking and -O3), "ptx"/"asm" (PTX),
    "launches" (the host-side launch sequence)."""
    prog = program_for(graph, name)
    if stage == "llvm":
        return prog.llvm_ir()
    if stage == "optimized_llvm":
        return prog.optimized_llvm_ir(arch)
    if stage in ("ptx", "asm"):
        return prog.ptx(arch)
    if stage == "launches":
        return prog.describe()
    raise ValueError(f"unknown CUDA stage {stage!r}")
