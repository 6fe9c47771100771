"""Parse printed IR text back into a ``Graph``.

The text is what ``Graph.text(consts=True)`` prints (``str(graph)`` parses too when
the graph has no constants)::

    def f(a:f32[4] b:~f32[]):
      const c:f32[2] = [1.0, 2.5]
      d:f32[4] = mul a 2.0:f32[]
      e:f32[4] = cond[...] p d
        branches[0](x:f32[4]):
          return x
        ...
      return d

One graph per indentation level: its body sits two spaces deeper than its header, and
the sub-graphs of an equation (Graph-valued params, ``key(args):`` or ``key[i](args):``)
sit two spaces deeper than that equation. Every graph is closed, so names are scoped to
their own graph. An output type may be left out in hand-written text (``d = exp a``):
the primitive's typing rule supplies it. Errors are ``IRParseError`` with the line number.
"""
from __future__ import annotations

import base64
import difflib
import math
import re
from typing import Any

import numpy as np

from . import dtypes
from .ir import Eqn, Graph, IRError, Literal, ShapedArray, SourceInfo, Var, subgraphs


class IRParseError(ValueError):
    """IR text that cannot be parsed; the message names the line."""


# ---------------------------------------------------------------- constant values

INLINE_LIMIT = 32  # constants up to this many elements print as (nested) lists


def _scalar_text(x) -> str:
    if isinstance(x, float):
        return repr(x)  # float64 repr is exact, and float32 values are float64 values
    return str(x)


def _nested(a: np.ndarray) -> str:
    if a.ndim == 0:
        return _scalar_text(a.item())
    return "[" + ", ".join(_nested(s) for s in a) + "]"


def format_const(val: np.ndarray) -> str:
    """A constant's value as IR text: a nested list for small arrays without NaN,
    else ``b64"..."`` of the raw little-endian bytes (exact, NaN payloads included)."""
    val = np.asarray(val)
    if val.size <= INLINE_LIMIT and not (val.dtype.kind == "f" and np.isnan(val).any()):
        return _nested(val)
    raw = np.ascontiguousarray(val, val.dtype.newbyteorder("<")).tobytes()
    return 'b64"' + base64.b64encode(raw).decode("ascii") + '"'


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#.*)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pyname><[A-Za-z_][\w.]*>)
  | (?P<punct>[\[\](),=:~_\-])
""", re.VERBOSE)


class _Tokens:
    """The tokens of one line, with a cursor."""

    def __init__(self, text: str, lineno: int):
        self.lineno = lineno
        self.toks: list[tuple[str, str]] = []
        self.comment: str | None = None
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                self.fail(f"unexpected character {text[pos]!r} in {text.strip()!r}")
            kind = m.lastgroup
            if kind == "comment":
                self.comment = m.group()[1:].strip()
            elif kind != "ws":
                self.toks.append((kind, m.group()))
            pos = m.end()
        self.i = 0

    def fail(self, msg: str):
        raise IRParseError(f"line {self.lineno}: {msg}")

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def next(self) -> tuple[str, str]:
        t = self.peek()
        if t[0] == "end":
            self.fail("unexpected end of line")
        self.i += 1
        return t

    def at(self, text: str) -> bool:
        return self.peek()[1] == text and self.peek()[0] != "str"

    def expect(self, text: str):
        kind, tok = self.next()
        if tok != text or kind == "str":
            self.fail(f"expected {text!r}, found {tok!r}")

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def name(self, what: str) -> str:
        kind, tok = self.next()
        if kind != "name" and tok != "_":
            self.fail(f"expected {what}, found {tok!r}")
        return tok

    # -------- values

    def aval(self) -> ShapedArray:
        weak = False
        if self.at("~"):
            self.next()
            weak = True
        dt = self.name("a type such as f32[3]")
        if dt not in dtypes.FROM_SHORT:
            self.fail(f"unknown dtype {dt!r} (expected one of {', '.join(dtypes.FROM_SHORT)})")
        self.expect("[")
        shape = []
        while not self.at("]"):
            kind, tok = self.next()
            if kind != "num" or not tok.isdigit():
                self.fail(f"expected a dimension size in the shape, found {tok!r}")
            shape.append(int(tok))
            if not self.at("]"):
                self.expect(",")
        self.next()
        return ShapedArray(tuple(shape), dtypes.FROM_SHORT[dt], weak)

    def value(self, param: str | None = None) -> Any:
        """A param value: number, bool, None, string, dtype, tuple, list, or b64 bytes."""
        kind, tok = self.next()
        if kind == "pyname" or (kind == "name" and param and tok not in _WORDS and self.peek()[1] != "\""):
            self.fail(f"param {param!r} holds a Python function ({tok}), which IR text cannot carry "
                      f"(e.g. a custom_vjp rule): a graph with such params cannot be parsed back")
        if kind == "str":
            import ast
            return ast.literal_eval(tok)
        if kind == "num":
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        if tok == "-":
            v = self.value(param)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.fail(f"'-' before a non-number {v!r}")
            return -v
        if tok in ("(", "["):
            close = ")" if tok == "(" else "]"
            items, trailing = [], False
            while not self.at(close):
                items.append(self.value(param))
                trailing = False
                if not self.at(close):
                    self.expect(",")
                    trailing = True
            self.next()
            if tok == "[":
                return items
            if len(items) == 1 and not trailing:
                return items[0]  # a parenthesised value
            return tuple(items)
        if kind == "name":
            if tok in ("True", "False"):
                return tok == "True"
            if tok == "None":
                return None
            if tok in ("inf", "nan"):
                return float(tok)
            if tok in dtypes.FROM_SHORT:
                return dtypes.FROM_SHORT[tok]
            if tok == "b64" and self.peek()[0] == "str":
                import ast
                return _B64(ast.literal_eval(self.next()[1]))
            self.fail(f"{tok!r} is not a value; a param printed as a bare name is usually a "
                      f"Python function (e.g. a custom_vjp rule), which IR text cannot carry")
        self.fail(f"expected a value, found {tok!r}")


_WORDS = {"True", "False", "None", "inf", "nan", "b64", *dtypes.FROM_SHORT}


class _B64(str):
    """The base64 text of a constant's raw bytes."""


# ---------------------------------------------------------------- lines and blocks

def _split_lines(text: str) -> list[tuple[int, int, str]]:
    """(line number, indentation, content) of each non-blank line."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise IRParseError(f"line {n}: indent with spaces, not tabs")
        out.append((n, len(raw) - len(raw.lstrip(" ")), raw.strip()))
    return out


_HEADER = re.compile(r"^(?:def\s+(?P<name>[^(]+?)|(?P<key>[A-Za-z_]\w*(?:\[\d+\])?))\s*\((?P<args>.*)\)\s*:$")
_SOURCE = re.compile(r"^(?P<file>.+?):(?P<line>\d+) \((?P<fn>[^)]*)\)(?: \[(?P<tr>.*)\])?$")


class _Parser:
    def __init__(self, text: str):
        self.lines = _split_lines(text)
        self.pos = 0

    def fail(self, lineno: int, msg: str):
        raise IRParseError(f"line {lineno}: {msg}")

    def parse(self) -> Graph:
        if not self.lines:
            raise IRParseError("empty IR text")
        n, indent, content = self.lines[0]
        m = _HEADER.match(content)
        if not m or m.group("name") is None:
            self.fail(n, f"expected a graph header like 'def f(a:f32[3]):', found {content!r}")
        g = self.block(m.group("name").strip())
        if self.pos < len(self.lines):
            n, _, content = self.lines[self.pos]
            self.fail(n, f"text after the end of the graph: {content!r}")
        return g

    def block(self, name: str) -> Graph:
        """Parse a header line at self.pos and its body; return the graph."""
        n, indent, content = self.lines[self.pos]
        m = _HEADER.match(content)
        if not m:
            self.fail(n, f"expected a sub-graph header like 'body(a:f32[]):', found {content!r}")
        self.pos += 1
        scope: dict[str, Var] = {}
        invars = [self.declare(scope, t, n) for t in self.decls(m.group("args"), n, typed=True)]
        constvars, constvals, eqns = [], [], []
        body = indent + 2
        while True:
            if self.pos >= len(self.lines):
                self.fail(n, f"graph {name!r} has no 'return' line")
            ln, ind, content = self.lines[self.pos]
            if ind != body:
                self.fail(ln, f"expected indentation {body} inside graph {name!r} (header at line "
                              f"{n}), found {ind}: {content!r}")
            self.pos += 1
            word = content.split(None, 1)[0] if content else ""
            if word == "return":
                toks = _Tokens(content[len("return"):], ln)
                outvars = []
                while not toks.done():
                    outvars.append(self.atom(scope, toks))
                return Graph(invars, constvars, constvals, eqns, outvars, name)
            if word == "const":
                v, val = self.const(scope, content[len("const"):], ln)
                constvars.append(v)
                constvals.append(val)
                continue
            eqns.append(self.eqn(scope, content, ln, body))

    def decls(self, text: str, lineno: int, typed: bool) -> list:
        toks = _Tokens(text, lineno)
        out = []
        while not toks.done():
            nm = toks.name("a variable name")
            aval = None
            if toks.at(":"):
                toks.next()
                aval = toks.aval()
            elif typed:
                toks.fail(f"variable {nm!r} needs a type, e.g. {nm}:f32[3]")
            out.append((nm, aval))
        return out

    def declare(self, scope, decl, lineno) -> Var:
        nm, aval = decl
        if nm in scope:
            self.fail(lineno, f"variable {nm!r} is defined twice")
        v = Var(aval)
        if nm != "_":
            scope[nm] = v
        return v

    def atom(self, scope, toks: _Tokens):
        kind, tok = toks.peek()
        if kind == "name" and toks.peek(1)[1] != ":":  # a literal is always typed: 2.0:f32[]
            toks.next()
            if tok not in scope:
                close = difflib.get_close_matches(tok, list(scope), 1)
                toks.fail(f"variable {tok!r} is not defined" + (f" (did you mean {close[0]!r}?)" if close else ""))
            return scope[tok]
        val = toks.value()
        if not toks.at(":"):
            toks.fail(f"literal {val!r} needs a type, e.g. {val}:f32[]")
        toks.next()
        aval = toks.aval()
        if aval.shape != ():
            toks.fail(f"literal {val!r} must have a 0-d type, not {aval}")
        if isinstance(val, (list, tuple, str)) or val is None:
            toks.fail(f"{val!r} is not a scalar literal")
        try:
            return Literal(val, aval)
        except (OverflowError, ValueError) as e:
            toks.fail(f"literal {val!r} does not fit {aval}: {e}")

    def const(self, scope, text: str, lineno: int):
        toks = _Tokens(text, lineno)
        nm = toks.name("a constant name")
        toks.expect(":")
        aval = toks.aval()
        if toks.done():
            toks.fail(f"constant {nm!r} has no value; print the graph with graph.text(consts=True) "
                      f"to include constant values")
        toks.expect("=")
        raw = toks.value()
        if not toks.done():
            toks.fail(f"unexpected {toks.peek()[1]!r} after the value of constant {nm!r}")
        try:
            if isinstance(raw, _B64):
                data = base64.b64decode(raw, validate=True)
                val = np.frombuffer(data, aval.dtype.newbyteorder("<")).astype(aval.dtype)
            else:
                val = np.array(raw, dtype=aval.dtype)
            if val.size != aval.size:
                raise ValueError(f"{val.size} values for {aval.size} elements")
            val = val.reshape(aval.shape)
        except (ValueError, TypeError) as e:
            toks.fail(f"the value of constant {nm!r} does not fit its type {aval}: {e}")
        return self.declare(scope, (nm, aval), lineno), val

    def eqn(self, scope, content: str, lineno: int, indent: int) -> Eqn:
        from .core import PRIMITIVES
        toks = _Tokens(content, lineno)
        outs = []
        while not toks.at("="):
            if toks.done():
                toks.fail(f"expected 'outputs = primitive inputs', 'const ...' or 'return ...', found {content!r}")
            nm = toks.name("an output variable name")
            aval = None
            if toks.at(":"):
                toks.next()
                aval = toks.aval()
            outs.append((nm, aval))
        toks.next()
        if outs == [("_", None)]:
            outs = []
        pname = toks.name("a primitive name")
        prim = PRIMITIVES.get(pname)
        if prim is None:
            close = difflib.get_close_matches(pname, list(PRIMITIVES), 3)
            toks.fail(f"unknown primitive {pname!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
        params: dict[str, Any] = {}
        if toks.at("["):
            toks.next()
            while not toks.at("]"):
                key = toks.name("a param name")
                toks.expect("=")
                params[key] = toks.value(param=key)
                if not toks.at("]"):
                    toks.expect(",")
            toks.next()
        invars = []
        while not toks.done():
            invars.append(self.atom(scope, toks))
        # sub-graphs: deeper-indented blocks right after the equation
        subs: dict[str, Any] = {}
        while self.pos < len(self.lines) and self.lines[self.pos][1] > indent:
            ln, ind, sub_content = self.lines[self.pos]
            if ind != indent + 2:
                self.fail(ln, f"expected a sub-graph header at indentation {indent + 2}, found {ind}")
            m = _HEADER.match(sub_content)
            if not m or not m.group("key"):
                self.fail(ln, f"expected a sub-graph header like 'body(a:f32[]):', found {sub_content!r}")
            key = m.group("key")
            subs[key] = self.block(key)
        params.update(_group_subgraphs(subs, lineno, self.fail))
        src = None
        if toks.comment:
            ms = _SOURCE.match(toks.comment)
            if ms:
                src = SourceInfo(ms.group("file"), int(ms.group("line")), ms.group("fn"), ms.group("tr") or "")
        # type-check here (not only in Graph.verify) so that errors name the line
        try:
            rule = prim.abstract_eval(*[v.aval for v in invars], **params)
        except Exception as e:
            toks.fail(f"{pname}: its typing rule rejects the inputs "
                      f"({', '.join(str(v.aval) for v in invars) or 'none'}): {e}")
        rule = list(rule) if prim.multiple_results else [rule]
        if len(rule) != len(outs):
            toks.fail(f"{pname} gives {len(rule)} outputs, the line names {len(outs)}")
        for (nm, a), r in zip(outs, rule):
            if a is not None and a.strip_weak() != r.strip_weak():
                toks.fail(f"{pname} gives {r}, but {nm} is declared {a}")
        outs = [(nm, a if a is not None else r) for (nm, a), r in zip(outs, rule)]
        outvars = [self.declare(scope, d, lineno) for d in outs]
        return Eqn(prim, invars, outvars, params, src)


def _group_subgraphs(subs: dict, lineno: int, fail) -> dict:
    """``{"body": g, "branches[0]": g0, "branches[1]": g1}`` -> params ``body``, ``branches``."""
    out: dict[str, Any] = {}
    indexed: dict[str, dict[int, Graph]] = {}
    for key, g in subs.items():
        m = re.match(r"^(\w+)\[(\d+)\]$", key)
        if m:
            indexed.setdefault(m.group(1), {})[int(m.group(2))] = g
        else:
            out[key] = g
    for key, by_i in indexed.items():
        if sorted(by_i) != list(range(len(by_i))):
            fail(lineno, f"sub-graphs {key}[...] are numbered {sorted(by_i)}, expected 0..{len(by_i) - 1}")
        out[key] = tuple(by_i[i] for i in range(len(by_i)))
    return out


def parse(text: str, verify: bool = True) -> Graph:
    """Rebuild a graph from its printed text (``graph.text(consts=True)``); the result
    is checked with ``Graph.verify`` unless ``verify=False``."""
    g = _Parser(text).parse()
    if verify:
        try:
            g.verify()
        except IRError as e:
            raise IRParseError(f"the parsed graph is ill-typed: {e}") from None
    return g


# ---------------------------------------------------------------- structural equality

def _same_value(a, b, same_graph) -> bool:
    if isinstance(a, Graph) or isinstance(b, Graph):
        return isinstance(a, Graph) and isinstance(b, Graph) and same_graph(a, b)
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)
                and all(_same_value(x, y, same_graph) for x, y in zip(a, b)))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b or (isinstance(a, np.dtype) and a == b)


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def same_graph(a: Graph, b: Graph, names: bool = True) -> bool:
    """Whether two graphs are the same up to renaming of variables: same inputs,
    constants (bit for bit), equations (primitive, params, types, sources ignored)
    and outputs; sub-graphs compared the same way (their names ignored)."""
    env: dict[Var, Var] = {}

    def bind_vars(xs, ys) -> bool:
        if len(xs) != len(ys):
            return False
        for x, y in zip(xs, ys):
            if x.aval != y.aval:
                return False
            env[x] = y
        return True

    def same_atom(x, y) -> bool:
        if isinstance(x, Literal) or isinstance(y, Literal):
            return (isinstance(x, Literal) and isinstance(y, Literal) and x.aval == y.aval
                    and _same_array(x.val, y.val))
        return env.get(x) is y

    if names and a.name != b.name:
        return False
    if not bind_vars(a.invars, b.invars) or not bind_vars(a.constvars, b.constvars):
        return False
    if not all(_same_array(np.asarray(x), np.asarray(y)) for x, y in zip(a.constvals, b.constvals)):
        return False
    if len(a.eqns) != len(b.eqns):
        return False
    for ea, eb in zip(a.eqns, b.eqns):
        if ea.prim is not eb.prim or len(ea.invars) != len(eb.invars):
            return False
        if not all(same_atom(x, y) for x, y in zip(ea.invars, eb.invars)):
            return False
        if set(ea.params) != set(eb.params) or not all(
                _same_value(ea.params[k], eb.params[k], lambda g, h: same_graph(g, h, names=False))
                for k in ea.params):
            return False
        if not bind_vars(ea.outvars, eb.outvars):
            return False
    return len(a.outvars) == len(b.outvars) and all(same_atom(x, y) for x, y in zip(a.outvars, b.outvars))


def check_printable(g: Graph) -> None:
    """Raise IRParseError if ``g`` holds params that its text cannot carry (Python callables)."""
    for eqn in g.eqns:
        for k, v in eqn.params.items():
            for leaf in (v if isinstance(v, tuple) else (v,)):
                if callable(leaf) and not isinstance(leaf, (Graph, np.dtype, type)):
                    raise IRParseError(
                        f"equation {eqn.prim.name} holds a Python function in param {k!r} "
                        f"({getattr(leaf, '__name__', leaf)!r}); its IR text cannot be parsed back")
        for _, sub in subgraphs(eqn):
            check_printable(sub)


# ---------------------------------------------------------------- running a parsed graph

def graph_function(graph: Graph):
    """A Python function ``f(*inputs) -> list of outputs`` that evaluates ``graph``
    (re-binding its equations, so ``jit``, ``grad`` and ``vmap`` apply to it)."""
    from .core import eval_graph

    def run(*args):
        return eval_graph(graph, list(args))
    run.__name__ = run.__qualname__ = graph.name if graph.name.isidentifier() else "graph"
    return run


def compile_graph(graph: Graph, backend: str = "cpu"):
    """Compile a graph (e.g. one parsed from hand-edited text) with ``jit``; the result
    takes the graph's inputs and returns the list of its outputs. Same as ``tr.jit(graph)``."""
    from .jit import jit
    return jit(graph_function(graph), backend=backend)
