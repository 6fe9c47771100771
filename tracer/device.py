"""``device_put``: move an array to a GPU, where ``jit(f, backend="cuda")`` results live.
The CUDA runtime is imported only when it is used."""
from __future__ import annotations


def device_put(x, device: str = "cuda"):
    """Copy ``x`` to ``device`` ("cuda" or "cuda:N"); returns a DeviceArray, which stays on
    the GPU between calls. ``np.asarray`` copies it back. Raises CudaUnavailable (a
    RuntimeError) where there is no NVIDIA driver or GPU."""
    from codegen.cuda_runtime import device_put as put
    return put(x, device)
