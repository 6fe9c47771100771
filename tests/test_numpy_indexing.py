"""Indexing (``x[idx]``) and functional updates (``x.at[idx].set/add/...``) against numpy
on hypothesis-generated index expressions: ints, slices with any step, None,
Ellipsis, integer arrays (concrete and traced) and concrete boolean masks."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tracer as tr
import tracer.numpy as tnp
from tracer import core
from tracer.numpy._indexing import AtIndexer


@st.composite
def index_exprs(draw, shape):
    """A numpy index expression valid for an array of ``shape``."""
    ndim = len(shape)
    k = draw(st.integers(0, ndim))
    adv_shape = draw(st.sampled_from([(), (2,), (3,), (2, 1), (1, 2)]))
    use_mask = draw(st.booleans())
    comps, has_array, has_mask = [], False, False
    for d in range(k):
        n = shape[d]
        kinds = ["slice", "full"] + (["int", "array"] if n > 0 else []) + (["mask"] if use_mask else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "mask" and (has_array or has_mask):
            kind = "slice"
        if kind == "array" and has_mask:
            kind = "slice"
        if kind == "slice":
            bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
            step = st.one_of(st.none(), st.integers(-3, 3).filter(lambda s: s != 0))
            comps.append(slice(draw(bound), draw(bound), draw(step)))
        elif kind == "full":
            comps.append(slice(None))
        elif kind == "int":
            comps.append(draw(st.integers(-n, n - 1)))
        elif kind == "array":
            size = int(np.prod(adv_shape))
            vals = draw(st.lists(st.integers(-n, n - 1), min_size=size, max_size=size))
            comps.append(np.array(vals, dtype=draw(st.sampled_from([np.int32, np.int64]))).reshape(adv_shape))
            has_array = True
        else:
            comps.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool))
            has_mask = True
    for _ in range(draw(st.integers(0, 2))):
        comps.insert(draw(st.integers(0, len(comps))), None)
    if draw(st.booleans()):
        comps.insert(draw(st.integers(0, len(comps))), Ellipsis)
    if len(comps) == 1 and draw(st.booleans()):
        return comps[0]
    return tuple(comps)


def _split_arrays(idx):
    """Replace integer arrays in ``idx`` by placeholders; returns (rebuild, arrays)."""
    items = idx if isinstance(idx, tuple) else (idx,)
    arrays = [c for c in items if isinstance(c, np.ndarray) and c.dtype != bool]

    def rebuild(arrs):
        it = iter(arrs)
        out = tuple(next(it) if isinstance(c, np.ndarray) and c.dtype != bool else c for c in items)
        return out if isinstance(idx, tuple) else out[0]
    return rebuild, arrays


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


@given(data=st.data())
def test_getitem_matches_numpy(data):
    shape = data.draw(shapes)
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    idx = data.draw(index_exprs(shape))
    try:
        want = x[idx]
    except IndexError:  # (an Ellipsis can move an int onto an empty axis) we must refuse too
        with pytest.raises(IndexError):
            tnp.getitem(x, idx)
        with pytest.raises(IndexError):
            tr.make_ir(lambda v: v[idx])(x)
        return
    got = tnp.getitem(x, idx)  # eager
    assert isinstance(got, np.ndarray) and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    g = tr.make_ir(lambda v: v[idx])(x).verify()  # traced array, concrete index
    np.testing.assert_array_equal(core.interpret(g, [x])[0], want)
    rebuild, arrays = _split_arrays(idx)
    if arrays:  # traced integer index arrays
        g = tr.make_ir(lambda v, *a: v[rebuild(a)])(x, *arrays).verify()
        got = core.interpret(g, [x, *arrays])[0]
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_getitem_basic_cases():
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    cases = [0, -1, (1, 2), (slice(None), 1), (Ellipsis, 2), (None, 1), (slice(None, None, -1),),
             (slice(3, 0, -2), slice(None), slice(None, None, 2)), (np.array([0, 2]),),
             (slice(None), np.array([[0], [3]]), np.array([1, 4])), (np.array([0, 2]), slice(None), np.array([1, 4])),
             (0, slice(None), np.array([1, 2])), (x[:, :, 0] > 20,), (1, x[1, :, 0] > 25),
             ([0, 1],), (Ellipsis, None), ()]
    for idx in cases:
        g = tr.make_ir(lambda v: v[idx])(x)
        np.testing.assert_array_equal(core.interpret(g, [x])[0], x[idx], err_msg=str(idx))
        np.testing.assert_array_equal(tnp.getitem(x, idx), x[idx])


def test_traced_scalar_index():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    g = tr.make_ir(lambda v, i: (v[i], v[:, i], v[i, -1], v[-i]))(x, np.int32(1))
    for i in (0, 1, 2, -1):
        outs = core.interpret(g, [x, np.int32(i)])
        for got, want in zip(outs, (x[i], x[:, i], x[i, -1], x[-i])):
            np.testing.assert_array_equal(got, want)


def test_index_errors():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(IndexError, match="too many indices"):
        tr.make_ir(lambda v: v[0, 0, 0])(x)
    with pytest.raises(IndexError, match="out of bounds"):
        tr.make_ir(lambda v: v[3])(x)
    # index arrays are dynamic indices (JAX's rule): gather clamps, .at[] drops
    np.testing.assert_array_equal(tr.jit(lambda v: v[np.array([0, 4, -9])])(x), x[[0, 2, 0]])
    np.testing.assert_array_equal(tr.jit(lambda v: v.at[np.array([1, 7])].add(1.0))(x),
                                  x + (np.arange(3) == 1)[:, None])
    np.testing.assert_array_equal(tr.jit(lambda v: v.at[5].set(0.0))(x), x)
    with pytest.raises(IndexError, match="integers"):
        tr.make_ir(lambda v: v[1.5])(x)
    with pytest.raises(IndexError, match="single ellipsis"):
        tr.make_ir(lambda v: v[..., 0, ...])(x)
    with pytest.raises(tr.ConcretizationError, match="tnp.where"):
        tr.make_ir(lambda v: v[v > 0])(x)


# ---------------------------------------------------------------- x.at[...]

REFS = {
    "add": np.add.at, "mul": np.multiply.at, "min": np.minimum.at, "max": np.maximum.at,
}


def _numpy_update(x, idx, vals, kind):
    y = x.copy()
    if kind == "set":
        y[idx] = vals
    else:
        REFS[kind](y, idx, vals)
    return y


@given(data=st.data())
def test_at_updates_match_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) - 5
    idx = data.draw(index_exprs(shape))
    kind = data.draw(st.sampled_from(["set", "add", "mul", "min", "max"]))
    try:
        sel = x[idx].shape
    except IndexError:
        return
    vals = data.draw(st.one_of(
        st.floats(-4, 4, width=32).map(np.float32),
        hnp.arrays(np.float32, sel, elements=st.floats(-4, 4, width=32))))
    if kind == "set":
        # numpy's x[idx] = v with repeated indices keeps the last write, as our scatter does;
        # repeated positions only arise from integer arrays
        pass
    want = _numpy_update(x, idx, vals, kind)
    eager = getattr(AtIndexer(x)[idx], kind)(vals)
    assert isinstance(eager, np.ndarray)
    np.testing.assert_array_equal(eager, want)
    g = tr.make_ir(lambda v, u: getattr(v.at[idx], kind)(u))(x, vals).verify()
    np.testing.assert_array_equal(core.interpret(g, [x, vals])[0], want)


def test_at_fast_path_is_a_single_scatter():
    x = np.zeros((5, 3), np.float32)
    idx = np.array([0, 2, 2, 4], np.int32)
    g = tr.make_ir(lambda v, i, u: v.at[i].add(u))(x, idx, np.ones((4, 3), np.float32))
    scatters = [e for e in g.eqns if e.prim.name in ("scatter_add", "scatter")]
    assert len(scatters) == 1 and scatters[0].params["axes"] == (0,)
    assert not any(e.prim.name == "iota" for e in g.eqns)
    want = x.copy()
    np.add.at(want, idx, np.ones((4, 3), np.float32))
    np.testing.assert_array_equal(core.interpret(g, [x, idx, np.ones((4, 3), np.float32)])[0], want)


def test_at_traced_scalar_and_negative_indices():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    g = tr.make_ir(lambda v, i: (v.at[i].set(0.0), v.at[i, 1].add(10.0), v.at[:, i].mul(2.0),
                                 v.at[i].get()))(x, np.int32(0))
    for i in (0, 2, -1, -3):
        outs = core.interpret(g, [x, np.int32(i)])
        wants = [_numpy_update(x, i, 0.0, "set"), _numpy_update(x, (i, 1), 10.0, "add"),
                 _numpy_update(x, (slice(None), i), 2.0, "mul"), x[i]]
        for got, want in zip(outs, wants):
            np.testing.assert_array_equal(got, want)


def test_at_subtract_divide_and_dtype():
    x = np.arange(6, dtype=np.int32)
    g = tr.make_ir(lambda v: (v.at[1:3].subtract(1), v.at[::2].set(7), v.at[np.array([5, 5])].add(1)))(x)
    outs = core.interpret(g, [x])
    np.testing.assert_array_equal(outs[0], [0, 0, 1, 3, 4, 5])
    np.testing.assert_array_equal(outs[1], [7, 1, 7, 3, 7, 5])
    np.testing.assert_array_equal(outs[2], [0, 1, 2, 3, 4, 7])
    assert all(o.dtype == np.int32 for o in outs)
    y = np.ones(4, np.float32)
    g = tr.make_ir(lambda v: v.at[1].divide(4.0))(y)
    np.testing.assert_array_equal(core.interpret(g, [y])[0], [1, 0.25, 1, 1])
