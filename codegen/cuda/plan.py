"""Partitioning an optimised graph into CUDA kernels, and the host program that
sequences their launches over planned device buffers.

Every equation is either *fusable* (elementwise primitives and index maps such
as broadcast, transpose, slice, pad, concatenate, iota, gather) or a *kernel
root* (reductions, argmax/argmin, dot_general, cumsum, scatters), which gets its
own kernel(s). A fusable variable is computed inside whichever kernel reads it,
unless it is *materialised* into a device buffer:

* it is a graph output;
* it is read by a dot_general (which reads each element many times) and does
  arithmetic;
* it does some arithmetic (``RECOMPUTE_LIMIT``) and is read through a broadcast that
  expands it, or a lot (``SHARED_RECOMPUTE_LIMIT``) and is read by several kernels.

Materialised fusable variables that follow each other become one multi-output
elementwise kernel (one loop over all their elements; those of one shape share it). Control flow (cond, while, scan) is driven from
the host: its sub-graphs become programs of their own (kernels in the same module)
that the runtime calls per branch or iteration, reading predicates back to the host.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracer.ir import Eqn, Graph, Literal, ShapedArray, Var

from . import kernels as K
from . import target as T
from .fusion import FUSABLE, INDEX_MAPS

ROOTS = frozenset({"reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax", "argmin",
                   "dot_general", "cumsum", "scatter_add", "scatter"})
HOST_CONTROL = frozenset({"cond", "while", "scan"})   # driven from the host (see HostStep)
CHEAP = INDEX_MAPS | {"convert_element_type", "neg", "not"}
EXPENSIVE = frozenset({"exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "atan",
                       "atan2", "pow", "logistic", "erf", "div", "rem", "sqrt", "rsqrt"})
SERIAL_K = 64        # reductions this short (or with very many outputs): a thread per output
# Arithmetic cost (1 per operation, 10 per transcendental or division) from which a
# value is stored rather than recomputed: when read through an expanding broadcast
# (recomputed once per copy), and when read by several kernels (recomputed once per
# kernel; GPUs are bandwidth-bound, so recomputing a few operations beats a store and
# a reload).
RECOMPUTE_LIMIT = 4
SHARED_RECOMPUTE_LIMIT = 30
SUPPORTED = FUSABLE | ROOTS | HOST_CONTROL


@dataclass
class Buffer:
    id: int
    aval: ShapedArray
    kind: str            # "input", "const", "temp" or "output"

    @property
    def nbytes(self) -> int:
        return self.aval.size * self.aval.dtype.itemsize


@dataclass
class Launch:
    kernel: str
    grid: tuple
    block: tuple
    args: list           # buffer ids


@dataclass
class HostStep:
    """Control flow run by the host: ``kind`` is cond, while or scan; ``subs`` are the
    programs of its sub-graphs (kernels in the same module); ``params`` the static
    numbers of the primitive (consts, carry, length, reverse)."""
    kind: str
    params: dict
    ins: list            # buffer ids of the operands
    outs: list           # buffer ids of the results
    subs: list

    @property
    def args(self):
        return self.ins + self.outs


@dataclass
class Program:
    """Everything the runtime needs: the kernel module, its launches in order, the
    buffers, which buffers hold the graph's inputs and outputs, and constants."""
    name: str
    module: object                       # llvmlite ir.Module (NVPTX)
    kernels: list
    launches: list
    buffers: list
    inputs: list                         # buffer id per graph input
    outputs: list                        # buffer id per graph output
    consts: dict = field(default_factory=dict)   # buffer id -> numpy value
    _ptx: dict = field(default_factory=dict)

    def all_kernels(self) -> list:
        """This program's kernels and those of its control-flow sub-programs."""
        out = list(self.kernels)
        for st in self.launches:
            if isinstance(st, HostStep):
                for sub in st.subs:
                    out += sub.all_kernels()
        return out

    def ptx(self, arch: str = T.DEFAULT_ARCH) -> str:
        if arch not in self._ptx:
            self._ptx[arch] = T.compile_ptx(self.module, [k.name for k in self.all_kernels()], arch)
        return self._ptx[arch]

    def llvm_ir(self) -> str:
        return str(self.module)

    def optimized_llvm_ir(self, arch: str = T.DEFAULT_ARCH) -> str:
        return str(T.optimize(self.module, [k.name for k in self.all_kernels()], arch)[0])

    def describe(self) -> str:
        """One line per launch: the host side of the program."""
        lines = []
        for ln in self.launches:
            args = ", ".join(f"b{a}:{self.buffers[a].aval}" for a in ln.args)
            if isinstance(ln, HostStep):
                lines.append(f"host {ln.kind}({args}):")
                for sub in ln.subs:
                    lines += ["    " + x for x in [f"{sub.name}:"] + sub.describe().splitlines()]
            else:
                lines.append(f"{ln.kernel}<<<{ln.grid}, {ln.block}>>>({args})")
        return "\n".join(lines)


class UnsupportedOnGPU(NotImplementedError):
    """A primitive the CUDA back end cannot lower."""


CALLS = frozenset({"custom_jvp_call", "custom_vjp_call"})   # the forward pass is just a call


def inline_calls(graph: Graph) -> Graph:
    """Replace custom_jvp_call / custom_vjp_call equations by the equations of the
    graph they call (their derivative rules no longer matter once compiled)."""
    if not any(e.prim.name in CALLS for e in graph.eqns):
        return graph
    subst: dict = {}
    eqns, constvars, constvals = [], list(graph.constvars), list(graph.constvals)

    def atom(a):
        while isinstance(a, Var) and a in subst:
            a = subst[a]
        return a
    for e in graph.eqns:
        ins = [atom(a) for a in e.invars]
        if e.prim.name not in CALLS:
            eqns.append(Eqn(e.prim, ins, e.outvars, e.params, e.source))
            continue
        call = inline_calls(e.params["call"])
        env: dict = dict(zip(call.invars, ins))
        for cv, val in zip(call.constvars, call.constvals):
            env[cv] = Var(cv.aval)
            constvars.append(env[cv])
            constvals.append(val)
        for ce in call.eqns:
            outs = [Var(o.aval) for o in ce.outvars]
            eqns.append(Eqn(ce.prim, [env.get(a, a) if isinstance(a, Var) else a for a in ce.invars],
                            outs, ce.params, ce.source))
            env.update(zip(ce.outvars, outs))
        for o, co in zip(e.outvars, call.outvars):
            subst[o] = env.get(co, co) if isinstance(co, Var) else co
    return graph.replace(eqns=eqns, outvars=[atom(v) for v in graph.outvars], constvars=constvars,
                         constvals=constvals)


def _check(graph: Graph):
    for e in graph.eqns:
        if e.prim.name not in SUPPORTED:
            raise UnsupportedOnGPU(
                f"backend='cuda' cannot compile the primitive `{e.prim.name}` yet"
                + (f" ({e.source})" if e.source else "")
                + "; use backend='cpu' for this function")


def _materialise(graph: Graph, producers) -> set:
    """The fusable variables that get their own buffers (see the module docstring)."""
    cost: dict = {}
    for e in graph.eqns:
        own = 0 if e.prim.name in CHEAP else 10 if e.prim.name in EXPENSIVE else 1
        c = min(sum(cost.get(v, 0) for v in e.invars if isinstance(v, Var)) + own, 10**6)
        for o in e.outvars:
            cost[o] = c if e.prim.name in FUSABLE else 0
    outs = {v for v in graph.outvars if isinstance(v, Var)}
    mat = {v for v in outs if v in producers and producers[v].prim.name in FUSABLE}
    reach: dict = {}  # var -> set of kernel roots that would recompute it
    for e in reversed(graph.eqns):
        name = e.prim.name
        for o in e.outvars:
            if name in ROOTS or name in HOST_CONTROL or o in mat:
                reach[o] = {o}
        for v in e.invars:
            if not isinstance(v, Var) or v not in producers or producers[v].prim.name not in FUSABLE:
                continue
            if name in HOST_CONTROL:
                mat.add(v)  # the host hands buffers to the sub-programs
            if name == "dot_general" and cost.get(v, 0) > 0:
                mat.add(v)  # a matmul reads each operand element many times
            if name == "broadcast_in_dim" and e.outvars[0].aval.size > v.aval.size and \
                    cost.get(v, 0) >= RECOMPUTE_LIMIT:
                mat.add(v)
            src = {id(e)} if name in ROOTS or name in HOST_CONTROL else \
                reach.get(e.outvars[0], {id(e)})
            reach.setdefault(v, set()).update(src)
    for e in graph.eqns:  # producers before consumers: decide in topological order
        for o in e.outvars:
            if e.prim.name in FUSABLE and o not in mat and \
                    cost.get(o, 0) >= SHARED_RECOMPUTE_LIMIT and len(reach.get(o, ())) > 1:
                mat.add(o)
    return mat


def lower(graph: Graph, name: str = "kernel", module=None) -> Program:
    """Partition ``graph`` into kernels and plan the host program (kernels go into
    ``module``, a new NVPTX module by default)."""
    graph = inline_calls(graph)
    _check(graph)
    module = module if module is not None else T.new_module(name)
    producers = {o: e for e in graph.eqns for o in e.outvars}
    mat = _materialise(graph, producers)
    buffers: list[Buffer] = []
    buf_of: dict = {}

    def new_buffer(aval, kind):
        buffers.append(Buffer(len(buffers), aval.strip_weak(), kind))
        return buffers[-1].id

    for v in graph.invars:
        buf_of[v] = new_buffer(v.aval, "input")
    consts = {}
    for v, val in zip(graph.constvars, graph.constvals):
        buf_of[v] = new_buffer(v.aval, "const")
        consts[buf_of[v]] = np.asarray(val)
    out_set = {v for v in graph.outvars if isinstance(v, Var)}
    for e in graph.eqns:
        for o in e.outvars:
            if o in mat or e.prim.name in ROOTS or e.prim.name in HOST_CONTROL:
                buf_of[o] = new_buffer(o.aval, "output" if o in out_set else "temp")

    kernels_: list = []
    launches: list = []
    pending: list = []   # a run of elementwise outputs of one shape, not yet emitted

    def emit(body, inline=frozenset()):
        kname = f"{name}_k{len(kernels_)}"
        k = K.build(module, kname, producers, buf_of, body, inline)
        kernels_.append(k)
        launches.append(Launch(kname, k.grid, k.block, k.args))

    def flush():
        """Emit the pending elementwise outputs as one kernel: outputs of one shape share
        a loop (and common subexpressions); different shapes follow each other in it."""
        if pending:
            groups: dict = {}
            for buf, atom, shape in pending:
                groups.setdefault(shape, []).append((buf, atom, atom.aval.dtype))
            emit(K.elementwise(list(groups.items())),
                 inline=frozenset(a for buf, a, _ in pending if buf_of.get(a) == buf))
            pending.clear()

    def reads_pending(atom, shape) -> bool:
        """Does ``atom`` read a pending output of another shape? Inside one kernel it
        would be recomputed (not loaded: other threads write it), which is what
        storing it was meant to avoid; so it goes to the next kernel instead."""
        others = {a for _, a, sh in pending if sh != shape}
        if not others:
            return False
        e = producers.get(atom)
        stack, seen = list(e.invars) if e is not None else [], set()
        while stack:
            v = stack.pop()
            if not isinstance(v, Var) or v in seen:
                continue
            seen.add(v)
            if v in others:
                return True
            e = producers.get(v)
            if e is not None and e.prim.name in FUSABLE and v not in buf_of:
                stack.extend(e.invars)
        return False

    def elementwise(buf, atom, shape):
        """Fill buffer ``buf`` of ``shape`` with ``atom`` (same shape, or 0-d: broadcast)."""
        if int(np.prod(shape, dtype=np.int64)) == 0:
            return
        if reads_pending(atom, shape):
            flush()
        pending.append((buf, atom, shape))

    for i, e in enumerate(graph.eqns):
        pname = e.prim.name
        if pname in HOST_CONTROL:
            flush()
            launches.append(_host_step(e, f"{name}_c{i}", module, buf_of, new_buffer, consts))
            continue
        out = e.outvars[0]
        if pname in FUSABLE:
            if out in mat:
                elementwise(buf_of[out], out, out.aval.shape)
            continue
        flush()
        if out.aval.size == 0 and pname not in ("scatter", "scatter_add"):
            continue
        _root(e, pname, out, buf_of, emit, new_buffer, elementwise, flush)
    flush()

    outputs = []
    for v in graph.outvars:
        if isinstance(v, Literal):  # a constant output: keep it as a constant buffer
            bid = new_buffer(v.aval, "const")
            consts[bid] = np.asarray(v.val)
            outputs.append(bid)
        else:
            outputs.append(buf_of[v])
    return Program(name, module, kernels_, launches, buffers, [buf_of[v] for v in graph.invars],
                   outputs, consts)


def _host_step(e, name, module, buf_of, new_buffer, consts) -> HostStep:
    ins = []
    for a in e.invars:
        if isinstance(a, Literal):
            bid = new_buffer(a.aval, "const")
            consts[bid] = np.asarray(a.val)
            ins.append(bid)
        else:
            ins.append(buf_of[a])
    p = e.params
    if e.prim.name == "cond":
        graphs = list(p["branches"])
        params = {}
    elif e.prim.name == "while":
        graphs = [p["cond_graph"], p["body_graph"]]
        params = {"cond_nconsts": p["cond_nconsts"], "body_nconsts": p["body_nconsts"]}
    else:
        graphs = [p["body"]]
        params = {k: p[k] for k in ("length", "reverse", "num_consts", "num_carry")}
    subs = [lower(g, f"{name}_{j}", module) for j, g in enumerate(graphs)]
    return HostStep(e.prim.name, params, ins, [buf_of[o] for o in e.outvars], subs)


def _root(e, pname, out, buf_of, emit, new_buffer, elementwise, flush):
    p = e.params
    dest = buf_of[out]
    if pname.startswith("reduce_") or pname in ("argmax", "argmin"):
        x = e.invars[0]
        op = pname[len("reduce_"):] if pname.startswith("reduce_") else pname
        axes = tuple(sorted(p["axes"])) if "axes" in p else (p["axis"],)
        k = int(np.prod([x.aval.shape[a] for a in axes], dtype=np.int64))
        nout = out.aval.size
        if k == 0:  # empty reduction: the identity (sum 0, prod 1)
            from tracer.ir import Literal as L
            elementwise(dest, L(np.asarray(0 if op == "sum" else 1, x.aval.dtype),
                                ShapedArray((), x.aval.dtype)), out.aval.shape)
            flush()
            return
        splits = 1
        if op not in ("argmax", "argmin") and k >= 16384 and nout < 512:
            splits = min(-(-k // 8192), 1024)
        if splits == 1:
            if k <= SERIAL_K or (nout >= 8192 and k <= 4096):
                emit(K.reduce_serial(op, x, axes, dest, x.aval.dtype, out.aval.dtype, nout, k))
            else:
                emit(K.reduce(op, x, axes, dest, x.aval.dtype, out.aval.dtype, nout, k, 1))
            return
        part_aval = ShapedArray((nout, splits), x.aval.dtype)
        part = new_buffer(part_aval, "temp")
        emit(K.reduce(op, x, axes, part, x.aval.dtype, out.aval.dtype, nout, k, splits))
        pvar = Var(part_aval)
        buf_of[pvar] = part
        emit(K.reduce(op, pvar, (1,), dest, x.aval.dtype, out.aval.dtype, nout, splits, 1))
    elif pname == "dot_general":
        body, _ = K.dot(e.invars[0], e.invars[1], p["dimension_numbers"], dest,
                                    out.aval.dtype)
        emit(body)
    elif pname == "cumsum":
        emit(K.cumsum(e.invars[0], p["axis"], p["reverse"], dest, out.aval.dtype))
    elif pname in ("scatter_add", "scatter"):
        operand, indices, updates = e.invars
        elementwise(dest, operand, out.aval.shape)  # out starts as a copy of the operand
        flush()
        if out.aval.size and updates.aval.size:
            combine = "add" if pname == "scatter_add" else p["combine"]
            emit(K.scatter(operand.aval, indices, updates, p["axes"], p["mode"], combine, dest,
                           out.aval.dtype))
    else:  # pragma: no cover - guarded by _check
        raise UnsupportedOnGPU(pname)
