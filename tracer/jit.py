"""``jit``: trace once per abstract signature, optimise the graph, compile it to
native code, and call the machine code on later calls with the same signature.

Stages (each printable through ``jitted.lower(*args).as_text(stage)``):

    "ir"            the traced graph
    "optimized_ir"  after the graph passes (tracer.passes.optimize)
    "llvm"          the LLVM IR the back end emitted (before LLVM's -O3)
    "optimized_llvm" the LLVM IR after -O3 (vectorised)
    "asm"           host assembly

With the environment variable ``TRACER_DUMP_DIR`` set, every compilation writes
all stages to that folder as ``<function>.<hash8>.<stage>`` files.

Inside another transformation (when the arguments are tracers, or a trace is
open) a jitted function is simply inlined: its equations join the enclosing
graph, so ``jit(jit(f))``, ``grad(jit(f))`` and ``vmap(jit(f))`` work.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import gc
import hashlib
import os
from typing import Any, Callable, Sequence

import numpy as np

from . import core, dtypes
from . import debug as _debug
from .api import fun_name, trace
from .core import Tracer, concrete_aval
from .ir import Graph, ShapedArray
from .passes import optimize
from .pytree import tree_flatten, tree_flatten_key, tree_unflatten

_SUPPORTED_NATIVE = {d.newbyteorder("=") for d in dtypes.SUPPORTED}  # '>f4' is not in it


class _Inline(Exception):
    """Raised while computing a cache key when an argument is a tracer."""

STAGES = ("ir", "optimized_ir", "llvm", "optimized_llvm", "asm")
_SUFFIX = {"ir": "ir.txt", "optimized_ir": "optimized_ir.txt", "llvm": "ll",
           "optimized_llvm": "opt.ll", "asm": "s"}


def _static_key(v):
    try:
        hash(v)
    except TypeError:
        raise TypeError(f"jit: a static argument must be hashable, got {type(v).__name__} {v!r:.60}; "
                        f"pass arrays as dynamic arguments instead") from None
    return (type(v), v)


class Compiled:
    """A compiled function for one signature. Call it with the dynamic (non-static)
    arguments; returns numpy arrays in the function's output structure."""

    def __init__(self, lowered: "Lowered"):
        if lowered.backend == "cuda":
            from codegen.cuda_runtime import GraphExecutable as Executable
        else:
            from codegen.executable import Executable
        self.lowered = lowered
        self.executable = Executable(lowered.optimized_graph, lowered.name)
        self._in_avals = [v.aval for v in lowered.optimized_graph.invars]
        tree = lowered.out_tree
        single = tree_flatten(0)[1]
        self.unflatten = (lambda outs: outs[0]) if tree == single else \
            (lambda outs: tree_unflatten(tree, outs))
        # all-ndarray calls of matching dtypes (Jitted's fast path): arrays in, tree out
        ex = self.executable
        if lowered.backend == "cpu" and tree == single and getattr(ex, "call_one", None):
            self.fast_call = ex.call_one
        else:
            call, unflatten = getattr(ex, "call", ex), self.unflatten
            self.fast_call = lambda *args: unflatten(call(*args))

    def call_flat(self, leaves: Sequence[Any]) -> list[np.ndarray]:
        if self.lowered.backend == "cuda":  # device arrays pass through, results stay on the GPU
            return self.executable(*leaves)
        # arrays go as they are (the caller converts dtype/layout when needed)
        arrays = [x if type(x) is np.ndarray else concrete_aval(x)[0] for x in leaves]
        if len(arrays) != len(self._in_avals):
            raise TypeError(f"compiled {self.lowered.name} takes {len(self._in_avals)} arrays, "
                            f"got {len(arrays)}")
        return self.executable.call(*arrays)

    def __call__(self, *args):
        lw = self.lowered
        if lw.static_argnums and len(args) == lw.nargs:
            args = tuple(a for i, a in enumerate(args) if i not in lw.static_argnums)
        leaves, tree = tree_flatten(list(args))
        if tree != lw.in_tree:
            raise TypeError(f"compiled {lw.name}: arguments have structure {tree}, "
                            f"expected {lw.in_tree}")
        avals = [_aval(x) for x in leaves]
        if [a.strip_weak() for a in avals] != [a.strip_weak() for a in lw.in_avals]:
            raise TypeError(f"compiled {lw.name} was compiled for "
                            f"{', '.join(map(str, lw.in_avals))}, got {', '.join(map(str, avals))}")
        return tree_unflatten(lw.out_tree, self.call_flat(leaves))


class Lowered:
    """A traced and optimised function for one signature, not yet machine code."""

    def __init__(self, fun, args, static_argnums, backend: str):
        self.backend = backend
        self.name = fun_name(fun)
        self.nargs = len(args)
        self.static_argnums = frozenset(static_argnums)
        with _gc_paused():
            t = trace(fun, args, static_argnums)
            if t.captured:
                raise TypeError(f"jit of {self.name}: the function closes over values traced by "
                                f"an enclosing transformation; call it inside that transformation "
                                f"instead")
            self.graph = t.graph
            self.in_tree, self.out_tree = t.in_tree, t.out_tree
            self.in_avals = [v.aval for v in t.graph.invars]
            self.optimized_graph = optimize(t.graph)
        self._compiled: Compiled | None = None
        self._llvm_text: str | None = None

    def compile(self) -> Compiled:
        if self.backend not in ("cpu", "cuda"):
            raise NotImplementedError(f"jit backend {self.backend!r} is not available here "
                                      f"(the CPU back end is)")
        if self._compiled is None:
            with _gc_paused():
                self._compiled = Compiled(self)
            _dump(self)
        return self._compiled

    def as_text(self, stage: str = "ir") -> str:
        """The function at one stage: "ir", "optimized_ir", "llvm", "optimized_llvm", "asm"
        ("ptx" belongs to backend="cuda")."""
        if stage == "ir":
            return self.graph.text()
        if stage == "optimized_ir":
            return self.optimized_graph.text()
        if self.backend == "cuda" and stage in ("llvm", "optimized_llvm", "asm", "ptx"):
            from codegen.cuda import lowered_text  # no GPU needed
            return lowered_text(self.optimized_graph, self.name, stage)
        if stage == "ptx":
            raise ValueError(f"stage 'ptx' needs backend='cuda'; this function is lowered for "
                             f"backend={self.backend!r}")
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        ex = self.compile().executable
        return {"llvm": ex.llvm_ir, "optimized_llvm": ex.optimized_llvm_ir, "asm": None}.get(stage) \
            or ex.assembly


_ndarray = np.ndarray


def _fast_key(args):
    """(shape, dtype) per argument, or None if one is not an ndarray."""
    key = []
    for a in args:
        if type(a) is not _ndarray:
            return None
        key.append((a.shape, a.dtype))
    return tuple(key)


@contextlib.contextmanager
def _gc_paused():
    """Tracing and lowering allocate many small objects that all stay alive until the
    compile ends; the cyclic collector's full passes over them made compile time grow
    faster than the graph (a 1000-op graph: 25% of the Python time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _aval(x) -> ShapedArray:
    """The abstract value of a concrete argument (a cuda DeviceArray is not copied back)."""
    aval = getattr(x, "device_aval", None)
    return aval if isinstance(aval, ShapedArray) else concrete_aval(x)[1]


def _dump(lw: Lowered) -> None:
    folder = os.environ.get("TRACER_DUMP_DIR")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    h = hashlib.sha256(lw.optimized_graph.text().encode()).hexdigest()[:8]
    for stage in STAGES:
        path = os.path.join(folder, f"{lw.name}.{h}.{_SUFFIX[stage]}")
        tmp = path + ".tmp"
        graph = {"ir": lw.graph, "optimized_ir": lw.optimized_graph}.get(stage)
        with open(tmp, "w") as f:  # IR dumps carry constants: tracer.ir.parse reads them back
            f.write(graph.text(source=True, consts=True) if graph is not None else lw.as_text(stage))
        os.replace(tmp, path)


class Jitted:
    """The result of ``jit(fun)``: compiles once per signature, then runs machine code.

    ``trace_count`` and ``compile_count`` count how often it traced and compiled."""

    def __init__(self, fun: Callable, static_argnums: Sequence[int], backend: str,
                 static_argnames: Sequence[str] = ()):
        if isinstance(fun, Graph):  # e.g. parsed from IR text: compile it as it stands
            from .ir_parse import graph_function
            fun = graph_function(fun)
        if not callable(fun):
            raise TypeError(f"jit expects a function, got {type(fun).__name__}")
        if backend not in ("cpu", "cuda"):
            raise ValueError(f"jit backend must be 'cpu' or 'cuda', got {backend!r}")
        self.fun = fun
        self.static_argnums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        self.static_argnums += _positions_of(fun, static_argnames)
        self.backend = backend
        self._with_kwargs: "Jitted | None" = None
        self.trace_count = 0
        self.compile_count = 0
        self._cache: dict = {}
        self._fast: dict = {}  # ((shape, dtype), ...) -> Compiled, for all-ndarray calls
        functools.update_wrapper(self, fun)

    def _norm_static(self, nargs: int) -> frozenset:
        out = set()
        for i in self.static_argnums:
            if not -nargs <= i < nargs:
                raise TypeError(f"jit of {fun_name(self.fun)}: static_argnums {i} is out of range "
                                f"for a call with {nargs} positional arguments")
            out.add(i % nargs)
        return frozenset(out)

    def _key(self, args):
        static = self._norm_static(len(args))
        dyn = [a for i, a in enumerate(args) if i not in static] if static else args
        leaves, tree = tree_flatten_key(dyn)  # a flat tuple: cheap to hash and compare
        avals = []
        for i, x in enumerate(leaves):
            if type(x) is _ndarray and x.dtype in _SUPPORTED_NATIVE:
                avals.append((x.shape, x.dtype))  # cheap key for the common case
            elif isinstance(x, ShapedArray):
                avals.append(x)
            elif isinstance(x, Tracer):
                raise _Inline
            elif isinstance(x, (bool, int, float)):  # weakly typed: converted once, here
                leaves[i], aval = concrete_aval(x)
                avals.append(aval)
            else:
                avals.append(_aval(x))
        skey = tuple((i, _static_key(args[i])) for i in sorted(static))
        return (len(args), tree, tuple(avals), skey), static, leaves

    def lower(self, *args) -> Lowered:
        """Trace and optimise for these arguments (arrays, scalars or ShapedArrays)."""
        try:
            key, static, _ = self._key(args)
        except _Inline:
            raise TypeError("lower() takes arrays, Python scalars or ShapedArrays, not traced "
                            "values") from None
        self.trace_count += 1
        return Lowered(self.fun, args, static, self.backend)

    def __call__(self, *args, **kwargs):
        if kwargs:
            return self._call_with_kwargs(args, kwargs)
        # fast path: every argument a numpy array of a supported dtype, no static args,
        # keyed by (shape, dtype) (a non-native byte order is another dtype: no hit)
        # (config._values: the attribute hook on config costs a microsecond per call)
        fast = self._fast
        if fast and not core._STACK and not _debug.config._values.get("debug_nans"):
            if len(args) == 1:
                a = args[0]
                hit = fast.get((a.shape, a.dtype)) if type(a) is _ndarray else None
            else:
                hit = fast.get(_fast_key(args))
            if hit is not None:
                return hit(*args)
        if core._STACK:
            return self.fun(*args)  # inside another trace: inline
        try:
            key, static, leaves = self._key(args)
        except _Inline:  # a tracer of an ended trace: the function reports the leak
            return self.fun(*args)
        entry = self._cache.get(key)
        if entry is None:
            self.trace_count += 1
            lw = Lowered(self.fun, args, static, self.backend)
            entry = lw.compile()
            self.compile_count += 1
            self._cache[key] = entry
            if self.backend == "cpu" and not static and all(
                    type(a) is np.ndarray and a.dtype in dtypes.SUPPORTED and a.dtype.isnative
                    for a in args):
                k = (args[0].shape, args[0].dtype) if len(args) == 1 else _fast_key(args)
                self._fast[k] = entry.fast_call
        outs = entry.call_flat(leaves)
        if _debug.config.debug_nans:  # re-run in the interpreter to name a NaN's equation
            _debug.check_outputs(entry.lowered.graph, leaves, outs)
        return tree_unflatten(entry.lowered.out_tree, outs)

    def _call_with_kwargs(self, args, kwargs):
        """Keyword arguments are dynamic pytree arguments, as in JAX (or, with static
        arguments, are bound to their positions first)."""
        if core._STACK:
            return self.fun(*args, **kwargs)
        if self.static_argnums:
            try:
                bound = inspect.signature(self.fun).bind(*args, **kwargs)
            except (TypeError, ValueError) as e:
                raise TypeError(f"jit of {fun_name(self.fun)}: {e}") from None
            if bound.kwargs:
                raise TypeError(f"jit of {fun_name(self.fun)}: keyword-only arguments "
                                f"{sorted(bound.kwargs)} cannot be combined with static_argnums")
            return self(*bound.args)
        if self._with_kwargs is None:
            fun = self.fun

            def call_with_kwargs(args, kwargs):
                return fun(*args, **kwargs)
            call_with_kwargs.__name__ = fun_name(fun)
            self._with_kwargs = Jitted(call_with_kwargs, (), self.backend)
        inner = self._with_kwargs
        traces, compiles = inner.trace_count, inner.compile_count
        out = inner(tuple(args), dict(kwargs))
        self.trace_count += inner.trace_count - traces
        self.compile_count += inner.compile_count - compiles
        return out

    def __repr__(self):
        return f"<jit {fun_name(self.fun)}>"


def _positions_of(fun, names) -> tuple[int, ...]:
    """Positions of the parameters named in ``static_argnames``."""
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        return ()
    params = list(inspect.signature(fun).parameters.values())
    out = []
    for n in names:
        pos = [i for i, p in enumerate(params) if p.name == n and
               p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not pos:
            raise ValueError(f"jit of {fun_name(fun)}: static_argnames {n!r} is not a positional "
                             f"parameter of the function")
        out.append(pos[0])
    return tuple(out)


def jit(fun: Callable, *, static_argnums: int | Sequence[int] = (), backend: str = "cpu",
        static_argnames: str | Sequence[str] = ()) -> Jitted:
    """Compile ``fun`` to native code, once per abstract signature (shapes, dtypes,
    weak types, pytree structure, and the values of the static arguments, given by
    position (``static_argnums``) or name (``static_argnames``)). Keyword arguments
    are dynamic pytree arguments."""
    return Jitted(fun, static_argnums, backend, static_argnames)
