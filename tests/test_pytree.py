"""Pytrees: tuples, lists, dicts (sorted keys), None, namedtuples and registered
nodes; flatten/unflatten/map/leaves round trips on hypothesis-generated trees."""
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tracer as tr
from tracer.pytree import tree_structure

Point = namedtuple("Point", "x y")


class Box:
    """A registered custom node with static metadata."""

    def __init__(self, items, label):
        self.items, self.label = items, label

    def __eq__(self, other):
        return isinstance(other, Box) and self.label == other.label and _eq(self.items, other.items)


tr.register_pytree_node(Box, lambda b: (list(b.items), b.label), lambda label, kids: Box(kids, label))


def _eq(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
    return a == b


leaves = st.one_of(st.integers(-5, 5), st.floats(-1, 1), st.booleans(),
                   st.builds(lambda n: np.arange(n, dtype=np.float32), st.integers(0, 3)))


def containers(children):
    keys = st.text("abcdef", min_size=1, max_size=3)
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=3),
        st.builds(Point, children, children),
        st.builds(lambda kids, label: Box(kids, label), st.lists(children, max_size=3), st.sampled_from("pq")),
        st.none(),
    )


trees = st.recursive(leaves, containers, max_leaves=12)


@given(trees)
def test_flatten_unflatten_roundtrip(tree):
    lv, td = tr.tree_flatten(tree)
    assert td.num_leaves == len(lv)
    assert _eq(tr.tree_unflatten(td, lv), tree)
    assert _eq(tr.tree_leaves(tree), lv)
    assert tree_structure(tree) == td and hash(tree_structure(tree)) == hash(td)


@given(trees)
def test_tree_map_preserves_structure(tree):
    doubled = tr.tree_map(lambda v: ("leaf", v), tree)
    assert tree_structure(doubled, is_leaf=lambda v: isinstance(v, tuple) and v[:1] == ("leaf",)) == \
        tree_structure(tree)
    mapped = [v for _, v in tr.tree_leaves(doubled, is_leaf=lambda v: isinstance(v, tuple) and
                                           v[:1] == ("leaf",))]
    assert _eq(mapped, tr.tree_leaves(tree))
    # two trees of one structure map together, leaf by leaf
    lv = tr.tree_leaves(tree)
    numbered = tr.tree_unflatten(tree_structure(tree), list(range(len(lv))))
    summed = tr.tree_map(lambda a, b: (a, b), numbered, numbered)
    assert tr.tree_leaves(summed, is_leaf=lambda v: isinstance(v, tuple) and len(v) == 2
                          and all(isinstance(i, int) for i in v)) == [(i, i) for i in range(len(lv))]


def test_dict_keys_flatten_sorted_and_none_is_empty():
    lv, td = tr.tree_flatten({"b": 1, "a": 2, "c": None})
    assert lv == [2, 1]
    assert tr.tree_unflatten(td, [20, 10]) == {"a": 20, "b": 10, "c": None}
    assert tr.tree_leaves([None, (None,)]) == []


def test_namedtuple_and_custom_node():
    lv, td = tr.tree_flatten(Point(1, (2, 3)))
    assert lv == [1, 2, 3]
    out = tr.tree_unflatten(td, [4, 5, 6])
    assert isinstance(out, Point) and out == Point(4, (5, 6))
    box = Box([1, {"k": 2}], "label")
    lv, td = tr.tree_flatten(box)
    assert lv == [1, 2]
    assert tr.tree_unflatten(td, [7, 8]) == Box([7, {"k": 8}], "label")
    assert tree_structure(Box([1], "p")) != tree_structure(Box([1], "q"))  # aux data is part of it


def test_structure_mismatch_errors():
    with pytest.raises(ValueError, match="differ"):
        tr.tree_map(lambda a, b: a, [1, 2], (1, 2))
    td = tree_structure([1, 2])
    with pytest.raises(ValueError, match="too few"):
        tr.tree_unflatten(td, [1])
    with pytest.raises(ValueError, match="too many"):
        tr.tree_unflatten(td, [1, 2, 3])


def test_list_and_tuple_differ():
    assert tree_structure([1, 2]) != tree_structure((1, 2))
    assert tree_structure({"a": 1}) != tree_structure({"b": 1})


def test_pytrees_through_transforms():
    params = {"w": np.ones(3, np.float32), "extra": Point(np.float32(2.0), None)}

    def f(p, x):
        return (p["w"] * x).sum() * p["extra"].x
    g = tr.grad(f)(params, np.arange(3, dtype=np.float32))
    assert isinstance(g, dict) and isinstance(g["extra"], Point) and g["extra"].y is None
    np.testing.assert_allclose(g["w"], 2.0 * np.arange(3))
    np.testing.assert_allclose(g["extra"].x, 3.0)
