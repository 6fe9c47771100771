"""``einsum`` over ``dot_general``.

Plan: parse the subscripts (``...`` included), give every letter one size
(size-1 dimensions broadcast), take diagonals for letters repeated within one
operand, sum out letters that no one else needs, then contract the operands
left to right with ``dot_general`` (shared letters still needed later are batch
dimensions, the others are contracted), and finally sum and transpose into the
output order.
"""
from __future__ import annotations

import string

import numpy as np

from .. import dtypes
from .. import lax
from ..core import get_aval, where
from ..errors import ShapeError
from ._core import cast

_ELLIPSIS_LETTERS = string.ascii_uppercase[::-1]  # stand-ins for '...' dimensions (Z, Y, ...)


def _parse(subscripts: str, shapes):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
        explicit = True
    else:
        ins, out, explicit = subscripts, None, False
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} operand subscripts for {len(shapes)} operands")
    n_ell = 0
    for t, s in zip(terms, shapes):
        if "..." in t:
            n_ell = max(n_ell, len(s) - (len(t) - 3))
    ell = _ELLIPSIS_LETTERS[:n_ell][::-1]
    parsed = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            k = len(s) - (len(t) - 3)
            if k < 0:
                raise ValueError(f"einsum: operand subscripts {t!r} have more letters than the "
                                 f"operand's {len(s)} dimensions")
            t = t.replace("...", ell[n_ell - k:])
        if not all(c in string.ascii_letters for c in t):
            raise ValueError(f"einsum: invalid subscripts {t!r} (use letters, ',', '->' and '...')")
        if len(t) != len(s):
            raise ValueError(f"einsum: subscripts {t!r} name {len(t)} dimensions but the operand "
                             f"has shape {tuple(s)}")
        parsed.append(t)
    if explicit:
        out = out.replace("...", ell)
        if len(set(out)) != len(out):
            raise ValueError(f"einsum: output subscripts {out!r} repeat a letter")
        for c in out:
            if not any(c in t for t in parsed):
                raise ValueError(f"einsum: output letter {c!r} does not appear in any input")
    else:  # implicit: letters seen once, sorted, after the ellipsis dimensions
        counts = {}
        for t in parsed:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return parsed, out


def _take_diagonal(x, letters: str):
    """Collapse letters repeated within one operand to a single dimension."""
    while len(set(letters)) != len(letters):
        c = next(c for c in letters if letters.count(c) > 1)
        i = letters.index(c)
        j = letters.index(c, i + 1)
        n = get_aval(x).shape[i]
        idx = np.stack([np.arange(n, dtype=np.int32)] * 2, axis=-1)
        x = lax.gather(x, idx, (i, j))  # result: (n,) + the other dims in order
        letters = c + "".join(l for k, l in enumerate(letters) if k not in (i, j))
    return x, letters


def _sum_out(x, letters: str, keep: set):
    axes = tuple(i for i, c in enumerate(letters) if c not in keep)
    if axes:
        x = lax.reduce_sum(x, axes)
        letters = "".join(c for c in letters if c in keep)
    return x, letters


def einsum(subscripts: str, *operands, optimize=None, precision=None):
    """Einstein summation, as ``numpy.einsum`` (``optimize`` is accepted and ignored:
    operands are contracted left to right)."""
    from . import promote_operands_list
    if not isinstance(subscripts, str):
        raise TypeError("einsum needs the subscripts string first (the interleaved form is not supported)")
    ops = promote_operands_list("einsum", operands)
    all_bool = dtypes.is_bool(get_aval(ops[0]).dtype)
    if all_bool:  # computed in int32; the result is bool (any of the ands), as in JAX
        ops = [cast(o, dtypes.int32) for o in ops]
    terms, out = _parse(subscripts, [get_aval(o).shape for o in ops])

    sizes: dict[str, int] = {}
    for t, o in zip(terms, ops):
        for c, d in zip(t, get_aval(o).shape):
            if sizes.get(c, 1) not in (1, d) and d != 1:
                raise ShapeError(f"einsum: letter {c!r} has sizes {sizes[c]} and {d} in "
                                 f"{subscripts!r}{where()}")
            sizes[c] = d if sizes.get(c, 1) == 1 else sizes[c]
    pending = []
    for t, o in zip(terms, ops):
        target = tuple(sizes[c] for c in t)
        if get_aval(o).shape != target:
            o = lax.broadcast_to_shape(o, target)
        pending.append(_take_diagonal(o, t))

    def needed_after(k):
        s = set(out)
        for _, t in pending[k + 1:]:
            s |= set(t)
        return s

    x, lx = pending[0]
    x, lx = _sum_out(x, lx, needed_after(0))
    for k in range(1, len(pending)):
        y, ly = pending[k]
        keep = needed_after(k)
        y, ly = _sum_out(y, ly, keep | set(lx))
        x, lx = _sum_out(x, lx, keep | set(ly))
        shared = [c for c in lx if c in ly]
        batch = [c for c in shared if c in keep]
        contract = [c for c in shared if c not in keep]
        dn = ((tuple(lx.index(c) for c in contract), tuple(ly.index(c) for c in contract)),
              (tuple(lx.index(c) for c in batch), tuple(ly.index(c) for c in batch)))
        x = lax.dot_general(x, y, dn)
        lx = "".join(batch) + "".join(c for c in lx if c not in shared) + \
            "".join(c for c in ly if c not in shared)
    x, lx = _sum_out(x, lx, set(out))
    x = lax.transpose(x, tuple(lx.index(c) for c in out))
    return lax.ne(x, lax.full_like(x, 0)) if all_bool else x
