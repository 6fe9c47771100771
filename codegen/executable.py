"""A graph compiled for the CPU, callable from Python with numpy arrays.

Call path (measured in docs/performance.md): with cffi present, the JIT'd function
is called through an ABI-mode function pointer and each array is passed as
``ffi.from_buffer(arr)`` (about 0.2 us per array, no copy); without cffi, ctypes
with ``arr.ctypes.data`` (about 1 us per array). Constants are converted once at
compile time and kept alive by the executable.

Object code is cached in memory (identical modules load once per process) and on
disk (``codegen.compile.cache_dir``: ``TRACER_CACHE_DIR``, off with
``TRACER_NO_DISK_CACHE=1``), keyed by the optimised graph, the back end's source and
the host (``codegen.compile.graph_cache_key``); a hit skips lowering, LLVM's
optimisation and code generation.
"""
from __future__ import annotations

import atexit
import functools
import os
import sys
import weakref

import numpy as np

from tracer.ir import Graph

from . import compile as C
from .cpu import _symbol, lower

try:
    import cffi
    _ffi = cffi.FFI()
except ImportError:  # pragma: no cover
    _ffi = None

# cache key (graph + back end + host) -> loaded code; unloaded when no executable uses it
_JIT_CACHE: "weakref.WeakValueDictionary[str, C.JITCode]" = weakref.WeakValueDictionary()


_PROFILED: list = []  # weak references to executables compiled with TRACER_PROFILE=1


def _print_profiles():  # pragma: no cover - runs at exit
    for ref in _PROFILED:
        ex = ref()
        if ex is not None and ex._profile[1] is not None and ex._profile[1].any():
            print(ex.profile_report(), file=sys.stderr)


if os.environ.get("TRACER_PROFILE", "").strip() not in ("", "0"):
    atexit.register(_print_profiles)


_HEADER = b"tracer-object-v1 %d\n"  # then the object file; the number: scratch_bytes


def _profiling() -> bool:
    return os.environ.get("TRACER_PROFILE", "").strip() not in ("", "0")


def _contiguous(a: np.ndarray, dtype) -> np.ndarray:
    """A C-contiguous, aligned array of ``dtype`` with the same values (no copy if
    ``a`` already is one). Read-only arrays are fine: compiled code never writes inputs."""
    if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.aligned:
        a = np.array(a, dtype=dtype, order="C", copy=True)
    return a


class Executable:
    """The machine code of one graph plus what is needed to call it."""

    def __init__(self, graph: Graph, name: str | None = None):
        self.graph = graph
        self.name = _symbol(name or graph.name)
        self._llvm_ir = None
        self._profile = None
        self._optimized = None
        self.from_disk = False
        profiling = _profiling()  # profiled code holds this process's addresses: no disk
        # keyed by the optimised graph: a hit (in memory or on disk) skips the lowering too
        self.hash = C.graph_cache_key(graph.text(), self.name)
        code = _JIT_CACHE.get(self.hash) if not profiling else None
        if code is not None:
            self.scratch_bytes = code.scratch_bytes
        elif not profiling:
            code = self._load_from_disk()
        if code is None:
            self._lower()
            obj = C.object_code(self.optimized_llvm_ir)
            code = C.JITCode(obj, self.name)
            code.scratch_bytes = self.scratch_bytes
            if not profiling:
                C.store_cached(self.hash, _HEADER % self.scratch_bytes + obj)
        if not profiling:
            _JIT_CACHE[self.hash] = code
        self.code = code
        self.in_avals = [v.aval for v in graph.invars]
        self.out_avals = [v.aval for v in graph.outvars]
        self.consts = [np.ascontiguousarray(c) for c in graph.constvals]
        nargs = len(graph.invars) + len(graph.constvars) + len(graph.outvars)
        if _ffi is not None:
            self._fn = _ffi.cast("int(*)(" + ", ".join(["void*"] * nargs) + ")", code.address)
            self._ptr = functools.partial(_ffi._backend.from_buffer, _ffi.BCharA)  # skips a Python layer
            self._const_ptrs = [_ffi.from_buffer(c) for c in self.consts]
        else:  # pragma: no cover
            import ctypes
            proto = ctypes.CFUNCTYPE(ctypes.c_int, *[ctypes.c_void_p] * nargs)
            self._fn = proto(code.address)
            self._ptr = lambda a: a.ctypes.data
            self._const_ptrs = [c.ctypes.data for c in self.consts]
        self._asm = None
        self.call = self._make_caller()
        # one output: a caller returning the array itself (jit's fast path)
        self.call_one = self._make_caller(single=True) if len(self.out_avals) == 1 else None

    def _make_caller(self, single: bool = False):
        """A function of exactly the graph's inputs, generated for this arity, that
        checks layouts, allocates the outputs and calls the machine code: the fewest
        Python operations per call (see docs/performance.md for the figure)."""
        nin, nout = len(self.in_avals), len(self.out_avals)
        env = {"fn": self._fn, "fb": self._ptr, "fix": _contiguous, "empty": np.empty,
               "oom": self._oom}
        ins = [f"a{i}" for i in range(nin)]
        lines = [f"def call({', '.join(ins)}):"]
        for i, av in enumerate(self.in_avals):
            env[f"d{i}"] = av.dtype
            lines.append(f"    if a{i}.dtype != d{i} or not a{i}.flags.carray: a{i} = fix(a{i}, d{i})")
        for j, av in enumerate(self.out_avals):
            env[f"s{j}"], env[f"e{j}"] = av.shape, av.dtype
            lines.append(f"    o{j} = empty(s{j}, e{j})")
        for k, c in enumerate(self._const_ptrs):
            env[f"c{k}"] = c
        args = [f"fb(a{i})" for i in range(nin)] + [f"c{k}" for k in range(len(self._const_ptrs))] + \
            [f"fb(o{j})" for j in range(nout)]
        lines.append(f"    if fn({', '.join(args)}): oom()")
        lines.append("    return o0" if single else f"    return [{', '.join(f'o{j}' for j in range(nout))}]")
        exec("\n".join(lines), env)
        return env["call"]

    def profile_report(self) -> str:
        """With ``TRACER_PROFILE=1`` at compile time: cycles spent in each top-level kernel
        (or fused loop) over all calls so far, largest first."""
        if self._profile is None:
            return f"{self.name}: not compiled with TRACER_PROFILE=1"
        labels, counts = self._profile
        total = int(counts[:len(labels)].sum()) or 1
        rows = sorted(zip(counts[:len(labels)], range(len(labels)), labels), reverse=True)
        lines = [f"{self.name}: {total / 1e6:.1f} Mcycles in kernels"]
        lines += [f"  {c / total:6.1%} {c / 1e6:10.2f} M  #{i:<3d} {lab}" for c, i, lab in rows]
        return "\n".join(lines)

    def _oom(self):
        raise MemoryError(f"compiled function {self.name}: could not allocate its scratch memory")

    def _lower(self):
        info: dict = {}
        self._llvm_ir = lower(self.graph, self.name, info)
        self.scratch_bytes = info["scratch_bytes"]  # intermediate buffers, planned statically
        self._profile = info.get("profile")  # TRACER_PROFILE: (labels, cycle counters)
        if self._profile is not None:
            _PROFILED.append(weakref.ref(self))

    @property
    def llvm_ir(self) -> str:
        """The LLVM IR the back end emitted (lowered on demand when the code was cached)."""
        if self._llvm_ir is None:
            info: dict = {}
            self._llvm_ir = lower(self.graph, self.name, info)
        return self._llvm_ir

    def _load_from_disk(self):
        data = C.load_cached(self.hash)
        if data is None:
            return None
        try:
            head, obj = data.split(b"\n", 1)
            tag, scratch = head.split(b" ")
            if tag != _HEADER.split(b" ")[0]:
                raise ValueError("not a tracer cache file")
            code = C.JITCode(obj, self.name)
        except Exception:  # a damaged cache file: compile afresh
            C.forget_cached(self.hash)
            return None
        code.scratch_bytes = self.scratch_bytes = int(scratch)
        self.from_disk = True
        return code

    @property
    def optimized_llvm_ir(self) -> str:
        """The module after LLVM -O3 (recomputed on demand when the code came from disk)."""
        if self._optimized is None:
            self._optimized = C.optimize(self.llvm_ir)
        return self._optimized

    @property
    def assembly(self) -> str:
        if self._asm is None:
            self._asm = C.assembly(self.optimized_llvm_ir)
        return self._asm

    def __call__(self, *args: np.ndarray) -> list[np.ndarray]:
        """Run on arrays whose shapes and dtypes match the graph's inputs."""
        if len(args) != len(self.in_avals):
            raise TypeError(f"compiled function {self.name} takes {len(self.in_avals)} arrays, "
                            f"got {len(args)}")
        return self.call(*[np.asarray(a) for a in args])
