"""Tracing: primitives, tracers, the trace stack and ``bind``.

There is one kind of tracer: a staging tracer that records equations into the
graph being built by its ``GraphBuilder``. ``bind`` is the one interception point:

* all operands concrete (numpy values, Python scalars)  -> run the primitive's
  numpy implementation at once (eager mode; inside a trace this is constant folding);
* some operand is a tracer -> record an equation in the innermost trace that any
  operand belongs to. Tracers of enclosing traces that are still open are
  *captured* (they become extra inputs of the inner graph); tracers of traces
  that have ended raise ``TracerLeakError``.

Transforms (autodiff, batching) are interpreters that evaluate a graph while
binding on a fresh trace, so they produce new graphs and nest freely.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

import numpy as np

from . import dtypes
from .errors import ConcretizationError, TracerLeakError
from .ir import Eqn, Graph, Literal, ShapedArray, SourceInfo, Var

# ---------------------------------------------------------------- primitives

MISSING = object()


class Primitive:
    """A named operation with all its rules. Rules are attached where the
    primitive is defined (see ``tracer/primitives``); the registry test walks
    ``PRIMITIVES`` and fails when one is missing.

    abstract_eval(*avals, **params) -> aval (or list of avals if multiple_results)
    impl(*arrays, **params) -> array (or list)             reference interpreter
    jvp(primals, tangents, **params) -> (out, tangent_out)  tangents may be ``Zero``
    vjp(ct, primals, out, **params) -> list of input cotangents (None for zero);
        for multiple_results primitives ct and out are lists
    batch(args, dims, **params) -> (out, out_dim)          dims: int or None per arg
    """

    stage_when_tracing = False  # e.g. iota, broadcast: record even with concrete operands
    # Optional: vjp_fwd(primals, **params) -> (outs, residuals) replaces the forward
    # evaluation under reverse mode; vjp then receives residuals=... (custom_vjp, scan).
    vjp_fwd = None

    def __init__(self, name: str, *, multiple_results: bool = False):
        self.name = name
        self.multiple_results = multiple_results
        self.abstract_eval: Callable = MISSING
        self.impl: Callable = MISSING
        self.jvp: Callable = MISSING
        self.vjp: Callable = MISSING
        self.batch: Callable = MISSING
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name!r} defined twice")
        PRIMITIVES[name] = self

    def bind(self, *args, **params):
        return bind(self, *args, **params)

    def __repr__(self):
        return self.name

    __str__ = __repr__


PRIMITIVES: dict[str, Primitive] = {}

# ---------------------------------------------------------------- source lines

_LIB_DIRS = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
             os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen")) + os.sep)


_SOURCE_OVERRIDE: list[SourceInfo | None] = []  # see source_of


class source_of:
    """While interpreters re-bind an equation of a graph (eval_graph, jvp, vjp), new
    equations take that equation's source line (optionally marked with the transform),
    not the interpreter's caller: an adjoint equation points at the user's line."""

    __slots__ = ("src",)

    def __init__(self, src: SourceInfo | None, transform: str | None = None):
        self.src = src.derived(transform) if (src is not None and transform) else src

    def __enter__(self):
        _SOURCE_OVERRIDE.append(self.src)

    def __exit__(self, *exc):
        _SOURCE_OVERRIDE.pop()


def user_frame() -> SourceInfo | None:
    """The innermost stack frame outside this library: the user's source line."""
    if _SOURCE_OVERRIDE and _SOURCE_OVERRIDE[-1] is not None:
        return _SOURCE_OVERRIDE[-1]
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(_LIB_DIRS) and not fn.startswith("<frozen") and "/numpy/" not in fn:
            return SourceInfo(fn, f.f_lineno, f.f_code.co_name)
        f = f.f_back
    return None


def where() -> str:
    s = user_frame()
    return f" (at {s})" if s else ""

# ---------------------------------------------------------------- tracers


class Tracer:
    """A value being traced: an abstract value plus its variable in a graph."""

    __slots__ = ("aval", "builder", "ir_var", "origin")
    __array_priority__ = 1000

    def __init__(self, builder: "GraphBuilder", var: Var, origin: str):
        self.aval = var.aval
        self.builder = builder
        self.ir_var = var
        self.origin = origin

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: self.aval.ndim)
    size = property(lambda self: self.aval.size)
    weak_type = property(lambda self: self.aval.weak_type)

    def __repr__(self):
        return f"Tracer<{self.aval}>"

    __hash__ = object.__hash__

    # Concretization: the value is unknown while tracing.
    def _concrete_error(self, what: str):
        raise ConcretizationError(
            f"{what} of a traced value {self.aval} ({self.origin}){where()}: its value is not known "
            f"while tracing. For a choice that depends on data use tr.cond, tr.where or tnp.where; "
            f"if the value is really a compile-time constant, pass it through static_argnums.")

    def __bool__(self):
        self._concrete_error("bool() (e.g. an `if` or `while` test)")

    def __int__(self):
        self._concrete_error("int()")

    def __float__(self):
        self._concrete_error("float()")

    def __index__(self):
        self._concrete_error("use as a Python index")

    def __complex__(self):
        self._concrete_error("complex()")

    def __array__(self, *a, **k):
        self._concrete_error("conversion to a numpy array")

    def item(self):
        self._concrete_error(".item()")

    def tolist(self):
        self._concrete_error(".tolist()")

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))


def _install_array_methods():
    """Operators and methods of Tracer delegate to ``tracer.numpy``."""
    from . import array_methods
    array_methods.install(Tracer)


# ---------------------------------------------------------------- the trace stack

_STACK: list["GraphBuilder"] = []


class GraphBuilder:
    """Collects the equations of one graph while a function is being traced."""

    def __init__(self, name: str = "graph"):
        self.name = name
        self.invars: list[Var] = []
        self.eqns: list[Eqn] = []
        self.consts: dict[int, tuple[Var, np.ndarray]] = {}
        self.captures: dict[int, tuple[Tracer, Var]] = {}
        self.alive = True
        self.level = len(_STACK)

    def new_input(self, aval: ShapedArray, origin: str = "an argument") -> Tracer:
        v = Var(aval)
        self.invars.append(v)
        return Tracer(self, v, origin)

    def atom(self, x) -> Var | Literal:
        """The variable or literal standing for operand ``x`` in this graph."""
        if isinstance(x, Tracer):
            if x.builder is self:
                return x.ir_var
            if not x.builder.alive:
                raise leak_error(x)
            key = id(x)
            if key not in self.captures:
                self.captures[key] = (x, Var(x.aval))
            return self.captures[key][1]
        val, aval = concrete_aval(x)
        if aval.shape == ():
            return Literal(val, aval)
        key = id(x)
        if key not in self.consts:
            self.consts[key] = (Var(aval), val, x)  # keep x alive so id() stays unique
        return self.consts[key][0]

    def add_eqn(self, prim: Primitive, args: Sequence[Any], params: dict) -> Any:
        in_atoms = [self.atom(a) for a in args]
        out_avals = prim.abstract_eval(*[a.aval for a in in_atoms], **params)
        src = user_frame()
        origin = f"the result of `{prim.name}`" + (f" at {src}" if src else "")
        if prim.multiple_results:
            outvars = [Var(a) for a in out_avals]
            self.eqns.append(Eqn(prim, in_atoms, outvars, params, src))
            return [Tracer(self, v, origin) for v in outvars]
        v = Var(out_avals)
        self.eqns.append(Eqn(prim, in_atoms, [v], params, src))
        return Tracer(self, v, origin)

    def build(self, outs: Sequence[Any]) -> tuple[Graph, list[Tracer]]:
        """Finish the graph. Returns it with the captured outer tracers, which are
        the graph's last inputs (callers pass them after the explicit arguments)."""
        outvars = []
        for o in outs:
            a = self.atom(o)
            if isinstance(a, Literal):
                cv = Var(a.aval)
                self.consts[id(cv)] = (cv, a.val, None)
                a = cv
            outvars.append(a)
        captured = [t for t, _ in self.captures.values()]
        cap_vars = [v for _, v in self.captures.values()]
        constvars = [c[0] for c in self.consts.values()]
        constvals = [c[1] for c in self.consts.values()]
        g = Graph(self.invars + cap_vars, constvars, constvals, self.eqns, outvars, self.name)
        return g, captured


def leak_error(x: Tracer) -> TracerLeakError:
    return TracerLeakError(
        f"a traced value {x.aval} ({x.origin}) is used after the trace that made it "
        f"({x.builder.name}) has ended{where()}. Values traced inside jit/grad/vmap or a "
        f"control-flow body cannot escape it (e.g. stored in a global or a closure); return "
        f"them as outputs instead.")


def concrete_aval(x) -> tuple[np.ndarray, ShapedArray]:
    """A concrete operand as a numpy value of a supported dtype, with its abstract value."""
    if isinstance(x, ShapedArray):
        raise TypeError(f"{x!r} is an abstract value (a shape and dtype, no data): it can be "
                        f"passed to make_ir(f)(...) or jit(f).lower(...), not where data is needed")
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        dt, weak = dtypes.scalar_type(x)
        if weak and dt == dtypes.int32 and not (-2**31 <= x < 2**31):
            raise OverflowError(f"Python int {x} does not fit in int32; pass it as an np.int64 array")
        return np.asarray(x, dt), ShapedArray((), dt, weak)
    try:
        arr = np.asarray(x)
    except Exception:
        raise TypeError(f"{type(x).__name__} object {x!r:.60} is not a valid array value") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{type(x).__name__} value {x!r:.60} is not a valid array (dtype {arr.dtype})")
    dt = dtypes.canonical(arr.dtype)
    if arr.dtype != dt:
        arr = arr.astype(dt)
    return arr, ShapedArray(arr.shape, dt)


def get_aval(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    return concrete_aval(x)[1]


def is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def _innermost_builder(args) -> GraphBuilder | None:
    best = None
    for a in args:
        if isinstance(a, Tracer):
            b = a.builder
            if not b.alive:
                raise leak_error(a)
            if best is None or b.level > best.level:
                best = b
    return best


def bind(prim: Primitive, *args, **params):
    """Apply a primitive: evaluate now if all operands are concrete, else record it."""
    builder = _innermost_builder(args)
    if builder is None:
        if not (prim.stage_when_tracing and _STACK):
            return eval_concrete(prim, args, params)
        builder = _STACK[-1]
    return builder.add_eqn(prim, args, params)


def eval_concrete(prim: Primitive, args, params):
    vals, avals = zip(*[concrete_aval(a) for a in args]) if args else ((), ())
    out_avals = prim.abstract_eval(*avals, **params)
    outs = prim.impl(*vals, **params)
    if prim.multiple_results:
        return [np.asarray(o, a.dtype).reshape(a.shape) for o, a in zip(outs, out_avals)]
    return np.asarray(outs, out_avals.dtype).reshape(out_avals.shape)


# ---------------------------------------------------------------- tracing and evaluation

def trace_flat(fn: Callable, in_avals: Sequence[ShapedArray], name: str = "graph",
               origins: Sequence[str] | None = None) -> tuple[Graph, list[Tracer]]:
    """Trace ``fn(*tracers) -> list of outputs`` into a graph."""
    builder = GraphBuilder(name)
    _STACK.append(builder)
    try:
        tracers = [builder.new_input(a, origins[i] if origins else f"argument {i} of {name}")
                   for i, a in enumerate(in_avals)]
        outs = fn(*tracers)
        graph, captured = builder.build(outs)
    finally:
        _STACK.remove(builder)
        builder.alive = False
    return graph, captured


def eval_graph(graph: Graph, args: Sequence[Any]) -> list[Any]:
    """Evaluate a graph. With numpy inputs this is the reference interpreter; with
    tracers it re-binds every equation on their trace (how transforms compose)."""
    if len(args) != len(graph.invars):
        raise TypeError(f"graph {graph.name} takes {len(graph.invars)} inputs, got {len(args)}")
    env: dict[Var, Any] = dict(zip(graph.invars, args))
    env.update(zip(graph.constvars, graph.constvals))

    def read(a):
        return a.val if isinstance(a, Literal) else env[a]

    for eqn in graph.eqns:
        with source_of(eqn.source):
            outs = bind(eqn.prim, *[read(a) for a in eqn.invars], **eqn.params)
        if eqn.prim.multiple_results:
            env.update(zip(eqn.outvars, outs))
        else:
            env[eqn.outvars[0]] = outs
    return [read(v) for v in graph.outvars]


def interpret(graph: Graph, args: Sequence[Any]) -> list[np.ndarray]:
    """The reference interpreter: numpy implementations of every primitive."""
    return [np.asarray(o) for o in eval_graph(graph, [np.asarray(a) for a in args])]
