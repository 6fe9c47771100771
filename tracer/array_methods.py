"""Python operators and ndarray-style methods of ``Tracer``, delegating to ``tracer.numpy``."""
from __future__ import annotations


def install(cls) -> None:
    from . import numpy as tnp
    from .numpy._indexing import AtIndexer, getitem

    def swap(f):
        return lambda self, other: f(other, self)

    ops = {
        "__add__": tnp.add, "__radd__": swap(tnp.add),
        "__sub__": tnp.subtract, "__rsub__": swap(tnp.subtract),
        "__mul__": tnp.multiply, "__rmul__": swap(tnp.multiply),
        "__truediv__": tnp.true_divide, "__rtruediv__": swap(tnp.true_divide),
        "__floordiv__": tnp.floor_divide, "__rfloordiv__": swap(tnp.floor_divide),
        "__mod__": tnp.remainder, "__rmod__": swap(tnp.remainder),
        "__pow__": tnp.power, "__rpow__": swap(tnp.power),
        "__matmul__": tnp.matmul, "__rmatmul__": swap(tnp.matmul),
        "__and__": tnp.bitwise_and, "__rand__": swap(tnp.bitwise_and),
        "__or__": tnp.bitwise_or, "__ror__": swap(tnp.bitwise_or),
        "__xor__": tnp.bitwise_xor, "__rxor__": swap(tnp.bitwise_xor),
        "__lt__": tnp.less, "__le__": tnp.less_equal, "__gt__": tnp.greater,
        "__ge__": tnp.greater_equal, "__eq__": tnp.equal, "__ne__": tnp.not_equal,
        "__neg__": tnp.negative, "__pos__": tnp.positive, "__abs__": tnp.absolute,
        "__invert__": tnp.invert,
        "__getitem__": getitem,
    }
    for name, fn in ops.items():
        setattr(cls, name, fn)

    methods = {
        "sum": tnp.sum, "mean": tnp.mean, "max": tnp.max, "min": tnp.min, "prod": tnp.prod,
        "var": tnp.var, "std": tnp.std, "argmax": tnp.argmax, "argmin": tnp.argmin,
        "any": tnp.any, "all": tnp.all, "cumsum": tnp.cumsum, "cumprod": tnp.cumprod, "ravel": tnp.ravel,
        "flatten": tnp.ravel, "squeeze": tnp.squeeze, "swapaxes": tnp.swapaxes,
        "clip": tnp.clip, "round": tnp.round, "dot": tnp.dot, "take": tnp.take,
        "diagonal": tnp.diagonal, "trace": tnp.trace, "repeat": tnp.repeat, "ptp": tnp.ptp,
        "nonzero": tnp.nonzero, "copy": tnp.copy, "conj": tnp.positive, "conjugate": tnp.positive,
        "__round__": tnp.round, "__divmod__": lambda x, y: (tnp.floor_divide(x, y), tnp.remainder(x, y)),
        "__rdivmod__": lambda x, y: (tnp.floor_divide(y, x), tnp.remainder(y, x)),
    }
    for name, fn in methods.items():
        setattr(cls, name, fn)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        return tnp.reshape(self, shape, order)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = axes[0]
        return tnp.transpose(self, axes or None)

    def astype(self, dtype):
        from . import dtypes
        from .numpy._core import cast
        return cast(self, dtypes.canonical(dtype))

    cls.reshape = reshape
    cls.transpose = transpose
    cls.astype = astype
    cls.T = property(lambda self: tnp.transpose(self))
    cls.at = property(lambda self: AtIndexer(self))
    cls.mT = property(lambda self: tnp.swapaxes(self, -1, -2))
    cls.real = property(lambda self: self)
    cls.itemsize = property(lambda self: self.dtype.itemsize)
    cls.nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def array_ufunc(self, ufunc, method, *inputs, **kwargs):
        """numpy ufuncs on traced values (``np.sin(x)``, ``ndarray + x``) dispatch to the
        ``tnp`` function of the same name; anything else is a clear TypeError."""
        fn = getattr(tnp, ufunc.__name__, None)
        if method == "__call__" and fn is not None and not kwargs:
            return fn(*inputs)
        raise TypeError(f"numpy.{ufunc.__name__}" + (f".{method}" if method != "__call__" else "") +
                        f" is not supported on traced values; use tracer.numpy's functions instead")
    cls.__array_ufunc__ = array_ufunc

    def setitem(self, idx, value):
        raise TypeError(f"traced arrays are immutable: `x[idx] = v` is not supported on {self.aval}; "
                        f"use `x = x.at[idx].set(v)` instead")
    cls.__setitem__ = setitem
