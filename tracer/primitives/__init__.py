"""The closed primitive set. Importing this package registers every primitive in
``tracer.core.PRIMITIVES``; ``tracer.lax`` exposes their Python wrappers."""
from . import elementwise, shape, reductions, linalg, indexing  # noqa: F401
