"""The CUDA back end: the optimised graph partitioned into kernels, lowered through
LLVM's NVPTX target to PTX (libdevice for transcendentals), and launched through the
CUDA driver API (``codegen.cuda_runtime``). See docs/cuda.md."""
from .plan import Program, UnsupportedOnGPU, lower  # noqa: F401
from .target import DEFAULT_ARCH, PTXError, compile_ptx  # noqa: F401
from .libdevice import LibdeviceNotFound  # noqa: F401
