"""LLVM IR text -> optimised IR -> machine code in this process (ORC LLJIT), and the
call path from Python into it.

The host target machine is created once, for the host CPU name and all its
features (AVX-512 where present); LLJIT does not take ownership of it (MCJIT
would, see the field notes), so one machine serves every compilation and every
``emit_assembly``. Every compiled module is linked as a new JIT library with a
unique name; the returned resource tracker keeps its code alive.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import threading

import llvmlite
import llvmlite.binding as llvm

_lock = threading.Lock()
_state: dict = {}
_counter = itertools.count()


def target_machine():
    """The host target machine (created on first use)."""
    with _lock:
        if "tm" not in _state:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            target = llvm.Target.from_default_triple()
            _state["cpu"] = llvm.get_host_cpu_name()
            _state["features"] = llvm.get_host_cpu_features().flatten()
            _state["tm"] = target.create_target_machine(
                cpu=_state["cpu"], features=_state["features"], opt=3, jit=True)
            _state["lljit"] = llvm.create_lljit_compiler(_state["tm"])
        return _state["tm"]


def host_description() -> str:
    """What the machine code is specialised for (part of any on-disk cache key)."""
    target_machine()
    llvm_version = ".".join(map(str, llvm.llvm_version_info))
    return (f"{llvm.get_process_triple()} {_state['cpu']} {_state['features']} "
            f"llvmlite {llvmlite.__version__} LLVM {llvm_version}")


PIPELINE = "O3+loop+slp/2"  # part of the disk cache key: change it when optimize() changes
_opt_lock = threading.Lock()  # LLVM options are process-wide: one pipeline run at a time


def _vector_widths() -> dict:
    """Vector widths (lanes) the loop vectoriser may pick on this host, per type."""
    target_machine()
    f = _state["features"]
    if "+avx512f" in f:
        return {"float": (16, 8), "double": (8, 4)}
    if "+avx" in f:
        return {"float": (8, 4), "double": (4, 2)}
    return {"float": (4,), "double": (2,)}


def optimize(ir_text: str) -> str:
    """Parse, verify and run the -O3 pipeline (loop and SLP vectorisation on).

    A large module (many transcendental call sites) calls vector variants of its
    math functions instead of inlining them, and its loops get no vectorised epilogue
    (a third copy of every loop body): both bound the time LLVM takes, which
    otherwise grows faster than the module (see ``codegen.vecmath``)."""
    from . import vecmath
    tm = target_machine()
    big = vecmath.call_sites(ir_text) >= vecmath.MIN_CALLS
    if big:
        ir_text = vecmath.rewrite(ir_text, _vector_widths())
    mod = llvm.parse_assembly(ir_text)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    with _opt_lock:
        if big:
            llvm.set_option("", "-enable-epilogue-vectorization=false")
        try:
            pb.getModulePassManager().run(mod, pb)
        finally:
            if big:
                llvm.set_option("", "-enable-epilogue-vectorization=true")
    return str(mod)


def assembly(ir_text: str) -> str:
    """The host assembly of an (optimised) module."""
    tm = target_machine()
    return tm.emit_assembly(llvm.parse_assembly(ir_text))


def object_code(ir_text: str) -> bytes:
    """A relocatable object file of an (optimised) module for the host."""
    return target_machine().emit_object(llvm.parse_assembly(ir_text))


class JITCode:
    """Machine code of one module (an object file), loaded into this process; keeps it
    alive."""

    def __init__(self, obj: bytes, symbol: str):
        target_machine()
        self.library = f"tracer_lib{next(_counter)}"
        with _lock:
            self._tracker = (llvm.JITLibraryBuilder().add_object_img(obj).add_current_process()
                             .export_symbol(symbol).link(_state["lljit"], self.library))
        self.address = self._tracker[symbol]
        if not self.address:
            raise RuntimeError(f"JIT: symbol {symbol} not found after linking")


# ---------------------------------------------------------------- the on-disk object cache

def cache_dir() -> str | None:
    """Where compiled objects are kept across processes: ``TRACER_CACHE_DIR`` (default
    ``~/.cache/tracer``); None when ``TRACER_NO_DISK_CACHE`` is set."""
    if os.environ.get("TRACER_NO_DISK_CACHE", "").strip() not in ("", "0"):
        return None
    return os.environ.get("TRACER_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "tracer")


def cache_key(ir_text: str) -> str:
    """Object files are keyed by the emitted LLVM IR and the host they were built for
    (constants are pointer arguments, so their values are not part of the IR)."""
    from .vecmath import MIN_CALLS
    return hashlib.sha256((host_description() + f" pipeline {PIPELINE} vecmath {MIN_CALLS}\n"
                           + ir_text).encode()).hexdigest()


_source_hash: list = []


def backend_source_hash() -> str:
    """SHA-256 of the CPU back end's source (codegen/*.py, tracer/dtypes.py, tracer/ir.py):
    what turns a graph into LLVM IR. Part of the graph-keyed cache key, so that changing
    the back end invalidates objects keyed by graph text."""
    if not _source_hash:
        here = os.path.dirname(os.path.abspath(__file__))
        tracer_dir = os.path.join(os.path.dirname(here), "tracer")
        files = sorted(os.path.join(here, f) for f in os.listdir(here) if f.endswith(".py"))
        files += [os.path.join(tracer_dir, "dtypes.py"), os.path.join(tracer_dir, "ir.py")]
        h = hashlib.sha256()
        for path in files:
            with open(path, "rb") as f:
                h.update(path.rsplit(os.sep, 2)[-1].encode() + b"\0" + f.read())
        _source_hash.append(h.hexdigest())
    return _source_hash[0]


def graph_cache_key(graph_text: str, name: str) -> str:
    """Key of a function's object code by its optimised graph (text with avals, params
    and literals; constant values are pointer arguments), its symbol name, the back
    end's source, the pipeline and the host: a hit skips lowering as well as LLVM."""
    from .vecmath import MIN_CALLS
    return "g" + hashlib.sha256(
        (f"{host_description()} pipeline {PIPELINE} vecmath {MIN_CALLS} backend "
         f"{backend_source_hash()} symbol {name}\n{graph_text}").encode()).hexdigest()


def load_cached(key: str) -> bytes | None:
    d = cache_dir()
    if d is None:
        return None
    try:
        with open(os.path.join(d, key + ".o"), "rb") as f:
            return f.read()
    except OSError:
        return None


def store_cached(key: str, obj: bytes) -> None:
    """Write atomically (temporary file, then rename); a read-only or full disk only
    means no caching."""
    d = cache_dir()
    if d is None:
        return
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(obj)
        os.replace(tmp, os.path.join(d, key + ".o"))
    except OSError:
        pass


def forget_cached(key: str) -> None:
    d = cache_dir()
    if d is not None:
        try:
            os.remove(os.path.join(d, key + ".o"))
        except OSError:
            pass
