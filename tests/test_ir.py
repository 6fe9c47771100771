"""make_ir and the IR: golden printed text, the verifier, deterministic names,
source lines, abstract/pytree/scalar arguments, closure constants, static Python
control flow, and docs/ir.md covering every primitive."""
import os
import re
import textwrap

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp
from tracer import core, nn
from tracer.ir import Eqn, IRError, ShapedArray, Var

F32 = np.float32
X = np.linspace(-1, 1, 5).astype(F32)
Y = np.sin(X)


def loss(a, b, c, d):
    """The seed's polynomial fit: y ~ a + b x + c x^2 + d x^3, squared error."""
    y_pred = a + b * X + c * X ** 2 + d * X ** 3
    return ((y_pred - Y) ** 2).sum()


def golden(s: str) -> str:
    return textwrap.dedent(s).strip("\n")


LOSS_IR = golden("""
    def loss(a:f32[] b:f32[] c:f32[] d:f32[]):
      const e:f32[5]
      const f:f32[5]
      const g:f32[5]
      const h:f32[5]
      i:f32[5] = mul b e
      j:f32[5] = add a i
      k:f32[5] = mul c f
      l:f32[5] = add j k
      m:f32[5] = mul d g
      n:f32[5] = add l m
      o:f32[5] = sub n h
      p:f32[5] = integer_pow[y=2] o
      q:f32[] = reduce_sum[axes=(0,)] p
      return q
""")


def test_golden_polynomial_loss():
    s = ShapedArray((), F32)
    g = tr.make_ir(loss)(s, s, s, s)
    assert str(g) == LOSS_IR
    # the constants are the closure's arrays (x, x**2, x**3 folded eagerly, and y)
    np.testing.assert_array_equal(g.constvals[0], X)
    np.testing.assert_allclose(g.constvals[2], X ** 3)
    np.testing.assert_array_equal(g.constvals[3], Y)
    # concrete arguments give the same graph; the reference interpreter evaluates it
    a, b, c, d = (F32(v) for v in (0.1, 0.9, -0.2, -0.15))
    g2 = tr.make_ir(loss)(a, b, c, d)
    assert str(g2) == LOSS_IR
    (out,) = core.interpret(g2, [a, b, c, d])
    np.testing.assert_allclose(out, loss(a, b, c, d), rtol=1e-6)


def test_python_scalars_trace_weakly_typed():
    g = tr.make_ir(loss)(1.0, 2.0, 3.0, 4.0)
    assert str(g).splitlines()[0] == "def loss(a:~f32[] b:~f32[] c:~f32[] d:~f32[]):"


def mlp(params, x):
    h = tnp.tanh(x @ params["w"] + params["b"])
    return nn.relu(h).sum(axis=-1)


MLP_IR = golden("""
    def mlp(a:f32[4] b:f32[3,4] c:f32[2,3]):
      d:f32[2,4] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] c b
      e:f32[2,4] = broadcast_in_dim[broadcast_dimensions=(1,), shape=(2, 4)] a
      f:f32[2,4] = add d e
      g:f32[2,4] = tanh f
      h:bool[2,4] = gt g 0.0:f32[]
      i:f32[2,4] = broadcast_in_dim[broadcast_dimensions=(), shape=(2, 4)] 0.0:f32[]
      j:f32[2,4] = select h g i
      k:f32[2] = reduce_sum[axes=(1,)] j
      return k
""")


def test_golden_mlp_with_pytree_args():
    params = {"w": ShapedArray((3, 4), F32), "b": ShapedArray((4,), F32)}  # keys flatten sorted
    g = tr.make_ir(mlp)(params, ShapedArray((2, 3), F32))
    assert str(g) == MLP_IR
    r = np.random.default_rng(0)
    w, b, x = r.normal(size=(3, 4)).astype(F32), r.normal(size=4).astype(F32), r.normal(size=(2, 3)).astype(F32)
    (out,) = core.interpret(g, [b, w, x])
    np.testing.assert_allclose(out, np.maximum(np.tanh(x @ w + b), 0).sum(-1), rtol=1e-5)


def unrolled(x, n):
    for _ in range(n):
        x = x * 2 + 1
    if x.shape[0] > 2:  # static: shapes are known while tracing
        x = x[:2]
    return x.T, tnp.where(x > 0, x, 0.0)


UNROLLED_IR = golden("""
    def unrolled(a:f32[4,3]):
      b:f32[4,3] = mul a 2.0:f32[]
      c:f32[4,3] = add b 1.0:f32[]
      d:f32[4,3] = mul c 2.0:f32[]
      e:f32[4,3] = add d 1.0:f32[]
      f:f32[2,3] = slice[limit_indices=(2, 3), start_indices=(0, 0), strides=(1, 1)] e
      g:f32[3,2] = transpose[permutation=(1, 0)] f
      h:bool[2,3] = gt f 0.0:f32[]
      i:f32[2,3] = select h f 0.0:f32[]
      return g i
""")


def test_golden_static_control_flow():
    g = tr.make_ir(unrolled, static_argnums=1)(ShapedArray((4, 3), F32), 2)
    assert str(g) == UNROLLED_IR
    g0 = tr.make_ir(unrolled, static_argnums=(1,))(ShapedArray((2, 3), F32), 0)
    assert [e.prim.name for e in g0.eqns] == ["transpose", "gt", "select"]


def test_golden_int_and_bool_ops():
    def f(i, m):
        return (i // 2 + i.sum()).astype(F32), m & (i > 0)
    g = tr.make_ir(f)(np.arange(3, dtype=np.int32), np.ones(3, bool))
    text = str(g)
    assert text.splitlines()[0] == "def f(a:i32[3] b:bool[3]):"
    assert re.search(r"= reduce_sum\[axes=\(0,\)\] a$", text, re.M)
    assert re.search(r":f32\[3\] = convert_element_type\[new_dtype=f32, weak_type=False\]", text)
    assert re.search(r":bool\[3\] = and b ", text)


def test_names_are_deterministic():
    s = ShapedArray((), F32)
    texts = {str(tr.make_ir(loss)(s, s, s, s)) for _ in range(3)}
    assert len(texts) == 1
    # names restart at `a` in every graph, whatever was traced before
    tr.make_ir(mlp)({"w": ShapedArray((3, 4), F32), "b": ShapedArray((4,), F32)}, ShapedArray((2, 3), F32))
    assert str(tr.make_ir(loss)(s, s, s, s)) == LOSS_IR


def test_source_lines_printable():
    s = ShapedArray((), F32)
    g = tr.make_ir(loss)(s, s, s, s)
    text = g.text(source=True)
    first_line = loss.__code__.co_firstlineno
    lines = [ln for ln in text.splitlines() if " = " in ln]
    assert lines and all("# test_ir.py:" in ln and "(loss)" in ln for ln in lines)
    used = {int(m) for m in re.findall(r"test_ir\.py:(\d+)", text)}
    assert used == {first_line + 2, first_line + 3}  # the two lines of loss's body
    assert "#" not in str(g)  # source lines only on request


def test_shaped_array_and_mixed_args():
    def f(x, y, z):
        return x * y + z
    g = tr.make_ir(f)(ShapedArray((2, 3), np.float64), np.ones((2, 3), np.float64), 2)
    assert [str(a) for a in g.in_avals] == ["f64[2,3]", "f64[2,3]", "~i32[]"]
    assert [str(a) for a in g.out_avals] == ["f64[2,3]"]
    g = tr.make_ir(f)(ShapedArray((3,), np.int32), 1, 2.5)
    assert g.out_avals[0].dtype == np.float32  # int array + weak float -> float32


def test_pytree_args_and_outputs():
    from collections import namedtuple
    P = namedtuple("P", "a b")

    def f(p, xs):
        return {"sum": p.a + xs[0], "prod": p.b * xs[1]}, None
    p = P(np.ones(2, F32), np.full(2, 3.0, F32))
    xs = [np.arange(2, dtype=F32), np.full(2, 2.0, F32)]
    g = tr.make_ir(f)(p, xs)
    assert len(g.invars) == 4 and len(g.outvars) == 2
    outs = core.interpret(g, [p.a, p.b, xs[0], xs[1]])
    np.testing.assert_array_equal(outs[0], p.b * xs[1])  # "prod" sorts before "sum"
    np.testing.assert_array_equal(outs[1], p.a + xs[0])


def test_closure_arrays_become_constants():
    w = np.arange(6, dtype=F32).reshape(2, 3)

    def f(x):
        return x @ w
    g = tr.make_ir(f)(ShapedArray((4, 2), F32))
    assert len(g.constvars) == 1 and g.constvars[0].aval == ShapedArray((2, 3), F32)
    np.testing.assert_array_equal(g.constvals[0], w)
    assert str(g).splitlines()[1] == "  const b:f32[2,3]"


def test_traced_python_control_flow_raises():
    def f(x):
        if x.sum() > 0:
            return x
        return -x
    with pytest.raises(tr.ConcretizationError):
        tr.make_ir(f)(np.ones(3, F32))


# ---------------------------------------------------------------- the verifier

def _graph():
    return tr.make_ir(lambda x: tnp.exp(x).sum() * 2.0)(ShapedArray((3,), F32))


def test_verifier_accepts_traced_graphs():
    assert _graph().verify() is not None
    tr.make_ir(mlp)({"w": ShapedArray((3, 4), F32), "b": ShapedArray((4,), F32)},
                    ShapedArray((2, 3), F32)).verify()


def test_verifier_rejects_wrong_output_type():
    g = _graph()
    k = next(i for i, e in enumerate(g.eqns) if e.prim.name == "reduce_sum")
    e = g.eqns[k]
    bad = Var(ShapedArray((3,), F32))  # reduce_sum over all axes gives f32[], not f32[3]
    eqns = list(g.eqns)
    eqns[k] = Eqn(e.prim, e.invars, [bad], e.params)
    with pytest.raises(IRError, match=rf"equation {k} \(reduce_sum\).*typed f32\[3\].*gives f32\[\]"):
        g.replace(eqns=eqns[:k + 1], outvars=[bad]).verify()


def test_verifier_rejects_use_before_definition():
    g = _graph()
    with pytest.raises(IRError, match=r"equation 0 \(mul\).*before it is defined"):
        g.replace(eqns=list(reversed(g.eqns))).verify()


def test_verifier_rejects_ill_typed_equation():
    g = _graph()
    e = g.eqns[0]  # exp f32[3]
    x_int = Var(ShapedArray((3,), np.int32))
    eqns = [Eqn(e.prim, [x_int], e.outvars, e.params)] + list(g.eqns[1:])
    with pytest.raises(IRError, match=r"equation 0 \(exp\).*typing rule rejects"):
        g.replace(invars=[x_int], eqns=eqns).verify()


def test_verifier_rejects_undefined_output_and_bad_constant():
    g = _graph()
    with pytest.raises(IRError, match="not defined"):
        g.replace(outvars=[Var(ShapedArray((), F32))]).verify()
    w = np.ones((2, 3), F32)
    g = tr.make_ir(lambda x: x @ w)(ShapedArray((2, 2), F32))
    with pytest.raises(IRError, match="constant"):
        g.replace(constvals=[np.ones((3, 3), F32)]).verify()


# ---------------------------------------------------------------- docs/ir.md stays complete

def test_ir_doc_lists_every_primitive():
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "ir.md")
    with open(path) as f:
        doc = f.read()
    headings = set(re.findall(r"^#+\s+`([a-z_0-9]+)`", doc, re.M))
    missing = sorted(set(core.PRIMITIVES) - headings)
    assert not missing, f"docs/ir.md has no section for: {missing}"
