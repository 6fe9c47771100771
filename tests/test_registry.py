"""Every primitive must define every rule: a missing rule fails here, not in a user's program."""
import pytest

import tracer  # noqa: F401  (registers every primitive)
from tracer import core


def _missing(rule: str) -> list[str]:
    return sorted(name for name, p in core.PRIMITIVES.items() if getattr(p, rule) is core.MISSING)


@pytest.mark.parametrize("rule", ["abstract_eval", "impl"])
def test_every_primitive_has_reference_rules(rule):
    assert _missing(rule) == [], f"primitives without a {rule} rule"


def test_every_primitive_has_batch_rule():
    assert _missing("batch") == [], "primitives without a batch (vmap) rule"


def test_every_primitive_has_derivative_rules():
    assert _missing("jvp") == [], "primitives without a jvp rule"
    assert _missing("vjp") == [], "primitives without a vjp (transpose) rule"


def test_every_primitive_has_a_cpu_lowering():
    from codegen.cpu import LOWERINGS
    missing = sorted(set(core.PRIMITIVES) - set(LOWERINGS))
    assert missing == [], "primitives without a CPU lowering (codegen.cpu.LOWERINGS)"
