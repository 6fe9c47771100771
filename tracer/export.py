"""``tr.export``: compile a function ahead of time into a shared library with a C header.

    exported = tr.export(forward, tr.ShapedArray((1, 64), "float32"),
                         path="build/libdigits.so", name="digits_forward", params=trained)

The library needs no Python and no llvmlite to load: link a C program against it
(``cc main.c -Lbuild -ldigits``). See docs/export.md.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .api import fun_name
from .pytree import tree_flatten


def _leaf_names(fun: Callable, args, skip: int) -> list[str]:
    try:
        sig = [p.name for p in inspect.signature(fun).parameters.values()][skip:]
    except (TypeError, ValueError):
        sig = []
    names = []
    for i, a in enumerate(args):
        base = sig[i] if i < len(sig) else f"arg{i}"
        sub = _paths(a, base)
        n = len(tree_flatten(a)[0])
        names += sub if len(sub) == n else [base] if n == 1 else [f"{base}_{j}" for j in range(n)]
    return names


def _paths(x, base: str) -> list[str]:
    """Names of the leaves of dicts/lists/tuples in flattening order: ``p_w1``, ``p_0``."""
    if isinstance(x, dict):
        return [n for k in sorted(x) for n in _paths(x[k], f"{base}_{k}")]
    if isinstance(x, (list, tuple)):
        return [n for i, v in enumerate(x) for n in _paths(v, f"{base}_{i}")]
    return [base]


def export(fun: Callable, *example_args: Any, path: str, name: str | None = None,
           params: Any = None, header: str | None = None, result_names=None, cpu: str = "host"):
    """Compile ``fun`` at the shapes/dtypes of ``example_args`` (arrays, scalars or
    ``tr.ShapedArray``s; pytrees allowed) into the shared library ``path`` with the C
    entry point ``name`` and write its C header (``path`` with ``.h``, or ``header``).

    ``params``: if given, ``fun(params, *args)`` is compiled with ``params`` (a pytree of
    arrays, e.g. trained weights) baked into the library as read-only constants; to pass
    parameters at run time instead, give them among ``example_args``.
    ``result_names``: C names of the results (default ``out`` or ``out0, out1, ...``).
    ``cpu``: "host" (this machine's CPU and features) or an LLVM CPU name such as "x86-64".

    Needs a system C compiler/linker (``cc``); raises ``codegen.export.ExportError`` if none.
    Returns an ``ExportedLibrary`` (paths, C argument names, types)."""
    from codegen.export import write_shared_library  # the back end; imported only when used
    from .jit import jit

    if not callable(fun):
        raise TypeError(f"export expects a function, got {type(fun).__name__}")
    if params is not None:
        def target(*args):
            return fun(params, *args)
        target.__name__ = fun_name(fun)
        skip = 1
    else:
        target, skip = fun, 0
    lowered = jit(target).lower(*example_args)
    graph = lowered.optimized_graph
    arg_names = _leaf_names(fun, example_args, skip)
    out_leaves = lowered.out_tree.num_leaves if hasattr(lowered.out_tree, "num_leaves") else len(graph.outvars)
    out_names = ["out"] if out_leaves == 1 else [f"out{i}" for i in range(len(graph.outvars))]
    if result_names is not None:
        if len(result_names) != len(graph.outvars):
            raise ValueError(f"export: {len(result_names)} result_names for {len(graph.outvars)} results")
        out_names = list(result_names)
    name = name or fun_name(fun)
    ins = ", ".join(f"{n}: {a}" for n, a in zip(arg_names, graph.in_avals))
    outs = ", ".join(f"{n}: {a}" for n, a in zip(out_names, graph.out_avals))
    doc = (f"Source: Python function `{fun_name(fun)}`" + (" with its parameters baked in as constants"
           if params is not None else "") + f".\nSignature: ({ins}) -> ({outs})")
    return write_shared_library(graph, path, name, arg_names, out_names, header=header, doc=doc, cpu=cpu)
