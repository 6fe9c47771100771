#!/usr/bin/env bash
# The device check of the CUDA back end, in one script (< 5 minutes):
#   scripts/gpu_check.sh OUTDIR
# installs the package, runs the GPU tests (tests/test_cuda_gpu.py, marked `gpu`) and the
# GPU benchmark (benchmarks/bench_gpu.py), and writes into OUTDIR: nvidia-smi.txt,
# environment.txt, junit-gpu.xml, pytest-gpu.txt, bench_gpu.json, bench_gpu.md, gpu_check.log.
# Every step runs under a time limit and a failing step does not stop the later ones;
# the exit status is non-zero if any step failed.
set -u
OUT="${1:?usage: scripts/gpu_check.sh OUTDIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
STATUS=0
log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$OUT/gpu_check.log"; }

log "nvidia-smi"
{ nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory,clocks.max.sm --format=csv; } \
    > "$OUT/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed (see nvidia-smi.txt)"

log "install"
# The package runs from the checkout (PYTHONPATH); pip is only needed for missing
# dependencies, and the GPU machine may be offline, so it gets short time limits.
if [ -z "${GPU_CHECK_NO_INSTALL:-}" ] && ! "$PY" -c "import numpy, llvmlite, pytest" 2>/dev/null; then
  timeout 60 "$PY" -m pip install -q --retries 1 --timeout 10 -e ".[test,cuda]" >> "$OUT/gpu_check.log" 2>&1 \
    || timeout 30 "$PY" -m pip install -q --no-deps --no-build-isolation -e . >> "$OUT/gpu_check.log" 2>&1 \
    || log "pip install failed; running from the checkout"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{ "$PY" - <<'PYEOF'
import importlib, platform
print("python", platform.python_version())
for m in ("numpy", "llvmlite", "pytest", "hypothesis", "cuda.bindings", "torch", "cupy"):
    try:
        mod = importlib.import_module(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(m, "missing:", type(e).__name__)
try:
    from codegen.cuda import libdevice
    print("libdevice", libdevice.find())
except Exception as e:
    print("libdevice NOT FOUND:", e)
import codegen.cuda_runtime as rt
try:
    d = rt.device(0)
    print("device", d, "arch", d.arch)
    import numpy as np, tracer as tr, tracer.numpy as tnp
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    y = tr.jit(lambda v: (v * 2.0 + 1.0, tnp.sum(v * v)), backend="cuda")(x)
    ok = np.allclose(np.asarray(y[0]), x * 2 + 1) and np.isclose(float(y[1]), float((x * x).sum()), rtol=1e-4)
    print("smoke test (elementwise + reduction on the GPU):", "OK" if ok else "WRONG VALUES")
except Exception as e:
    print("device unavailable or smoke test failed:", type(e).__name__, e)
PYEOF
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt" | tee -a "$OUT/gpu_check.log"

if grep -q "libdevice NOT FOUND" "$OUT/environment.txt"; then
  log "no libdevice here: transcendentals use the polynomial library (TRACER_CUDA_MATH=mathlib)"
  export TRACER_CUDA_MATH=mathlib
fi

log "GPU tests"
if "$PY" -c "import pytest" 2>/dev/null; then
  # tests/conftest.py needs hypothesis, which the GPU tests do not use
  NOCONF=""; "$PY" -c "import hypothesis" 2>/dev/null || NOCONF="--noconftest"
  timeout 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider $NOCONF tests/test_cuda_gpu.py \
      --junitxml="$OUT/junit-gpu.xml" > "$OUT/pytest-gpu.txt" 2>&1 || STATUS=1
  tail -n 30 "$OUT/pytest-gpu.txt" | tee -a "$OUT/gpu_check.log"
else
  log "pytest is not installed: GPU tests skipped"; STATUS=1
fi

log "GPU benchmark"
timeout 75 "$PY" benchmarks/bench_gpu.py --out "$OUT" >> "$OUT/gpu_check.log" 2>&1 || {
  log "full benchmark failed or timed out; quick run"; STATUS=1
  timeout 30 "$PY" benchmarks/bench_gpu.py --quick --out "$OUT" >> "$OUT/gpu_check.log" 2>&1 || true; }
[ -f "$OUT/bench_gpu.md" ] && cat "$OUT/bench_gpu.md" | tee -a "$OUT/gpu_check.log"

log "done (status $STATUS)"
exit $STATUS
