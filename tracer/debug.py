"""NaN hunting: find the first equation that made a NaN.

Switch it on with the environment variable ``TRACER_DEBUG_NANS=1`` or, in code,
``tr.config.update("debug_nans", True)`` (as ``jax.config.update("jax_debug_nans", True)``).
Then

* a compiled (``jit``) function whose result holds a NaN is re-run equation by
  equation in the numpy reference interpreter, and ``NaNError`` names the first
  equation whose output has a NaN although its operands had none: its primitive,
  operand types, and the user's source line. Equations of the backward pass carry
  the line of the forward operation they differentiate, marked ``[vjp of log]``;
* eager operations (numpy inputs) that turn NaN-free operands into a NaN raise at
  once, naming the user's line.

Off (the default) it costs nothing: no check runs. ``find_first_nan(graph, args)``
works whether the switch is on or not.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import core
from .errors import TracerError
from .ir import Eqn, Graph, Literal, SourceInfo

__all__ = ["config", "NaNError", "NaNReport", "find_first_nan", "check_outputs"]


class NaNError(TracerError, FloatingPointError):
    """A NaN appeared while ``debug_nans`` is on; the message names the equation."""

    def __init__(self, msg: str, report: "NaNReport | None" = None):
        super().__init__(msg)
        self.report = report


# ---------------------------------------------------------------- the switch

def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Config:
    """Library-wide switches: ``tr.config.update("debug_nans", True)``;
    ``tr.config.debug_nans`` reads one."""

    _DEFAULTS = {"debug_nans": ("TRACER_DEBUG_NANS", "re-run NaN-producing functions equation by equation")}

    def __init__(self):
        self._values = {k: _env_flag(env) for k, (env, _) in self._DEFAULTS.items()}

    def update(self, name: str, value: Any) -> None:
        name = name[len("jax_"):] if name.startswith("jax_") else name
        if name not in self._values:
            raise KeyError(f"unknown config option {name!r}; options: {', '.join(sorted(self._values))}")
        self._values[name] = bool(value)
        if name == "debug_nans":
            _set_eager_check(bool(value))

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"no config option {name!r}") from None

    def __repr__(self):
        return "Config(" + ", ".join(f"{k}={v}" for k, v in self._values.items()) + ")"


config = Config()

# ---------------------------------------------------------------- finding the equation


def _has_nan(x) -> bool:
    a = np.asarray(x)
    return a.dtype.kind == "f" and bool(np.isnan(a).any())


@dataclass
class NaNReport:
    """Where a NaN first appeared in a graph."""
    graph: Graph
    index: int | None          # equation index; None when a graph input already held NaN
    eqn: Eqn | None
    line: str                  # the equation as printed, or a description of the input
    operand_types: list[str]
    source: SourceInfo | None
    nan_constants: tuple = ()  # operand positions that are NaN constants (a NaN on purpose?)

    @property
    def in_adjoint(self) -> bool:
        """Whether the equation belongs to a backward (adjoint) pass."""
        return bool(self.source and "vjp of" in self.source.transform)

    def message(self) -> str:
        if self.eqn is None:
            return f"NaN in the input of graph `{self.graph.name}`: {self.line}"
        lines = [f"NaN first produced by equation {self.index} of graph `{self.graph.name}`:",
                 f"    {self.line.strip()}",
                 f"  primitive `{self.eqn.prim.name}` with operands {', '.join(self.operand_types) or '(none)'}"
                 + (f" (operand {', '.join(map(str, self.nan_constants))} is a constant holding NaN)"
                    if self.nan_constants else " (none of them NaN)")]
        if self.source is None:
            lines.append("  source line: unknown")
        else:
            import os
            at = f"{os.path.basename(self.source.filename)}:{self.source.lineno} ({self.source.function})"
            if self.in_adjoint:
                fwd = self.source.transform.split(" <- ")[0][len("vjp of "):]
                lines.append(f"  in the backward (adjoint) graph: it comes from the VJP of `{fwd}` at {at}")
            elif self.source.transform:
                lines.append(f"  at {at} ({self.source.transform})")
            else:
                lines.append(f"  at {at}")
            lines.append(f"  file: {self.source.filename}")
        return "\n".join(lines)


def _eqn_lines(graph: Graph) -> list[str]:
    """The printed line of each top-level equation of ``graph``."""
    out = []
    for ln in graph.text().splitlines()[1:]:
        if ln.startswith("  ") and not ln.startswith("   "):
            body = ln.strip()
            if not (body.startswith("const ") or body.startswith("return")):
                out.append(body)
    return out


def find_first_nan(graph: Graph, args: Sequence[Any]) -> NaNReport | None:
    """Evaluate ``graph`` at ``args`` with the reference interpreter, one equation at a
    time; return where a NaN first appeared (``None`` if the outputs are NaN-free)."""
    if len(args) != len(graph.invars):
        raise TypeError(f"graph {graph.name} takes {len(graph.invars)} inputs, got {len(args)}")
    for i, (v, a) in enumerate(zip(graph.invars, args)):
        if _has_nan(a):
            return NaNReport(graph, None, None, f"input {i} ({v.aval}) holds NaN", [str(v.aval)], None)
    env = {v: np.asarray(a, v.aval.dtype) for v, a in zip(graph.invars, args)}  # Python scalars too
    env.update(zip(graph.constvars, graph.constvals))
    consts = set(graph.constvars)
    lines = None

    def read(a):
        return a.val if isinstance(a, Literal) else env[a]

    with _suspended():
        for i, eqn in enumerate(graph.eqns):
            ins = [read(a) for a in eqn.invars]
            outs = _RAW_EVAL(eqn.prim, ins, eqn.params)
            outs = outs if eqn.prim.multiple_results else [outs]
            env.update(zip(eqn.outvars, outs))
            if any(_has_nan(o) for o in outs):
                # NaN operands that are literals or constants: the NaN starts here too
                computed = [x for a, x in zip(eqn.invars, ins) if a not in consts and not isinstance(a, Literal)]
                if not any(_has_nan(x) for x in computed):
                    lines = lines or _eqn_lines(graph)
                    nan_consts = tuple(k for k, x in enumerate(ins) if _has_nan(x))
                    return NaNReport(graph, i, eqn, lines[i] if i < len(lines) else repr(eqn),
                                     [str(a.aval) for a in eqn.invars], eqn.source, nan_consts)
    return None


def check_outputs(graph: Graph, args: Sequence[Any], outs: Sequence[Any], what: str = "compiled function") -> None:
    """If some output holds NaN, re-run ``graph`` and raise NaNError naming the first
    NaN-producing equation. (What ``jit`` calls when ``debug_nans`` is on.)"""
    if not any(_has_nan(o) for o in outs):
        return
    report = find_first_nan(graph, args)
    if report is None:
        raise NaNError(f"the {what} `{graph.name}` returned NaN, but the reference interpreter "
                       f"gives none on the same inputs: this looks like a back-end bug; please "
                       f"report it with graph.text(consts=True)")
    raise NaNError(f"the {what} `{graph.name}` returned NaN.\n" + report.message(), report)


# ---------------------------------------------------------------- eager checks

_RAW_EVAL = core.eval_concrete
_SUSPEND = [0]


class _suspended:
    def __enter__(self):
        _SUSPEND[0] += 1

    def __exit__(self, *exc):
        _SUSPEND[0] -= 1


def _checked_eval_concrete(prim, args, params):
    outs = _RAW_EVAL(prim, args, params)
    if _SUSPEND[0]:
        return outs
    res = outs if prim.multiple_results else [outs]
    if any(_has_nan(o) for o in res) and not any(_has_nan(a) for a in args):
        shapes = ", ".join(str(core.get_aval(a)) for a in args) or "(none)"
        src = core.user_frame()
        at = f" at {src}" if src else ""
        raise NaNError(f"debug_nans: `{prim.name}` produced NaN from operands {shapes} that hold "
                       f"no NaN{at}")
    return outs


def _set_eager_check(on: bool) -> None:
    # bind() calls core.eval_concrete for concrete operands; swapping that module
    # attribute checks every eager operation while on and costs nothing while off.
    core.eval_concrete = _checked_eval_concrete if on else _RAW_EVAL


if config.debug_nans:
    _set_eager_check(True)
