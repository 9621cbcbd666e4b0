"""The synthetic exchange stream: determinism, schema, proportions, planted
patterns (and that they trigger the example rules), time ordering, columns."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from fraudcore.rules.load import load_rules
from fraudcore.rules.policy import compile_policy
from fraudcore.synth import FIELDS, LABELS, PATTERN_WEIGHTS, TYPE_WEIGHTS, ExchangeStream

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"
N = 60_000
PY_TYPE = {"string": str, "double": float, "int": int, "bool": bool}


@pytest.fixture(scope="module")
def rules_file():
    return load_rules(EXAMPLE)


@pytest.fixture(scope="module")
def stream(rules_file):
    bad = rules_file.lists["bad_addresses"].values
    # 50 events a second: 60,000 events span 20 minutes, longer than any pattern instance.
    return ExchangeStream(
        seed=11, users=20_000, rate_per_s=50.0, fraud_rate=0.02, bad_addresses=bad, bad_address_rate=0.002
    )


@pytest.fixture(scope="module")
def events(stream):
    return stream.events(N)


@pytest.fixture(scope="module")
def policy(rules_file):
    return compile_policy(rules_file)


def test_deterministic_for_a_seed():
    a = ExchangeStream(seed=3, users=5_000).events(3_000)
    b = ExchangeStream(seed=3, users=5_000).events(3_000)
    assert a == b
    assert ExchangeStream(seed=4, users=5_000).events(3_000) != a


def test_prefixes_and_iterator_agree():
    s = ExchangeStream(seed=5, users=5_000)
    long = s.events(40_000)           # more than one block
    assert s.events(1_234) == long[:1_234]
    it = s.iter_events()
    assert [next(it) for _ in range(40_000)] == long


def test_schema_matches_example_rules(rules_file, events):
    schema = {name: PY_TYPE[t.kind] for name, t in rules_file.fields.items()}
    schema.setdefault(rules_file.time_field, int)
    assert FIELDS == schema
    for e in events:
        assert list(e) == [*schema, "label"]
        for name, py in schema.items():
            assert type(e[name]) is py, (name, e[name])
        assert e["label"] in LABELS


def test_event_types_and_values(events):
    n = len(events)
    mix = Counter(e["type"] for e in events)
    assert set(mix) == set(TYPE_WEIGHTS)
    # Heavy API traders make trades more common than configured; the other
    # types are within a factor of the configured share.
    assert mix["trade"] / n > TYPE_WEIGHTS["trade"]
    for t in ("login", "deposit", "withdrawal", "transfer"):
        assert 0.4 * TYPE_WEIGHTS[t] < mix[t] / n < 1.5 * TYPE_WEIGHTS[t], (t, mix[t] / n)
    for e in events:
        if e["type"] in ("login", "api_key_change"):
            assert e["amount"] == 0.0 and e["asset"] == ""
        else:
            assert e["amount"] > 0.0 and e["asset"]
        if e["type"] == "withdrawal":
            assert e["dest_address"].startswith("0x") and len(e["dest_address"]) == 42
        assert e["account_age_days"] >= 0 and 0 <= e["kyc_level"] <= 3
    normal = [e for e in events if not e["label"]]
    # Amounts are log-normal: the median withdrawal is hundreds of USD.
    assert 150 < np.median([e["amount"] for e in normal if e["type"] == "withdrawal"]) < 1_000
    # Users are skewed: the top 1 % of users make a large share of events.
    per_user = sorted(Counter(e["user_id"] for e in normal).values(), reverse=True)
    assert sum(per_user[: max(len(per_user) // 100, 1)]) > 0.1 * len(normal)
    countries = Counter(e["country"] for e in normal)
    assert countries.most_common(1)[0][0] == "US"
    agents = Counter(e["user_agent"] for e in normal)
    assert any(a.startswith("python-requests") for a in agents) and any("Chrome" in a for a in agents)


def test_fraud_rate_and_labels(stream, events):
    labels = Counter(e["label"] for e in events)
    share = 1 - labels[""] / len(events)
    assert 0.6 * (stream.fraud_rate + stream.bad_address_rate) < share < 1.6 * (stream.fraud_rate + stream.bad_address_rate)
    for name in (*PATTERN_WEIGHTS, "bad_address"):
        assert labels[name] > 0, name
    quiet = ExchangeStream(seed=11, users=5_000, fraud_rate=0.0).events(5_000)
    assert {e["label"] for e in quiet} == {""}


def test_ts_is_mostly_increasing_with_bounded_jitter(stream):
    ts = stream.columns(N)["ts"]
    assert ts[0] >= stream.start_ms - stream.jitter_ms
    running_max = np.maximum.accumulate(ts)
    assert (ts >= running_max - stream.jitter_ms).all()
    backwards = np.mean(np.diff(ts) < 0)
    assert 0 < backwards < 0.05
    # The rate is about rate_per_s.
    seconds = (ts[-1] - ts[0]) / 1000
    assert 0.8 < len(ts) / seconds / stream.rate_per_s < 1.2


def test_columns_equal_events(stream, events):
    cols = stream.columns(N)
    assert set(cols) == {*FIELDS, "label"}
    for name, py in FIELDS.items():
        want = {str: object, float: np.float64, int: np.int64, bool: np.bool_}[py]
        assert cols[name].dtype == want and len(cols[name]) == N
        assert cols[name].tolist() == [e[name] for e in events], name
    assert cols["label"].tolist() == [e["label"] for e in events]


def test_stateless_rules_fire_on_planted_patterns(policy, events):
    """The rules that need no counter fire on their own on the patterns."""
    fired: dict[str, Counter] = defaultdict(Counter)
    for e in events:
        if e["label"]:
            fired[e["label"]].update(policy.decide(e).rules)
    assert fired["account_takeover"]["new_device_no_2fa"] > 0
    assert fired["account_takeover"]["api_key_change_new_device"] > 0
    assert fired["account_takeover"]["country_mismatch"] > 0
    assert fired["probing"]["low_kyc_high_value"] > 0
    assert fired["mule"]["low_kyc_high_value"] > 0
    assert fired["device_farm"]["disposable_email"] > 0
    assert fired["brute_force"]["login_brute_force"] > 0
    assert fired["brute_force"]["scripted_client"] > 0
    assert fired["bad_address"]["known_bad_address"] > 0
    # ...and rarely on normal traffic.
    normal = [e for e in events[:10_000] if not e["label"]]
    blocked = sum(policy.decide(e).action == "block" for e in normal)
    assert blocked / len(normal) < 0.01


def test_counter_patterns_reach_the_rule_thresholds(events):
    """What the counter rules will see, computed naively per instance."""
    by_label = defaultdict(list)
    for e in events:
        by_label[e["label"]].append(e)
    # account takeover: 6+ withdrawals by one user within an hour.
    wd = Counter(e["user_id"] for e in by_label["account_takeover"] if e["type"] == "withdrawal")
    assert max(wd.values()) > 5
    # probing: 10+ deposits, then a withdrawal > 100x the smallest deposit.
    deposits = defaultdict(list)
    hits = 0
    for e in by_label["probing"]:
        if e["type"] == "deposit":
            deposits[e["user_id"]].append(e["amount"])
        elif e["type"] == "withdrawal" and len(deposits[e["user_id"]]) >= 10:
            hits += e["amount"] > 100 * min(deposits[e["user_id"]])
    assert hits > 0
    # mule: 5+ distinct senders to one address.
    senders = defaultdict(set)
    for e in by_label["mule"]:
        senders[e["dest_address"]].add(e["user_id"])
    assert max(len(s) for s in senders.values()) >= 5
    # device farm: more than 3 users on one device.
    users = defaultdict(set)
    for e in by_label["device_farm"]:
        users[e["device_id"]].add(e["user_id"])
    assert max(len(s) for s in users.values()) > 3
    # brute force: more than 10 logins for one (user, ip) within 5 minutes.
    logins = defaultdict(list)
    for e in by_label["brute_force"]:
        logins[e["user_id"], e["ip"]].append(e["ts"])
    best = 0
    for ts in logins.values():
        ts.sort()
        j = 0
        for i, t in enumerate(ts):
            while t - ts[j] >= 300_000:
                j += 1
            best = max(best, i - j + 1)
    assert best > 10


def test_bad_input():
    with pytest.raises(ValueError, match="unknown patterns"):
        ExchangeStream(patterns={"phishing": 1.0})
    with pytest.raises(ValueError, match="fraud_rate"):
        ExchangeStream(fraud_rate=0.9)
    with pytest.raises(ValueError, match="unknown event types"):
        ExchangeStream(type_weights={"swap": 1.0})


def test_only_some_patterns():
    events = ExchangeStream(seed=2, users=5_000, fraud_rate=0.05, patterns={"mule": 1.0}).events(20_000)
    assert {e["label"] for e in events} == {"", "mule"}
