"""One table of small programs covering every primitive the CUDA back end lowers,
with the dtypes that make sense for each. Used by test_ptx.py (PTX assembles),
test_cuda_emulated.py (values on the CPU SIMT emulator) and test_cuda_gpu.py (values
on a GPU). The test here checks that the table really covers every primitive."""
from __future__ import annotations

import numpy as np
import pytest

import tracer as tr
import tracer.lax as lax
import tracer.numpy as tnp

F, I, B = ("float32", "float64"), ("int32", "int64"), ("bool",)
CONTROL_FLOW: set = set()   # cond, while and scan are driven from the host and are tested too


def arr(dt, shape=(3, 5), lo=-3.0, hi=3.0, seed=0):
    rng = np.random.default_rng(seed + len(shape) * 7 + int(abs(lo) * 3))
    dt = np.dtype(dt)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind == "i":
        return rng.integers(int(lo) - 1, int(hi) + 2, shape).astype(dt)
    return rng.uniform(lo, hi, shape).astype(dt)


CASES: list = []


def case(name, fun, *args):
    CASES.append(pytest.param(fun, args, id=name))


_UNARY_F = ["exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "atan", "sqrt",
            "rsqrt", "logistic", "erf", "floor", "ceil", "round", "is_finite"]
_POSITIVE = {"log", "sqrt", "rsqrt", "log1p"}
for op in _UNARY_F:
    for dt in F:
        lo = 0.1 if op in _POSITIVE else -3.0
        case(f"{op}-{dt}", getattr(lax, op), arr(dt, lo=lo))
for op in ("neg", "sign", "abs"):
    for dt in F + I:
        case(f"{op}-{dt}", getattr(lax, op), arr(dt))
for dt in I + B:
    case(f"not-{dt}", lax.not_, arr(dt))
for op in ("add", "sub", "mul", "div", "rem", "max", "min"):
    for dt in F + I + (B if op in ("mul", "max", "min") else ()):
        y = arr(dt, seed=1)
        if op in ("div", "rem") and np.dtype(dt).kind == "f":
            y = np.where(np.abs(y) < 0.3, 1.5, y).astype(dt)
        case(f"{op}-{dt}", getattr(lax, op), arr(dt), y)
case("div-int32-by-zero", lax.div, np.array([7, -7, 5, -2**31], np.int32), np.array([0, 2, -3, -1], np.int32))
case("add-scalar-operand", lambda x: lax.add(x, np.float32(2.5)), arr("float32"))
case("pow-float32", lax.pow, arr("float32", lo=0.2), arr("float32", seed=2))
case("pow-float64", lax.pow, arr("float64", lo=0.2), arr("float64", seed=2))
for dt in F:
    case(f"atan2-{dt}", lax.atan2, arr(dt), arr(dt, seed=3))
for op in ("eq", "ne", "lt", "le", "gt", "ge"):
    for dt in F + I + B:
        case(f"{op}-{dt}", getattr(lax, op), arr(dt), arr(dt, seed=1))
for op, name in (("and_", "and"), ("or_", "or"), ("xor", "xor")):
    for dt in I + B:
        case(f"{name}-{dt}", getattr(lax, op), arr(dt), arr(dt, seed=1))
for dt in ("float32", "int64", "bool"):
    case(f"select-{dt}", lax.select, arr("bool", seed=4), arr(dt), arr(dt, seed=1))
case("select-scalar-pred", lambda p, x, y: lax.select(p, x, y), np.bool_(True), arr("float32"), arr("float32", seed=1))
for src, dst in (("float32", "int32"), ("float64", "int64"), ("int64", "float64"), ("float32", "float64"),
                 ("float64", "float32"), ("int32", "int64"), ("int64", "int32"), ("float64", "bool"),
                 ("bool", "float32"), ("int32", "bool"), ("bool", "int32")):
    case(f"convert-{src}-{dst}", lambda x, d=dst: lax.convert_element_type(x, d), arr(src, lo=-40, hi=40))
case("convert-float32-int32-saturate", lambda x: lax.convert_element_type(x, "int32"),
     np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 2.7, -2.7], np.float32))
for dt, y in (("float32", 3), ("float64", -2), ("int32", 5), ("int64", 2)):
    case(f"integer_pow{y}-{dt}", lambda x, y=y: lax.integer_pow(x, y), arr(dt, lo=0.5 if y < 0 else -3))
case("stop_gradient", lax.stop_gradient, arr("float32"))

# structural
case("broadcast_in_dim", lambda x: lax.broadcast_in_dim(x, (4, 3, 5), (1, 2)), arr("float32"))
case("broadcast_in_dim-size1", lambda x: lax.broadcast_in_dim(x, (3, 4, 5), (0, 2)), arr("int32", (3, 1)).reshape(3, 1)[:, 0:1].reshape(3, 1))
case("broadcast_in_dim-scalar", lambda x: lax.broadcast_in_dim(x, (2, 3), ()), np.float64(1.5))
case("reshape", lambda x: lax.reshape(x, (5, 3)), arr("float32"))
case("transpose", lambda x: lax.transpose(x, (2, 0, 1)), arr("float64", (2, 3, 4)))
case("rev", lambda x: lax.rev(x, (0, 1)), arr("int32"))
case("slice", lambda x: lax.slice(x, (1, 0), (3, 5), (1, 2)), arr("float32"))
case("pad", lambda x: lax.pad(x, np.float32(-1), ((1, 2, 1), (0, 1, 0))), arr("float32"))
case("pad-bool", lambda x: lax.pad(x, np.bool_(True), ((2, 0, 0), (1, 1, 2))), arr("bool"))
case("concatenate", lambda x, y: lax.concatenate([x, y, x], 1), arr("float32"), arr("float32", (3, 2)))
case("iota", lambda x: x + lax.iota(np.int32, (3, 5), 1), arr("int32"))
case("iota-float", lambda x: x * lax.iota(np.float32, (3, 5), 0), arr("float32"))
case("gather-clip", lambda x, i: lax.gather(x, i, (0,), "clip"), arr("float32", (6, 4)),
     np.array([[0], [5], [7], [-1]], np.int32))
case("gather-fill", lambda x, i: lax.gather(x, i, (1,), "fill"), arr("float64", (3, 4)),
     np.array([[0], [3], [4], [-2]], np.int64))
case("gather-2d", lambda x, i: lax.gather(x, i, (0, 2)), arr("int32", (4, 3, 5)),
     np.array([[1, 2], [3, 4], [0, 0]], np.int32))
case("scatter_add", lambda x, i, u: lax.scatter_add(x, i, u, (0,)), arr("float32", (5, 3)),
     np.array([[1], [3], [1], [9]], np.int32), arr("float32", (4, 3), seed=5))
case("scatter_add-int64-clip", lambda x, i, u: lax.scatter_add(x, i, u, (1,), "clip"), arr("int64", (3, 4)),
     np.array([[0], [6], [0]], np.int32), arr("int64", (3, 3), seed=5))
case("scatter_add-float64", lambda x, i, u: lax.scatter_add(x, i, u, (0,)), arr("float64", (5,)),
     np.array([[1], [1], [4]], np.int32), arr("float64", (3,), seed=6))
for comb in ("set", "mul", "min", "max"):
    case(f"scatter-{comb}", lambda x, i, u, c=comb: lax.scatter(x, i, u, (0,), combine=c),
         arr("float32", (5, 3)), np.array([[1], [3], [1], [-1]], np.int32), arr("float32", (4, 3), seed=7))

# reductions
for op in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
    for dt in F + I:
        case(f"{op}-{dt}", lambda x, op=op: getattr(lax, op)(x, (1,)), arr(dt, lo=-2 if "prod" in op else -3,
                                                                          hi=2 if "prod" in op else 3))
    case(f"{op}-all", lambda x, op=op: getattr(lax, op)(x, (0, 1, 2)), arr("float32", (2, 3, 4), lo=0.5, hi=1.5))
    case(f"{op}-middle", lambda x, op=op: getattr(lax, op)(x, (1,)), arr("float64", (3, 4, 5), lo=0.5, hi=1.5))
# long enough for the block kernel (warp shuffles + shared memory), not the per-thread loop
for op in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax", "argmin"):
    for dt in ("float32", "float64", "int32", "int64"):
        lo, hi = (0.99, 1.01) if "prod" in op and dt.startswith("float") else (-50, 50)
        fn = (lambda x, op=op: getattr(lax, op)(x, 1)) if op.startswith("arg") else \
            (lambda x, op=op: getattr(lax, op)(x, (1,)))
        case(f"{op}-block-{dt}", fn, arr(dt, (3, 300), lo=lo, hi=hi))
case("reduce_max-block-bool", lambda x: lax.reduce_max(x, (0,)), np.eye(300, 2, k=-217, dtype=bool))
case("reduce_min-block-columns", lambda x: lax.reduce_min(x, (0,)), arr("float32", (300, 5)))
for dt in ("bool",):
    case("reduce_max-bool", lambda x: lax.reduce_max(x, (0,)), arr(dt))
    case("reduce_min-bool", lambda x: lax.reduce_min(x, (1,)), arr(dt))
case("reduce_sum-long", lambda x: lax.reduce_sum(x, (0,)), arr("float32", (40000,), lo=0, hi=1))
case("reduce_max-long-rows", lambda x: lax.reduce_max(x, (1,)), arr("int32", (3, 20000)))
for op in ("argmax", "argmin"):
    for dt in F + I:
        case(f"{op}-{dt}", lambda x, op=op: getattr(lax, op)(x, 1), arr(dt))
    case(f"{op}-axis0-int64", lambda x, op=op: getattr(lax, op)(x, 0, np.int64), arr("float32", (300, 3)))
    case(f"{op}-nan", lambda x, op=op: getattr(lax, op)(x, 1),
         np.array([[1, np.nan, 3, np.nan], [2, 2, 1, 1]], np.float32))
for dt in F + I:
    case(f"cumsum-{dt}", lambda x: lax.cumsum(x, 1), arr(dt))
case("cumsum-reverse", lambda x: lax.cumsum(x, 0, reverse=True), arr("float32", (4, 3, 2)))
for dt in F + I:
    case(f"dot_general-matmul-{dt}", lambda x, y: lax.dot_general(x, y, (((1,), (0,)), ((), ()))),
         arr(dt, (20, 17)), arr(dt, (17, 33), seed=1))
case("dot_general-blocked", lambda x, y: lax.dot_general(x, y, (((1,), (0,)), ((), ()))),
     arr("float32", (130, 70)), arr("float32", (70, 150), seed=1))
case("dot_general-blocked-batch-transposed", lambda x, y: lax.dot_general(x, y, (((1,), (2,)), ((0,), (0,)))),
     arr("float64", (2, 33, 64)), arr("float64", (2, 65, 33), seed=1))
case("dot_general-blocked-int", lambda x, y: lax.dot_general(x, y, (((1,), (0,)), ((), ()))),
     arr("int32", (64, 20)), arr("int32", (20, 64), seed=1))
case("dot_general-batch", lambda x, y: lax.dot_general(x, y, (((2,), (1,)), ((0,), (0,)))),
     arr("float32", (3, 5, 4)), arr("float32", (3, 4, 6), seed=1))
case("dot_general-transposed", lambda x, y: lax.dot_general(x, y, (((0,), (1,)), ((), ()))),
     arr("float64", (7, 5)), arr("float64", (3, 7), seed=1))
case("dot_general-vector", lambda x, y: lax.dot_general(x, y, (((0,), (0,)), ((), ()))),
     arr("float32", (40,)), arr("float32", (40,), seed=1))

# fusion shapes and whole programs


def _poly_loss(w, x, y):
    pred = w[0] + w[1] * x + w[2] * x ** 2 + w[3] * x ** 3
    return tnp.mean((pred - y) ** 2)


def _mlp_step(params, x, y):
    def loss(p):
        h = tnp.tanh(x @ p["w1"] + p["b1"])
        logits = h @ p["w2"] + p["b2"]
        logp = logits - tr.nn.logsumexp(logits, axis=1, keepdims=True)
        return -tnp.mean(tnp.sum(logp * y, axis=1))
    g = tr.grad(loss)(params)
    return {k: params[k] - 0.1 * g[k] for k in params}


_xs = np.linspace(-1, 1, 64).astype(np.float32)
POLY_ARGS = (np.array([0.1, -0.2, 0.3, 0.5], np.float32), _xs, np.sin(3 * _xs).astype(np.float32))
_r = np.random.default_rng(0)
MLP_ARGS = ({"w1": _r.normal(0, 0.5, (8, 16)).astype(np.float32), "b1": np.zeros(16, np.float32),
             "w2": _r.normal(0, 0.5, (16, 4)).astype(np.float32), "b2": np.zeros(4, np.float32)},
            _r.normal(size=(32, 8)).astype(np.float32),
            np.eye(4, dtype=np.float32)[_r.integers(0, 4, 32)])
case("softmax-fusion", lambda x: tr.nn.softmax(x, axis=-1), arr("float32", (6, 7)))
case("horizontal-fusion", lambda w, b, gw, gb: (w - 0.1 * gw, b - 0.1 * gb, tnp.exp(b) + w),
     arr("float32", (4, 6)), arr("float32", (6,)), arr("float32", (4, 6), seed=1), arr("float32", (6,), seed=2))
case("shared-subexpression", lambda x: (tnp.exp(x).sum(0), tnp.exp(x) * 2), arr("float32"))
case("output-is-input", lambda x, y: (x, y * 2, x), arr("float32"), arr("float32", seed=1))
case("constant-output", lambda x: (x + 1, np.arange(4.0, dtype=np.float32)), arr("float32"))
case("constant-output-0d", lambda x: (x + 1, np.float64(2.5), np.int32(7)), arr("float32"))
case("zero-size", lambda x: (x * 2, tnp.sum(x, axis=0)), np.zeros((0, 3), np.float32))
case("cond", lambda p, x: tr.cond(p > 0, lambda v: tnp.exp(v) + 1.0, lambda v: v * 2.0, x),
     np.float32(1.0), arr("float32"))
case("cond-false", lambda p, x: tr.cond(p > 0, lambda v: tnp.exp(v) + 1.0, lambda v: v * 2.0, x),
     np.float32(-1.0), arr("float32"))
case("switch", lambda i, x: tr.switch(i, [lambda v: v, lambda v: -v, lambda v: v * v], x),
     np.int32(2), arr("float64"))
case("while_loop", lambda x: tr.while_loop(lambda c: c[0] < 10, lambda c: (c[0] + 1, c[1] * 1.5), (0, x)),
     arr("float32"))
case("fori_loop", lambda x: tr.fori_loop(0, 5, lambda i, v: v + tnp.sin(v) * i, x), arr("float32"))
case("scan", lambda c, xs: tr.scan(lambda c, x: (c + x, c * x), c, xs), arr("float32", (5,)),
     arr("float32", (4, 5), seed=3))
case("scan-reverse", lambda c, xs: tr.scan(lambda c, x: (c * 0.5 + x.sum(), c), c, xs, reverse=True),
     np.float64(1.0), arr("float64", (6, 2)))
case("grad-of-scan", tr.grad(lambda w, xs: tr.scan(lambda c, x: (tnp.tanh(c * w + x), None), 0.5, xs)[0]),
     np.float32(0.7), arr("float32", (8,)))


@tr.custom_vjp
def _clip_grad(x):
    return tnp.sin(x) * 2.0


_clip_grad.defvjp(lambda x: (_clip_grad(x), x), lambda x, g: (tnp.clip(g * tnp.cos(x), -0.1, 0.1),))


@tr.custom_jvp
def _softplus(x):
    return tnp.log1p(tnp.exp(x))


_softplus.defjvp(lambda primals, tangents: (_softplus(primals[0]), tangents[0] * tr.nn.sigmoid(primals[0])))
case("custom_vjp", _clip_grad, arr("float32"))
case("custom_vjp-grad", tr.grad(lambda x: _clip_grad(x).sum()), arr("float32"))
case("custom_jvp", lambda x: _softplus(x) * 2.0, arr("float64"))
case("custom_jvp-grad", tr.grad(lambda x: _softplus(x).sum()), arr("float64"))
case("poly-loss", _poly_loss, *POLY_ARGS)
case("poly-grad", tr.grad(_poly_loss), *POLY_ARGS)
case("mlp-step", _mlp_step, *MLP_ARGS)


def test_table_covers_every_primitive():
    seen = set()

    def walk(g):
        for e in g.eqns:
            seen.add(e.prim.name)
    for p in CASES:
        fun, args = p.values
        walk(tr.make_ir(fun)(*args))
    missing = set(tr.PRIMITIVES) - seen - CONTROL_FLOW
    assert not missing, f"primitives without a CUDA test case: {sorted(missing)}"


def test_every_primitive_has_a_cuda_lowering():
    from codegen.cuda.plan import CALLS, SUPPORTED
    missing = sorted(set(tr.PRIMITIVES) - SUPPORTED - CALLS)
    assert missing == [], "primitives the CUDA back end cannot lower (codegen.cuda.plan)"
