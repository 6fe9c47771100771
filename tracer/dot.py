"""Pictures of graphs: Graphviz text, and SVG/PNG through the ``dot`` program.

Inputs are green ovals, constants grey boxes (small values shown), equations boxes
named by primitive and params (pink: the backward pass of a gradient), outputs double
octagons; every edge is labelled
with the type of the value it carries. Sub-graphs of control-flow equations are drawn
as clusters next to the equation that holds them (dashed edge).
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np

from .ir import Graph, Literal, Var, format_param, subgraphs


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Dot:
    def __init__(self):
        self.lines: list[str] = []
        self.count = 0

    def node_id(self) -> str:
        self.count += 1
        return f"n{self.count}"

    def graph(self, g: Graph, prefix: str, indent: str) -> str:
        """Emit the nodes and edges of ``g``; returns the id of its first node (anchor)."""
        where: dict[Var, str] = {}
        anchor = None
        for i, v in enumerate(g.invars):
            nid = self.node_id()
            anchor = anchor or nid
            where[v] = nid
            self.lines.append(f"{indent}{nid} [label={_quote(f'in{i}: {v.aval}')}, shape=oval, "
                              f"style=filled, fillcolor=palegreen];")
        for v, val in zip(g.constvars, g.constvals):
            nid = self.node_id()
            anchor = anchor or nid
            where[v] = nid
            shown = f"\n{np.array2string(np.asarray(val), threshold=6, precision=4)}" if np.size(val) <= 6 else ""
            self.lines.append(f"{indent}{nid} [label={_quote(f'const {v.aval}{shown}')}, shape=box, "
                              f"style=filled, fillcolor=lightgrey];")
        for eqn in g.eqns:
            nid = self.node_id()
            anchor = anchor or nid
            simple = {k: v for k, v in eqn.params.items()
                      if not (isinstance(v, Graph) or (isinstance(v, tuple) and v and isinstance(v[0], Graph)))}
            label = eqn.prim.name
            if simple:
                label += "\n" + "\n".join(f"{k}={format_param(v)}" for k, v in sorted(simple.items()))
            tooltip = f", tooltip={_quote(str(eqn.source))}" if eqn.source else ""
            if eqn.source is not None and "vjp of" in eqn.source.transform:
                tooltip += ", style=filled, fillcolor=mistyrose"  # the backward (adjoint) pass
            self.lines.append(f"{indent}{nid} [label={_quote(label)}, shape=box{tooltip}];")
            for pos, a in enumerate(eqn.invars):
                if isinstance(a, Literal):
                    lid = self.node_id()
                    self.lines.append(f"{indent}{lid} [label={_quote(a.text())}, shape=plaintext];")
                    self.lines.append(f"{indent}{lid} -> {nid};")
                else:
                    self.lines.append(f"{indent}{where[a]} -> {nid} [label={_quote(str(a.aval))}];")
            for v in eqn.outvars:
                where[v] = nid
            for key, sub in subgraphs(eqn):
                cid = f"cluster_{prefix}{self.count}_{key.replace('[', '_').replace(']', '')}"
                self.lines.append(f"{indent}subgraph {cid} {{")
                self.lines.append(f"{indent}  label={_quote(f'{eqn.prim.name}: {key}')}; style=rounded; color=blue;")
                sub_anchor = self.graph(sub, cid + "_", indent + "  ")
                self.lines.append(f"{indent}}}")
                if sub_anchor:
                    self.lines.append(f"{indent}{nid} -> {sub_anchor} [style=dashed, color=blue, "
                                      f"lhead={cid}, arrowhead=none];")
        for i, v in enumerate(g.outvars):
            oid = self.node_id()
            label = f"out{i} = {v.text()}" if isinstance(v, Literal) else f"out{i}: {v.aval}"
            self.lines.append(f"{indent}{oid} [label={_quote(label)}, shape=doubleoctagon];")
            if not isinstance(v, Literal):
                self.lines.append(f"{indent}{where[v]} -> {oid} [label={_quote(str(v.aval))}];")
        return anchor


def to_dot(graph: Graph) -> str:
    """Graphviz (``dot``) text of ``graph``: inputs, constants, one node per equation,
    edges labelled with types, sub-graphs as clusters."""
    d = _Dot()
    d.lines.append(f"digraph {_quote(graph.name)} {{")
    d.lines.append("  compound=true; rankdir=TB; node [fontname=monospace, fontsize=10]; "
                   "edge [fontname=monospace, fontsize=9];")
    d.lines.append(f"  label={_quote(graph.name)}; labelloc=t;")
    d.graph(graph, "", "  ")
    d.lines.append("}")
    return "\n".join(d.lines) + "\n"


class GraphvizNotFound(RuntimeError):
    """The Graphviz ``dot`` program is not installed."""


def write_picture(graph: Graph, path: str, format: str | None = None) -> str:
    """Render ``graph`` with Graphviz into ``path`` (format from the extension: svg, png,
    pdf; or ``format=``). Needs the ``dot`` program (Debian/Ubuntu: apt-get install graphviz).
    Returns the path."""
    fmt = format or os.path.splitext(path)[1].lstrip(".").lower() or "svg"
    if fmt == "dot" or fmt == "gv":
        with open(path, "w") as f:
            f.write(to_dot(graph))
        return path
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(
            "writing a picture needs Graphviz's `dot` program, which is not on PATH; install "
            "Graphviz (e.g. `apt-get install graphviz`), or write the text of graph.to_dot() to a "
            ".dot file and render it elsewhere")
    res = subprocess.run([exe, f"-T{fmt}", "-o", path], input=to_dot(graph), text=True,
                         capture_output=True)
    if res.returncode != 0:
        raise RuntimeError(f"Graphviz `dot -T{fmt}` failed: {res.stderr.strip()}")
    return path
