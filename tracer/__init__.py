"""tracer: a JAX-style staging tracer. Python functions become a typed IR, which is
differentiated (adjoint graphs), batched, and compiled through LLVM to native code."""
from . import primitives as _primitives  # noqa: F401  (registers every primitive)
from . import core as _core
from .core import PRIMITIVES  # noqa: F401
from .ir import ShapedArray, Graph  # noqa: F401
from .errors import (ConcretizationError, TracerLeakError, ShapeError, DTypeError,  # noqa: F401
                     TracerError)
from .pytree import (tree_map, tree_flatten, tree_unflatten, tree_leaves, tree_structure,  # noqa: F401
                     register_pytree_node)
from .api import (make_ir, grad, value_and_grad, vjp, jvp, jacfwd, jacrev, hessian)  # noqa: F401
from .batching import vmap  # noqa: F401
from .jit import jit  # noqa: F401
from .device import device_put  # noqa: F401
from .control_flow import cond, switch, while_loop, fori_loop, scan  # noqa: F401
from .primitives.elementwise import stop_gradient  # noqa: F401
from .custom_derivatives import custom_vjp, custom_jvp  # noqa: F401
from . import lax, numpy  # noqa: F401
from . import nn  # noqa: F401,E402
from . import debug  # noqa: F401,E402
from .debug import config, NaNError  # noqa: F401,E402
from .export import export  # noqa: F401,E402

_core._install_array_methods()

__version__ = "0.1.0"
