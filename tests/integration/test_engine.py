"""The Engine (SPEC §1-§2): counting then deciding, dry runs, ingest, errors,
batches, stats and reload, on small rules files written here."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudcore import Engine, FraudcoreError, RuleError
from fraudcore.synth import ExchangeStream

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from naive_counters import NaiveCounters  # noqa: E402

SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
# Today, midnight UTC: "far in the future" is judged against the wall clock too.
T0 = int(time.time() * 1000) // DAY * DAY
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"

COUNTERS = """
counters:
  n:       {agg: count, by: user_id, window: 1h}
  wd:      {agg: count, by: user_id, window: 1h, where: 'type == "withdrawal"'}
  total:   {agg: sum, of: amount, by: user_id, window: 1h}
  small:   {agg: min, of: amount, by: user_id, window: 1h}
  large:   {agg: max, of: amount, by: user_id, window: 1h}
  mean:    {agg: avg, of: amount, by: user_id, window: 1h}
  devices: {agg: distinct, of: device_id, by: user_id, window: 1h}
  pair:    {agg: count, by: [user_id, ip], window: 1h}
"""

HEAD = """
version: {version}
time: ts
fields:
  type: string
  user_id: string
  amount: double
  device_id: string
  ip: string
  country: string
"""

RULES_BODY = """
rules:
  - id: third_event
    when: n > 2
    action: block
    score: 80
    reason: more than two events
  - id: big_total
    when: total > 1000.0
    action: review
    score: 10
  - id: many_withdrawals
    when: type == "withdrawal" && wd >= 2
    action: review
    score: 5
  - id: pair_seen
    when: pair >= 2
    score: 1
  - id: device_spread
    when: devices >= 3 && large > 0.0
    score: 2
  - id: sanctioned
    when: country == "KP"
    action: block
    score: 100
decision:
  actions: [allow, review, block]
"""

RULES = HEAD.format(version="v1") + COUNTERS + RULES_BODY


def ev(user="u1", t=0, *, type="withdrawal", amount=100.0, device="d1", ip="1.1.1.1", country="DE", **extra):
    e = {"type": type, "user_id": user, "amount": amount, "device_id": device, "ip": ip, "country": country,
         "ts": T0 + t}
    e.update(extra)
    return e


@pytest.fixture
def engine():
    e = Engine.from_text(RULES, capacity=1024)
    yield e
    e.close()


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def same_decision(a, b):
    da, db = a.to_dict(), b.to_dict()
    fa, fb = da.pop("features"), db.pop("features")
    return da == db and fa.keys() == fb.keys() and all(same(fa[k], fb[k]) for k in fa)


# -- decide counts first -------------------------------------------------------------

def test_count_rule_fires_on_third_event_not_before(engine):
    actions = [engine.decide(ev(t=i * SEC, type="login")) for i in range(4)]
    assert [("third_event" in d.rules) for d in actions] == [False, False, True, True]
    assert actions[2].action == "block" and actions[2].features["n"] == 3
    assert actions[3].features["n"] == 4
    assert engine.counter("n", user_id="u1", at=T0 + 3 * SEC) == 4
    # Another user is independent.
    assert "third_event" not in engine.decide(ev("u2", t=4 * SEC)).rules


def test_decision_fields(engine):
    for i in range(3):
        d = engine.decide(ev(t=i * SEC, amount=400.0))
    assert d.version == "v1"
    assert d.rules == ["third_event", "big_total", "many_withdrawals", "pair_seen"]
    assert d.score == 80 + 10 + 5 + 1
    assert d.action == "block"
    assert d.reasons[0] == "more than two events"
    assert d.errors == []


def test_features_are_exactly_counters_read_by_matched_rules(engine):
    d = engine.decide(ev(t=0, type="login", amount=5.0))
    assert d.rules == [] and d.features == {}
    d = engine.decide(ev(t=SEC, type="login", amount=5.0))
    assert d.rules == ["pair_seen"]
    assert d.features == {"pair": 2}
    for i, dev in enumerate(["d2", "d3"]):
        d = engine.decide(ev(t=(2 + i) * SEC, type="login", amount=700.0, device=dev))
    assert d.rules == ["third_event", "big_total", "pair_seen", "device_spread"]
    assert d.features == {"n": 4, "total": 1410.0, "pair": 4, "devices": 3, "large": 700.0}
    # Rule by rule, a rule's counters in the file's order, each once.
    assert list(d.features) == ["n", "total", "pair", "large", "devices"]
    # A stateless match adds no features.
    d = engine.decide(ev("u9", t=5 * SEC, type="login", country="KP"))
    assert d.rules == ["sanctioned"] and d.features == {}


def test_features_are_the_values_at_decision_time_when_read_later(engine):
    """A Decision keeps its counter values and builds ``features`` when
    first asked: events decided after it do not change them."""
    kept = [engine.decide(ev(t=i * SEC, type="login")) for i in range(4)]
    kept += engine.decide_many([ev(t=(4 + i) * SEC, type="login") for i in range(2)])
    for i in range(6, 12):
        engine.decide(ev(t=i * SEC, type="login"))
    assert [d.features.get("n") for d in kept] == [None, None, 3, 4, 5, 6]
    assert [d.features.get("pair") for d in kept] == [None, 2, 3, 4, 5, 6]
    assert kept[3].features is kept[3].features


@pytest.mark.parametrize("container", ["errors", "features"])
def test_a_decision_in_a_cycle_is_collected(engine, container):
    """A decision is made outside the cyclic collector's view (it can hold
    no cycle) and enters it once it hands out a mutable list or dict: a
    cycle made through one is collected, not leaked."""
    import gc
    import weakref

    class Witness:
        pass

    made = [engine.decide(ev(t=0))] + engine.decide_many([ev(t=SEC)])
    assert not any(gc.is_tracked(d) for d in made)
    refs = []
    for d in made:
        w = Witness()
        refs.append(weakref.ref(w))
        box = getattr(d, container)
        assert gc.is_tracked(d)
        if container == "errors":
            box.append((d, w))
        else:
            box["cycle"] = (d, w)
    del made, d, w, box
    gc.collect()
    assert [r() for r in refs] == [None, None]


# -- evaluate (dry run) and ingest ------------------------------------------------------

def test_evaluate_is_decide_without_writing(engine):
    names = {"n": {}, "wd": {}, "total": {}, "small": {}, "large": {}, "mean": {}, "devices": {}}
    for i in range(2):
        engine.decide(ev(t=i * SEC, amount=300.0 + i, device=f"d{i}"))
    probe = ev(t=5 * SEC, amount=600.0, device="d9")

    def snapshot():
        out = {n: engine.counter(n, user_id="u1", at=probe["ts"]) for n in names}
        out["pair"] = engine.counter("pair", user_id="u1", ip="1.1.1.1", at=probe["ts"])
        return out

    before = snapshot()
    first = engine.evaluate(probe)
    again = [engine.evaluate(probe) for _ in range(5)]
    assert all(same(before[k], v) for k, v in snapshot().items())
    assert all(same_decision(first, d) for d in again)
    assert first.rules == ["third_event", "big_total", "many_withdrawals", "pair_seen", "device_spread"]
    real = engine.decide(probe)
    assert same_decision(first, real), (first.to_dict(), real.to_dict())
    assert engine.counter("n", user_id="u1", at=probe["ts"]) == before["n"] + 1


@pytest.mark.parametrize("kind", ["too_old", "far_future", "nan_amount", "same_device"])
def test_evaluate_equals_decide_on_edge_events(kind):
    """evaluate() must give the decision decide() gives, also for events
    decide does not count."""
    engine = Engine.from_text(RULES, capacity=64)
    for i in range(2):
        engine.decide(ev(t=3 * HOUR + i * SEC, amount=100.0, device=f"d{i}"))
    probe = {
        "too_old": ev(t=0, amount=2000.0),
        "far_future": ev(t=3 * HOUR + 10 * DAY, amount=2000.0),
        "nan_amount": ev(t=3 * HOUR + 5 * SEC, amount=float("nan")),
        "same_device": ev(t=3 * HOUR + 5 * SEC, device="d0"),
    }[kind]
    dry = engine.evaluate(probe)
    real = engine.decide(probe)
    assert same_decision(dry, real), (dry.to_dict(), real.to_dict())


def test_ingest_counts_without_deciding(engine):
    assert engine.ingest(ev(t=0)) is None
    assert engine.ingest(ev(t=SEC)) is None
    hits = engine.stats()["rule_hits"]
    assert all(v == 0 for v in hits.values())
    assert engine.counter("n", user_id="u1", at=T0 + SEC) == 2
    assert engine.counter("wd", user_id="u1", at=T0 + SEC) == 2
    d = engine.decide(ev(t=2 * SEC))
    assert "third_event" in d.rules and d.features["n"] == 3


def test_decide_counts_the_counters_no_rule_reads():
    # Counters no rule reads (or that a short-circuit skips) count every
    # event all the same.
    text = HEAD.format(version="v1") + COUNTERS + """
rules:
  - id: sanctioned
    when: country == "KP"
    action: block
    score: 100
  - id: many_withdrawals
    when: type == "withdrawal" && wd >= 2
    action: review
    score: 5
"""
    e = Engine.from_text(text, capacity=1024)
    try:
        kinds = [("login", "DE"), ("withdrawal", "KP"), ("login", "KP"), ("withdrawal", "DE")]
        got = [e.decide(ev(t=i * SEC, type=kind, country=country, amount=10.0 * (i + 1), device=f"d{i}"))
               for i, (kind, country) in enumerate(kinds)]
        assert [d.rules for d in got] == [[], ["sanctioned"], ["sanctioned"], ["many_withdrawals"]]
        assert got[3].features == {"wd": 2}
        at = T0 + 3 * SEC
        assert e.counter("n", user_id="u1", at=at) == 4
        assert e.counter("total", user_id="u1", at=at) == 100.0
        assert e.counter("devices", user_id="u1", at=at) == 4
        assert e.counter("pair", user_id="u1", ip="1.1.1.1", at=at) == 4
    finally:
        e.close()


# -- time ------------------------------------------------------------------------------

def test_event_older_than_window_is_decided_not_counted(engine):
    engine.decide(ev(t=5 * HOUR))
    engine.decide(ev(t=5 * HOUR + SEC))
    old = engine.decide(ev(t=HOUR, country="KP"))        # 4 h late: outside every 1 h window
    assert old.action == "block" and "sanctioned" in old.rules
    assert engine.counter("n", user_id="u1", at=T0 + 5 * HOUR + SEC) == 2
    assert engine.counter("n", user_id="u1", at=T0 + HOUR) in (0, 1)  # not retained either way: never more
    assert engine.stats()["counters"]["n"]["too_old"] >= 1


def test_out_of_order_events_inside_window_count(engine):
    engine.decide(ev(t=30 * MIN))
    engine.decide(ev(t=10 * MIN))              # 20 min late, inside the hour
    # Read at its own time, the late event sees itself (the 30-min one is later).
    assert engine.counter("n", user_id="u1", at=T0 + 10 * MIN) == 1
    assert engine.counter("n", user_id="u1", at=T0 + 30 * MIN) == 2
    d = engine.decide(ev(t=20 * MIN))
    assert d.features == {"pair": 2, "wd": 2}   # the 10- and 20-min events
    assert engine.counter("n", user_id="u1", at=T0 + 30 * MIN) == 3
    # Read at 40 min, the 10-min event is still in (40 min - 1 h, 40 min].
    assert engine.counter("n", user_id="u1", at=T0 + 40 * MIN) == 3


def test_window_slides(engine):
    engine.decide(ev(t=0))
    engine.decide(ev(t=10 * MIN))
    assert engine.counter("n", user_id="u1", at=T0 + 10 * MIN) == 2
    # One bucket is 1 min: by 1 h + 2 min the first event is gone.
    assert engine.counter("n", user_id="u1", at=T0 + HOUR + 2 * MIN) == 1
    assert engine.counter("n", user_id="u1", at=T0 + 2 * HOUR) == 0


def test_far_future_event_not_counted_and_does_not_poison(engine):
    for i in range(3):
        engine.decide(ev(t=i * SEC))
    engine.decide(ev(t=10 * DAY))
    assert engine.stats()["counters"]["n"]["future_skipped"] >= 1
    assert engine.counter("n", user_id="u1", at=T0 + 10 * DAY) == 0
    d = engine.decide(ev(t=4 * SEC))
    assert d.features["n"] == 4
    assert engine.counter("n", user_id="u1", at=T0 + 4 * SEC) == 4
    assert engine.stats()["high_water_ms"] == T0 + 4 * SEC


def test_counter_default_time_is_latest_event(engine):
    engine.decide(ev(t=0))
    engine.decide(ev(t=2 * SEC))
    assert engine.counter("n", user_id="u1") == 2


# -- where, keys, values ---------------------------------------------------------------

def test_where_filters_counted_events(engine):
    for i, kind in enumerate(["login", "withdrawal", "deposit", "withdrawal", "login"]):
        engine.decide(ev(t=i * SEC, type=kind))
    at = T0 + 4 * SEC
    assert engine.counter("wd", user_id="u1", at=at) == 2
    assert engine.counter("n", user_id="u1", at=at) == 5


def test_compound_keys(engine):
    for user, ip in [("u1", "a"), ("u1", "a"), ("u1", "b"), ("u2", "a"), ("u1", "a")]:
        engine.decide(ev(user, t=SEC, ip=ip))
    at = T0 + SEC
    assert engine.counter("pair", user_id="u1", ip="a", at=at) == 3
    assert engine.counter("pair", user_id="u1", ip="b", at=at) == 1
    assert engine.counter("pair", user_id="u2", ip="a", at=at) == 1
    assert engine.counter("pair", user_id="u2", ip="b", at=at) == 0
    # ("u1", "a") is not ("u1a", "") or ("u", "1a")
    assert engine.counter("pair", user_id="u1a", ip="", at=at) == 0
    assert engine.counter("pair", user_id="u", ip="1a", at=at) == 0


def test_every_agg_matches_twin_via_counter_and_features(rng):
    engine = Engine.from_text(RULES.replace("rules:\n", "rules:\n  - {id: all, when: 'n >= 0 || wd >= 0 || total > 0.0 || small > 0.0 || large > 0.0 || mean > 0.0 || devices >= 0 || pair >= 0', score: 0}\n", 1), capacity=256)
    specs = {"n": "count", "wd": "count", "total": "sum", "small": "min", "large": "max", "mean": "avg",
             "devices": "distinct", "pair": "count"}
    twin = NaiveCounters([(n, a, HOUR, MIN) for n, a in specs.items()])
    t = 0
    for i in range(300):
        t += rng.randrange(0, 30 * SEC)
        e = ev(f"u{rng.randrange(3)}", t, type=rng.choice(["withdrawal", "login"]),
               amount=round(rng.uniform(1, 900), 2), device=f"d{rng.randrange(10)}", ip=rng.choice("ab"))
        d = engine.decide(e)
        for name, agg in specs.items():
            if name == "wd" and e["type"] != "withdrawal":
                continue
            key = (e["user_id"], e["ip"]) if name == "pair" else (e["user_id"],)
            twin.update(name, key, e["ts"], e["amount"], e["device_id"] if agg == "distinct" else None)
        for name, agg in specs.items():
            key = (e["user_id"], e["ip"]) if name == "pair" else (e["user_id"],)
            kw = {"user_id": e["user_id"], "ip": e["ip"]} if name == "pair" else {"user_id": e["user_id"]}
            got = engine.counter(name, at=e["ts"], **kw)
            assert same(d.features[name], got), (name, d.features[name], got)
            inner, outer = twin.bounds(name, key, e["ts"])
            lo_v = len(inner) if agg == "count" else None
            if agg == "count":
                assert len(inner) <= got <= len(outer), (name, i)
            elif agg == "distinct":
                assert len({x for *_, x in inner}) <= got <= len({x for *_, x in outer}), (name, i)
            elif agg == "sum":
                assert sum(v for _, v, _ in inner) - 1e-6 <= got <= sum(v for _, v, _ in outer) + 1e-6
            else:
                vin = [v for _, v, _ in inner]
                vout = [v for _, v, _ in outer]
                assert vin, lo_v  # the event itself is inside
                assert min(vout) - 1e-9 <= got <= max(vout) + 1e-9
                if agg == "min":
                    assert got <= min(vin)
                if agg == "max":
                    assert got >= max(vin)
    engine.close()


def test_nan_amount_not_added_to_sum(engine):
    engine.decide(ev(t=0, amount=100.0))
    d = engine.decide(ev(t=SEC, amount=float("nan")))
    assert d.errors == []
    at = T0 + SEC
    assert engine.counter("total", user_id="u1", at=at) == 100.0
    assert engine.counter("mean", user_id="u1", at=at) == 100.0
    assert engine.counter("large", user_id="u1", at=at) == 100.0
    assert engine.counter("n", user_id="u1", at=at) == 2        # count ignores the value
    engine.decide(ev(t=2 * SEC, amount=float("inf")))
    assert engine.counter("total", user_id="u1", at=T0 + 2 * SEC) == 100.0


def test_int_amount_counts_as_double(engine):
    engine.decide(ev(t=0, amount=5))
    engine.decide(ev(t=SEC, amount=2.5))
    assert engine.counter("total", user_id="u1", at=T0 + SEC) == 7.5


def test_huge_key_string(engine):
    big = "k" * (10 * 1024 * 1024)
    for i in range(3):
        d = engine.decide(ev(big, t=i * SEC))
    assert "third_event" in d.rules and d.features["n"] == 3
    assert engine.counter("n", user_id=big, at=T0 + 2 * SEC) == 3
    assert engine.counter("n", user_id=big[:-1] + "j", at=T0 + 2 * SEC) == 0
    engine.decide(ev("u1", t=3 * SEC))
    assert engine.counter("n", user_id="u1", at=T0 + 3 * SEC) == 1
    assert engine.counter("n", user_id=big, at=T0 + 3 * SEC) == 3


# -- errors --------------------------------------------------------------------------------

def test_missing_key_field_errors_only_rules_reading_that_counter(engine):
    e = ev(t=0, country="KP")
    del e["user_id"]
    d = engine.decide(e)
    assert d.rules == ["sanctioned"] and d.action == "block"
    errs = dict(d.errors)
    assert set(errs) == {"third_event", "big_total", "many_withdrawals", "pair_seen", "device_spread"}
    assert "user_id" in errs["third_event"]
    assert "user_id" in errs["pair_seen"]
    # Nothing was counted for anyone.
    assert engine.stats()["keys"] == 0


def test_missing_ip_errors_only_the_pair_counter_rule(engine):
    for i in range(2):
        engine.decide(ev(t=i * SEC))
    e = ev(t=2 * SEC)
    del e["ip"]
    d = engine.decide(e)
    assert [r for r, _ in d.errors] == ["pair_seen"]
    assert "ip" in dict(d.errors)["pair_seen"]
    assert "third_event" in d.rules and d.features["n"] == 3


def test_missing_or_mistyped_time_field(engine):
    e = ev(t=0, country="KP")
    del e["ts"]
    d = engine.decide(e)
    assert "sanctioned" in d.rules
    errs = dict(d.errors)
    assert "third_event" in errs and "ts" in errs["third_event"]
    d = engine.decide(dict(ev(t=0), ts="yesterday"))
    assert "third_event" in dict(d.errors)
    assert engine.stats()["keys"] == 0


def test_mistyped_key_field(engine):
    d = engine.decide(ev(12345, t=0))     # user_id must be a string
    assert "third_event" in dict(d.errors)
    assert "user_id" in dict(d.errors)["third_event"]


# -- decide_many ---------------------------------------------------------------------------

def test_decide_many_list_equals_one_by_one():
    events = ExchangeStream(seed=11, users=300, rate_per_s=50.0).events(1500)
    a = Engine.from_file(EXAMPLE, capacity=4096)
    b = Engine.from_file(EXAMPLE, capacity=4096)
    one = [a.decide(e) for e in events]
    many = b.decide_many(events)
    assert len(many) == len(events)
    bad = [i for i, (x, y) in enumerate(zip(one, many)) if not same_decision(x, y)]
    assert bad == []
    assert a.stats()["rule_hits"] == b.stats()["rule_hits"]
    assert sum(1 for d in one if d.rules) > 0          # the stream exercises rules
    a.close(), b.close()


def test_decide_many_columns_equal_list():
    s = ExchangeStream(seed=12, users=300, rate_per_s=50.0)
    cols = s.columns(800)
    assert all(isinstance(v, np.ndarray) for v in cols.values())
    events = s.events(800)
    a = Engine.from_file(EXAMPLE, capacity=4096)
    b = Engine.from_file(EXAMPLE, capacity=4096)
    c = Engine.from_file(EXAMPLE, capacity=4096)
    by_list = a.decide_many(events)
    by_cols = b.decide_many(cols)
    # Columns as Python lists, and object columns as strided views.
    by_py = c.decide_many({k: (v.tolist() if v.dtype != object else np.repeat(v, 2)[::2]) for k, v in cols.items()})
    assert len(by_cols) == 800
    assert [i for i, (x, y) in enumerate(zip(by_list, by_cols)) if not same_decision(x, y)] == []
    assert [i for i, (x, y) in enumerate(zip(by_list, by_py)) if not same_decision(x, y)] == []
    a.close(), b.close(), c.close()


@pytest.mark.parametrize("mode", ["decide", "evaluate", "ingest"])
def test_decide_many_columns_pipeline_with_keyless_rows(mode):
    """decide_columns hashes row i + 1's keys before it counts row i: rows
    without a key (a missing or mistyped key field) among keyed ones leave
    every row's counters as the list path has them."""
    s = ExchangeStream(seed=13, users=50, rate_per_s=50.0)
    cols = s.columns(400)
    user = cols["user_id"].copy()
    user[::7] = None                        # no key for these rows
    user[3::11] = 12345                     # a mistyped key
    cols["user_id"] = user
    rows = [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()} for i in range(400)]
    a = Engine.from_file(EXAMPLE, capacity=4096)
    b = Engine.from_file(EXAMPLE, capacity=4096)
    by_list = [getattr(a, mode)(e) for e in rows]
    by_cols = b._engine.decide_columns(dict(cols), {"decide": 0, "evaluate": 1, "ingest": 2}[mode])
    if mode != "ingest":
        assert len(by_cols) == 400
        assert [i for i, (x, y) in enumerate(zip(by_list, by_cols)) if not same_decision(x, y)] == []
    probe = {k: v for k, v in rows[-1].items()}
    for u in sorted({r["user_id"] for r in rows if isinstance(r["user_id"], str)})[:20]:
        probe["user_id"] = u
        assert same_decision(a.evaluate(probe), b.evaluate(probe)), u
    assert a.stats()["keys"] == b.stats()["keys"]
    a.close(), b.close()


DAY_MS = 86_400_000
EDITS = {   # what a hypothesis edit does to a row of columns
    "ahead": lambda cols, i, now: cols["ts"].__setitem__(i, now + int(0.6 * DAY_MS)),   # moves the mark, or not
    "far": lambda cols, i, now: cols["ts"].__setitem__(i, now + 3 * DAY_MS),           # beyond max_future
    "old": lambda cols, i, now: cols["ts"].__setitem__(i, cols["ts"][i] - 200 * DAY_MS),
    "late": lambda cols, i, now: cols["ts"].__setitem__(i, cols["ts"][i] - 3_600_000),
    "nan": lambda cols, i, now: cols["amount"].__setitem__(i, math.nan),
    "nokey": lambda cols, i, now: cols["user_id"].__setitem__(i, None),
}


# Rules that read counters on rows that do not count them (the example's
# rules guard on the event type first): such reads come after the row's
# block is counted, so a later row of the block must not count the key.
READS_UNCOUNTED = """
version: uncounted
time: ts
fields: {type: string, user_id: string, amount: double, device_id: string, ts: int}
counters:
  wd:      {agg: count, by: user_id, window: 1h, where: 'type == "withdrawal"'}
  wd_sum:  {agg: sum, of: amount, by: user_id, window: 1h, where: 'type == "withdrawal"'}
  dep_max: {agg: max, of: amount, by: user_id, window: 1h, where: 'type == "deposit"'}
  devices: {agg: distinct, of: device_id, by: user_id, window: 1h, where: 'type == "login"'}
rules:
  - {id: withdrew, when: wd >= 1, score: 1}
  - {id: withdrew_much, when: wd_sum > 500.0, score: 2}
  - {id: big_deposit, when: dep_max > 100.0, score: 4}
  - {id: devices, when: devices >= 2, score: 8}
decision:
  actions: [allow, review, block]
"""


# Rules that read such counters only on events of another type: a row
# remembers only the keys its own decision may read (the rules that run for
# its type), and must remember those.
READS_BY_TYPE = """
version: by-type
time: ts
fields: {type: string, user_id: string, amount: double, ts: int}
counters:
  wd:      {agg: count, by: user_id, window: 1h, where: 'type == "withdrawal"'}
  dep_max: {agg: max, of: amount, by: user_id, window: 1h, where: 'type == "deposit"'}
  logins:  {agg: count, by: user_id, window: 1h, where: 'type == "login"'}
rules:
  - {id: drain, when: 'type == "withdrawal" && dep_max > 100.0', score: 1}
  - {id: deposit_after_withdrawal, when: 'type == "deposit" && wd >= 1', score: 2}
  - {id: trade_after_logins, when: 'type == "trade" && logins >= 2', score: 4}
  - {id: large, when: 'amount > 5000.0', score: 8}
decision:
  actions: [allow, review, block]
"""
RULE_SETS = {"uncounted": READS_UNCOUNTED, "by_type": READS_BY_TYPE}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1 << 16), users=st.integers(1, 12), n=st.integers(1, 420),
       edits=st.lists(st.tuples(st.integers(0, 419), st.sampled_from(sorted(EDITS))), max_size=30),
       mode=st.sampled_from(["decide", "ingest"]), rules=st.sampled_from(["example", "uncounted", "by_type"]))
def test_decide_many_columns_in_blocks_equal_one_by_one(seed, users, n, edits, mode, rules):
    """decide_many on columns counts a block of rows counter by counter; with
    few users most keys repeat within a block, rows read keys that later rows
    count, and edited rows move the high-water mark, are refused as too far
    ahead or too old, or have no key or a NaN amount. Decisions, counter
    statistics and the counters afterwards equal one row after another."""
    now = int(time.time() * 1000)
    cols = ExchangeStream(seed=seed, users=users, rate_per_s=20.0, start_ms=now - 3_600_000).columns(n)
    cols["user_id"] = cols["user_id"].astype(object)
    for i, kind in edits:
        if i < n:
            EDITS[kind](cols, i, now)
    rows = [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()} for i in range(n)]
    a, b = ((Engine.from_file(EXAMPLE, capacity=4096) if rules == "example"
             else Engine.from_text(RULE_SETS[rules], capacity=4096)) for _ in range(2))
    one = [getattr(a, mode)(e) for e in rows]
    many = b._engine.decide_columns(dict(cols), {"decide": 0, "ingest": 2}[mode])
    if mode == "decide":
        assert [i for i, (x, y) in enumerate(zip(one, many)) if not same_decision(x, y)] == []
    sa, sb = a.stats(), b.stats()
    assert sa["counters"] == sb["counters"] and sa["rule_hits"] == sb["rule_hits"]
    probe = dict(rows[-1], ts=now + 60_000)
    for u in sorted({r["user_id"] for r in rows if isinstance(r["user_id"], str)}):
        probe["user_id"] = u
        assert same_decision(a.evaluate(probe), b.evaluate(probe)), u
    a.close(), b.close()


def test_decide_many_empty_and_ragged(engine):
    assert engine.decide_many([]) == []
    with pytest.raises(ValueError):
        engine.decide_many({"user_id": np.array(["a", "b"], dtype=object), "ts": np.array([T0])})


# -- stats -----------------------------------------------------------------------------------

def test_stats_keys_memory_hits(engine):
    s0 = engine.stats()
    assert s0["keys"] == 0 and s0["evictions"] == 0 and s0["memory_bytes"] > 0
    for i in range(3):
        engine.decide(ev("u1", t=i * SEC, ip="a"))
    engine.decide(ev("u2", t=3 * SEC, ip="a", country="KP"))
    s = engine.stats()
    # u1, u2 for the 7 user counters (wd counted: all are withdrawals), 2 pairs.
    assert s["keys"] == 7 * 2 + 2
    assert s["counters"]["n"]["keys"] == 2
    assert s["rule_hits"]["third_event"] == 1
    assert s["rule_hits"]["sanctioned"] == 1
    assert s["rule_hits"]["pair_seen"] == 2
    assert s["rule_hits"]["many_withdrawals"] == 2
    assert s["version"] == "v1"
    engine.evaluate(ev("u1", t=4 * SEC))
    assert engine.stats()["keys"] == s["keys"]


def test_tiny_capacity_evicts_and_still_decides():
    engine = Engine.from_text(RULES, capacity=16)
    for u in range(200):
        engine.decide(ev(f"u{u}", t=u))
    s = engine.stats()
    assert s["evictions"] > 0
    assert s["counters"]["n"]["keys"] <= 16
    # A fresh key still counts correctly after the churn.
    for i in range(3):
        d = engine.decide(ev("fresh", t=300 + i))
    assert "third_event" in d.rules and d.features["n"] == 3


# -- reload ------------------------------------------------------------------------------------

def test_reload_keeps_counters_and_reports_version(engine, tmp_path):
    for i in range(2):
        engine.decide(ev(t=i * SEC))
    new = HEAD.format(version="v2") + COUNTERS + RULES_BODY.replace("n > 2", "n > 5").replace("score: 80", "score: 81")
    path = tmp_path / "v2.yaml"
    path.write_text(new)
    assert engine.reload(path) == "v2"
    assert engine.version == "v2"
    assert engine.counter("n", user_id="u1", at=T0 + SEC) == 2
    d = engine.decide(ev(t=2 * SEC))
    assert d.version == "v2"
    assert d.features.get("n", 3) == 3 and "third_event" not in d.rules
    for i in range(3):
        d = engine.decide(ev(t=(3 + i) * SEC))
    assert "third_event" in d.rules and d.score >= 81 and d.features["n"] == 6
    assert engine.stats()["version"] == "v2"


def test_reload_compile_error_keeps_old_rules(engine, tmp_path):
    engine.decide(ev(t=0))
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD.format(version="broken") + COUNTERS + RULES_BODY.replace("n > 2", "n > "))
    with pytest.raises(RuleError):
        engine.reload(bad)
    assert engine.version == "v1"
    engine.decide(ev(t=SEC))
    d = engine.decide(ev(t=2 * SEC))
    assert d.version == "v1" and "third_event" in d.rules


def test_reload_with_changed_counters_keeps_the_unchanged_ones(engine, tmp_path):
    engine.decide(ev(t=0))
    engine.decide(ev(t=SEC))
    assert engine.counter("n", user_id="u1", at=2 * SEC + T0) == 2
    changed = tmp_path / "changed.yaml"
    changed.write_text(HEAD.format(version="v3") + COUNTERS.replace("n:       {agg: count, by: user_id, window: 1h}",
                                                                     "n:       {agg: count, by: user_id, window: 2h}")
                       + RULES_BODY)
    assert engine.reload(changed) == "v3"
    # n's window changed: it starts afresh; wd, total... kept their state.
    assert engine.counter("n", user_id="u1", at=T0 + 2 * SEC) == 0
    assert engine.counter("pair", user_id="u1", ip="1.1.1.1", at=T0 + 2 * SEC) == 2
    assert engine.counter("total", user_id="u1", at=T0 + 2 * SEC) == 2 * ev(t=0)["amount"]
    d = engine.decide(ev(t=2 * SEC))
    assert d.version == "v3"
    assert engine.counter("n", user_id="u1", at=T0 + 2 * SEC) == 1


def test_reload_with_changed_counters_on_shared_state_is_a_clear_error(tmp_path):
    e = Engine.from_text(RULES, state=tmp_path / "fc", capacity=1024)
    e.decide(ev(t=0))
    changed = tmp_path / "changed.yaml"
    changed.write_text(HEAD.format(version="v3") + COUNTERS.replace("window: 1h}", "window: 2h}", 1) + RULES_BODY)
    with pytest.raises(FraudcoreError, match="new state path"):
        e.reload(changed)
    assert e.version == "v1" and e.counter("n", user_id="u1", at=T0) == 1
    e.close()


# -- native vs reference, whole decisions -------------------------------------------------

def test_native_decisions_equal_reference_with_same_counter_values():
    """After each native decide, the counters are read back at the event's
    time (engine.counter) and the reference interpreter decides the same
    event with those values: the whole decision must be the same."""
    engine = Engine.from_file(EXAMPLE, capacity=4096)
    policy = engine.policy
    rf = policy.rules_file
    events = ExchangeStream(seed=5, users=200, rate_per_s=20.0).events(800)
    mismatches = []
    for e in events:
        d = engine.decide(e)
        values = []
        for name, c in rf.counters.items():
            values.append(engine.counter(name, at=e["ts"], **{f: e[f] for f in c.by}))
        ref = policy.decide_reference(e, counters=values)
        if not same_decision(d, ref):
            mismatches.append((e, d.to_dict(), ref.to_dict()))
    assert mismatches == []
    engine.close()


def test_a_closed_engine_raises_instead_of_touching_unmapped_memory():
    e = Engine.from_text(RULES, capacity=1024)
    e.decide(ev(t=0))
    e.close()
    with pytest.raises(ValueError, match="closed"):
        e.decide(ev(t=SEC))
    with pytest.raises(ValueError, match="closed"):
        e.counter("n", user_id="u1", at=T0)


@pytest.mark.parametrize("bad", [None, [1, 2], "type=login", 42])
def test_an_event_that_is_not_a_mapping_is_a_clear_type_error(engine, bad):
    with pytest.raises(TypeError, match=f"an event must be a dict .* got {type(bad).__name__}"):
        engine.decide(bad)
    assert engine.decide(ev(t=0)).version == "v1"  # and the engine goes on


def test_decoded_events_decide_as_literal_ones():
    """Events from a decoder carry their own key objects, not the interned
    field names: the field cache must match them by value (dictpeek.h)."""
    import msgspec

    evs = ExchangeStream(seed=4, users=50).events(400)
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(evs))
    shuffled = [dict(reversed(list(e.items()))) for e in decoded[:200]] + decoded[200:]  # and another key order
    names = {k: k for k in evs[0]}
    assert any(k is not names[k] for k in decoded[0])  # not the interned names
    literal, from_decoder = Engine.from_file(EXAMPLE), Engine.from_file(EXAMPLE)
    for a, b in zip(evs, shuffled):
        assert same_decision(literal.decide(a), from_decoder.decide(b))


def test_events_with_deleted_keys():
    """A dict with deleted entries (NULL keys in its table) read through the
    field cache, decoded or literal, before and after the deleted field."""
    import msgspec

    evs = ExchangeStream(seed=6, users=50).events(100)
    literal, decoded = Engine.from_file(EXAMPLE), Engine.from_file(EXAMPLE)
    for e in evs:
        d = msgspec.msgpack.decode(msgspec.msgpack.encode(e))
        for x in (e, d):
            del x["device_id"]
            x["device_id"] = "dv-re-added"  # the key now sits after the hole
            del x["ip"]
        assert same_decision(literal.decide(e), decoded.decide(d))
