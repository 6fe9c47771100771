"""``device_put``: move an array to a GPU, where ``jit(f, backend="cuda")`` results live.
The CUDA runtime is imported only when it is used."""
from __future__ import annotations


def device_put(x, device: str = "cuda"):
    """Copy ``x`` (an array, a scalar, or a pytree of them) to ``device`` ("cuda" or
    "cuda:N"); returns DeviceArrays (in the same pytree), which stay on the GPU between
    calls. ``np.asarray`` copies one back. Raises CudaUnavailable (a RuntimeError) where
    there is no NVIDIA driver or GPU."""
    from codegen.cuda_runtime import device_put as put
    from .pytree import tree_map
    return tree_map(lambda leaf: put(leaf, device), x)
