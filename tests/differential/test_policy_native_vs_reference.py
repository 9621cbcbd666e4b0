"""A whole rules file, native against reference: ``Policy.decide`` (the native
rule set, rerunning failed rules on the reference path) must give the same
decision as ``Policy.decide_reference``, error messages included."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudcore import _native

from .strategies import SCHEMA, events, expressions

load = pytest.importorskip("fraudcore.rules.load", reason="fraudcore.rules.load is not written yet")
from fraudcore.rules.policy import compile_policy  # noqa: E402

pytestmark = pytest.mark.skipif(_native.vm is None, reason=f"native VM not built: {_native.IMPORT_ERROR}")

ACTIONS = ("allow", "review", "block")


@st.composite
def rules_files(draw) -> str:
    """The YAML text of a rules file with 5-20 generated rules."""
    conditions = draw(st.lists(expressions("bool", 3), min_size=5, max_size=20))
    rules = [
        {
            "id": f"r{i}",
            "when": when,
            "action": draw(st.sampled_from(ACTIONS)),
            "score": draw(st.integers(0, 60)),
            "reason": f"rule {i}",
        }
        for i, when in enumerate(conditions)
    ]
    doc = {
        "version": "differential",
        "fields": dict(SCHEMA),
        "rules": rules,
        "decision": {"actions": list(ACTIONS), "score_thresholds": {"review": 50, "block": 100}},
    }
    # safe_dump escapes what YAML cannot hold raw (U+FFFF) and quotes CEL's ':' and '"'.
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@settings(max_examples=max(20, settings.default.max_examples // 4))
@given(text=rules_files(), batch=st.lists(events(), min_size=1, max_size=5))
def test_decide_agrees_with_decide_reference(text: str, batch: list[dict]) -> None:
    policy = compile_policy(load.load_rules("differential.yaml", text=text))
    for event in batch:
        native = policy.decide(event).to_dict()
        reference = policy.decide_reference(event).to_dict()
        assert native == reference, f"event {event!r}"
