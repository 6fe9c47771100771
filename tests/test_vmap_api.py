"""vmap's calling conventions (in_axes / out_axes forms, pytrees, unbatched values)
and its error messages. Oracle: a Python loop over the batch."""
from __future__ import annotations

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp

rng = np.random.default_rng(1)


def loop(f, in_axes, args, size):
    """Apply f to each member; in_axes is a flat tuple (one entry per positional arg,
    each an int, None, or a dict of those for dict arguments)."""
    def member(a, ax, b):
        if isinstance(ax, dict):
            return {k: member(a[k], ax[k], b) for k in a}
        return a if ax is None else np.take(a, b, axis=ax)
    return [f(*[member(a, ax, b) for a, ax in zip(args, in_axes)]) for b in range(size)]


def test_in_axes_int_none_and_negative():
    x, y = rng.standard_normal((2, 5)), rng.standard_normal((5, 3))

    def f(a, b):
        return tnp.sum(a) * b
    got = tr.vmap(f, in_axes=(-1, 0))(x, y)
    want = np.stack(loop(f, (1, 0), (x, y), 5))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(tr.vmap(f, in_axes=[1, None])(x, y[0]),
                               np.stack(loop(f, (1, None), (x, y[0]), 5)), rtol=1e-12)


def test_in_axes_int_applies_to_every_leaf_of_every_argument():
    d = {"a": rng.standard_normal((4, 2)), "b": rng.standard_normal((4,))}
    got = tr.vmap(lambda p: tnp.sum(p["a"]) + p["b"])(d)
    want = d["a"].sum(1) + d["b"]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_in_axes_pytree_prefix_with_dicts_and_tuples():
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal((4, 2))}
    pair = (rng.standard_normal((4, 3)), rng.standard_normal(3))

    def f(p, xy):
        x, s = xy
        return tnp.tanh((x * s) @ p["w"] + p["b"])
    axes = ({"w": None, "b": 0}, (0, None))
    got = tr.vmap(f, in_axes=axes)(params, pair)
    want = np.stack([f({"w": params["w"], "b": params["b"][i]}, (pair[0][i], pair[1])) for i in range(4)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_out_axes_forms():
    x = rng.standard_normal((3, 2))

    def f(a):
        return {"sq": a * a, "const": tnp.ones(2), "sum": tnp.sum(a)}
    got = tr.vmap(f, out_axes={"sq": -1, "const": None, "sum": 0})(x)
    np.testing.assert_allclose(got["sq"], (x * x).T)
    np.testing.assert_allclose(got["const"], np.ones(2))
    np.testing.assert_allclose(got["sum"], x.sum(1))
    # an unbatched output with an int out_axes is broadcast over the batch
    got = tr.vmap(f, out_axes={"sq": 1, "const": 1, "sum": -1})(x)
    np.testing.assert_allclose(got["const"], np.ones((2, 3)))
    assert got["sum"].shape == (3,)


def test_scalars_unbatched_args_and_dtypes():
    x = rng.standard_normal((4, 2)).astype(np.float32)
    got = tr.vmap(lambda a, s, n: a * s + n, in_axes=(0, None, None))(x, 2.0, np.float32(1))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, x * 2 + 1, rtol=1e-6)
    ints = np.arange(12, dtype=np.int32).reshape(3, 4)
    got = tr.vmap(lambda r: tnp.argmax(r * (r % 3 == 1)))(ints)
    assert got.dtype == np.int32 and list(got) == [1, 3, 2]


def test_tnp_level_program_with_indexing_and_updates():
    x = rng.standard_normal((5, 6))
    idx = np.array([2, 0, 5, 5, 1])

    def f(row, i):
        y = row.at[i].add(10.0)
        return tnp.concatenate([y[i][None], tnp.cumsum(y)[::2], tnp.max(y, keepdims=True)])
    got = tr.vmap(f)(x, idx)
    want = np.stack([_interp(f, x[b], idx[b]) for b in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _interp(f, *args):
    from tracer import core
    return core.interpret(tr.make_ir(f)(*args), args)[0]


def test_vmap_of_function_returning_an_input_or_a_constant():
    x = rng.standard_normal((3, 2))
    a, c = tr.vmap(lambda v: (v, 7.0))(x)
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(c, np.full(3, 7.0))

# ---------------------------------------------------------------- errors


def f2(x, y):
    return x + y


def test_error_inconsistent_sizes_names_arguments_and_sizes():
    with pytest.raises(ValueError, match=r"inconsistent sizes") as e:
        tr.vmap(f2)(np.ones(3), np.ones((4, 2)))
    msg = str(e.value)
    assert "`x` has size 3" in msg and "`y` has size 4" in msg and "vmap(f2)" in msg


def test_error_inconsistent_sizes_inside_a_pytree_names_the_leaf():
    with pytest.raises(ValueError) as e:
        tr.vmap(lambda p: p["a"] + p["b"])({"a": np.ones(3), "b": np.ones(2)})
    assert "`p`['a'] has size 3" in str(e.value) and "`p`['b'] has size 2" in str(e.value)


@pytest.mark.parametrize("in_axes, args, exc, pattern", [
    ((0,), (np.ones(3), np.ones(3)), ValueError, r"in_axes \(0,\) has 1 entries .* 2 positional"),
    ((2, 0), (np.ones(3), np.ones(3)), ValueError, r"in_axes 2 is out of range for argument `x`"),
    ((0, 0), (np.ones(3), 2.0), ValueError, r"out of range for argument `y` of shape \(\)"),
    (None, (np.ones(3), np.ones(3)), ValueError, r"no argument is mapped"),
    ((0, {"a": 0}), (np.ones(3), np.ones(3)), ValueError, r"not a prefix of the arguments"),
    ((0, 0), (np.ones(3), "text"), TypeError, r"argument `y`.*not a valid array"),
])
def test_error_in_axes(in_axes, args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        tr.vmap(f2, in_axes=in_axes)(*args)


@pytest.mark.parametrize("in_axes", [0.5, "0", {"a": 0}, (0, 1.0), True])
def test_error_in_axes_type(in_axes):
    with pytest.raises(TypeError, match="in_axes"):
        tr.vmap(f2, in_axes=in_axes)


def test_error_out_axes():
    with pytest.raises(ValueError, match=r"out_axes=None for output.*depends on the mapped inputs"):
        tr.vmap(f2, out_axes=None)(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"out_axes 2 is out of range"):
        tr.vmap(f2, out_axes=2)(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"out_axes \(0, 0\) is not a prefix"):
        tr.vmap(f2, out_axes=(0, 0))(np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="out_axes"):
        tr.vmap(f2, out_axes="last")
    with pytest.raises(TypeError, match="expected a function"):
        tr.vmap(3)


def test_error_shape_mismatch_inside_is_reported_at_per_example_shapes():
    """A bug in the user's function shows the per-example shapes, not batched ones."""
    with pytest.raises(tr.ShapeError) as e:
        tr.vmap(lambda a, b: tnp.dot(a, b))(np.ones((4, 3)), np.ones((4, 2)))
    assert "(3,)" in str(e.value) or "f64[3]" in str(e.value)


def test_batch_subgraph_for_rules_of_higher_order_primitives():
    from tracer import core
    from tracer.batching import batch_subgraph

    def f(x, w):
        return tnp.tanh(x @ w) + tnp.sum(w)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    g = tr.make_ir(f)(x[:, 0], w)
    bg, dims = batch_subgraph(g, [1, None], 4)
    assert bg.invars[0].aval.shape == (3, 4) and len(bg.eqns) < 4 * len(g.eqns)
    out = np.moveaxis(core.interpret(bg, [x, w])[0], dims[0], 0)
    np.testing.assert_allclose(out, np.stack([_interp(f, x[:, b], w) for b in range(4)]), rtol=1e-12)
    # required output axes: an unbatched result is broadcast there
    bg, dims = batch_subgraph(g, [None, None], 4, [1])
    assert dims == [1] and bg.outvars[0].aval.shape == (2, 4)
    out = core.interpret(bg, [x[:, 0], w])[0]
    np.testing.assert_allclose(out, np.repeat(_interp(f, x[:, 0], w)[:, None], 4, 1), rtol=1e-12)


def test_keyword_arguments_are_mapped_over_axis_0():
    f = tr.vmap(lambda x, y=1.0: x * y)
    x, y = np.arange(3.0), np.arange(3.0) + 1
    np.testing.assert_array_equal(f(x, y=y), x * y)
    g = tr.vmap(lambda x, *, scale: x * scale, in_axes=(None,))
    np.testing.assert_array_equal(g(np.float64(2), scale=y), 2 * y)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        f(x, y=np.ones(4))
