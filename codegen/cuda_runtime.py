"""The CUDA runtime: the driver API through ctypes, device arrays, and the host
side of compiled programs (module loading, buffer planning, kernel launches).

Why ctypes on ``libcuda.so.1`` rather than NVIDIA's ``cuda-bindings`` (the ``cuda``
extra): the ~16 driver entry points we use need no dependency at all, the calls are
the same, and error names come from the driver's own ``cuGetErrorName``. The
extra is kept for ``cuda.pathfinder`` users and for the GPU check script.

Without a driver, importing this module works; the first use raises
``CudaUnavailable`` naming what is missing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import threading
import weakref
from typing import Any, Sequence

import numpy as np


c_void_p, c_int, c_uint, c_size_t, c_char_p = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint,
                                               ctypes.c_size_t, ctypes.c_char_p)
CUdeviceptr = ctypes.c_uint64

# name -> (argtypes); every function returns CUresult (int). Versioned names as cuda.h maps them.
_SIGNATURES = {
    "cuInit": [c_uint],
    "cuDriverGetVersion": [ctypes.POINTER(c_int)],
    "cuDeviceGetCount": [ctypes.POINTER(c_int)],
    "cuDeviceGet": [ctypes.POINTER(c_int), c_int],
    "cuDeviceGetName": [c_char_p, c_int, c_int],
    "cuDeviceGetAttribute": [ctypes.POINTER(c_int), c_int, c_int],
    "cuDevicePrimaryCtxRetain": [ctypes.POINTER(c_void_p), c_int],
    "cuCtxSetCurrent": [c_void_p],
    "cuCtxSynchronize": [],
    "cuModuleLoadData": [ctypes.POINTER(c_void_p), c_void_p],
    "cuModuleGetFunction": [ctypes.POINTER(c_void_p), c_void_p, c_char_p],
    "cuMemAlloc_v2": [ctypes.POINTER(CUdeviceptr), c_size_t],
    "cuMemFree_v2": [CUdeviceptr],
    "cuMemcpyHtoD_v2": [CUdeviceptr, c_void_p, c_size_t],
    "cuMemcpyDtoH_v2": [c_void_p, CUdeviceptr, c_size_t],
    "cuMemcpyDtoD_v2": [CUdeviceptr, CUdeviceptr, c_size_t],
    "cuLaunchKernel": [c_void_p, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_void_p,
                       ctypes.POINTER(c_void_p), ctypes.POINTER(c_void_p)],
    "cuGetErrorName": [c_int, ctypes.POINTER(c_char_p)],
}
ATTR_CC_MAJOR, ATTR_CC_MINOR, ATTR_SM_COUNT = 75, 76, 16
ATTR_MEM_CLOCK_KHZ, ATTR_BUS_WIDTH = 36, 37


class CudaUnavailable(RuntimeError):
    """No usable CUDA driver or GPU on this machine."""


class CudaError(RuntimeError):
    """A CUDA driver call failed; ``name`` is the driver's error name."""

    def __init__(self, call: str, code: int, name: str):
        super().__init__(f"{call} failed: {name} (CUresult {code})")
        self.call, self.code, self.name = call, code, name


class Driver:
    """The CUDA driver API, loaded with ctypes. Every method raises CudaError on failure."""

    def __init__(self, lib: Any = None):
        if lib is None:
            try:
                lib = ctypes.CDLL("libcuda.so.1")
            except OSError as e:
                raise CudaUnavailable(
                    f"backend='cuda' needs the NVIDIA driver (libcuda.so.1), which is not "
                    f"installed here ({e}). Lowering to PTX still works: "
                    f"jit(f, backend='cuda').lower(*args).as_text('ptx')") from None
        self.lib = lib
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, c_int
        self.call("cuInit", 0)

    def error_name(self, code: int) -> str:
        s = c_char_p()
        if self.lib.cuGetErrorName(code, ctypes.byref(s)) == 0 and s.value:
            return s.value.decode()
        return f"CUDA_ERROR_{code}"

    def call(self, name: str, *args) -> None:
        rc = getattr(self.lib, name)(*args)
        if rc != 0:
            raise CudaError(name, rc, self.error_name(rc))

    # ------------------------------------------------------------ thin wrappers

    def device_count(self) -> int:
        n = c_int()
        self.call("cuDeviceGetCount", ctypes.byref(n))
        return n.value

    def device(self, ordinal: int) -> int:
        d = c_int()
        self.call("cuDeviceGet", ctypes.byref(d), ordinal)
        return d.value

    def attribute(self, dev: int, attr: int) -> int:
        v = c_int()
        self.call("cuDeviceGetAttribute", ctypes.byref(v), attr, dev)
        return v.value

    def name(self, dev: int) -> str:
        buf = ctypes.create_string_buffer(256)
        self.call("cuDeviceGetName", buf, 256, dev)
        return buf.value.decode(errors="replace")

    def primary_context(self, dev: int) -> int:
        ctx = c_void_p()
        self.call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)
        return ctx.value

    def set_current(self, ctx: int) -> None:
        self.call("cuCtxSetCurrent", c_void_p(ctx))

    def alloc(self, nbytes: int) -> int:
        if nbytes == 0:
            return 0
        p = CUdeviceptr()
        self.call("cuMemAlloc_v2", ctypes.byref(p), nbytes)
        return p.value

    def free(self, ptr: int) -> None:
        if ptr:
            self.call("cuMemFree_v2", CUdeviceptr(ptr))

    def htod(self, dst: int, src: np.ndarray) -> None:
        if src.nbytes:
            self.call("cuMemcpyHtoD_v2", CUdeviceptr(dst), c_void_p(src.ctypes.data), src.nbytes)

    def dtoh(self, dst: np.ndarray, src: int) -> None:
        if dst.nbytes:
            self.call("cuMemcpyDtoH_v2", c_void_p(dst.ctypes.data), CUdeviceptr(src), dst.nbytes)

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        if nbytes:
            self.call("cuMemcpyDtoD_v2", CUdeviceptr(dst), CUdeviceptr(src), nbytes)

    def load_module(self, ptx: str) -> int:
        m = c_void_p()
        data = ctypes.create_string_buffer(ptx.encode() + b"\0")
        self.call("cuModuleLoadData", ctypes.byref(m), ctypes.cast(data, c_void_p))
        return m.value

    def function(self, module: int, name: str) -> int:
        f = c_void_p()
        self.call("cuModuleGetFunction", ctypes.byref(f), c_void_p(module), name.encode())
        return f.value

    def launch(self, fn: int, grid, block, params) -> None:
        self.call("cuLaunchKernel", c_void_p(fn), *grid, *block, 0, None, params, None)

    def synchronize(self) -> None:
        self.call("cuCtxSynchronize")


def pack_params(ptrs: Sequence[int]):
    """``kernelParams`` for pointer-only kernels: an array of pointers, each to a
    64-bit device address. Returns (array, keep-alive values)."""
    vals = [CUdeviceptr(p) for p in ptrs]
    arr = (c_void_p * max(1, len(vals)))(*[ctypes.cast(ctypes.byref(v), c_void_p) for v in vals])
    return arr, vals


# ---------------------------------------------------------------- devices

_lock = threading.RLock()
_devices: dict = {}
_driver_override: list = []   # tests install a fake driver here


def _driver() -> Driver:
    if _driver_override:
        return _driver_override[-1]
    if "driver" not in _devices:
        _devices["driver"] = Driver()
    return _devices["driver"]


class Device:
    """One GPU with its primary context."""

    def __init__(self, driver, ordinal: int = 0):
        self.driver = driver
        if driver.device_count() <= ordinal:
            raise CudaUnavailable(f"no CUDA device {ordinal} (the driver sees "
                                  f"{driver.device_count()})")
        self.handle = driver.device(ordinal)
        self.ordinal = ordinal
        self.context = driver.primary_context(self.handle)
        driver.set_current(self.context)
        self.cc = (driver.attribute(self.handle, ATTR_CC_MAJOR),
                   driver.attribute(self.handle, ATTR_CC_MINOR))
        self.name = driver.name(self.handle)

    @property
    def arch(self) -> str:
        """The PTX target for this device: its own sm_XY if LLVM knows it, else the
        newest known one below it (PTX is forward compatible)."""
        from codegen.cuda.target import KNOWN_ARCHS
        want = self.cc[0] * 10 + self.cc[1]
        plain = [a for a in KNOWN_ARCHS if a[-1].isdigit() and int(a[3:]) <= want]
        return max(plain, key=lambda a: int(a[3:])) if plain else "sm_80"

    def activate(self):
        self.driver.set_current(self.context)

    def __repr__(self):
        return f"<cuda:{self.ordinal} {self.name} sm_{self.cc[0]}{self.cc[1]}>"


def device(ordinal: int = 0) -> Device:
    """The CUDA device ``ordinal`` (the driver is loaded and initialised on first use)."""
    with _lock:
        drv = _driver()
        key = (id(drv), ordinal)
        if key not in _devices:
            _devices[key] = Device(drv, ordinal)
        d = _devices[key]
        d.activate()
        return d


def available() -> bool:
    """Whether a CUDA driver and at least one device are usable here."""
    try:
        device(0)
        return True
    except (CudaUnavailable, CudaError, OSError):
        return False


# ---------------------------------------------------------------- device arrays

class DeviceArray:
    """An immutable array in GPU memory. ``np.asarray(x)`` copies it to the host."""

    __array_priority__ = 100

    def __init__(self, dev: Device, ptr: int, shape, dtype, owned: bool = True, base=None):
        self.device, self.ptr, self.base = dev, ptr, base   # base: the array a view keeps alive
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.size = math.prod(self.shape)
        self.nbytes = self.size * self.dtype.itemsize
        self._aval = None
        if owned and ptr:
            weakref.finalize(self, _pool_release, dev, ptr, _rounded(self.nbytes))

    ndim = property(lambda self: len(self.shape))

    @property
    def device_aval(self):
        """The abstract value (read by jit without copying the data back)."""
        if self._aval is None:
            self._aval = _shaped(self.shape, self.dtype)
        return self._aval

    @classmethod
    def empty(cls, dev: Device, shape, dtype) -> "DeviceArray":
        n = math.prod(shape) * np.dtype(dtype).itemsize
        return cls(dev, _pool_alloc(dev, n), shape, dtype)

    @classmethod
    def from_host(cls, dev: Device, x) -> "DeviceArray":
        from tracer.core import concrete_aval
        val = concrete_aval(x)[0]
        arr = np.ascontiguousarray(val).reshape(val.shape)  # (ascontiguousarray makes 0-d 1-d)
        out = cls.empty(dev, arr.shape, arr.dtype)
        dev.activate()
        dev.driver.htod(out.ptr, arr)
        return out

    def to_host(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        self.device.activate()
        self.device.driver.dtoh(out, self.ptr)
        return out

    def __array__(self, dtype=None, copy=None):
        a = self.to_host()
        return a.astype(dtype) if dtype is not None else a

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    # Anything else a numpy array can do happens on a host copy (explicitly a copy:
    # use jit(..., backend="cuda") functions to compute on the device).
    def __getitem__(self, idx):
        return self.to_host()[idx]

    def __bool__(self):
        return bool(self.to_host())

    def __index__(self):
        return self.to_host().__index__()

    def __float__(self):
        return float(self.to_host())

    def __int__(self):
        return int(self.to_host())

    def item(self):
        return self.to_host().item()

    def tolist(self):
        return self.to_host().tolist()

    def __repr__(self):
        return f"DeviceArray({self.to_host()!r}, device={self.device})"

    def block_until_ready(self) -> "DeviceArray":
        self.device.driver.synchronize()
        return self


def _host_op(name):
    def op(self, *args):
        return getattr(self.to_host(), name)(*[np.asarray(a) if isinstance(a, DeviceArray) else a
                                                for a in args])
    op.__name__ = name
    return op


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__pow__", "__rpow__",
              "__matmul__", "__rmatmul__", "__neg__", "__pos__", "__abs__", "__lt__", "__le__",
              "__gt__", "__ge__", "__eq__", "__ne__", "__and__", "__or__", "__xor__", "__invert__"):
    setattr(DeviceArray, _name, _host_op(_name))
DeviceArray.__hash__ = None


def _shaped(shape, dtype):
    from tracer.ir import ShapedArray
    return ShapedArray(shape, dtype)


# A caching allocator: freed blocks go back to a per-device pool keyed by their
# (rounded) size, so a loop calling the same compiled function allocates nothing
# after its first iteration (cuMemAlloc/cuMemFree are slow and cuMemFree synchronises).
_pools: dict = {}


def _rounded(n: int) -> int:
    return -(-n // 512) * 512


def _pool_alloc(dev: Device, nbytes: int) -> int:
    if nbytes == 0:
        return 0
    r = _rounded(nbytes)
    with _lock:
        free = _pools.setdefault(id(dev), {}).get(r)
        if free:
            return free.pop()
    try:
        return dev.driver.alloc(r)
    except CudaError as e:
        if e.name != "CUDA_ERROR_OUT_OF_MEMORY":
            raise
        empty_cache(dev)
        return dev.driver.alloc(r)


def _pool_release(dev: Device, ptr: int, rounded: int) -> None:
    with _lock:
        _pools.setdefault(id(dev), {}).setdefault(rounded, []).append(ptr)


def empty_cache(dev: Device | None = None) -> None:
    """Give the pooled free blocks back to the driver."""
    with _lock:
        for d in ([dev] if dev else [d for d in _devices.values() if isinstance(d, Device)]):
            for ptrs in _pools.pop(id(d), {}).values():
                for p in ptrs:
                    try:
                        d.driver.free(p)
                    except Exception:  # noqa: BLE001 - the context may be gone at exit
                        pass


def device_put(x, device_name: str = "cuda") -> DeviceArray:
    """Copy ``x`` (a numpy array or Python scalar) to the GPU (``"cuda"`` or ``"cuda:N"``)."""
    if isinstance(x, DeviceArray):
        return x
    if not isinstance(device_name, str) or not device_name.startswith("cuda"):
        raise ValueError(f"device_put: unknown device {device_name!r} (use 'cuda' or 'cuda:N')")
    ordinal = int(device_name.split(":", 1)[1]) if ":" in device_name else 0
    return DeviceArray.from_host(device(ordinal), x)


# ---------------------------------------------------------------- compiled programs

class Executable:
    """A ``codegen.cuda.Program`` loaded on a device: the kernels, its constants
    (uploaded once), a temporary arena reused across calls (buffers whose lifetimes
    do not overlap share memory), and the launch sequence."""

    def __init__(self, program, dev: Device | None = None, loaded=None):
        self.program = program
        self.device = dev or device(0)
        drv = self.device.driver
        if loaded is not None:  # a control-flow sub-program: kernels already loaded
            self.module, self.functions = loaded
        else:
            if hasattr(drv, "load_program"):  # the CPU emulator runs the LLVM IR itself
                self.module = drv.load_program(program, self.device.arch)
            else:
                self.module = drv.load_module(program.ptx(self.device.arch))
            self.functions = {k.name: drv.function(self.module, k.name)
                              for k in program.all_kernels()}
        self._subs: dict = {}
        self.consts = {bid: DeviceArray.from_host(self.device, val)
                       for bid, val in program.consts.items()}
        self.temp_ptr, self._arena = self._plan_temps()
        self._lock = threading.Lock()
        # kernelParams built once: each launch's array points into one slot per buffer,
        # and a call only writes the buffers' addresses into the slots
        self._slots = (CUdeviceptr * max(1, len(program.buffers)))()
        base = ctypes.addressof(self._slots)
        self._params = [None if hasattr(ln, "kind") else
                        (c_void_p * max(1, len(ln.args)))(*[base + 8 * a for a in ln.args])
                        for ln in program.launches]
        # temporaries and constants never move: their slots are written once
        self._static_ptr = dict(self.temp_ptr)
        self._static_ptr.update((bid, a.ptr) for bid, a in self.consts.items())
        for bid, p in self._static_ptr.items():
            self._slots[bid] = p
        bufs = program.buffers
        self._in_specs = [(bid, bufs[bid].aval.shape, bufs[bid].aval.dtype) for bid in program.inputs]
        self._out_specs = [(b.id, b.aval.shape, b.aval.dtype) for b in bufs if b.kind == "output"]

    def _plan_temps(self):
        """Offsets of temporaries in one arena, sharing space between buffers whose
        live ranges (first to last launch using them) do not overlap."""
        first, last = {}, {}
        for i, ln in enumerate(self.program.launches):
            for a in ln.args:
                first.setdefault(a, i)
                last[a] = i
        slots: list = []  # [offset, size, free_after]
        offsets, end = {}, 0
        for b in self.program.buffers:
            if b.kind != "temp" or b.id not in first:
                continue
            need = -(-max(b.nbytes, 1) // 256) * 256
            for s in slots:
                if s[2] < first[b.id] and s[1] >= need:
                    offsets[b.id], s[2] = s[0], last[b.id]
                    break
            else:
                slots.append([end, need, last[b.id]])
                offsets[b.id] = end
                end += need
        arena = DeviceArray.empty(self.device, (end,), np.uint8) if end else None
        base = arena.ptr if arena is not None else 0
        return {bid: base + off for bid, off in offsets.items()}, arena

    def __call__(self, *args):
        if len(args) != len(self._in_specs):
            raise TypeError(f"compiled program takes {len(self._in_specs)} arguments, got {len(args)}")
        dev = self.device
        dev.activate()
        arrays: dict = {}
        for (bid, shape, dtype), a in zip(self._in_specs, args):
            if isinstance(a, DeviceArray):
                if a.shape != shape or a.dtype != dtype:
                    raise TypeError(f"device array {a.dtype}{list(a.shape)} passed where "
                                    f"{dtype}{list(shape)} was compiled")
            else:
                a = DeviceArray.from_host(dev, np.asarray(a, dtype))
            arrays[bid] = a
        for bid, shape, dtype in self._out_specs:
            arrays[bid] = DeviceArray.empty(dev, shape, dtype)
        launch = dev.driver.launch
        with self._lock:  # the temporary arena and the parameter slots are shared by calls
            slots = self._slots
            for bid, a in arrays.items():
                slots[bid] = a.ptr
            ptr = None
            for ln, params in zip(self.program.launches, self._params):
                if params is None:
                    if ptr is None:
                        ptr = dict(self._static_ptr)
                        ptr.update((bid, a.ptr) for bid, a in arrays.items())
                    self._host_step(ln, ptr)
                else:
                    launch(self.functions[ln.kernel], ln.grid, ln.block, params)
            dev.driver.synchronize()
        return [arrays[bid] if bid in arrays else self.consts[bid] for bid in self.program.outputs]

    # ------------------------------------------------------------ host-driven control flow

    def _sub(self, program) -> "Executable":
        ex = self._subs.get(id(program))
        if ex is None:
            ex = self._subs[id(program)] = Executable(program, self.device,
                                                      loaded=(self.module, self.functions))
        return ex

    def _view(self, ptr, bid, offset=0, drop_leading=False):
        aval = self.program.buffers[bid].aval
        shape = aval.shape[1:] if drop_leading else aval.shape
        return DeviceArray(self.device, ptr[bid] + offset if ptr[bid] else 0, shape, aval.dtype,
                           owned=False)

    def _host_step(self, st, ptr):
        """cond / while / scan: sub-programs called from the host; results are copied
        into the step's output buffers."""
        drv = self.device.driver
        ins = [self._view(ptr, b) for b in st.ins]
        if st.kind == "cond":
            n = len(st.subs)
            i = int(min(max(int(ins[0].to_host()), 0), n - 1))
            outs = self._sub(st.subs[i])(*ins[1:])
        elif st.kind == "while":
            nc, nb = st.params["cond_nconsts"], st.params["body_nconsts"]
            cc, bc, outs = ins[:nc], ins[nc:nc + nb], ins[nc + nb:]
            cond, body = self._sub(st.subs[0]), self._sub(st.subs[1])
            while bool(cond(*cc, *outs)[0].to_host()):
                outs = body(*bc, *outs)
        else:
            nk, nc = st.params["num_consts"], st.params["num_carry"]
            length = st.params["length"]
            consts, carry, xs = ins[:nk], ins[nk:nk + nc], st.ins[nk + nc:]
            body = self._sub(st.subs[0])
            ys = st.outs[nc:]
            for i in (reversed(range(length)) if st.params["reverse"] else range(length)):
                xi = [self._view(ptr, b, i * self._row_bytes(b), drop_leading=True) for b in xs]
                res = body(*consts, *carry, *xi)
                carry = res[:nc]
                for bid, y in zip(ys, res[nc:]):
                    drv.dtod(ptr[bid] + i * self._row_bytes(bid), y.ptr, y.nbytes)
            outs = carry
        for bid, a in zip(st.outs, outs):
            drv.dtod(ptr[bid], a.ptr, a.nbytes)

    def _row_bytes(self, bid) -> int:
        aval = self.program.buffers[bid].aval
        return (aval.size // aval.shape[0] if aval.shape[0] else 0) * aval.dtype.itemsize


class GraphExecutable:
    """What ``jit(f, backend="cuda")`` calls: the graph's CUDA program on device 0.
    Arguments may be numpy arrays, scalars or DeviceArrays; results are DeviceArrays."""

    def __init__(self, graph, name: str | None = None):
        from codegen.cuda import program_for
        dev = device(0)  # raises CudaUnavailable here (call time) without a GPU
        self.program = program_for(graph, name or graph.name)
        self.executable = Executable(self.program, dev)

    def __call__(self, *args):
        return self.executable(*args)
