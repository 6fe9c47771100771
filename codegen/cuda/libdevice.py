"""Finding and loading libdevice (NVIDIA's bitcode math library), and the math
provider that maps the shared scalar lowering's transcendental functions to it.

Search order: ``$TRACER_LIBDEVICE`` (a file or a folder), ``$CUDA_HOME`` /
``$CUDA_PATH``, ``/usr/local/cuda*``, then NVIDIA's pip wheels (``nvidia-cuda-nvcc-cu12``:
``nvidia/cuda_nvcc/nvvm/libdevice``; CUDA 13's ``nvidia-nvvm``: ``nvidia/cu13/nvvm/libdevice``).
"""
from __future__ import annotations

import glob
import os
import site
import sys

import llvmlite.binding as llvm
from llvmlite import ir

_NAME = "libdevice.10.bc"
_cached: tuple[str, bytes] | None = None


class LibdeviceNotFound(RuntimeError):
    """No libdevice.10.bc could be found."""


def _candidates():
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            yield os.path.join(os.environ[var], "nvvm", "libdevice", _NAME)
    for root in ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True) + \
            ["/opt/cuda", "/usr/lib/cuda", "/usr/lib/nvidia-cuda-toolkit"]:
        yield os.path.join(root, "nvvm", "libdevice", _NAME)
    dirs = list(sys.path)
    try:
        dirs += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # some virtualenvs
        pass
    for d in dict.fromkeys(dirs):
        for sub in ("nvidia/cu13/nvvm/libdevice", "nvidia/cuda_nvcc/nvvm/libdevice",
                    "nvidia/nvvm/libdevice"):
            yield os.path.join(d, sub, _NAME)


def find() -> str:
    """The path of libdevice.10.bc, or LibdeviceNotFound listing where it looked."""
    env = os.environ.get("TRACER_LIBDEVICE")
    if env:  # an explicit choice is not second-guessed
        path = env if env.endswith(".bc") else os.path.join(env, _NAME)
        if os.path.isfile(path):
            return path
        raise LibdeviceNotFound(f"TRACER_LIBDEVICE={env!r} does not name a libdevice.10.bc")
    tried = []
    for p in _candidates():
        if os.path.isfile(p):
            return p
        tried.append(p)
    found = _from_installed_packages()
    if found:
        return found
    raise LibdeviceNotFound(
        "libdevice.10.bc (NVIDIA's math library, needed for exp/log/sin... on the GPU) was not "
        "found. Install a CUDA toolkit (and set CUDA_HOME), or `pip install nvidia-cuda-nvcc-cu12`, "
        "or point TRACER_LIBDEVICE at the file. Looked in: " + ", ".join(tried[:6]) + ", ...")


def _from_installed_packages() -> str | None:
    """NVIDIA's cuda.pathfinder (shipped with cuda-bindings, the optional `cuda` extra)."""
    try:
        from cuda.pathfinder import find_bitcode_lib
        p = find_bitcode_lib("device")
        if p and os.path.isfile(str(p)):
            return str(p)
    except Exception:  # noqa: BLE001 - optional helpers; any failure means "not found"
        pass
    return None


def load_module() -> llvm.ModuleRef:
    """A fresh parsed libdevice module (``link_in`` consumes it)."""
    global _cached
    path = find()
    if _cached is None or _cached[0] != path:
        with open(path, "rb") as f:
            _cached = (path, f.read())
    return llvm.parse_bitcode(_cached[1])


# ---------------------------------------------------------------- the math provider

# Our names -> libdevice base names (float versions add an "f" suffix).
_NAMES = {
    "exp": "exp", "exp2": "exp2", "expm1": "expm1", "log": "log", "log2": "log2",
    "log1p": "log1p", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh",
    "atan": "atan", "atan2": "atan2", "pow": "pow", "erf": "erf", "sqrt": "sqrt",
    "rsqrt": "rsqrt",
}


class LibdeviceMath:
    """Transcendentals on NVPTX: calls to libdevice's ``__nv_*`` functions (linked in and
    inlined at PTX emission). ``emit(builder, name, *args)`` has the same signature as
    ``codegen.mathlib.emit``, the CPU's provider."""

    names = frozenset(_NAMES) | {"logistic"}

    def emit(self, b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
        ty = args[0].type
        if name == "logistic":  # 1 / (1 + exp(-x)), exact at both tails
            one = ir.Constant(ty, 1.0)
            return b.fdiv(one, b.fadd(one, self.emit(b, "exp", b.fneg(args[0]))))
        if name not in _NAMES:
            raise NotImplementedError(f"no libdevice function for {name!r}")
        if not isinstance(ty, (ir.FloatType, ir.DoubleType)):
            raise TypeError(f"{name}: libdevice needs float or double operands, got {ty}")
        fname = "__nv_" + _NAMES[name] + ("f" if isinstance(ty, ir.FloatType) else "")
        fn = b.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(b.module, ir.FunctionType(ty, [ty] * len(args)), fname)
        return b.call(fn, list(args))

    __call__ = emit


MATH = LibdeviceMath()
