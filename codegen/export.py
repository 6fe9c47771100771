"""Ahead-of-time export: a graph -> a self-contained shared library + a C header.

The CPU lowering (``codegen.cpu.lower``) gives ``int f(ins..., consts..., outs...)``.
Here the constants become read-only globals inside the library and a public wrapper
``int NAME(ins..., outs...)`` passes them on; every other symbol is made internal.
The module is optimised (-O3, host CPU by default), emitted as a position-independent
object file and linked with the system C compiler (``cc -shared``). The library needs
only libc and libm at run time. Scratch memory comes from ``aligned_alloc`` on each
call and there are no writable globals, so the entry point is reentrant and thread-safe.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import llvmlite.binding as llvm
import numpy as np

from tracer.ir import Graph, ShapedArray

from .cpu import _symbol, lower

C_TYPES = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t", "bool": "bool"}
_C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while bool true false""".split())


class ExportError(RuntimeError):
    """Export could not build the library (e.g. no C compiler/linker on the machine)."""


@dataclass
class ExportedLibrary:
    """What ``export`` wrote."""
    library: str
    header: str
    name: str
    arg_names: list
    in_avals: list
    out_names: list
    out_avals: list
    llvm_ir: str  # the optimised module that was compiled

    def __repr__(self):
        return f"<ExportedLibrary {self.name}: {self.library}, {self.header}>"


def c_identifier(name: str, taken: set) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name) or "arg"
    if s[0].isdigit() or s in _C_KEYWORDS:
        s = "a_" + s
    base, i = s, 1
    while s in taken:
        s, i = f"{base}_{i}", i + 1
    taken.add(s)
    return s


def _aot_machine(cpu: str):
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    if cpu == "host":
        name, feats = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
    else:
        name, feats = cpu, ""
    return target.create_target_machine(cpu=name, features=feats, opt=3, reloc="pic", codemodel="default")


def _const_global(i: int, val: np.ndarray) -> str:
    raw = np.ascontiguousarray(val).tobytes() or b"\0"
    body = "".join(f"\\{b:02X}" for b in raw)
    return f'@__tracer_const{i} = private unnamed_addr constant [{len(raw)} x i8] c"{body}", align 64'


def _wrapper(name: str, inner: str, n_in: int, n_const: int, n_out: int) -> str:
    params = ", ".join([f"ptr noalias %in{i}" for i in range(n_in)] + [f"ptr noalias %out{i}" for i in range(n_out)])
    args = ", ".join([f"ptr %in{i}" for i in range(n_in)] + [f"ptr @__tracer_const{i}" for i in range(n_const)]
                     + [f"ptr %out{i}" for i in range(n_out)])
    decl = ", ".join(["ptr"] * (n_in + n_const + n_out))
    return (f"declare i32 @{inner}({decl})\n\n"
            f"define i32 @{name}({params}) {{\n"
            f"entry:\n  %r = call i32 @{inner}({args})\n  ret i32 %r\n}}\n")


def build_module(graph: Graph, name: str, cpu: str = "host"):
    """The optimised LLVM module (text) and its object code for ``graph`` as ``name``."""
    tm = _aot_machine(cpu)
    inner = f"{name}__impl"
    mod = llvm.parse_assembly(lower(graph, inner))
    consts = "\n".join(_const_global(i, c) for i, c in enumerate(graph.constvals))
    wrap = llvm.parse_assembly(consts + "\n" + _wrapper(name, inner, len(graph.invars),
                                                        len(graph.constvars), len(graph.outvars)))
    mod.link_in(wrap)
    mod.triple = llvm.get_process_triple()
    mod.data_layout = str(tm.target_data)
    for fn in mod.functions:  # only the entry point is visible outside the library
        if not fn.is_declaration and fn.name != name:
            fn.linkage = "internal"
    for gv in mod.global_variables:
        if not gv.is_declaration and gv.linkage != llvm.Linkage.private:
            gv.linkage = "internal"
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    text = str(mod)
    writable = re.findall(r"^@\S+ = (?!.*\bconstant\b).*\bglobal\b.*$", text, re.M)
    if writable:  # reentrancy: the generated code must keep no state between calls
        raise ExportError(f"internal error: the exported module has writable globals: {writable[:3]}")
    return text, tm.emit_object(mod)


def _header(name: str, arg_names, in_avals, out_names, out_avals, doc: str, cpu: str) -> str:
    guard = f"TRACER_EXPORT_{name.upper()}_H"

    def decl(aval: ShapedArray, nm: str, const: bool) -> str:
        return f"{'const ' if const else ''}{C_TYPES[aval.dtype.name]} *{nm}"

    def shape(a: ShapedArray) -> str:
        return f"{a.dtype.name}[{', '.join(map(str, a.shape))}]"

    lines = [f"/* {name}: a compiled function exported by tracer.", " *"]
    lines += [f" * {ln}" if ln else " *" for ln in doc.splitlines()]
    lines += [" *", " * Arguments (C-contiguous, row-major arrays; a 0-d value is passed by pointer too):"]
    lines += [f" *   {n:<12} {shape(a)}" for n, a in zip(arg_names, in_avals)]
    lines += [" * Results (caller-allocated, filled by the call):"]
    lines += [f" *   {n:<12} {shape(a)}" for n, a in zip(out_names, out_avals)]
    lines += [" *",
              " * Returns 0 on success, 1 if its scratch memory could not be allocated.",
              " * Reentrant and thread-safe: no mutable global state; scratch memory is per call.",
              f" * Machine code for CPU: {cpu}. Link with -l<library> (needs only libc and libm).",
              " */",
              f"#ifndef {guard}", f"#define {guard}", "",
              "#include <stdbool.h>", "#include <stdint.h>", "",
              "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    for n, a in list(zip(arg_names, in_avals)) + list(zip(out_names, out_avals)):
        lines.append(f"#define {name.upper()}_{n.upper()}_SIZE {a.size}")
    params = [decl(a, n, True) for n, a in zip(arg_names, in_avals)] + \
             [decl(a, n, False) for n, a in zip(out_names, out_avals)]
    lines += ["", f"int {name}({', '.join(params) or 'void'});", "",
              "#ifdef __cplusplus", "}", "#endif", "", f"#endif  /* {guard} */", ""]
    return "\n".join(lines)


def find_cc() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc or not shutil.which(cc.split()[0]):
        raise ExportError("export needs a system C compiler/linker to build the shared library "
                          "(`cc`, `gcc` or `clang` on PATH, or $CC); none was found. On Debian/Ubuntu: "
                          "apt-get install gcc")
    return cc


def write_shared_library(graph: Graph, library: str, name: str, arg_names=None, out_names=None,
                         header: str | None = None, doc: str = "", cpu: str = "host") -> ExportedLibrary:
    """Compile ``graph`` into ``library`` (a .so) with entry point ``name`` and write the
    C header (default: the library path with ``.h``). ``cpu="host"`` tunes the machine
    code for this machine's CPU; ``cpu="x86-64"`` (or another LLVM CPU name) for others."""
    if _symbol(name) != name or name in _C_KEYWORDS:
        raise ValueError(f"export name {name!r} is not a C identifier")
    cc = find_cc()
    taken: set = {name}
    arg_names = [c_identifier(n, taken) for n in (arg_names or [f"in{i}" for i in range(len(graph.invars))])]
    out_names = [c_identifier(n, taken) for n in (out_names or [f"out{i}" for i in range(len(graph.outvars))])]
    header = header or os.path.splitext(library)[0] + ".h"
    text, obj = build_module(graph, name, cpu)
    os.makedirs(os.path.dirname(os.path.abspath(library)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        o = os.path.join(tmp, f"{name}.o")
        with open(o, "wb") as f:
            f.write(obj)
        res = subprocess.run(cc.split() + ["-shared", "-o", library, o, "-lm"], capture_output=True, text=True)
        if res.returncode != 0:
            raise ExportError(f"linking {library} with `{cc} -shared` failed:\n{res.stderr.strip()}")
    in_avals, out_avals = [v.aval for v in graph.invars], [v.aval for v in graph.outvars]
    with open(header, "w") as f:
        f.write(_header(name, arg_names, in_avals, out_names, out_avals, doc,
                        llvm.get_host_cpu_name() if cpu == "host" else cpu))
    return ExportedLibrary(library, header, name, arg_names, in_avals, out_names, out_avals, text)
