"""The on-disk object cache under concurrency: several processes compiling the same
functions into one TRACER_CACHE_DIR at the same time all get correct code, leave one
complete object file per module and no temporary files, and a later process loads
every module from disk."""
import os
import subprocess
import sys
import textwrap


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CODE = textwrap.dedent("""
    import os, sys, time
    import numpy as np, tracer as tr, tracer.numpy as tnp
    go = sys.argv[1]
    while not os.path.exists(go):  # start compiling together
        time.sleep(0.002)
    sources = []
    for n in (3, 12, 40):
        def f(x, n=n):
            for i in range(n):
                x = tnp.tanh(x) * 1.5 + 0.01 * i
            return x
        x = np.linspace(-2, 2, 301).astype(np.float32)
        c = tr.jit(f).lower(x).compile()
        ref = x.astype(np.float64)
        for i in range(n):
            ref = np.tanh(ref) * 1.5 + np.float32(0.01 * i)
        np.testing.assert_allclose(c(x), ref, rtol=2e-5, atol=2e-5)
        sources.append("disk" if c.executable.from_disk else "fresh")
    print(" ".join(sources))
""")


def _env(cache):
    env = {**os.environ, "PYTHONPATH": ROOT, "TRACER_CACHE_DIR": str(cache)}
    env.pop("TRACER_NO_DISK_CACHE", None)
    return env


def test_processes_compiling_the_same_functions_at_once(tmp_path):
    cache, go = tmp_path / "cache", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CODE, str(go)], cwd=ROOT, env=_env(cache),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    go.write_text("")
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    names = sorted(os.listdir(cache))
    assert len(names) == 3 and all(n.endswith(".o") for n in names), names  # no .tmp left
    # every file is a complete object: a fresh process loads all three from disk
    r = subprocess.run([sys.executable, "-c", CODE, str(go)], cwd=ROOT, env=_env(cache),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["disk"] * 3
