"""The NVPTX target: target machines, the GPU-specific IR helpers (thread indices,
barriers, warp shuffles, atomics, shared memory) and the PTX emission pipeline
(libdevice linked in, everything but the kernels internalised, -O3, asm printer).

Everything target-specific of the CUDA back end lives here; kernels are built from
these helpers plus the shared scalar lowering.
"""
from __future__ import annotations

import re

import llvmlite.binding as llvm
from llvmlite import ir

from . import libdevice

TRIPLE = "nvptx64-nvidia-cuda"
DEFAULT_ARCH = "sm_80"
# Architectures LLVM 22's NVPTX target and ptxas 13 both know (sm_70 still emits fine).
KNOWN_ARCHS = ("sm_70", "sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a",
               "sm_100", "sm_100a", "sm_101", "sm_103", "sm_120", "sm_121")

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
GLOBAL = ir.PointerType(addrspace=1)   # device memory (kernel buffer arguments)
VOID = ir.VoidType()

_initialised = False


def _init():
    global _initialised
    if not _initialised:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _initialised = True


def check_arch(arch: str) -> str:
    """Validate an ``sm_XY`` name (LLVM only warns on unknown ones and emits junk)."""
    if arch not in KNOWN_ARCHS:
        raise ValueError(f"unknown CUDA architecture {arch!r}; known: {', '.join(KNOWN_ARCHS)}")
    return arch


def target_machine(arch: str = DEFAULT_ARCH):
    _init()
    return llvm.Target.from_triple(TRIPLE).create_target_machine(cpu=check_arch(arch), features="",
                                                                 opt=3)


def new_module(name: str) -> ir.Module:
    m = ir.Module(name)
    m.triple = TRIPLE
    return m


# ---------------------------------------------------------------- kernels and intrinsics

def kernel(module: ir.Module, name: str, nargs: int) -> tuple[ir.Function, ir.IRBuilder]:
    """A ``ptx_kernel`` taking ``nargs`` global-memory pointers, and a builder at its entry."""
    fn = ir.Function(module, ir.FunctionType(VOID, [GLOBAL] * nargs), name)
    fn.calling_convention = "ptx_kernel"
    for a in fn.args:
        a.add_attribute("noalias")
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))


def _intrinsic(module: ir.Module, name: str, ret, args) -> ir.Function:
    g = module.globals.get(name)
    if g is None:
        g = ir.Function(module, ir.FunctionType(ret, args), name)
    return g


def sreg(b: ir.IRBuilder, reg: str, axis: str = "x") -> ir.Value:
    """A special register: reg in tid, ntid, ctaid, nctaid (as i32)."""
    return b.call(_intrinsic(b.module, f"llvm.nvvm.read.ptx.sreg.{reg}.{axis}", I32, []), [])


def barrier(b: ir.IRBuilder) -> None:
    """``bar.sync 0``: every thread of the block waits here."""
    b.call(_intrinsic(b.module, "llvm.nvvm.barrier.cta.sync.aligned.all", VOID, [I32]),
           [ir.Constant(I32, 0)])


def shfl_down(b: ir.IRBuilder, v: ir.Value, delta: int) -> ir.Value:
    """Warp shuffle down by ``delta`` lanes (full mask) of a 32- or 64-bit value."""
    ty = v.type
    full = ir.Constant(I32, 0xFFFFFFFF)
    fn = _intrinsic(b.module, "llvm.nvvm.shfl.sync.down.i32", I32, [I32, I32, I32, I32])

    def shfl32(x):
        return b.call(fn, [full, x, ir.Constant(I32, delta), ir.Constant(I32, 31)])
    if ty == I32:
        return shfl32(v)
    if ty == F32:
        return b.bitcast(shfl32(b.bitcast(v, I32)), F32)
    if ty in (I64, F64):
        bits = b.bitcast(v, I64) if ty == F64 else v
        lo = shfl32(b.trunc(bits, I32))
        hi = shfl32(b.trunc(b.lshr(bits, ir.Constant(I64, 32)), I32))
        r = b.or_(b.zext(lo, I64), b.shl(b.zext(hi, I64), ir.Constant(I64, 32)))
        return b.bitcast(r, F64) if ty == F64 else r
    if ty in (I1, I8):
        return b.trunc(shfl32(b.zext(v, I32)), ty)
    raise TypeError(f"no warp shuffle for {ty}")


def shared_array(module: ir.Module, name: str, ty: ir.Type, n: int) -> ir.GlobalVariable:
    """A block-shared array (addrspace 3) of ``n`` elements."""
    g = ir.GlobalVariable(module, ir.ArrayType(ty, n), name, addrspace=3)
    g.linkage = "internal"
    g.initializer = ir.Constant(g.value_type, None)
    g.align = 16
    return g


def shared_ptr(b: ir.IRBuilder, arr: ir.GlobalVariable, idx: ir.Value) -> ir.Value:
    # typed-pointer GEP (llvmlite trap: no source_etype on typed pointers)
    return b.gep(arr, [ir.Constant(I32, 0), idx], inbounds=True)


def global_ptr(b: ir.IRBuilder, base: ir.Value, ty: ir.Type, idx: ir.Value) -> ir.Value:
    return b.gep(base, [idx], inbounds=True, source_etype=ty)


# ---------------------------------------------------------------- emission

# Math intrinsics the NVPTX back end cannot select: they abort the process
# (LLVM fatal error), so refuse them with a Python exception before codegen.
_FORBIDDEN = re.compile(r"@\"?llvm\.(exp|exp10|log|log2|log10|sin|cos|tan|tanh|pow|powi|asin|acos|"
                        r"atan|atan2|sinh|cosh|frexp|ldexp)\.")


class PTXError(RuntimeError):
    """The NVPTX back end cannot compile this module."""


def check_selectable(text: str) -> None:
    m = _FORBIDDEN.search(text)
    if m:
        raise PTXError(f"the kernel module calls {m.group(0).lstrip('@').strip(chr(34))}…, which "
                       f"LLVM's NVPTX target cannot lower (it would abort the process); "
                       f"transcendental functions must come from libdevice")


def optimize(module: ir.Module, kernel_names, arch: str = DEFAULT_ARCH):
    """Link libdevice (when the module calls ``__nv_*`` functions), internalise every
    defined function except the kernels, and run -O3. Returns (ModuleRef, target machine).
    Without internalising, the PTX would carry all of libdevice (~20k lines)."""
    text = str(module)
    check_selectable(text)
    tm = target_machine(arch)
    mod = llvm.parse_assembly(text)
    mod.triple = TRIPLE
    mod.data_layout = str(tm.target_data)
    mod.verify()
    if "@\"__nv_" in text or "@__nv_" in text:
        mod.link_in(libdevice.load_module())
        mod.triple = TRIPLE
        mod.data_layout = str(tm.target_data)
    keep = set(kernel_names)
    for f in mod.functions:
        if not f.is_declaration and f.name not in keep:
            f.linkage = "internal"
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    check_selectable(str(mod))
    return mod, tm


def compile_ptx(module: ir.Module, kernel_names, arch: str = DEFAULT_ARCH) -> str:
    """The PTX of an NVPTX module (see ``optimize``)."""
    mod, tm = optimize(module, kernel_names, arch)
    return tm.emit_assembly(mod)
