"""The engine suite keeps each timed decision as (action, score, rules) in
arrays (bench/engine_suite.py: Outcomes); the comparison with the
hand-written engine must still see every difference."""

from __future__ import annotations

import pytest

from fraudcore import Engine
from fraudcore.bench.engine_suite import Outcomes

RULES = """
version: t1
time: ts
fields: {user_id: string, amount: double, ts: int}
counters:
  n: {agg: count, by: user_id, window: 1h}
rules:
  - {id: big, when: amount > 100.0, action: review, score: 10}
  - {id: repeat, when: n > 1, action: block, score: 50}
decision: {actions: [allow, review, block]}
"""


def test_decisions_and_tuples_compare_as_the_decisions_do():
    e = Engine.from_text(RULES, capacity=64)
    try:
        ds = [e.decide({"user_id": "u", "amount": a, "ts": 1_000 + i}) for i, a in enumerate([5.0, 500.0, 7.0])]
        ds.append(e.decide({"user_id": "u", "amount": 1.0}))       # no time: an error, the counter unread
    finally:
        e.close()
    assert [d.rules for d in ds[:3]] == [[], ["big", "repeat"], ["repeat"]] and ds[3].errors
    ids = ["big", "repeat"]
    a, b = Outcomes(4, ids), Outcomes(4, ids)
    for i, d in enumerate(ds):
        a.keep_decision(i, d)
        b.keep_tuple(i, (d.action, d.score, d.rules))
    assert [a.get(i) for i in range(3)] == [[d.action, d.score, d.rules] for d in ds[:3]]
    assert list(a.errors) == [False, False, False, True] and not b.errors.any()
    same = (a.action == b.action) & (a.score == b.score) & (a.rules == b.rules)
    assert same.all()
    b.keep_tuple(1, (ds[1].action, ds[1].score, ["big"]))             # one rule fewer
    b.keep_tuple(2, (ds[2].action, ds[2].score + 1, ds[2].rules))     # another score
    assert list(a.rules == b.rules) == [True, False, True, True]
    assert list(a.score == b.score) == [True, True, False, True]


def test_more_rules_than_a_mask_holds_is_a_clear_error():
    with pytest.raises(ValueError, match="up to 64 rules"):
        Outcomes(1, [f"r{i}" for i in range(65)])
