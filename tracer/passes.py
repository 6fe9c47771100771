"""Graph passes (IR -> IR), run by ``jit`` before lowering.

Every primitive is pure, so equations can be dropped (``dce``), merged (``cse``),
evaluated ahead of time when their inputs are constants (``fold``), or replaced by
cheaper equivalents (``simplify``). ``optimize`` is the pipeline. Each pass returns
a graph that ``Graph.verify`` accepts and that computes the same values (the
tests check every pass against the reference interpreter). Only ``dce`` looks
inside the sub-graphs of higher-order primitives.
"""
from __future__ import annotations

import numpy as np

from .ir import Eqn, Graph, Literal, ShapedArray, Var, subgraphs


def dce(graph: Graph) -> Graph:
    """Dead-code elimination: drop equations (and constants) no output depends on.
    Sub-graphs are cleaned too, and a scan's stacked outputs that nobody reads are
    no longer computed (with the operands only they needed)."""
    live: set = {v for v in graph.outvars if isinstance(v, Var)}
    kept: list[Eqn] = []
    changed = False
    for eqn in reversed(graph.eqns):
        if any(v in live for v in eqn.outvars) or getattr(eqn.prim, "effectful", False):
            new = _dce_inside(eqn, live)
            changed |= new is not eqn
            kept.append(new)
            live.update(v for v in new.invars if isinstance(v, Var))
    kept.reverse()
    consts = [(v, c) for v, c in zip(graph.constvars, graph.constvals) if v in live]
    if not changed and len(kept) == len(graph.eqns) and len(consts) == len(graph.constvars):
        return graph
    return graph.replace(eqns=kept, constvars=[v for v, _ in consts], constvals=[c for _, c in consts])


def _dce_inside(eqn: Eqn, live: set) -> Eqn:
    if eqn.prim.name == "scan":
        return _prune_scan(eqn, live)
    params, changed = dict(eqn.params), False
    for k, v in eqn.params.items():
        if isinstance(v, Graph):
            params[k] = dce(v)
        elif isinstance(v, tuple) and v and all(isinstance(g, Graph) for g in v):
            params[k] = tuple(dce(g) for g in v)
        else:
            continue
        changed |= params[k] is not v if isinstance(v, Graph) else any(a is not b for a, b in zip(params[k], v))
    return Eqn(eqn.prim, eqn.invars, eqn.outvars, params, eqn.source) if changed else eqn


def _prune_scan(eqn: Eqn, live: set) -> Eqn:
    """Drop a scan's unread stacked outputs, then the consts and xs the body no longer uses."""
    p = eqn.params
    body, nc, nk = p["body"], p["num_consts"], p["num_carry"]
    keep_y = [v in live for v in eqn.outvars[nk:]]
    body = dce(body.replace(outvars=body.outvars[:nk] + [o for o, k in zip(body.outvars[nk:], keep_y) if k]))
    used = {v for e in body.eqns for v in e.invars if isinstance(v, Var)} | set(body.outvars)
    keep_in = [(nc <= i < nc + nk) or v in used for i, v in enumerate(body.invars)]
    if all(keep_y) and all(keep_in) and body is p["body"]:
        return eqn
    body = body.replace(invars=[v for v, k in zip(body.invars, keep_in) if k])
    params = dict(p, body=body, num_consts=sum(keep_in[:nc]))
    invars = [a for a, k in zip(eqn.invars, keep_in) if k]
    outvars = eqn.outvars[:nk] + [v for v, k in zip(eqn.outvars[nk:], keep_y) if k]
    return Eqn(eqn.prim, invars, outvars, params, eqn.source)


# ---------------------------------------------------------------- helpers

class _Rewriter:
    """Walks equations, substituting variables; rebuilds the graph at the end."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.subst: dict = {}
        self.eqns: list[Eqn] = []
        self.constvars = list(graph.constvars)
        self.constvals = list(graph.constvals)
        self.changed = False

    def atom(self, a):
        while isinstance(a, Var) and a in self.subst:
            a = self.subst[a]
        return a

    def replace(self, var: Var, atom):
        self.subst[var] = atom
        self.changed = True

    def new_const(self, value: np.ndarray, aval: ShapedArray) -> Var:
        v = Var(aval)
        self.constvars.append(v)
        self.constvals.append(np.asarray(value, aval.dtype).reshape(aval.shape))
        return v

    def finish(self) -> Graph:
        if not self.changed:
            return self.graph
        outs = []
        for v in self.graph.outvars:
            a = self.atom(v)
            if isinstance(a, Literal):  # outputs stay variables
                a = self.new_const(a.val, ShapedArray((), a.aval.dtype, a.aval.weak_type))
            outs.append(a)
        return dce(self.graph.replace(eqns=self.eqns, outvars=outs, constvars=self.constvars,
                                      constvals=self.constvals))


def _is_const(a, value) -> bool:
    return isinstance(a, Literal) and bool(a.val == value)


def _params_key(params: dict):
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:
        return None


def _atom_key(a):
    if isinstance(a, Literal):
        return ("lit", a.aval.dtype.str, a.aval.weak_type, a.val.tobytes())
    return a


# ---------------------------------------------------------------- CSE

def cse(graph: Graph) -> Graph:
    """Common-subexpression elimination: an equation identical to an earlier one
    (same primitive, operands and params) reuses the earlier outputs."""
    rw = _Rewriter(graph)
    seen: dict = {}
    for eqn in graph.eqns:
        invars = [rw.atom(a) for a in eqn.invars]
        pk = _params_key(eqn.params)
        if pk is not None and not getattr(eqn.prim, "effectful", False):
            key = (eqn.prim.name, tuple(_atom_key(a) for a in invars), pk)
            prev = seen.get(key)
            if prev is not None and all(p.aval.strip_weak() == o.aval.strip_weak()
                                        for p, o in zip(prev, eqn.outvars)):
                for o, p in zip(eqn.outvars, prev):
                    rw.replace(o, p)
                continue
            seen[key] = eqn.outvars
        if invars != eqn.invars:
            rw.changed = True
        rw.eqns.append(Eqn(eqn.prim, invars, eqn.outvars, eqn.params, eqn.source))
    return rw.finish()


# ---------------------------------------------------------------- constant folding

FOLD_LIMIT = 256  # largest folded result (elements); bigger ones stay computed
_NO_FOLD = {"iota", "broadcast_in_dim"}  # cheap to compute, expensive to store


def fold(graph: Graph) -> Graph:
    """Constant folding: an equation whose operands are all literals or graph
    constants, with a small result, is evaluated now by the reference interpreter."""
    rw = _Rewriter(graph)
    values = dict(zip(graph.constvars, graph.constvals))
    for eqn in graph.eqns:
        invars = [rw.atom(a) for a in eqn.invars]
        outs = eqn.outvars
        size = max((v.aval.size for v in outs), default=0)
        const_in = all(isinstance(a, Literal) or a in values for a in invars)
        small = size <= 1 or (size <= FOLD_LIMIT and eqn.prim.name not in _NO_FOLD)
        # loops and calls are left to run natively (a loop's trip count is unbounded)
        has_sub = next(subgraphs(eqn), None) is not None
        if const_in and small and not has_sub and not getattr(eqn.prim, "effectful", False):
            try:
                args = [a.val if isinstance(a, Literal) else values[a] for a in invars]
                res = eqn.prim.impl(*args, **eqn.params)
                res = list(res) if eqn.prim.multiple_results else [res]
                for o, r in zip(outs, res):
                    r = np.asarray(r, o.aval.dtype).reshape(o.aval.shape)
                    if o.aval.shape == ():
                        rw.replace(o, Literal(r, o.aval))
                    else:
                        c = rw.new_const(r, o.aval)
                        values[c] = rw.constvals[-1]
                        rw.replace(o, c)
                continue
            except Exception:  # leave anything the interpreter rejects to run time
                pass
        if invars != eqn.invars:
            rw.changed = True
        rw.eqns.append(Eqn(eqn.prim, invars, outs, eqn.params, eqn.source))
    return rw.finish()


# ---------------------------------------------------------------- algebraic simplification

def _same_type(a, out) -> bool:
    return a.aval.shape == out.aval.shape and a.aval.dtype == out.aval.dtype


def simplify(graph: Graph) -> Graph:
    """Algebraic simplification: x+0, x-0, x*1, x/1, -(-x), integer_pow(x, 1), a
    conversion to the same dtype, identity reshapes/transposes/broadcasts, and
    chains of broadcasts, reshapes and transposes collapsed into one."""
    rw = _Rewriter(graph)
    producer: dict = {}

    def ones_like(a) -> bool:
        """A literal 1 or a broadcast of one."""
        if _is_const(a, 1):
            return True
        e = producer.get(a)
        return e is not None and e.prim.name == "broadcast_in_dim" and _is_const(e.invars[0], 1)

    def zeros_like(a) -> bool:
        if _is_const(a, 0):
            return True
        e = producer.get(a)
        return e is not None and e.prim.name == "broadcast_in_dim" and _is_const(e.invars[0], 0)

    for eqn in graph.eqns:
        invars = [rw.atom(a) for a in eqn.invars]
        out = eqn.outvars[0] if len(eqn.outvars) == 1 else None
        name, p = eqn.prim.name, eqn.params
        new = None
        if out is not None:
            new = _rule(name, p, invars, out, producer, ones_like, zeros_like)
        if isinstance(new, (Var, Literal)):
            rw.replace(out, new)
            continue
        if isinstance(new, tuple):  # (prim, invars, params): a cheaper equation
            prim, invars, params = new
            eqn = Eqn(prim, invars, eqn.outvars, params, eqn.source)
            rw.changed = True
        elif invars != eqn.invars:
            eqn = Eqn(eqn.prim, invars, eqn.outvars, eqn.params, eqn.source)
            rw.changed = True
        rw.eqns.append(eqn)
        for v in eqn.outvars:
            producer[v] = eqn
    return rw.finish()


def _rule(name, p, ins, out, producer, ones_like, zeros_like):
    """The replacement for one equation: an atom, (prim, invars, params), or None."""
    if name in ("add", "sub") and zeros_like(ins[1]) and _same_type(ins[0], out):
        return ins[0]
    if name == "add" and zeros_like(ins[0]) and _same_type(ins[1], out):
        return ins[1]
    if name in ("mul", "div") and ones_like(ins[1]) and _same_type(ins[0], out):
        return ins[0]
    if name == "mul" and ones_like(ins[0]) and _same_type(ins[1], out):
        return ins[1]
    if name == "neg":
        e = producer.get(ins[0])
        if e is not None and e.prim.name == "neg":
            return e.invars[0]
    if name == "integer_pow" and p["y"] == 1:
        return ins[0]
    if name in ("convert_element_type", "stop_gradient") and _same_type(ins[0], out) \
            and ins[0].aval.weak_type == out.aval.weak_type:
        return ins[0]
    if name == "reshape":
        if ins[0].aval.shape == out.aval.shape:
            return ins[0]
        e = producer.get(ins[0])
        if e is not None and e.prim.name == "reshape":
            x = e.invars[0]
            return x if x.aval.shape == out.aval.shape else (e.prim, [x], p)
    if name == "transpose":
        perm = p["permutation"]
        if tuple(perm) == tuple(range(len(perm))):
            return ins[0]
        e = producer.get(ins[0])
        if e is not None and e.prim.name == "transpose":
            p1 = e.params["permutation"]
            comp = tuple(p1[i] for i in perm)
            if comp == tuple(range(len(comp))):
                return e.invars[0]
            return (e.prim, [e.invars[0]], {"permutation": comp})
    if name == "broadcast_in_dim":
        bd = p["broadcast_dimensions"]
        if ins[0].aval.shape == out.aval.shape and tuple(bd) == tuple(range(len(bd))):
            return ins[0]
        e = producer.get(ins[0])
        if e is not None and e.prim.name == "broadcast_in_dim":
            bd1 = e.params["broadcast_dimensions"]
            return (e.prim, [e.invars[0]], {"shape": p["shape"],
                                           "broadcast_dimensions": tuple(bd[d] for d in bd1)})
    return None


def optimize(graph: Graph) -> Graph:
    """The pass pipeline run before lowering: simplify, fold, CSE, DCE (twice, as
    each pass exposes work for the others)."""
    g = dce(graph)
    for _ in range(2):
        g = dce(cse(fold(simplify(g))))
    return g
