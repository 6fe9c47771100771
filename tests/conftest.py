import os

from hypothesis import settings

settings.register_profile("ci", max_examples=25, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest


@pytest.fixture
def scratch_primitive():
    """Make throwaway primitives for a test; they leave the global registry afterwards
    (so registry-walking tests never see them)."""
    from tracer.core import PRIMITIVES, Primitive
    made = []

    def make(name):
        PRIMITIVES.pop(name, None)
        made.append(name)
        return Primitive(name)
    yield make
    for name in made:
        PRIMITIVES.pop(name, None)
