"""Graphviz pictures of graphs."""
import re
import shutil

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp
from tracer import core
from tracer.dot import GraphvizNotFound, to_dot, write_picture


def mlp(w, x):
    return tnp.sum(tnp.tanh(x @ w) * 2.0)


W = np.ones((3, 2), np.float32)
X = np.ones((4, 3), np.float32)


def test_dot_text_structure():
    g = tr.make_ir(mlp)(W, X)
    text = g.to_dot()
    assert text == to_dot(g) and text.startswith('digraph "mlp" {') and text.rstrip().endswith("}")
    # one box per equation, one oval per input, one octagon per output
    assert len(re.findall(r"shape=box\b", text)) == len(g.eqns) + len(g.constvars)
    assert text.count("shape=oval") == len(g.invars)
    assert text.count("shape=doubleoctagon") == len(g.outvars)
    # every non-literal operand gives an edge labelled with its type
    n_edges = sum(1 for e in g.eqns for a in e.invars if not isinstance(a, tr.ir.Literal)) + len(g.outvars)
    assert len(re.findall(r'-> n\d+ \[label="[~a-z0-9]+\[[0-9,]*\]"\]', text)) == n_edges
    assert 'label="f32[4,2]"' in text and "dot_general" in text and '"2.0:f32[]"' in text
    assert "mistyrose" not in text
    adj = tr.make_ir(tr.grad(mlp))(W, X)
    n_backward = sum(1 for e in adj.eqns if e.source and "vjp of" in e.source.transform)
    assert n_backward > 0 and adj.to_dot().count("fillcolor=mistyrose") == n_backward


def test_sub_graphs_are_clusters(scratch_primitive):
    p = scratch_primitive("test_dot_switch")
    p.abstract_eval = lambda x, *, branches: branches[0].out_avals[0]
    p.impl = lambda x, *, branches: core.interpret(branches[0], [x])[0]
    inner = tr.make_ir(lambda x: tnp.sin(x))(np.zeros(3, np.float32))
    g = tr.make_ir(lambda x: p.bind(x, branches=(inner, inner)))(np.zeros(3, np.float32))
    text = to_dot(g)
    assert text.count("subgraph cluster_") == 2
    assert 'label="test_dot_switch: branches[1]"' in text and "lhead=cluster_" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
@pytest.mark.parametrize("ext", ["svg", "png"])
def test_write_picture(tmp_path, ext):
    g = tr.make_ir(tr.grad(mlp))(W, X)
    path = write_picture(g, str(tmp_path / f"g.{ext}"))
    data = open(path, "rb").read()
    assert data.startswith(b"\x89PNG") if ext == "png" else b"<svg" in data


def test_missing_graphviz_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    g = tr.make_ir(mlp)(W, X)
    with pytest.raises(GraphvizNotFound, match="apt-get install graphviz"):
        write_picture(g, str(tmp_path / "g.svg"))
    # .dot needs no Graphviz
    assert open(write_picture(g, str(tmp_path / "g.dot"))).read() == to_dot(g)
