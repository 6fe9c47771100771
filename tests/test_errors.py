"""One test per user-facing error: its class (and the builtin it subclasses), and a
message that names the operation, the operands and the user's source line."""
import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp
from tracer import lax
from tracer.errors import ConcretizationError, DTypeError, ShapeError, TracerLeakError

F32 = np.float32
X3 = np.ones(3, F32)
THIS_FILE = "test_errors.py"


def raises(exc, fn, *args, **kw):
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    return str(info.value)


# ---------------------------------------------------------------- concretization

def branchy(x):
    if x.sum() > 0:  # a Python `if` on a traced value
        return x
    return -x


@pytest.mark.parametrize("what,fn", [
    ("bool()", branchy),
    ("bool()", lambda x: x if x[0] else -x),
    ("int()", lambda x: x * int(x[0])),
    ("float()", lambda x: x * float(x.sum())),
    ("Python index", lambda x: [1, 2, 3][x[0].astype(np.int32)]),
    ("item", lambda x: x.sum().item()),
    ("numpy array", lambda x: np.asarray(x)),
])
def test_concretization_error(what, fn):
    msg = raises(ConcretizationError, tr.make_ir(fn), X3)
    assert what in msg
    assert "tr.cond" in msg and "static_argnums" in msg  # how to fix it
    assert THIS_FILE in msg  # where it happened


def test_concretization_error_is_a_type_error_and_names_the_value():
    with pytest.raises(TypeError) as info:
        tr.make_ir(branchy)(X3)
    msg = str(info.value)
    assert "reduce_sum" in msg or "gt" in msg  # the value came from x.sum() > 0
    assert f"{THIS_FILE}:{branchy.__code__.co_firstlineno + 1}" in msg
    msg = raises(ConcretizationError, tr.make_ir(lambda x, n: x if n else -x), X3, 2)
    assert "argument `n`" in msg  # an argument is named as such


def test_concretization_under_grad():
    raises(ConcretizationError, tr.grad(lambda x: branchy(x).sum()), X3)


def test_static_argnums_is_the_fix():
    g = tr.make_ir(lambda x, n: x if n else -x, static_argnums=1)(X3, 2)
    assert len(g.eqns) == 0


# ---------------------------------------------------------------- shapes

def test_shape_error_broadcasting():
    def f(x):
        return x + np.ones((4,), F32)
    msg = raises(ShapeError, tr.make_ir(f), X3)
    assert "add" in msg and "(3,)" in msg and "(4,)" in msg
    assert f"{THIS_FILE}:{f.__code__.co_firstlineno + 1}" in msg


def test_shape_error_is_a_value_error():
    with pytest.raises(ValueError):
        tr.make_ir(lambda x: x + np.ones((4,), F32))(X3)


def test_shape_error_at_primitive_level():
    msg = raises(ShapeError, tr.make_ir(lambda x: lax.add(x, np.ones(4, F32))), X3)
    assert "add" in msg and "f32[3]" in msg and "f32[4]" in msg and THIS_FILE in msg


def test_shape_error_matmul():
    msg = raises(ShapeError, tr.make_ir(lambda x: x @ np.ones((4, 2), F32)), X3)
    assert "matmul" in msg and "(3,)" in msg and "(4, 2)" in msg and THIS_FILE in msg


def test_shape_error_reshape():
    msg = raises(ShapeError, tr.make_ir(lambda x: x.reshape(4)), X3)
    assert "reshape" in msg and "f32[3]" in msg and "(4,)" in msg and THIS_FILE in msg


def test_shape_error_concatenate_and_dot_general():
    msg = raises(ShapeError, tr.make_ir(lambda x: tnp.concatenate([x[None], np.ones((1, 4), F32)])), X3)
    assert "concatenate" in msg and "f32[1,3]" in msg and "f32[1,4]" in msg and THIS_FILE in msg
    msg = raises(ShapeError, tr.make_ir(lambda x: lax.dot_general(x, np.ones(4, F32), (((0,), (0,)), ((), ())))),
                 X3)
    assert "dot_general" in msg and "3 vs 4" in msg and THIS_FILE in msg


# ---------------------------------------------------------------- dtypes

def test_dtype_error_mixed_dtypes_at_primitive_level():
    msg = raises(DTypeError, tr.make_ir(lambda x: lax.add(x, np.ones(3, np.int32))), X3)
    assert "add" in msg and "f32[3]" in msg and "i32[3]" in msg and THIS_FILE in msg


def test_dtype_error_is_a_type_error():
    with pytest.raises(TypeError):
        tr.make_ir(lambda x: lax.sin(x.astype(np.int32)))(X3)


def test_dtype_error_kind():
    msg = raises(DTypeError, tr.make_ir(lambda x: lax.sin(x.astype(np.int32))), X3)
    assert "sin" in msg and "floating" in msg and "i32[3]" in msg and THIS_FILE in msg
    msg = raises(DTypeError, tr.make_ir(lambda x: x & x), X3)
    assert "bitwise_and" in msg and "f32[3]" in msg and THIS_FILE in msg


def test_dtype_error_integer_pow():
    msg = raises(DTypeError, tr.make_ir(lambda x: lax.integer_pow(x.astype(np.int32), -1)), X3)
    assert "integer_pow" in msg and "negative" in msg and THIS_FILE in msg


def test_grad_of_integer_input():
    msg = raises(TypeError, tr.grad(lambda x: x.sum()), np.ones(3, np.int32))
    assert "int32" in msg and "float" in msg


# ---------------------------------------------------------------- leaks

def test_tracer_leak_into_a_later_trace():
    leaked = []

    def keep(x):
        leaked.append(x)  # stores the tracer: a bug in user code
        return x
    tr.make_ir(keep)(X3)
    msg = raises(TracerLeakError, tr.make_ir(lambda y: y + leaked[0]), X3)
    assert "after the trace" in msg and "argument `x`" in msg and THIS_FILE in msg
    assert "return them as outputs" in msg


def test_tracer_leak_used_eagerly():
    leaked = []
    tr.make_ir(lambda x: leaked.append(x * 2) or x)(X3)
    msg = raises(TracerLeakError, tnp.add, leaked[0], 1.0)
    assert "mul" in msg  # names where the value came from
    with pytest.raises(RuntimeError):  # TracerLeakError is a RuntimeError
        tnp.sin(leaked[0])


# ---------------------------------------------------------------- other bad input

def test_bad_arguments():
    msg = raises(TypeError, tr.make_ir(lambda y: y), "abc")
    assert "str" in msg and "not a valid array" in msg
    raises(TypeError, tr.make_ir(lambda y: y), object())
    raises(TypeError, tr.make_ir(lambda y: y), 1 + 2j)
    raises(TypeError, tr.make_ir(3))  # not a function


def test_traced_boolean_mask():
    msg = raises(ConcretizationError, tr.make_ir(lambda x: x[x > 0]), X3)
    assert "data-dependent shape" in msg and "tnp.where" in msg and THIS_FILE in msg


def test_setitem_on_tracer():
    def f(x):
        x[0] = 1.0
        return x
    msg = raises(TypeError, tr.make_ir(f), X3)
    assert ".at[idx].set" in msg


def test_negative_integer_power_of_integers_is_refused_as_in_numpy():
    with pytest.raises(ValueError, match="negative integer powers"):
        tr.jit(lambda x: x ** -1)(np.int32(2))
    with pytest.raises(ValueError, match="negative integer powers"):
        tnp.power(np.arange(3, dtype=np.int32), np.array([1, -1, 2], np.int32))
    np.testing.assert_allclose(tr.jit(lambda x: x ** -1)(np.float32(2)), 0.5)


def test_shaped_array_where_data_is_needed():
    with pytest.raises(TypeError, match="abstract value"):
        tr.jit(lambda x: x)(tr.ShapedArray((2,), np.float32))
