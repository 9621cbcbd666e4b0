"""The native Decision and its pure-Python twin agree, whatever the rule count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudcore import _native
from fraudcore.decision import DecisionPy, RuleMeta

pytestmark = pytest.mark.skipif(_native.vm is None, reason="native extension disabled")

N = 150
META = RuleMeta("v1", [f"rule_{i}" for i in range(N)], [f"reason {i}" for i in range(N)])


@given(mask=st.integers(0, (1 << N) - 1), errors=st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=2))
def test_native_decision_matches_the_twin(mask, errors):
    native = _native.vm.Decision("review", 40, mask, META, list(errors), {"c": 1})
    twin = DecisionPy("review", 40, mask, META, list(errors), {"c": 1})
    assert native.rules == twin.rules == [f"rule_{i}" for i in range(N) if mask >> i & 1]
    assert native.reasons == twin.reasons
    assert native.to_dict() == twin.to_dict() == RuleMeta.as_dict(twin)
    assert native == twin
