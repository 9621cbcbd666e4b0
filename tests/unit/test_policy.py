"""Decisions for stateless rules (SPEC §1), on both evaluators."""

import pytest

from fraudcore import _native
from fraudcore.rules.policy import load_policy

RULES = """
version: t1
fields: {type: string, amount: double, country: string, age: int, ua: string}
lists:
  risky: [KP, IR]
rules:
  - id: big
    when: amount > 1000.0
    action: review
    score: 30
    reason: Large amount
  - id: risky_country
    when: country in risky
    action: block
    score: 10
  - id: young
    when: age < 7
    score: 25
    reason: Young account
  - id: broken
    when: ua.startsWith("x") && int(ua) > 3
    action: block
    score: 100
  - id: bot
    when: ua.matches("(?i)bot")
    score: 5
decision:
  actions: [allow, review, block]
  score_thresholds: {review: 50, block: 100}
"""


@pytest.fixture(params=["ref", "native"])
def decide(request):
    policy = load_policy("t.yaml", text=RULES)
    if request.param == "native" and _native.vm is None:
        pytest.skip("native VM not built")
    return policy.decide_reference if request.param == "ref" else policy.decide


BASE = {"type": "withdrawal", "amount": 10.0, "country": "DE", "age": 100, "ua": "Mozilla"}


def test_nothing_matches(decide):
    d = decide(BASE)
    assert (d.action, d.score, d.rules, d.reasons, d.errors, d.version) == ("allow", 0, [], [], [], "t1")


def test_most_severe_action_and_summed_score(decide):
    d = decide({**BASE, "amount": 5000.0, "country": "KP"})
    assert d.rules == ["big", "risky_country"]
    assert d.reasons == ["Large amount", "risky_country"]  # the reason defaults to the id
    assert (d.action, d.score) == ("block", 40)


def test_score_threshold_raises_the_action(decide):
    d = decide({**BASE, "amount": 5000.0, "age": 1})
    assert d.rules == ["big", "young"]
    assert (d.action, d.score) == ("review", 55)  # rule actions: review, allow; 55 >= review's 50


def test_allow_rules_can_reach_a_threshold(decide):
    d = decide({**BASE, "age": 1, "ua": "SpamBot/1.0"})
    assert d.rules == ["young", "bot"] and (d.action, d.score) == ("allow", 30)


def test_a_failing_rule_is_reported_and_never_stops_the_others(decide):
    d = decide({**BASE, "amount": 5000.0, "ua": "x"})
    assert d.rules == ["big"]
    assert d.errors == [("broken", "cannot convert 'x' to int")]


@pytest.mark.parametrize(
    "event, message",
    [
        ({**BASE, "amount": "5000"}, "field 'amount': expected double, got str"),
        ({k: v for k, v in BASE.items() if k != "amount"}, "event has no field 'amount'"),
        ({**BASE, "amount": True}, "field 'amount': expected double, got bool"),
        ({**BASE, "amount": 10**400}, "field 'amount': expected double, got an int beyond a double's range"),
        ({**BASE, "amount": -(2**1024)}, "field 'amount': expected double, got an int beyond a double's range"),
    ],
)
def test_bad_field_values_are_errors_naming_the_field(decide, event, message):
    d = decide(event)
    assert ("big", message) in d.errors
    assert "risky_country" not in [e[0] for e in d.errors]  # rules not reading it are unaffected


def test_int_accepted_for_a_double_field(decide):
    assert decide({**BASE, "amount": 5000}).rules == ["big"]
    assert decide({**BASE, "amount": 2**1023}).rules == ["big"]  # huge, but a double holds it


def test_both_paths_agree_on_errors():
    policy = load_policy("t.yaml", text=RULES)
    for event in [BASE, {**BASE, "amount": "x"}, {}, {**BASE, "ua": "bot", "age": 2**70}]:
        assert policy.decide(event).to_dict() == policy.decide_reference(event).to_dict()


HAS_RULES = """
version: h1
fields: {type: string, ip_country: string, amount: double}
rules:
  - id: has_ip_country
    when: has(event.ip_country)
  - id: has_undeclared
    when: has(event.note)
"""


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"type": "x", "ip_country": "DE"}, ["has_ip_country"]),
        ({"type": "x"}, []),
        ({"type": "x", "ip_country": 7}, ["has_ip_country"]),  # present, mistyped: has() is about presence
        ({"type": "x", "ip_country": None}, ["has_ip_country"]),
        ({"type": "x", "note": "n"}, ["has_undeclared"]),
    ],
)
def test_has_on_declared_and_undeclared_event_fields(event, expected):
    policy = load_policy("h.yaml", text=HAS_RULES)
    assert policy.decide(event).rules == expected
    assert policy.decide_reference(event).rules == expected
    # has(event.<declared field>) tests the field's slot: the map itself is
    # only loaded for the undeclared one.
    assert [r.bytecode.reads for r in policy.rules] == [frozenset({"ip_country"}), frozenset({"event"})]
