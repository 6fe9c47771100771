"""Shape functions and einsum against numpy on hypothesis-generated shapes, axes and
subscripts (zero-size dimensions included), eager and traced."""
import string

import numpy as np
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tracer as tr
import tracer.numpy as tnp
from tracer import core


def same(f, ref, *args):
    """f (tnp) eagerly and traced against ref (numpy): equal values, shapes and dtypes."""
    want = ref(*args)
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    eager = f(*args)
    eager = list(eager) if isinstance(eager, (list, tuple)) else [eager]
    traced = core.interpret(tr.make_ir(f)(*args).verify(), list(args))
    assert len(eager) == len(want) == len(traced)
    for got in (eager, traced):
        for g, w in zip(got, want):
            w = np.asarray(w)
            assert isinstance(g, np.ndarray) and g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape)
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def arrays(min_dims=0, max_dims=4, min_side=0):
    shapes = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=4)
    return shapes.map(lambda s: np.arange(int(np.prod(s)), dtype=np.float32).reshape(s) - 3)


@given(x=arrays(min_dims=1), data=st.data())
def test_axis_functions(x, data):
    nd = x.ndim
    ax = data.draw(st.integers(-nd, nd - 1))
    ax2 = data.draw(st.integers(-nd, nd - 1))
    same(lambda v: tnp.swapaxes(v, ax, ax2), lambda v: np.swapaxes(v, ax, ax2), x)
    same(lambda v: tnp.moveaxis(v, ax, ax2), lambda v: np.moveaxis(v, ax, ax2), x)
    same(lambda v: tnp.expand_dims(v, ax), lambda v: np.expand_dims(v, ax), x)
    same(lambda v: tnp.flip(v, ax), lambda v: np.flip(v, ax), x)
    perm = data.draw(st.permutations(range(nd)))
    same(lambda v: tnp.transpose(v, perm), lambda v: np.transpose(v, perm), x)
    shift = data.draw(st.integers(-7, 7))
    same(lambda v: tnp.roll(v, shift, ax), lambda v: np.roll(v, shift, ax), x)
    same(lambda v: tnp.roll(v, shift), lambda v: np.roll(v, shift), x)
    same(lambda v: tnp.concatenate([v, -v, v], ax), lambda v: np.concatenate([v, -v, v], ax), x)
    same(lambda v: tnp.stack([v, -v], ax), lambda v: np.stack([v, -v], ax), x)
    k = data.draw(st.integers(1, 4))
    same(lambda v: tnp.array_split(v, k, ax), lambda v: np.array_split(v, k, ax), x)
    cuts = sorted(data.draw(st.lists(st.integers(0, x.shape[ax]), max_size=3)))
    same(lambda v: tnp.split(v, cuts, ax), lambda v: np.split(v, cuts, ax), x)
    r = data.draw(st.integers(0, 3))
    same(lambda v: tnp.repeat(v, r, ax), lambda v: np.repeat(v, r, ax), x)
    counts = np.array(data.draw(st.lists(st.integers(0, 2), min_size=x.shape[ax], max_size=x.shape[ax])),
                      dtype=np.int64)
    same(lambda v: tnp.repeat(v, counts, ax), lambda v: np.repeat(v, counts, ax), x)
    reps = tuple(data.draw(st.lists(st.integers(0, 2), min_size=1, max_size=nd + 1)))
    same(lambda v: tnp.tile(v, reps), lambda v: np.tile(v, reps), x)
    same(lambda v: tnp.cumsum(v, ax), lambda v: np.cumsum(v, ax), x)
    same(lambda v: tnp.diff(v, 1, ax), lambda v: np.diff(v, 1, ax), x)
    pad = [tuple(data.draw(st.integers(0, 2)) for _ in range(2)) for _ in range(nd)]
    same(lambda v: tnp.pad(v, pad), lambda v: np.pad(v, pad), x)


@given(x=arrays(min_dims=2), data=st.data())
def test_matrix_functions(x, data):
    k = data.draw(st.integers(-4, 4))
    a1, a2 = data.draw(st.permutations(range(x.ndim)))[:2]
    same(lambda v: tnp.diagonal(v, k, a1, a2), lambda v: np.diagonal(v, k, a1, a2), x)
    same(lambda v: tnp.trace(v, k, a1, a2), lambda v: np.trace(v, k, a1, a2), x)
    same(lambda v: tnp.triu(v, k), lambda v: np.triu(v, k), x)
    same(lambda v: tnp.tril(v, k), lambda v: np.tril(v, k), x)
    flat = x.reshape(-1)[:4]
    same(lambda v: tnp.diag(v, k), lambda v: np.diag(v, k), flat)
    if x.ndim == 2:
        same(lambda v: tnp.diag(v, k), lambda v: np.diag(v, k), x)


@given(x=arrays(), data=st.data())
def test_reshape_family(x, data):
    sizes = data.draw(st.permutations(list(x.shape) + [1]))
    same(lambda v: tnp.reshape(v, sizes), lambda v: np.reshape(v, sizes), x)
    if x.size:
        i = data.draw(st.integers(0, len(sizes) - 1))
        minus = tuple(-1 if j == i else d for j, d in enumerate(sizes))
        same(lambda v: tnp.reshape(v, minus), lambda v: np.reshape(v, minus), x)
    same(tnp.ravel, np.ravel, x)
    same(tnp.squeeze, np.squeeze, x)
    same(tnp.atleast_2d, np.atleast_2d, x)
    same(tnp.atleast_3d, np.atleast_3d, x)
    target = data.draw(st.lists(st.integers(1, 3), max_size=2)).copy() + [1 if d == 1 else d for d in x.shape]
    same(lambda v: tnp.broadcast_to(v, target), lambda v: np.broadcast_to(v, target), x)


@st.composite
def einsum_cases(draw):
    letters = draw(st.lists(st.sampled_from(string.ascii_lowercase[:6]), min_size=1, max_size=5, unique=True))
    size = {c: draw(st.integers(0, 3)) for c in letters}
    n_ops = draw(st.integers(1, 3))
    terms = []
    for _ in range(n_ops):
        term = draw(st.lists(st.sampled_from(letters), max_size=4))
        terms.append("".join(term))
    used = sorted(set("".join(terms)))
    if draw(st.booleans()):
        out = "".join(draw(st.permutations(used))[:draw(st.integers(0, len(used)))])
        spec = ",".join(terms) + "->" + out
    else:
        spec = ",".join(terms)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    ops = [rng.normal(size=[size[c] for c in t]).astype(np.float32) for t in terms]
    return spec, ops


@given(einsum_cases())
def test_einsum_random_specs(case):
    spec, ops = case
    same(lambda *xs: tnp.einsum(spec, *xs), lambda *xs: np.einsum(spec, *xs).astype(np.float32), *ops)
