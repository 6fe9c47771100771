"""Errors a user can act on. Each names the operation and, where known, the user's source line."""


class TracerError(Exception):
    """Base class of this library's errors."""


class ConcretizationError(TracerError, TypeError):
    """A traced value was used where a concrete Python value is needed (``if``, ``bool()``, ``int()``)."""


class TracerLeakError(TracerError, RuntimeError):
    """A tracer was used after the trace that made it had ended."""


class ShapeError(TracerError, ValueError):
    """Operand shapes do not fit an operation."""


class DTypeError(TracerError, TypeError):
    """Operand dtypes do not fit an operation."""


class CompileError(TracerError, RuntimeError):
    """The back end could not compile a graph."""
