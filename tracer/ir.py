"""The typed IR: abstract values, variables, literals, equations and graphs.

A graph is a list of typed input variables, constants (numpy arrays), equations
``outs = primitive[params](ins)`` and outputs. Higher-order primitives keep their
sub-graphs in their params. The printer is the debugging interface; the verifier
re-derives every equation's type with the same rule that tracing used.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from . import dtypes


class ShapedArray:
    """An abstract value: a shape and a dtype, no data. ``weak_type`` marks values
    that came from Python scalars and give way to the other operand's dtype."""

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type: bool = False):
        self.shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")
        self.dtype = dtypes.canonical(dtype)
        self.weak_type = bool(weak_type)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def update(self, shape=None, dtype=None, weak_type=None) -> "ShapedArray":
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)

    def strip_weak(self) -> "ShapedArray":
        return ShapedArray(self.shape, self.dtype) if self.weak_type else self

    def __eq__(self, other):
        return (isinstance(other, ShapedArray) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def str_short(self) -> str:
        return ("~" if self.weak_type else "") + dtypes.short_name(self.dtype) + \
            "[" + ",".join(map(str, self.shape)) + "]"

    def __repr__(self):
        return f"ShapedArray({self.shape}, {self.dtype.name}" + (", weak_type=True)" if self.weak_type else ")")

    __str__ = str_short


class Var:
    """A variable of a graph; identity is the object itself."""

    __slots__ = ("aval", "hint")

    def __init__(self, aval: ShapedArray, hint: str | None = None):
        self.aval = aval
        self.hint = hint

    def __repr__(self):
        return f"Var({self.aval})"


class Literal:
    """A scalar constant written inline in an equation."""

    __slots__ = ("val", "aval")

    def __init__(self, val, aval: ShapedArray):
        assert aval.shape == ()
        self.val = np.asarray(val, aval.dtype)
        self.aval = aval

    def __repr__(self):
        return f"Literal({self.text()})"

    def text(self) -> str:
        v = self.val.item()
        if isinstance(v, float):
            v = repr(v) if np.isfinite(v) else {"inf": "inf", "-inf": "-inf"}.get(str(v), "nan")
        return f"{v}:{self.aval.str_short()}"


Atom = Var | Literal


@dataclass(frozen=True, eq=False)
class SourceInfo:
    """Where in the user's program an equation came from."""
    filename: str
    lineno: int
    function: str
    transform: str = ""  # e.g. "vjp of log": an equation a transform derived from this line

    def __str__(self):
        import os
        extra = f" [{self.transform}]" if self.transform else ""
        return f"{os.path.basename(self.filename)}:{self.lineno} ({self.function}){extra}"

    def derived(self, transform: str) -> "SourceInfo":
        """The same line, marked as the origin of equations made by ``transform``."""
        t = f"{transform} <- {self.transform}" if self.transform else transform
        return SourceInfo(self.filename, self.lineno, self.function, t)


class Eqn:
    """``outvars = prim[params](invars)``."""

    __slots__ = ("prim", "invars", "outvars", "params", "source")

    def __init__(self, prim, invars, outvars, params, source: SourceInfo | None = None):
        self.prim = prim
        self.invars = list(invars)
        self.outvars = list(outvars)
        self.params = dict(params)
        self.source = source

    def __repr__(self):
        return f"Eqn({self.prim.name}, {len(self.invars)} in, {len(self.outvars)} out)"


class Graph:
    """A typed, closed computation: ``outvars = body(invars; constvars=constvals)``."""

    __slots__ = ("invars", "constvars", "constvals", "eqns", "outvars", "name", "__weakref__")

    def __init__(self, invars, constvars, constvals, eqns, outvars, name: str = "graph"):
        self.invars = list(invars)
        self.constvars = list(constvars)
        self.constvals = [np.asarray(c) for c in constvals]
        self.eqns = list(eqns)
        self.outvars = list(outvars)
        self.name = name

    in_avals = property(lambda self: [v.aval for v in self.invars])
    out_avals = property(lambda self: [v.aval for v in self.outvars])

    def __str__(self):
        return pretty_print(self)

    def __repr__(self):
        return f"<Graph {self.name}: {len(self.invars)} in, {len(self.eqns)} eqns, {len(self.outvars)} out>"

    def text(self, source: bool = False, consts: bool = False) -> str:
        """The printed graph; ``source=True`` appends each equation's user source line;
        ``consts=True`` prints constant values too, so ``tracer.ir.parse`` can rebuild it."""
        return pretty_print(self, source=source, consts=consts)

    def to_dot(self) -> str:
        """Graphviz text of this graph (see ``tracer.dot``)."""
        from .dot import to_dot
        return to_dot(self)

    def replace(self, **kw) -> "Graph":
        fields = dict(invars=self.invars, constvars=self.constvars, constvals=self.constvals,
                      eqns=self.eqns, outvars=self.outvars, name=self.name)
        fields.update(kw)
        return Graph(**fields)

    def verify(self) -> "Graph":
        verify(self)
        return self


def subgraphs(eqn: Eqn) -> Iterator[tuple[str, Graph]]:
    """(param name, graph) for every sub-graph held in an equation's params."""
    for k, v in eqn.params.items():
        if isinstance(v, Graph):
            yield k, v
        elif isinstance(v, tuple) and v and all(isinstance(g, Graph) for g in v):
            for i, g in enumerate(v):
                yield f"{k}[{i}]", g


# ---------------------------------------------------------------- printing

def _name_gen() -> Iterator[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    for n in itertools.count(1):
        for tup in itertools.product(letters, repeat=n):
            yield "".join(tup)


def format_param(v: Any) -> str:
    if isinstance(v, np.dtype):
        return dtypes.short_name(v)
    if isinstance(v, type) and issubclass(v, np.generic):
        return dtypes.short_name(np.dtype(v))
    if isinstance(v, tuple):
        inner = ", ".join(format_param(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, float):
        return repr(v)
    if callable(v) and hasattr(v, "__name__"):
        return v.__name__
    return repr(v) if isinstance(v, str) else str(v)


class _Printer:
    def __init__(self, source: bool, consts: bool = False):
        self.names: dict[Var, str] = {}
        self.gen = _name_gen()
        self.source = source
        self.consts = consts
        self.lines: list[str] = []

    def name(self, v) -> str:
        if isinstance(v, Literal):
            return v.text()
        if v not in self.names:
            self.names[v] = next(self.gen)
        return self.names[v]

    def decl(self, v: Var) -> str:
        return f"{self.name(v)}:{v.aval.str_short()}"

    def graph(self, g: Graph, indent: int, header: str):
        pad = "  " * indent
        args = " ".join(self.decl(v) for v in g.invars)
        self.lines.append(f"{pad}{header}({args}):" if header else f"{pad}({args}):")
        for cv, val in zip(g.constvars, g.constvals):
            value = ""
            if self.consts:
                from .ir_parse import format_const
                value = " = " + format_const(val)
            self.lines.append(f"{pad}  const {self.decl(cv)}{value}")
        for eqn in g.eqns:
            self.eqn(eqn, indent + 1)
        outs = " ".join(self.name(v) for v in g.outvars)
        self.lines.append(f"{pad}  return {outs}")

    def eqn(self, eqn: Eqn, indent: int):
        pad = "  " * indent
        simple = {k: v for k, v in eqn.params.items()
                  if not (isinstance(v, Graph) or (isinstance(v, tuple) and v and isinstance(v[0], Graph)))}
        params = ""
        if simple:
            params = "[" + ", ".join(f"{k}={format_param(v)}" for k, v in sorted(simple.items())) + "]"
        lhs = " ".join(self.decl(v) for v in eqn.outvars) or "_"
        rhs = " ".join(self.name(v) for v in eqn.invars)
        line = f"{pad}{lhs} = {eqn.prim.name}{params} {rhs}".rstrip()
        if self.source and eqn.source is not None:
            line += f"    # {eqn.source}"
        self.lines.append(line)
        for key, sub in subgraphs(eqn):
            self.graph(sub, indent + 1, key)


def pretty_print(g: Graph, source: bool = False, consts: bool = False) -> str:
    p = _Printer(source, consts)
    p.graph(g, 0, f"def {g.name}")
    return "\n".join(p.lines)


# ---------------------------------------------------------------- verification

class IRError(ValueError):
    """A malformed graph."""


def verify(g: Graph, _outer: set | None = None) -> None:
    """Check scoping and re-derive every equation's output types."""
    defined: set = set(g.invars) | set(g.constvars)
    if len(defined) != len(g.invars) + len(g.constvars):
        raise IRError(f"graph {g.name}: an input variable is declared twice")
    for cv, val in zip(g.constvars, g.constvals):
        if cv.aval.shape != val.shape or cv.aval.dtype != val.dtype:
            raise IRError(f"graph {g.name}: constant of type {cv.aval} holds {val.dtype}{list(val.shape)}")
    for i, eqn in enumerate(g.eqns):
        where = f"graph {g.name}, equation {i} ({eqn.prim.name})"
        for v in eqn.invars:
            if isinstance(v, Var) and v not in defined:
                raise IRError(f"{where}: input {v.aval} is used before it is defined")
        for _, sub in subgraphs(eqn):
            verify(sub)
        try:
            expected = eqn.prim.abstract_eval(*[v.aval for v in eqn.invars], **eqn.params)
        except Exception as e:
            raise IRError(f"{where}: its typing rule rejects the inputs: {e}") from e
        expected = list(expected) if eqn.prim.multiple_results else [expected]
        got = [v.aval for v in eqn.outvars]
        if [a.strip_weak() for a in expected] != [a.strip_weak() for a in got]:
            raise IRError(f"{where}: outputs typed {', '.join(map(str, got))} but the rule gives "
                          f"{', '.join(map(str, expected))}")
        for v in eqn.outvars:
            if v in defined:
                raise IRError(f"{where}: output variable defined twice")
            defined.add(v)
    for v in g.outvars:
        if isinstance(v, Var) and v not in defined:
            raise IRError(f"graph {g.name}: output {v.aval} is not defined")


def parse(text: str) -> Graph:
    """Rebuild a graph from its printed text; see ``tracer.ir_parse``."""
    from .ir_parse import parse as _parse  # imported here: ir_parse needs core, which needs ir
    return _parse(text)
