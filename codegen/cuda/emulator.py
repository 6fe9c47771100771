"""A CPU emulator of the CUDA driver, for testing kernels' *values* without a GPU.

The kernels' LLVM IR (the same module that becomes PTX) is retargeted to the host:
thread-index registers, ``bar.sync`` and warp shuffles become calls into a small C
library that runs every CUDA thread of a block as a POSIX thread (with a real block
barrier and per-warp shuffle exchange), blocks one after another; libdevice calls
become libm calls. ``EmulatedDriver`` has the ``Driver`` interface (memory is host
memory), so the whole runtime path — DeviceArray, buffer planning, launch packing —
runs unchanged. It is slow (a thread per CUDA thread) and meant for small tests.
Needs a C compiler (``cc``).
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import re
import subprocess
import tempfile

import mmap

import llvmlite.binding as llvm
import numpy as np

_C = r"""
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
static __thread int t_tid[3], t_ctaid[3];
static int g_ntid[3], g_nctaid[3], g_nthreads;
static pthread_barrier_t g_bar, g_wbar[32];
static uint32_t g_slot[1024];
#define REG(n, arr, i) int emu_##n(void) { return arr[i]; }
REG(tid_x, t_tid, 0) REG(tid_y, t_tid, 1) REG(tid_z, t_tid, 2)
REG(ctaid_x, t_ctaid, 0) REG(ctaid_y, t_ctaid, 1) REG(ctaid_z, t_ctaid, 2)
REG(ntid_x, g_ntid, 0) REG(ntid_y, g_ntid, 1) REG(ntid_z, g_ntid, 2)
REG(nctaid_x, g_nctaid, 0) REG(nctaid_y, g_nctaid, 1) REG(nctaid_z, g_nctaid, 2)
void emu_barrier(int id) { (void)id; pthread_barrier_wait(&g_bar); }
uint32_t emu_shfl_down(uint32_t mask, uint32_t v, uint32_t delta, uint32_t clamp) {
  (void)mask; (void)clamp;
  int lin = t_tid[0] + g_ntid[0] * (t_tid[1] + g_ntid[1] * t_tid[2]);
  int w = lin / 32, lane = lin % 32, src = lane + (int)delta;
  uint32_t r = v;
  g_slot[lin] = v;
  pthread_barrier_wait(&g_wbar[w]);
  if (src < 32 && w * 32 + src < g_nthreads) r = g_slot[w * 32 + src];
  pthread_barrier_wait(&g_wbar[w]);
  return r;
}
float emu_rsqrtf(float x) { return 1.0f / sqrtf(x); }
double emu_rsqrt(double x) { return 1.0 / sqrt(x); }
typedef void (*kern)(void **);
struct targ { kern f; void **p; int t[3], b[3]; };
static void *run(void *a) {
  struct targ *t = a;
  for (int i = 0; i < 3; i++) { t_tid[i] = t->t[i]; t_ctaid[i] = t->b[i]; }
  t->f(t->p);
  return 0;
}
int emu_launch(kern f, void **p, int gx, int gy, int gz, int bx, int by, int bz) {
  int n = bx * by * bz;
  if (n > 1024 || n < 1) return 1;
  g_ntid[0] = bx; g_ntid[1] = by; g_ntid[2] = bz;
  g_nctaid[0] = gx; g_nctaid[1] = gy; g_nctaid[2] = gz;
  g_nthreads = n;
  pthread_t *th = malloc(sizeof(pthread_t) * n);
  struct targ *ta = malloc(sizeof(struct targ) * n);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 18);
  int rc = 0;
  for (int z = 0; z < gz; z++) for (int y = 0; y < gy; y++) for (int x = 0; x < gx; x++) {
    pthread_barrier_init(&g_bar, 0, n);
    for (int w = 0; w * 32 < n; w++) pthread_barrier_init(&g_wbar[w], 0, n - w * 32 < 32 ? n - w * 32 : 32);
    for (int i = 0; i < n; i++) {
      ta[i].f = f; ta[i].p = p;
      ta[i].t[0] = i % bx; ta[i].t[1] = (i / bx) % by; ta[i].t[2] = i / (bx * by);
      ta[i].b[0] = x; ta[i].b[1] = y; ta[i].b[2] = z;
      if (pthread_create(&th[i], &attr, run, &ta[i])) { rc = 2; n = i; break; }
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], 0);
    pthread_barrier_destroy(&g_bar);
    for (int w = 0; w * 32 < g_nthreads; w++) pthread_barrier_destroy(&g_wbar[w]);
    if (rc) goto done;
  }
done:
  pthread_attr_destroy(&attr);
  free(th); free(ta);
  return rc;
}
"""

PAGE = mmap.PAGESIZE


def _libc():
    lib = ctypes.CDLL(None)
    lib.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return lib


_LIBM = {"exp", "exp2", "expm1", "log", "log2", "log1p", "sin", "cos", "tan", "tanh", "atan",
         "atan2", "pow", "erf", "sqrt"}
_state: dict = {}
_names = itertools.count()


def _library():
    if "lib" not in _state:
        h = hashlib.sha256(_C.encode()).hexdigest()[:12]
        path = os.path.join(tempfile.gettempdir(), f"tracer_cuda_emu_{h}_{os.getuid()}.so")
        if not os.path.exists(path):
            src = path[:-3] + ".c"
            with open(src, "w") as f:
                f.write(_C)
            tmp = path + f".{os.getpid()}.tmp"
            subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-pthread", src, "-o", tmp, "-lm"],
                           check=True, capture_output=True)
            os.replace(tmp, path)
        lib = ctypes.CDLL(path)
        lib.emu_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_int] * 6
        lib.emu_launch.restype = ctypes.c_int
        _state["lib"] = lib
        _state["libm"] = ctypes.CDLL("libm.so.6")
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        tm = llvm.Target.from_default_triple().create_target_machine(opt=1, jit=True)
        _state["tm"] = tm
        _state["lljit"] = llvm.create_lljit_compiler(tm)
    return _state["lib"]


def available() -> bool:
    try:
        _library()
        return True
    except (OSError, subprocess.CalledProcessError, FileNotFoundError):
        return False


def _host_ir(program) -> str:
    """The kernel module retargeted to the host, with an ``<kernel>__emu(void **params)``
    entry per kernel that unpacks the driver-style parameter array."""
    text = str(program.module)
    text = text.replace('target triple = "nvptx64-nvidia-cuda"',
                        f'target triple = "{llvm.get_process_triple()}"')
    text = text.replace("define ptx_kernel void", "define void")
    text = text.replace(" addrspace(1)", "").replace(" addrspace(3)", "")
    text = re.sub(r"llvm\.nvvm\.read\.ptx\.sreg\.(\w+)\.([xyz])", r"emu_\1_\2", text)
    text = text.replace("llvm.nvvm.barrier.cta.sync.aligned.all", "emu_barrier")
    text = text.replace("llvm.nvvm.shfl.sync.down.i32", "emu_shfl_down")
    wrappers = []
    for k in program.all_kernels():
        lines = [f'define void @"{k.name}__emu"(ptr %p) {{']
        for i in range(len(k.args)):
            lines += [f"  %s{i} = getelementptr ptr, ptr %p, i64 {i}",
                      f"  %q{i} = load ptr, ptr %s{i}",
                      f"  %a{i} = load ptr, ptr %q{i}"]
        lines.append(f'  call void @"{k.name}"(' + ", ".join(f"ptr %a{i}" for i in range(len(k.args)))
                     + ")")
        lines += ["  ret void", "}"]
        wrappers.append("\n".join(lines))
    return text + "\n" + "\n\n".join(wrappers) + "\n"


class EmulatedDriver:
    """The ``Driver`` interface on the CPU: host memory, kernels run by the emulator."""

    def __init__(self, guard: bool = False):
        _library()
        self.guard = guard
        self.memory: dict = {}
        self.launches: list = []   # (kernel name, grid, block) of every launch, for tests
        self._modules: list = []
        self._kernel_names: dict = {}

    # devices and contexts
    def device_count(self):
        return 1

    def device(self, ordinal):
        return ordinal

    def attribute(self, dev, attr):
        from codegen.cuda_runtime import ATTR_CC_MAJOR, ATTR_CC_MINOR
        return {ATTR_CC_MAJOR: 8, ATTR_CC_MINOR: 0}.get(attr, 1)

    def name(self, dev):
        return "CPU SIMT emulator"

    def primary_context(self, dev):
        return 1

    def set_current(self, ctx):
        pass

    def synchronize(self):
        pass

    # memory
    def alloc(self, nbytes):
        """Host memory. With ``guard=True`` every block ends exactly at an inaccessible
        page, so a kernel reading or writing one element past a buffer crashes the
        process (as the GPU would fault) instead of passing silently."""
        if nbytes == 0:
            return 0
        if self.guard:
            pages = -(-nbytes // PAGE) + 1
            buf = mmap.mmap(-1, pages * PAGE)
            base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
            _libc().mprotect(ctypes.c_void_p(base + (pages - 1) * PAGE), PAGE, 0)
            ptr = base + (pages - 1) * PAGE - nbytes
        else:
            buf = np.empty(nbytes + 64, np.uint8)
            ptr = (buf.ctypes.data + 63) // 64 * 64
        ctypes.memset(ptr, 0xA5, nbytes)  # junk, as fresh device memory: unwritten outputs show
        self.memory[ptr] = (buf, nbytes)
        return ptr

    def free(self, ptr):
        if ptr:
            del self.memory[ptr]

    def _check(self, ptr, n):
        if n and not any(p <= ptr and ptr + n <= p + size for p, (_, size) in self.memory.items()):
            from codegen.cuda_runtime import CudaError
            raise CudaError("memcpy", 1, "CUDA_ERROR_INVALID_VALUE")

    def htod(self, dst, src):
        self._check(dst, src.nbytes)
        ctypes.memmove(dst, src.ctypes.data, src.nbytes)

    def dtoh(self, dst, src):
        self._check(src, dst.nbytes)
        ctypes.memmove(dst.ctypes.data, src, dst.nbytes)

    def dtod(self, dst, src, nbytes):
        ctypes.memmove(dst, src, nbytes)

    # modules and launches
    def load_program(self, program, arch):
        name = f"emu{next(_names)}"
        b = llvm.JITLibraryBuilder().add_ir(_host_ir(program))
        lib, libm = _state["lib"], _state["libm"]
        for sym in ("tid", "ctaid", "ntid", "nctaid"):
            for ax in "xyz":
                b.import_symbol(f"emu_{sym}_{ax}", ctypes.cast(getattr(lib, f"emu_{sym}_{ax}"),
                                                               ctypes.c_void_p).value)
        for sym in ("emu_barrier", "emu_shfl_down"):
            b.import_symbol(sym, ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value)
        for fn in _LIBM:
            for suffix in ("f", ""):
                b.import_symbol(f"__nv_{fn}{suffix}", ctypes.cast(getattr(libm, fn + suffix),
                                                                  ctypes.c_void_p).value)
        b.import_symbol("__nv_rsqrtf", ctypes.cast(lib.emu_rsqrtf, ctypes.c_void_p).value)
        b.import_symbol("__nv_rsqrt", ctypes.cast(lib.emu_rsqrt, ctypes.c_void_p).value)
        kernels = program.all_kernels()
        for k in kernels:
            b.export_symbol(k.name + "__emu")
        rt = b.link(_state["lljit"], name)
        self._modules.append(rt)
        return (rt, {k.name: rt[k.name + "__emu"] for k in kernels})

    def load_module(self, ptx):
        raise NotImplementedError("the emulator runs LLVM IR, not PTX (use load_program)")

    def function(self, module, name):
        addr = module[1][name]
        self._kernel_names[addr] = name
        return addr

    def launch(self, fn, grid, block, params):
        self.launches.append((self._kernel_names.get(fn), tuple(grid), tuple(block)))
        rc = _state["lib"].emu_launch(fn, ctypes.cast(params, ctypes.c_void_p), *grid, *block)
        if rc:
            from codegen.cuda_runtime import CudaError
            raise CudaError("cuLaunchKernel", 1, "CUDA_ERROR_LAUNCH_FAILED")
