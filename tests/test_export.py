"""tr.export: a shared library + C header, called from a C program built with the
system compiler, compared with the Python (numpy reference) result."""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import tracer as tr
import tracer.numpy as tnp

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no system C compiler (cc)")


def forward(p, x):
    h = tnp.tanh(x @ p["w1"] + p["b1"])
    return tr.nn.softmax(h @ p["w2"] + p["b2"], axis=-1)


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": (rng.standard_normal((16, 32)) * 0.3).astype(np.float32), "b1": np.zeros(32, np.float32),
            "w2": (rng.standard_normal((32, 10)) * 0.3).astype(np.float32), "b2": np.ones(10, np.float32)}


def c_array(name, a, ctype="float"):
    vals = ", ".join(repr(float(v)) + ("f" if ctype == "float" else "") for v in np.ravel(a))
    return f"static const {ctype} {name}[{a.size}] = {{{vals}}};"


MAIN = r"""
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include "{header}"

{arrays}

static float expected[{n_out}];

static void *worker(void *arg) {{
    float out[{n_out}];
    for (int rep = 0; rep < 200; rep++) {{
        if ({call}) return (void *)1;
        if (memcmp(out, expected, sizeof out) != 0) return (void *)2;
    }}
    return NULL;
}}

int main(void) {{
    float out[{n_out}];
    if ({call}) {{ printf("call failed\n"); return 1; }}
    for (int i = 0; i < {n_out}; i++) printf("%.9g\n", out[i]);
    memcpy(expected, out, sizeof out);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
    int bad = 0;
    for (int i = 0; i < 4; i++) {{ void *r; pthread_join(t[i], &r); bad |= (r != NULL); }}
    printf(bad ? "threads: MISMATCH\n" : "threads: ok\n");
    return bad;
}}
"""


def build_and_run(tmp_path, exported, arrays: dict, call: str, n_out: int) -> list[float]:
    src = tmp_path / "main.c"
    src.write_text(MAIN.format(header=os.path.basename(exported.header), n_out=n_out, call=call,
                               arrays="\n".join(c_array(k, v) for k, v in arrays.items())))
    exe = tmp_path / "main"
    libdir = os.path.dirname(exported.library)
    lib = os.path.basename(exported.library)[3:-3]  # libNAME.so -> NAME
    r = subprocess.run(["cc", "-O1", "-o", str(exe), str(src), f"-I{libdir}", f"-L{libdir}", f"-l{lib}",
                        "-lpthread", f"-Wl,-rpath,{libdir}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    r = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.split()
    assert lines[-1] == "ok"  # four threads x 200 calls gave bit-identical results: reentrant
    return [float(v) for v in lines[:-2]]


def test_exported_mlp_baked_params_matches_python(tmp_path):
    p = make_params()
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    ex = tr.export(forward, tr.ShapedArray((3, 16), np.float32), path=str(tmp_path / "libmlp.so"),
                   name="mlp_forward", params=p)
    header = open(ex.header).read()
    assert "int mlp_forward(const float *x, float *out);" in header
    assert "x            float32[3, 16]" in header and "out          float32[3, 10]" in header
    got = np.array(build_and_run(tmp_path, ex, {"x": x}, "mlp_forward(x, out)", 30)).reshape(3, 10)
    want = forward(p, x)  # eager: the numpy reference
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-5)


def test_exported_params_as_arguments(tmp_path):
    p = make_params(2)
    x = np.random.default_rng(3).standard_normal((2, 16)).astype(np.float32)
    ex = tr.export(forward, p, x, path=str(tmp_path / "libmlp_args.so"), name="mlp_args")
    assert ex.arg_names == ["p_b1", "p_b2", "p_w1", "p_w2", "x"]
    header = open(ex.header).read()
    assert ("int mlp_args(const float *p_b1, const float *p_b2, const float *p_w1, const float *p_w2, "
            "const float *x, float *out);") in header
    arrays = {"b1": p["b1"], "b2": p["b2"], "w1": p["w1"], "w2": p["w2"], "x": x}
    got = np.array(build_and_run(tmp_path, ex, arrays, "mlp_args(b1, b2, w1, w2, x, out)", 20)).reshape(2, 10)
    np.testing.assert_allclose(got, forward(p, x), rtol=2e-5, atol=1e-6)


def test_library_is_self_contained_and_stateless(tmp_path):
    ex = tr.export(forward, tr.ShapedArray((1, 16), np.float32), path=str(tmp_path / "libm1.so"),
                   name="m1", params=make_params())
    needed = subprocess.run(["readelf", "-d", ex.library], capture_output=True, text=True).stdout
    libs = re.findall(r"Shared library: \[(.*?)\]", needed)
    assert all(lib.startswith(("libc.so", "libm.so")) for lib in libs), libs  # no python, no llvm
    exported = subprocess.run(["nm", "-D", "--defined-only", ex.library], capture_output=True, text=True).stdout
    assert [ln.split()[-1] for ln in exported.splitlines()] == ["m1"]
    # no writable globals in the generated code (constants are read-only)
    assert not re.search(r"^@\S+ = (?!.*\bconstant\b).*\bglobal\b", ex.llvm_ir, re.M)


def test_missing_compiler_is_a_clear_error(tmp_path, monkeypatch):
    from codegen.export import ExportError
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ExportError, match="needs a system C compiler"):
        tr.export(lambda x: x * 2.0, np.zeros(3, np.float32), path=str(tmp_path / "libx.so"), name="x")


def test_bad_names():
    with pytest.raises(ValueError, match="not a C identifier"):
        tr.export(lambda x: x, np.zeros(2, np.float32), path="/tmp/never.so", name="my-fn")


@pytest.mark.slow
def test_inference_kernel_example(tmp_path):
    pytest.importorskip("sklearn")
    import sys
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(tr.__file__))),
                          "examples", "inference_kernel.py")
    r = subprocess.run([sys.executable, script, "--out", str(tmp_path), "--steps", "150"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    acc = {k: float(v) for k, v in re.findall(r"test accuracy \((\w+)[^)]*\): ([\d.]+)", r.stdout)}
    assert acc["Python"] > 0.9 and acc["C"] == acc["Python"]
    assert "predictions identical to Python: True" in r.stdout


def test_generic_cpu_export_loads_with_ctypes(tmp_path):
    import ctypes
    p = make_params(4)
    x = np.random.default_rng(5).standard_normal((1, 16)).astype(np.float32)
    ex = tr.export(forward, tr.ShapedArray((1, 16), np.float32), path=str(tmp_path / "libgen.so"),
                   name="gen", params=p, cpu="x86-64")
    assert "x86-64" in open(ex.header).read()
    lib = ctypes.CDLL(ex.library)
    out = np.empty((1, 10), np.float32)
    rc = lib.gen(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p))
    assert rc == 0
    np.testing.assert_allclose(out, forward(p, x), rtol=2e-5, atol=1e-6)
