"""`python -m tracer FILE.py:FUNC --args ... --stage ...` through a subprocess."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tracer as tr
from tracer import core
from tracer.__main__ import CLIError, parse_types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tr.__file__)))

MODEL = '''
import tracer.numpy as tnp

def loss(w, x):
    return tnp.sum(tnp.tanh(x @ w) ** 2)

def axpy(x, a):
    return a * x + 1.0
'''


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "model.py"
    p.write_text(MODEL)
    return str(p)


def cli(*args, ok=True):
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "tracer", *args], capture_output=True, text=True,
                       env=env, timeout=300)
    assert (r.returncode == 0) == ok, r.stderr
    return r.stdout if ok else r.stderr


def test_parse_types():
    a = parse_types("f32[2000], ~f32[],i32[2,3],bool[]")
    assert [str(x) for x in a] == ["f32[2000]", "~f32[]", "i32[2,3]", "bool[]"]
    assert a[1].weak_type and not a[0].weak_type
    with pytest.raises(CLIError, match="unknown dtype 'float'"):
        parse_types("float[3]")
    with pytest.raises(CLIError, match="expected ','"):
        parse_types("f32[3] f32[3]")


def test_ir_stage_parses_and_matches_make_ir(model):
    out = cli(f"{model}:loss", "--args", "f32[4,3],f32[2,4]", "--stage", "ir")
    g = tr.ir.parse(out)
    import importlib.util
    spec = importlib.util.spec_from_file_location("m", model)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    w, x = np.ones((4, 3), np.float32) * 0.1, np.ones((2, 4), np.float32)
    np.testing.assert_allclose(core.interpret(g, [w, x])[0], m.loss(w, x), rtol=1e-6)


def test_grad_with_source_lines(model):
    out = cli(f"{model}:loss", "--args", "f32[4,3],f32[2,4]", "--grad", "--source")
    assert "# model.py:5 (loss) [vjp of tanh]" in out and out.startswith("def loss(a:f32[4,3] b:f32[2,4]):")


def test_compiled_stages(model):
    if not hasattr(tr, "jit"):
        pytest.skip("no jit yet")
    llvm = cli(f"{model}:axpy", "--args", "f32[2000],~f32[]", "--stage", "optimized_llvm")
    assert "define" in llvm and "fmul" in llvm
    asm = cli(f"{model}:axpy", "--args", "f32[2000],~f32[]", "--stage", "asm")
    assert "axpy:" in asm and "ret" in asm


def test_ptx_stage_needs_no_gpu(model):
    out = cli(f"{model}:axpy", "--args", "f32[2000],~f32[]", "--stage", "ptx")
    assert ".version" in out and ".entry" in out


def test_dot_stage_and_picture(model, tmp_path):
    out = cli(f"{model}:axpy", "--args", "f32[8],~f32[]", "--stage", "dot")
    assert out.startswith('digraph "axpy"') and 'label="f32[8]"' in out
    if shutil.which("dot"):
        svg = tmp_path / "axpy.svg"
        cli(f"{model}:axpy", "--args", "f32[8],~f32[]", "--stage", "dot", "--output", str(svg))
        assert b"<svg" in svg.read_bytes()


@pytest.mark.parametrize("args,msg", [
    (["{m}:nope", "--args", "f32[3]"], "has no 'nope'; its functions: axpy, loss"),
    (["{m}", "--args", "f32[3]"], "expected FILE.py:FUNCTION"),
    (["/no/such.py:f"], "no such file"),
    (["{m}:loss", "--args", "f32[4,3],q8[2]"], "unknown dtype 'q8'"),
    (["{m}:loss", "--args", "f32[4,3],f32[2,5]"], "ShapeError: matmul"),
])
def test_errors_are_one_clear_line(model, args, msg):
    err = cli(*[a.format(m=model) for a in args], ok=False)
    assert msg in err and "Traceback" not in err


def test_dump_edit_and_compile_ir_file(model, tmp_path):
    """The bug-report workflow: dump parseable IR, edit it by hand, compile it from the file."""
    dump = cli(f"{model}:axpy", "--args", "f32[16],~f32[]", "--consts")
    edited = tmp_path / "axpy.ir"
    edited.write_text(dump.replace("add", "sub"))
    out = cli(str(edited), "--stage", "optimized_ir")
    assert "= sub " in out and "= add " not in out
    if hasattr(tr, "jit"):
        assert "axpy:" in cli(str(edited), "--stage", "asm")
    bad = tmp_path / "bad.ir"
    bad.write_text("def f(a:f32[3]):\n  b:f32[3] = lgo a\n  return b\n")
    assert "line 2: unknown primitive 'lgo'; did you mean log?" in cli(str(bad), ok=False)
