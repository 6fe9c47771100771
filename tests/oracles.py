"""The derivative oracle shared by the tests: float64 central finite differences."""
import numpy as np


def fd_jac(f, x, eps=1e-6):
    """d f(x) / d x by central differences: an array of shape f(x).shape + x.shape."""
    x = np.asarray(x, np.float64)
    out = np.asarray(f(x))
    jac = np.zeros(out.shape + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        jac[(...,) + i] = (np.asarray(f(x + e), np.float64) - np.asarray(f(x - e), np.float64)) / (2 * eps)
    return jac


def fd_grad(f, x, eps=1e-6):
    """The gradient of a scalar function of one float64 array."""
    return fd_jac(lambda v: float(f(v)), x, eps)
