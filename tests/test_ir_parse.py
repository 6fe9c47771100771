"""The printed IR parses back into the same graph; hand-edited IR evaluates; bad IR
gives errors with line numbers."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracer as tr
import tracer.numpy as tnp
from tracer import core, ir
from tracer.ir_parse import IRParseError, check_printable, format_const, parse, same_graph


def roundtrip(g: ir.Graph) -> ir.Graph:
    """Print with constant values, parse, and check the result is the same graph."""
    text = g.text(consts=True)
    h = parse(text)
    assert same_graph(g, h), text
    if not any(True for e in g.eqns for _ in ir.subgraphs(e)):
        # (a sub-graph object used twice prints its names twice; a parsed copy gets fresh ones)
        assert h.text(consts=True) == text
        assert h.text(source=False) == g.text()
    assert same_graph(h, parse(h.text(consts=True)))
    return h


def same_results(g, h, args):
    for a, b in zip(core.interpret(g, args), core.interpret(h, args)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- random programs

SHAPES = [(3,), (2, 3), (4, 3)]


def _ops():
    """Operations on a pool of float32 values: (name, arity, fn(rng-free args))."""
    big = np.linspace(-1, 1, 60).astype(np.float32).reshape(20, 3)
    return {
        "sin": (1, tnp.sin), "exp": (1, lambda x: tnp.exp(-tnp.abs(x))),
        "tanh": (1, tnp.tanh), "sqrt_abs": (1, lambda x: tnp.sqrt(tnp.abs(x) + 1.0)),
        "neg": (1, lambda x: -x), "scale": (1, lambda x: x * 2.5 - 0.1),
        "inf_lit": (1, lambda x: tnp.minimum(x, np.inf)), "nan_lit": (1, lambda x: tnp.where(x > 100.0, np.nan, x)),
        "sum0": (1, lambda x: tnp.sum(x, axis=0, keepdims=True) + x),
        "max": (1, lambda x: x - tnp.max(x)), "t2": (1, lambda x: (x.T * 1.0).T),
        "f64": (1, lambda x: x.astype(np.float64).astype(np.float32)),
        "slice": (1, lambda x: tnp.concatenate([x[..., 1:], x[..., :1]], axis=-1)),
        "gather": (1, lambda x: x[..., np.array([2, 0, 1])]),
        "iota": (1, lambda x: x + tr.lax.iota(np.float32, (3,), 0)),
        "const": (1, lambda x: x * np.array([1.5, -2.0, 0.25], np.float32)),
        "bigconst": (1, lambda x: x + tnp.sum(big, axis=0)),
        "cmp": (1, lambda x: tnp.where(x > 0, x, 0.0)),
        "int": (1, lambda x: x + (tnp.argmax(x, axis=-1)[..., None] % 2).astype(np.float32)),
        "add": (2, lambda x, y: x + y), "mul": (2, lambda x, y: x * y),
        "max2": (2, tnp.maximum), "mm": (2, lambda x, y: x @ tnp.ones((3, 3)) - y),
        # control flow: sub-graphs (branches[i], body) in the text
        "cond": (2, lambda x, y: tr.cond(tnp.sum(x) > 0, lambda v, w: v * 2.0 + w, lambda v, w: tnp.sin(v), x, y)),
        "fori": (1, lambda x: tr.fori_loop(0, 2, lambda i, v: v * 0.5 + 1.0, x)),
        "scan": (1, lambda x: tr.scan(lambda c, a: (c + a, c * a), 0.0, x.ravel())[1].reshape(x.shape)),
    }


OPS = _ops()


@st.composite
def programs(draw):
    shape = draw(st.sampled_from(SHAPES))
    n_in = draw(st.integers(1, 3))
    steps = draw(st.lists(st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 99), st.integers(0, 99)),
                          min_size=1, max_size=8))
    transform = draw(st.sampled_from(["none", "grad", "vmap", "jvp"]))

    def fun(*xs):
        pool = list(xs)
        for name, i, j in steps:
            arity, fn = OPS[name]
            args = [pool[i % len(pool)], pool[j % len(pool)]][:arity]
            pool.append(fn(*args))
        return tnp.sum(pool[-1] * pool[-1])

    if transform == "grad":
        f = tr.grad(fun, argnums=tuple(range(n_in)))
    elif transform == "vmap":
        f = tr.vmap(fun)
    elif transform == "jvp":
        f = lambda *xs: tr.jvp(fun, xs, tuple(tnp.ones_like(x) for x in xs))  # noqa: E731
    else:
        f = fun
    in_shape = (2,) + shape if transform == "vmap" else shape
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal(in_shape).astype(np.float32) for _ in range(n_in)]
    return f, args


@settings(max_examples=100)  # each example takes milliseconds
@given(programs())
def test_roundtrip_random_programs(prog):
    f, args = prog
    g = tr.make_ir(f)(*args)
    h = roundtrip(g)
    same_results(g, h, args)


def test_roundtrip_keeps_weak_types_literals_and_specials():
    def f(x, s):
        return tnp.where(x > s, x * 2.0, -np.inf) + tnp.nan * 0 + np.float32(1e-30)
    g = tr.make_ir(f)(tr.ShapedArray((5,), np.float32), tr.ShapedArray((), np.float32, weak_type=True))
    text = g.text(consts=True)
    assert "~f32[]" in text and "-inf:" in text
    h = roundtrip(g)
    assert h.invars[1].aval.weak_type
    x = np.array([0, 1, 2, 3, 4], np.float32)
    same_results(g, h, [x, np.float32(2.0)])


@pytest.mark.parametrize("val", [
    np.array([1.0, -0.0, 0.1, 3e38, 1e-45], np.float32),
    np.array([[1, -2], [2**31 - 1, -2**31]], np.int32),
    np.array([2**62, -5], np.int64),
    np.array([True, False]),
    np.array([np.nan, 1.0, np.inf], np.float64),
    np.arange(100, dtype=np.float64) / 7,
    np.float32(2.5).reshape(()),
])
def test_constant_values_roundtrip_bit_for_bit(val):
    def f(x):
        return x, val
    g = tr.make_ir(f)(np.float32(0))
    h = roundtrip(g)
    (c,) = h.constvals
    assert c.dtype == val.dtype and c.tobytes() == val.tobytes()
    assert ("b64" in format_const(val)) == (val.size > 32 or (val.dtype.kind == "f" and np.isnan(val).any()))


def test_multiple_results_and_no_inputs():
    g = tr.make_ir(lambda: (tr.lax.iota(np.int32, (4,)), tnp.zeros((2, 2))))()
    h = roundtrip(g)
    same_results(g, h, [])


def test_sub_graphs_generic(scratch_primitive):
    """A made-up higher-order primitive: Graph and tuple-of-Graph params round-trip."""
    p = scratch_primitive("test_switch")
    p.abstract_eval = lambda i, x, *, branches, tag: branches[0].out_avals[0]
    p.impl = lambda i, x, *, branches, tag: core.interpret(branches[int(i)], [x])[0]
    inner = tr.make_ir(lambda x: tnp.sin(x) * 3.0)(np.zeros(3, np.float32))
    other = tr.make_ir(lambda x: x + np.array([1.0, 2.0, 3.0], np.float32))(np.zeros(3, np.float32))

    def f(i, x):
        return p.bind(i, x, branches=(inner, other, inner), tag="t")
    g = tr.make_ir(f)(np.int32(0), np.zeros(3, np.float32))
    text = g.text(consts=True)
    assert "branches[2](" in text and "const" in text
    h = roundtrip(g)
    assert isinstance(h.eqns[0].params["branches"], tuple) and len(h.eqns[0].params["branches"]) == 3
    for i in range(3):
        same_results(g, h, [np.int32(i), np.array([0.5, 1, 2], np.float32)])


def test_control_flow_roundtrip():
    def f(x):
        y = tr.cond(tnp.sum(x) > 0, lambda v: v * 2.0, lambda v: v - 1.0, x)
        y = tr.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 0.9), (0, y))[1]
        return tr.fori_loop(0, 3, lambda i, v: v * 0.5 + 1.0, y)
    x = np.array([1.0, -2.0, 3.0], np.float32)
    for fn in (f, tr.vmap(f), tr.jacfwd(f)):
        g = tr.make_ir(fn)(x)
        assert any(True for e in g.eqns for _ in ir.subgraphs(e))
        h = roundtrip(g)
        same_results(g, h, [x])


# ---------------------------------------------------------------- hand-edited text

def test_hand_edited_ir_evaluates():
    g = tr.make_ir(lambda x: tnp.sin(x) * 2.0)(np.zeros(4, np.float32))
    text = g.text().replace("sin", "cos")
    h = parse(text)
    x = np.linspace(0, 1, 4).astype(np.float32)
    np.testing.assert_allclose(core.interpret(h, [x])[0], np.cos(x) * 2, rtol=1e-6)


def test_hand_written_ir_with_inferred_types():
    text = """
    def poly(x:f32[3] w:f32[3]):
      const c:f32[3] = [1.0, 2.0, 3.0]
      y = mul x w
      z = add y c          # types left out: the typing rule fills them in
      s:f32[] = reduce_sum[axes=(0,)] z
      return s z
    """
    g = parse(text)
    assert g.name == "poly" and [str(v.aval) for v in g.outvars] == ["f32[]", "f32[3]"]
    x, w = np.array([1, 2, 3], np.float32), np.array([2, 2, 2], np.float32)
    s, z = core.interpret(g, [x, w])
    np.testing.assert_array_equal(z, x * w + np.array([1, 2, 3], np.float32))
    assert s == z.sum()


def test_source_comments_parse():
    g = tr.make_ir(lambda x: tnp.exp(x))(np.zeros(2, np.float32))
    h = parse(g.text(source=True))
    assert h.eqns[0].source is not None and h.eqns[0].source.lineno == g.eqns[0].source.lineno
    g = tr.make_ir(tr.grad(lambda x: tnp.sum(tnp.log(x))))(np.ones(2, np.float32))
    h = parse(g.text(source=True))
    assert [str(e.source) for e in h.eqns] == [str(e.source) for e in g.eqns]
    assert any(e.source.transform == "vjp of log" for e in h.eqns)


# ---------------------------------------------------------------- errors

BAD = [
    ("def f(a:f32[3]):\n  b:f32[3] = sine a\n  return b", "line 2: unknown primitive 'sine'; did you mean sin"),
    ("def f(a:f32[3]):\n  b:f32[3] = sin q\n  return b", "line 2: variable 'q' is not defined"),
    ("def f(a:f32[3]):\n  b:f32[3] = sin a\n", "graph 'f' has no 'return' line"),
    ("def f(a:f33[3]):\n  return a", "line 1: unknown dtype 'f33'"),
    ("def f(a:f32[3]):\n  b:f32[4] = sin a\n  return b", "line 2: sin gives f32[3], but b is declared f32[4]"),
    ("def f(a:f32[3] b:i32[3]):\n  c = add a b\n  return c", "line 2: add: its typing rule rejects the inputs (f32[3], i32[3])"),
    ("def f(a:f32[3]):\n  const c:f32[3]\n  return c", "line 2: constant 'c' has no value"),
    ("def f(a:f32[3]):\n  const c:f32[3] = [1.0]\n  return c", "line 2: the value of constant 'c' does not fit"),
    ("def f(a:f32[3]):\n  b:f32[3] = sin a\n    return b", "line 3: expected a sub-graph header"),
    ("def f(a:f32[3]):\n  b:f32[3] = add a 1.0\n  return b", "line 2: literal 1.0 needs a type"),
    ("def f(a:f32[3]):\n  b:f32[3] = sin a\n  b:f32[3] = sin a\n  return b", "line 3: variable 'b' is defined twice"),
    ("def f(a:f32[3]):\n  b:f32[3] = custom[fwd=my_rule] a\n  return b", "unknown primitive"),
    ("f(a:f32[3]):\n  return a", "line 1: expected a graph header"),
    ("def f(a:f32[3]):\n  b:f32[3] = reduce_sum[axes=my_fn] a\n  return b",
     "line 2: param 'axes' holds a Python function (my_fn), which IR text cannot carry"),
    ("def f(a:f32[3]):\n  b:f32[3] = reduce_sum[axes=(0, <lambda>)] a\n  return b",
     "line 2: param 'axes' holds a Python function (<lambda>)"),
    ("def f(a):\n  return a", "line 1: variable 'a' needs a type"),
    ("", "empty IR text"),
]


@pytest.mark.parametrize("text,msg", BAD)
def test_parse_errors_name_the_line(text, msg):
    with pytest.raises(IRParseError) as e:
        parse(text)
    assert msg in str(e.value)


def test_callable_params_are_refused(scratch_primitive):
    p = scratch_primitive("test_callable_param")
    p.abstract_eval = lambda x, *, rule: x
    p.impl = lambda x, *, rule: rule(x)

    def my_rule(x):
        return x
    g = tr.make_ir(lambda x: p.bind(x, rule=my_rule))(np.zeros(2, np.float32))
    with pytest.raises(IRParseError, match="my_rule"):
        check_printable(g)
    with pytest.raises(IRParseError, match="param 'rule' holds a Python function \\(my_rule\\)"):
        parse(g.text(consts=True))


def test_custom_vjp_rules_are_named_when_parsing():
    @tr.custom_vjp
    def f(x):
        return tnp.sin(x)
    f.defvjp(lambda x: (tnp.sin(x), x), lambda r, g: (g * tnp.cos(r),))
    g = tr.make_ir(lambda x: f(x) * 2.0)(np.ones(3, np.float32))
    with pytest.raises(IRParseError, match="line 2: param '(bwd|fwd)' holds a Python function"):
        parse(g.text(consts=True))


def test_hand_edited_ir_compiles_with_jit():
    """A dumped IR, edited by hand, compiled directly (how a back-end bug is reproduced)."""
    def mlp(w, b, x):
        return tnp.tanh(x @ w + b)
    w, b = np.linspace(-1, 1, 12).astype(np.float32).reshape(4, 3), np.ones(3, np.float32)
    x = np.linspace(0, 2, 8).astype(np.float32).reshape(2, 4)
    text = tr.make_ir(mlp)(w, b, x).text(consts=True).replace("tanh", "logistic")
    g = parse(text)
    compiled = tr.jit(g)
    from tracer.ir_parse import compile_graph
    (got,), (got2,) = compiled(w, b, x), compile_graph(g)(w, b, x)
    (want,) = core.interpret(g, [w, b, x])
    np.testing.assert_allclose(want, 1 / (1 + np.exp(-(x @ w + b))), rtol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got, got2)


@settings(max_examples=8)
@given(programs())
def test_random_parsed_programs_compile(prog):
    f, args = prog
    g = parse(tr.make_ir(f)(*args).text(consts=True))
    for a, b in zip(tr.jit(g)(*args), core.interpret(g, args)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-4)


def test_jit_dumps_parse_back(tmp_path, monkeypatch):
    """TRACER_DUMP_DIR's IR files are parseable (constants, source lines) and compile."""
    monkeypatch.setenv("TRACER_DUMP_DIR", str(tmp_path))
    w = np.linspace(-1, 1, 40).astype(np.float32).reshape(8, 5)

    def model(x):
        return tnp.tanh(x @ w) * 3.0
    x = np.linspace(0, 1, 16).astype(np.float32).reshape(2, 8)
    want = tr.jit(model)(x)
    dumps = sorted(p for p in tmp_path.iterdir() if p.name.startswith("model.") and "ir.txt" in p.name)
    assert len(dumps) == 2  # ir and optimized_ir
    for p in dumps:
        g = parse(p.read_text())
        assert g.constvars and any(e.source for e in g.eqns)
        np.testing.assert_allclose(tr.jit(g)(x)[0], want, rtol=1e-6)
