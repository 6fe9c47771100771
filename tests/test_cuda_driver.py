"""The ctypes driver layer against a stub ``libcuda`` compiled here with the driver
API's C signatures (versioned ``_v2`` names, CUresult returns, kernelParams as an
array of pointers to arguments). Checks argument passing, error names surfacing as
exceptions, and the launch parameters the runtime packs for each kernel."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

import tracer as tr
import codegen.cuda_runtime as rt

STUB = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
typedef int CUresult;
static char last_fn[256];
static int launches, last_grid[3], last_block[3];
static uint64_t last_args[16];
CUresult cuInit(unsigned f) { return f == 0 ? 0 : 1; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int o) { if (o != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char *s, int n, int d) { strncpy(s, "Stub GPU", n); return 0; }
CUresult cuDeviceGetAttribute(int *v, int a, int d) { *v = a == 75 ? 9 : a == 76 ? 0 : 132; return 0; }
CUresult cuDevicePrimaryCtxRetain(void **c, int d) { *c = (void *)0x1234; return 0; }
CUresult cuCtxSetCurrent(void *c) { return c == (void *)0x1234 ? 0 : 201; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuModuleLoadData(void **m, const void *img) {
  if (strncmp((const char *)img, "//", 2) != 0) return 218;  /* CUDA_ERROR_INVALID_PTX */
  *m = (void *)0x99; return 0;
}
CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
  strncpy(last_fn, name, 255); *f = (void *)0x77; return m == (void *)0x99 ? 0 : 400;
}
CUresult cuMemAlloc_v2(uint64_t *p, size_t n) {
  if (n > ((size_t)1 << 40)) return 2;  /* CUDA_ERROR_OUT_OF_MEMORY */
  *p = (uint64_t)malloc(n); return 0;
}
CUresult cuMemFree_v2(uint64_t p) { free((void *)p); return 0; }
CUresult cuMemcpyHtoD_v2(uint64_t d, const void *s, size_t n) { memcpy((void *)d, s, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *d, uint64_t s, size_t n) { memcpy(d, (void *)s, n); return 0; }
CUresult cuMemcpyDtoD_v2(uint64_t d, uint64_t s, size_t n) { memcpy((void *)d, (void *)s, n); return 0; }
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shmem, void *stream, void **params, void **extra) {
  launches++;
  last_grid[0] = gx; last_grid[1] = gy; last_grid[2] = gz;
  last_block[0] = bx; last_block[1] = by; last_block[2] = bz;
  /* the tests launch only two-parameter kernels through the stub */
  if (params) { last_args[0] = *(uint64_t *)params[0]; last_args[1] = *(uint64_t *)params[1]; }
  return f == (void *)0x77 && extra == 0 && shmem == 0 ? 0 : 1;
}
int stub_record_args(void **params, int n) {
  for (int i = 0; i < n; i++) last_args[i] = *(uint64_t *)params[i];
  return n;
}
uint64_t stub_arg(int i) { return last_args[i]; }
int stub_launches(void) { return launches; }
const char *stub_last_fn(void) { return last_fn; }
CUresult cuGetErrorName(CUresult e, const char **s) {
  switch (e) {
    case 2: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return 0;
    case 218: *s = "CUDA_ERROR_INVALID_PTX"; return 0;
    default: *s = "CUDA_ERROR_UNKNOWN"; return 0;
  }
}
"""


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("stub")
    src, lib = d / "stub.c", d / "libcuda_stub.so"
    src.write_text(STUB)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", str(src), "-o", str(lib)], check=True)
    return ctypes.CDLL(str(lib))


@pytest.fixture
def driver(stub):
    drv = rt.Driver(stub)
    rt._driver_override.append(drv)
    try:
        yield drv
    finally:
        rt._driver_override.remove(drv)


def test_device_query(driver):
    dev = rt.device(0)
    assert dev.cc == (9, 0) and dev.arch == "sm_90" and dev.name == "Stub GPU"


def test_memory_roundtrip_through_ctypes(driver):
    a = np.arange(10, dtype=np.float64) * 1.5
    d = tr.device_put(a)
    assert isinstance(d, rt.DeviceArray)
    np.testing.assert_array_equal(np.asarray(d), a)
    np.testing.assert_array_equal(np.asarray(tr.device_put(np.zeros((0, 3), np.float32))),
                                  np.zeros((0, 3), np.float32))


def test_error_names_surface(driver):
    with pytest.raises(rt.CudaError, match="CUDA_ERROR_OUT_OF_MEMORY") as e:
        driver.alloc(1 << 45)
    assert e.value.name == "CUDA_ERROR_OUT_OF_MEMORY" and e.value.call == "cuMemAlloc_v2"
    with pytest.raises(rt.CudaError, match="CUDA_ERROR_INVALID_PTX"):
        driver.load_module("not ptx")


def test_launch_parameters(driver, stub):
    """Each launch gets the kernel's grid/block and one pointer per buffer argument,
    each pointing at the buffer's 64-bit device address."""
    stub.stub_record_args.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
    stub.stub_arg.restype = ctypes.c_uint64
    ptrs = [0x1000, 0xdeadbeef00, 2**63 + 5]
    params, keep = rt.pack_params(ptrs)
    assert stub.stub_record_args(params, 3) == 3
    assert [stub.stub_arg(i) for i in range(3)] == ptrs

    f = tr.jit(lambda x: x * 2.0 + 1.0, backend="cuda")
    before = stub.stub_launches()
    x = tr.device_put(np.ones(1000, np.float32))
    for _ in range(2):  # the second call reuses the prebuilt parameter arrays
        out = f(x)
        assert isinstance(out, rt.DeviceArray) and out.shape == (1000,)
        assert sorted([stub.stub_arg(0), stub.stub_arg(1)]) == sorted([x.ptr, out.ptr])
    assert stub.stub_launches() == before + 2
    stub.stub_last_fn.restype = ctypes.c_char_p
    assert stub.stub_last_fn().decode().endswith("_k0")
