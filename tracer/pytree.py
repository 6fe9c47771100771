"""Pytrees: nested tuples, lists, dicts, None, namedtuples and registered nodes.

``tree_flatten(tree) -> (leaves, treedef)``; ``tree_unflatten(treedef, leaves)``.
Dict keys flatten in sorted order, as in JAX. ``None`` is a node with no children.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from numpy import ndarray as _ndarray

_REGISTRY: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(nodetype: type, flatten_func: Callable, unflatten_func: Callable) -> None:
    """Register a container type: ``flatten_func(x) -> (children, aux_data)`` and
    ``unflatten_func(aux_data, children) -> x``, as in JAX."""
    _REGISTRY[nodetype] = (flatten_func, unflatten_func)


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


class PyTreeDef:
    """The structure of a pytree, without its leaves."""

    __slots__ = ("kind", "aux", "children", "num_leaves", "_hash", "_unflat")

    def __init__(self, kind, aux, children: tuple["PyTreeDef", ...]):
        self.kind = kind
        self.aux = aux
        self.children = children
        self.num_leaves = 1 if kind is None else sum(c.num_leaves for c in children)
        self._hash = None  # computed once: treedefs are cache keys (jit)
        self._unflat = None

    def __eq__(self, other):
        return self is other or (
            isinstance(other, PyTreeDef) and hash(self) == hash(other) and self.kind == other.kind
            and self.aux == other.aux and self.children == other.children)

    def __hash__(self):
        h = self._hash
        if h is None:
            h = self._hash = hash((self.kind, _hashable(self.aux), self.children))
        return h

    def __repr__(self):
        if self.kind is None:
            return "*"
        if self.kind == "none":
            return "None"
        name = self.kind if isinstance(self.kind, str) else self.kind.__name__
        return f"{name}({', '.join(map(repr, self.children))})"

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        return tree_unflatten(self, leaves)


def _hashable(aux):
    try:
        hash(aux)
        return aux
    except TypeError:
        return repr(aux)


LEAF = PyTreeDef(None, None, ())


def _flatten(x, leaves: list, is_leaf) -> PyTreeDef:
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return LEAF
    t = type(x)
    if t is _ndarray and t not in _REGISTRY:  # the common leaf, first
        leaves.append(x)
        return LEAF
    if x is None:
        return PyTreeDef("none", None, ())
    if t in _REGISTRY:
        children, aux = _REGISTRY[t][0](x)
        return PyTreeDef(t, aux, tuple(_flatten(c, leaves, is_leaf) for c in children))
    if t is tuple or t is list:
        return PyTreeDef(t.__name__, len(x), tuple(_flatten(c, leaves, is_leaf) for c in x))
    if t is dict or isinstance(x, dict):
        keys = sorted(x.keys())
        return PyTreeDef("dict", tuple(keys), tuple(_flatten(x[k], leaves, is_leaf) for k in keys))
    if _is_namedtuple(x):
        return PyTreeDef(t, None, tuple(_flatten(c, leaves, is_leaf) for c in x))
    leaves.append(x)
    return LEAF


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, PyTreeDef]:
    leaves: list = []
    treedef = _flatten(tree, leaves, is_leaf)
    return leaves, treedef


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    if type(leaves) is list and len(leaves) == treedef.num_leaves:
        f = treedef._unflat
        if f is None:
            f = treedef._unflat = _unflattener(treedef)
        if f is not _GENERIC:
            return f(leaves)
    it = iter(leaves)
    out = _unflatten(treedef, it)
    if next(it, _SENTINEL) is not _SENTINEL:
        raise ValueError(f"too many leaves for tree structure {treedef}")
    return out


_SENTINEL = object()
_GENERIC = object()


def _unflattener(treedef: PyTreeDef):
    """A function of a list of exactly ``num_leaves`` leaves building the tree, generated
    for trees of lists, tuples, dicts, None and leaves (jit outputs: no per-node
    interpretation per call); ``_GENERIC`` for other trees."""
    env: dict = {}
    pos = [0]

    def expr(td) -> str | None:
        if td.kind is None:
            pos[0] += 1
            return f"o[{pos[0] - 1}]"
        if td.kind == "none":
            return "None"
        kids = [expr(c) for c in td.children]
        if any(k is None for k in kids):
            return None
        if td.kind == "tuple":
            return f"({', '.join(kids)}{',' if len(kids) == 1 else ''})"
        if td.kind == "list":
            return f"[{', '.join(kids)}]"
        if td.kind == "dict":
            env[f"k{len(env)}"] = td.aux
            return f"dict(zip(k{len(env) - 1}, ({', '.join(kids)}{',' if len(kids) == 1 else ''})))"
        return None

    body = expr(treedef)
    if body is None or treedef.num_leaves > 1000:  # (huge trees: keep the code small)
        return _GENERIC
    exec(f"def unflatten(o):\n    return {body}", env)
    return env["unflatten"]


def _unflatten(td: PyTreeDef, it) -> Any:
    if td.kind is None:
        v = next(it, _SENTINEL)
        if v is _SENTINEL:
            raise ValueError("too few leaves for the tree structure")
        return v
    if td.kind == "none":
        return None
    kids = [_unflatten(c, it) for c in td.children]
    if td.kind == "tuple":
        return tuple(kids)
    if td.kind == "list":
        return kids
    if td.kind == "dict":
        return dict(zip(td.aux, kids))
    if td.kind in _REGISTRY:
        return _REGISTRY[td.kind][1](td.aux, kids)
    return td.kind(*kids)  # namedtuple


_LIST, _TUPLE, _DICT, _LEAF, _NONE = (object() for _ in range(5))


def _flatten_key(x, leaves: list, key: list) -> None:
    t = type(x)
    if t is _ndarray and t not in _REGISTRY:
        leaves.append(x)
        key.append(_LEAF)
    elif x is None:
        key.append(_NONE)
    elif t in _REGISTRY:
        children, aux = _REGISTRY[t][0](x)
        children = list(children)
        key += (t, _hashable(aux), len(children))
        for c in children:
            _flatten_key(c, leaves, key)
    elif t is list or t is tuple:
        key += (_LIST if t is list else _TUPLE, len(x))
        for c in x:
            if type(c) is _ndarray and _ndarray not in _REGISTRY:  # (saves a call per leaf)
                leaves.append(c)
                key.append(_LEAF)
            else:
                _flatten_key(c, leaves, key)
    elif t is dict or isinstance(x, dict):
        keys = sorted(x.keys())
        key += (_DICT, tuple(keys))
        for k in keys:
            _flatten_key(x[k], leaves, key)
    elif _is_namedtuple(x):
        key += (t, len(x))
        for c in x:
            _flatten_key(c, leaves, key)
    else:
        leaves.append(x)
        key.append(_LEAF)


def tree_flatten_key(tree: Any) -> tuple[list, tuple]:
    """Like ``tree_flatten`` but returns, instead of a treedef, a flat hashable tuple
    that is equal for two trees exactly when their treedefs are: a cheap cache key
    (hashed and compared in C; no node objects are built)."""
    leaves: list = []
    key: list = []
    _flatten_key(tree, leaves, key)
    return leaves, tuple(key)


def tree_leaves(tree: Any, is_leaf=None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree: Any, is_leaf=None) -> PyTreeDef:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable, tree: Any, *rest: Any, is_leaf=None) -> Any:
    """Apply ``f`` leafwise; ``rest`` are trees with the same structure as ``tree``."""
    leaves, td = tree_flatten(tree, is_leaf)
    others = []
    for r in rest:
        rl, rtd = tree_flatten(r, is_leaf)
        if rtd != td:
            raise ValueError(f"tree_map: tree structures differ: {td} vs {rtd}")
        others.append(rl)
    return tree_unflatten(td, [f(*xs) for xs in zip(leaves, *others)])


def treedef_children_prefix(prefix: Any, tree: Any, is_leaf=None) -> list:
    """Broadcast a pytree prefix (e.g. in_axes) to the leaves of ``tree``."""
    out: list = []

    def go(p, t):
        pd = tree_structure(p) if p is not None else None
        if p is None or pd.kind is None:
            out.extend([p] * len(tree_leaves(t, is_leaf)))
            return
        td = tree_flatten(t, is_leaf)[1]
        if pd.kind != td.kind or pd.aux != td.aux:
            raise ValueError(f"prefix {p!r} does not match the structure of the arguments {td}")
        pkids = _children(p)
        tkids = _children(t)
        for a, b in zip(pkids, tkids):
            go(a, b)

    go(prefix, tree)
    return out


def _children(x) -> list:
    t = type(x)
    if t in _REGISTRY:
        return list(_REGISTRY[t][0](x)[0])
    if isinstance(x, dict):
        return [x[k] for k in sorted(x)]
    return list(x)

