"""dot_general: contraction with batch dimensions (matmul, dot, einsum, tensordot).

``dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``.
The result's axes are: batch axes, then the lhs's free axes, then the rhs's free
axes, each in increasing order. It is bilinear; its VJP for each side is another
dot_general followed by a transpose.
"""
from __future__ import annotations

import numpy as np

from ..ad_util import Zero, is_zero
from ..batching import shift_axes
from ..core import Primitive, get_aval
from ..ir import ShapedArray
from .common import check_kinds, dtype_error, shape_error
from .shape import transpose

dot_general_p = Primitive("dot_general")


def _free(ndim, contract, batch):
    return [i for i in range(ndim) if i not in contract and i not in batch]


def _dot_aval(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if x.dtype != y.dtype:
        raise dtype_error("dot_general", "operands must have the same dtype", x, y)
    check_kinds("dot_general", [x, y], "fi")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise shape_error("dot_general", f"unbalanced dimension numbers {dimension_numbers}", x, y)
    for axes, nd in ((lc + lb, x.ndim), (rc + rb, y.ndim)):
        if len(set(axes)) != len(axes) or any(not 0 <= a < nd for a in axes):
            raise shape_error("dot_general", f"bad dimension numbers {dimension_numbers}", x, y)
    for a, b in zip(lc, rc):
        if x.shape[a] != y.shape[b]:
            raise shape_error("dot_general", f"contracting dimensions differ in size "
                              f"({x.shape[a]} vs {y.shape[b]})", x, y)
    for a, b in zip(lb, rb):
        if x.shape[a] != y.shape[b]:
            raise shape_error("dot_general", f"batch dimensions differ in size "
                              f"({x.shape[a]} vs {y.shape[b]})", x, y)
    shape = [x.shape[a] for a in lb] + [x.shape[i] for i in _free(x.ndim, lc, lb)] + \
        [y.shape[i] for i in _free(y.ndim, rc, rb)]
    return ShapedArray(shape, x.dtype, x.weak_type and y.weak_type)


def _dot_impl(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    x, y = np.asarray(x), np.asarray(y)
    xf, yf = _free(x.ndim, lc, lb), _free(y.ndim, rc, rb)
    # bring to [batch, free, contract] and use matmul on flattened blocks
    xt = np.transpose(x, list(lb) + xf + list(lc))
    yt = np.transpose(y, list(rb) + list(rc) + yf)
    bshape = [x.shape[a] for a in lb]
    m = int(np.prod([x.shape[i] for i in xf], dtype=np.int64))
    k = int(np.prod([x.shape[i] for i in lc], dtype=np.int64))
    n = int(np.prod([y.shape[i] for i in yf], dtype=np.int64))
    b = int(np.prod(bshape, dtype=np.int64))
    out = np.matmul(xt.reshape(b, m, k), yt.reshape(b, k, n))
    return out.reshape(bshape + [x.shape[i] for i in xf] + [y.shape[i] for i in yf]).astype(x.dtype)


def _vjp_side(ct, other, this_ndim, this_contract, this_batch, other_contract, other_batch,
              ct_is_lhs_free_first: bool):
    """Cotangent of one operand: contract ct with the other operand over the other's free axes."""
    nb = len(this_batch)
    this_free = _free(this_ndim, this_contract, this_batch)
    other_free = _free(get_aval(other).ndim, other_contract, other_batch)
    if ct_is_lhs_free_first:  # this is the lhs: ct axes = batch, this_free, other_free
        ct_other_free = list(range(nb + len(this_free), nb + len(this_free) + len(other_free)))
    else:                     # this is the rhs: ct axes = batch, other_free, this_free
        ct_other_free = list(range(nb, nb + len(other_free)))
    from_other = [this_contract[list(other_contract).index(j)] for j in sorted(other_contract)]
    # dot_general(ct, other) has axes batch, this_free, then the other's contracting axes in
    # increasing order; dot_general(other, ct) puts those before this_free. Pick the operand
    # order that lands in this operand's layout, so no transpose is needed when one does.
    to_this = list(this_batch) + this_free + from_other
    if to_this != sorted(to_this) and list(this_batch) + from_other + this_free == list(range(this_ndim)):
        dims = ((tuple(other_free), tuple(ct_other_free)), (tuple(other_batch), tuple(range(nb))))
        return dot_general(other, ct, dims)
    dims = ((tuple(ct_other_free), tuple(other_free)), (tuple(range(nb)), tuple(other_batch)))
    r = dot_general(ct, other, dims)
    return transpose(r, [to_this.index(i) for i in range(this_ndim)])


def _dot_vjp(ct, primals, out, *, dimension_numbers):
    if is_zero(ct):
        return [None, None]
    x, y = primals
    (lc, rc), (lb, rb) = dimension_numbers
    cx = _vjp_side(ct, y, get_aval(x).ndim, lc, lb, rc, rb, True)
    cy = _vjp_side(ct, x, get_aval(y).ndim, rc, rb, lc, lb, False)
    return [cx, cy]


def _dot_jvp(primals, tangents, *, dimension_numbers):
    x, y = primals
    tx, ty = tangents
    out = dot_general_p.bind(x, y, dimension_numbers=dimension_numbers)
    terms = []
    if not is_zero(tx):
        terms.append(dot_general_p.bind(tx, y, dimension_numbers=dimension_numbers))
    if not is_zero(ty):
        terms.append(dot_general_p.bind(x, ty, dimension_numbers=dimension_numbers))
    if not terms:
        return out, Zero(get_aval(out).strip_weak())
    from .elementwise import add
    return out, terms[0] if len(terms) == 1 else add(*terms)


dot_general_p.abstract_eval = _dot_aval
dot_general_p.impl = _dot_impl
dot_general_p.jvp = _dot_jvp
dot_general_p.vjp = _dot_vjp


def _dot_batch(args, dims, *, dimension_numbers):
    """Both operands batched: the vmapped axis becomes a leading dot_general batch
    dimension. One batched: it is a free axis of that operand, left in place."""
    (x, y), (dx, dy) = args, dims
    (lc, rc), (lb, rb) = dimension_numbers
    if dx is not None and dy is not None:
        x, y = transpose(x, _front_perm(get_aval(x).ndim, dx)), transpose(y, _front_perm(get_aval(y).ndim, dy))
        dn = ((shift_axes(lc, 0), shift_axes(rc, 0)), ((0,) + shift_axes(lb, 0), (0,) + shift_axes(rb, 0)))
        return dot_general_p.bind(x, y, dimension_numbers=dn), 0
    if dx is not None:
        lc, lb = shift_axes(lc, dx), shift_axes(lb, dx)
        out_dim = len(lb) + _free(get_aval(x).ndim, lc, lb).index(dx)
    else:
        rc, rb = shift_axes(rc, dy), shift_axes(rb, dy)
        n_lhs_free = get_aval(x).ndim - len(lc) - len(lb)
        out_dim = len(lb) + n_lhs_free + _free(get_aval(y).ndim, rc, rb).index(dy)
    return dot_general_p.bind(x, y, dimension_numbers=((lc, rc), (lb, rb))), out_dim


def _front_perm(ndim, d):
    return (d,) + tuple(i for i in range(ndim) if i != d)


dot_general_p.batch = _dot_batch


def dot_general(x, y, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    dn = ((tuple(map(int, lc)), tuple(map(int, rc))), (tuple(map(int, lb)), tuple(map(int, rb))))
    return dot_general_p.bind(x, y, dimension_numbers=dn)
