"""Command line: print any stage of a function in a file, or its picture.

    python -m tracer FILE.py:FUNC --args "f32[2000],f32[]" --stage ir
    python -m tracer model.py:loss --args "f32[64,10],f32[10]" --grad --stage asm
    python -m tracer model.py:loss --args "f32[3]" --stage dot --output loss.svg
    python -m tracer model.py:loss --args "f32[3]" --consts > loss.ir   # a parseable dump
    python -m tracer loss.ir --stage asm          # (hand-edited) IR text compiled directly

Stages: ir, optimized_ir, llvm, optimized_llvm, asm (CPU back end), ptx (CUDA back end,
needs no GPU), dot (Graphviz text; with ``--output x.svg``/``.png`` a picture).
Argument types are written like the IR prints them: ``f32[2000]``, ``i32[]``, ``~f32[]``
(a weakly typed Python scalar), ``bool[3,3]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

STAGES = ("ir", "optimized_ir", "llvm", "optimized_llvm", "asm", "ptx", "dot")


class CLIError(Exception):
    pass


def parse_types(text: str):
    """``"f32[2000],~f32[]"`` -> list of ShapedArray."""
    from .ir_parse import IRParseError, _Tokens
    text = text.strip()
    if not text:
        return []
    toks = _Tokens(text, 0)
    out = []
    try:
        while True:
            out.append(toks.aval())
            if toks.done():
                return out
            toks.expect(",")
    except IRParseError as e:
        msg = str(e).replace("line 0: ", "")
        raise CLIError(f"--args {text!r}: {msg} (write types like f32[2000],i32[],~f32[])") from None


def load_function(spec: str):
    """``path/to/file.py:name`` (``name`` may be dotted: ``Model.apply``) -> the object."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise CLIError(f"expected FILE.py:FUNCTION, got {spec!r}")
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    mod_name = "__tracer_cli__" + os.path.splitext(os.path.basename(path))[0]
    spec_ = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec_)
    sys.modules[mod_name] = module
    spec_.loader.exec_module(module)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in vars(module) if callable(vars(module)[n]) and not n.startswith("_"))
            raise CLIError(f"{path} has no {name!r}; its functions: {', '.join(names) or '(none)'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CLIError(f"{spec} is a {type(obj).__name__}, not a function")
    return obj


def load_ir(path: str):
    """A graph from an IR text file (``graph.text(consts=True)``), its input types,
    and a function that evaluates it."""
    from .ir_parse import graph_function, parse
    with open(path) as f:
        g = parse(f.read())
    return graph_function(g), g.in_avals


def stage_text(fun, avals, stage: str, source: bool = False, consts: bool = False) -> str:
    import tracer as tr
    if stage in ("ir", "dot"):
        g = tr.make_ir(fun)(*avals)
        return g.to_dot() if stage == "dot" else g.text(source=source, consts=consts)
    backend = "cuda" if stage == "ptx" else "cpu"
    lowered = tr.jit(fun, backend=backend).lower(*avals)
    if stage == "optimized_ir":
        return lowered.optimized_graph.text(source=source, consts=consts)
    return lowered.as_text(stage)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracer", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("target", help="FILE.py:FUNCTION, or a file of IR text")
    p.add_argument("--args", default="", help='argument types, e.g. "f32[2000],f32[]"')
    p.add_argument("--stage", default="ir", choices=STAGES)
    p.add_argument("--grad", action="store_true", help="use tr.grad(FUNCTION) (w.r.t. argument 0)")
    p.add_argument("--source", action="store_true", help="ir stages: show each equation's source line")
    p.add_argument("--consts", action="store_true",
                   help="ir stages: print constant values too (text that `tracer.ir.parse` reads back)")
    p.add_argument("--output", "-o", help="write to this file; for --stage dot an .svg/.png/.pdf is rendered")
    ns = p.parse_args(argv)
    try:
        import tracer as tr
        if ":" not in os.path.basename(ns.target) and not ns.target.endswith(".py"):
            fun, avals = load_ir(ns.target)  # IR text: its inputs give the types
        else:
            fun = load_function(ns.target)
            avals = parse_types(ns.args)
        if ns.grad:
            fun = tr.grad(fun)
        if ns.stage == "dot" and ns.output and not ns.output.endswith((".dot", ".gv")):
            from .dot import write_picture
            write_picture(tr.make_ir(fun)(*avals), ns.output)
            print(f"wrote {ns.output}")
            return 0
        text = stage_text(fun, avals, ns.stage, ns.source, ns.consts)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a user-facing tool: one clear line, not a traceback
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if ns.output:
        with open(ns.output, "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        print(f"wrote {ns.output}")
    else:
        try:
            print(text)
        except BrokenPipeError:  # e.g. `... --stage asm | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
