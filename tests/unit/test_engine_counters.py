"""Engine counters against the exact twin (tests/naive_counters.py).

Every value the engine reports (``engine.counter(...)`` and
``Decision.features``) is checked against the full-history twin within the
store's documented bound (counters.pyx): a read at ``t`` includes every event
of ``(t - w, t]`` and possibly events up to one bucket older (or later in
``t``'s own bucket); an event whose bucket is older than the key's newest
bucket minus the ring is not counted; a read before the key's newest event
sees only the buckets the ring still retains.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from fraudcore import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from naive_counters import NaiveCounters, aggregate  # noqa: E402

T0 = 1_764_806_400_000
SEC = 1000

# window, resolution (ms) per counter; explicit resolutions divide the windows.
RULES = """
version: twin-1
time: ts
fields:
  type: string
  user_id: string
  ip: string
  amount: double
  device_id: string
counters:
  n:  {agg: count, by: user_id, window: 1m, resolution: 10s}
  s:  {agg: sum, of: amount, by: user_id, window: 1m, resolution: 10s}
  mn: {agg: min, of: amount, by: user_id, window: 1m, resolution: 10s}
  mx: {agg: max, of: amount, by: user_id, window: 1m, resolution: 10s}
  av: {agg: avg, of: amount, by: user_id, window: 1m, resolution: 10s}
  d:  {agg: distinct, of: device_id, by: user_id, window: 1m, resolution: 10s}
  wn: {agg: count, by: [user_id, ip], window: 2m, where: 'type == "withdrawal"'}
  ws: {agg: sum, of: amount, by: ip, window: 30s}
rules:
  - id: everything
    when: n >= 0 || s > 0.0 || mn > 0.0 || mx > 0.0 || av > 0.0 || d >= 0 || wn >= 0 || ws > 0.0
    action: review
    score: 1
"""

SPECS = {
    # name: (agg, window, resolution, by, of, where-type)
    "n": ("count", 60 * SEC, 10 * SEC, ("user_id",), None, None),
    "s": ("sum", 60 * SEC, 10 * SEC, ("user_id",), "amount", None),
    "mn": ("min", 60 * SEC, 10 * SEC, ("user_id",), "amount", None),
    "mx": ("max", 60 * SEC, 10 * SEC, ("user_id",), "amount", None),
    "av": ("avg", 60 * SEC, 10 * SEC, ("user_id",), "amount", None),
    "d": ("distinct", 60 * SEC, 10 * SEC, ("user_id",), "device_id", None),
    "wn": ("count", 120 * SEC, 2 * SEC, ("user_id", "ip"), None, "withdrawal"),
    "ws": ("sum", 30 * SEC, 500, ("ip",), "amount", None),
}


class Twin:
    """The exact twin plus, per (counter, key), the newest bucket the store
    holds, to apply the documented too-old and retained-bucket rules."""

    def __init__(self):
        self.naive = NaiveCounters([(name, agg, w, r) for name, (agg, w, r, *_) in SPECS.items()])
        self.newest: dict[tuple[str, tuple], int] = {}

    @staticmethod
    def key(name, event):
        return tuple(event[f] for f in SPECS[name][3])

    def add(self, event):
        for name, (agg, w, r, by, of, where) in SPECS.items():
            if where is not None and event["type"] != where:
                continue
            key = self.key(name, event)
            ts = event["ts"]
            n_buckets = -(-w // r) + 1
            b = ts // r
            newest = self.newest.get((name, key))
            if newest is not None and b <= newest - n_buckets:
                continue  # documented: too old, never counted
            self.newest[name, key] = b if newest is None else max(newest, b)
            value = event[of] if of and agg != "distinct" else 0.0
            item = event[of] if agg == "distinct" else None
            self.naive.update(name, key, ts, value, item)

    def check(self, name, key, t, got):
        """Assert that ``got`` (the engine's value at ``t``) lies within the
        documented bound of the exact value."""
        agg, w, r = SPECS[name][:3]
        n_buckets = -(-w // r) + 1
        events = self.naive.events.get((name, key), [])
        newest = self.newest.get((name, key))
        inner_all, outer = self.naive.bounds(name, key, t)
        # Reads before the key's newest bucket see only the retained ring.
        inner = [e for e in inner_all if newest is None or e[0] // r > newest - n_buckets]
        ctx = f"{name}{key} at t={t - T0}: got {got!r}; inner {inner}; outer {outer}; all {events}"
        if agg in ("count", "distinct"):
            assert type(got) is int, ctx
            assert aggregate(agg, inner) <= got <= aggregate(agg, outer), ctx
        elif agg == "sum":
            assert aggregate(agg, inner) - 1e-6 <= got <= aggregate(agg, outer) + 1e-6, ctx
        else:
            outer_values = [v for _, v, _ in outer if math.isfinite(v)]
            inner_values = [v for _, v, _ in inner if math.isfinite(v)]
            if not outer_values:
                assert math.isnan(got), ctx
                return
            if inner_values:
                assert not math.isnan(got), ctx
            if math.isnan(got):
                return
            lo, hi = min(outer_values), max(outer_values)
            assert lo - 1e-9 <= got <= hi + 1e-9, ctx
            if agg == "min" and inner_values:
                assert got <= min(inner_values), ctx
            if agg == "max" and inner_values:
                assert got >= max(inner_values), ctx


def same(a, b):
    """Equality where NaN equals NaN and floats may differ by rounding (a sum
    added up in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def same_features(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def engine_key(name, event):
    return {f: event[f] for f in SPECS[name][3]}


def run_stream(events, *, names=tuple(SPECS), check_features=True):
    engine = Engine.from_text(RULES, capacity=256)
    twin = Twin()
    try:
        for event in events:
            d = engine.decide(event)
            twin.add(event)
            assert d.errors == []
            assert d.rules == ["everything"]
            for name in names:
                key = Twin.key(name, event)
                got = engine.counter(name, at=event["ts"], **engine_key(name, event))
                if check_features:
                    assert name in d.features
                    assert same(d.features[name], got), (name, d.features[name], got)
                twin.check(name, key, event["ts"], got)
        # Finally every key of every counter at the latest time.
        t_end = max(e["ts"] for e in events)
        for (name, key) in list(twin.naive.events):
            if name not in names:
                continue
            got = engine.counter(name, at=t_end, **dict(zip(SPECS[name][3], key)))
            twin.check(name, key, t_end, got)
    finally:
        engine.close()


def make_event(i, user, ip, t, amount, device, kind):
    return {"type": kind, "user_id": f"u{user}", "ip": f"10.0.0.{ip}", "amount": amount,
            "device_id": f"dev{device}", "ts": T0 + t}


# -- a deterministic, seeded stream: in order ---------------------------------

def test_in_order_stream_matches_twin(rng):
    t = 0
    events = []
    for i in range(400):
        t += rng.randrange(0, 3 * SEC)
        events.append(make_event(i, rng.randrange(3), rng.randrange(3), t, round(rng.uniform(0.5, 500.0), 2),
                                 rng.randrange(20), rng.choice(["withdrawal", "deposit", "login"])))
    run_stream(events)


def test_jittered_stream_matches_twin(rng):
    """Out of order by up to 2 s (like ExchangeStream): still inside the
    windows, so every read is within the bound."""
    t = 0
    events = []
    for i in range(400):
        t += rng.randrange(0, 2 * SEC)
        late = rng.randrange(0, 2 * SEC) if rng.random() < 0.2 else 0
        events.append(make_event(i, rng.randrange(3), rng.randrange(2), max(t - late, 0),
                                 round(rng.uniform(0.5, 500.0), 2), rng.randrange(12),
                                 rng.choice(["withdrawal", "deposit"])))
    run_stream(events)


# -- the property ----------------------------------------------------------------

event_st = st.tuples(
    st.integers(0, 3),                      # user (2-4 keys)
    st.integers(0, 1),                      # ip
    st.integers(0, 4 * 60 * SEC),           # time within a few windows
    st.floats(0.5, 1000.0, allow_nan=False),
    st.integers(0, 10),                     # device (distinct stays below 16)
    st.sampled_from(["withdrawal", "deposit"]),
)


NOT_DISTINCT = tuple(n for n in SPECS if SPECS[n][0] != "distinct")


@settings(max_examples=50, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=40))
def test_property_counters_within_documented_bound(raw):
    """count, sum, min, max, avg (compound keys and where-filters included)."""
    events = [make_event(i, *r) for i, r in enumerate(raw)]
    run_stream(events, names=NOT_DISTINCT)


@settings(max_examples=50, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=40))
def test_property_distinct_within_documented_bound(raw):
    """distinct (below 16 items: exact set), out-of-order streams."""
    events = [make_event(i, *r) for i, r in enumerate(raw)]
    run_stream(events, names=("d",))


@settings(max_examples=30, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=40))
def test_property_in_order_streams_all_aggs(raw):
    """In event-time order every read is at the key's newest event: the
    plain documented bound, for every agg."""
    events = sorted((make_event(i, *r) for i, r in enumerate(raw)), key=lambda e: e["ts"])
    run_stream(events)


# -- focused cases ------------------------------------------------------------------

def test_distinct_out_of_order_read_includes_earlier_items():
    """An out-of-order event's own decision reads at its time: device A seen
    at 100 s (and again at 150 s), device B at 120 s (late). In (60 s, 120 s]
    the user used A and B: distinct must be 2 (count there is 2)."""
    engine = Engine.from_text(RULES, capacity=64)
    ev = lambda t, dev: make_event(0, 1, 1, t, 1.0, dev, "deposit")  # noqa: E731
    engine.decide(ev(100 * SEC, "A"))
    engine.decide(ev(150 * SEC, "A"))
    d = engine.decide(ev(120 * SEC, "B"))
    assert d.features["n"] == 2
    assert d.features["d"] == 2, d.features


def test_every_agg_exact_values_small():
    """Hand-computed values, all inside one bucket-aligned window."""
    engine = Engine.from_text(RULES, capacity=64)
    amounts = [5.0, 2.5, 10.0, 2.5]
    devices = ["a", "b", "a", "c"]
    for i, (a, dev) in enumerate(zip(amounts, devices)):
        d = engine.decide(make_event(i, 1, 1, 20 * SEC + i * SEC, a, dev, "withdrawal"))
    t = 20 * SEC + 3 * SEC + T0
    f = d.features
    assert f["n"] == 4 and f["wn"] == 4
    assert f["s"] == pytest.approx(20.0) and f["ws"] == pytest.approx(20.0)
    assert f["mn"] == 2.5 and f["mx"] == 10.0 and f["av"] == pytest.approx(5.0)
    assert f["d"] == 3
    assert engine.counter("d", user_id="u1", at=t) == 3
    assert engine.counter("wn", user_id="u1", ip="10.0.0.1", at=t) == 4
    # Another key is empty: count 0, sum 0.0, min/max/avg NaN.
    assert engine.counter("n", user_id="u2", at=t) == 0
    assert engine.counter("s", user_id="u2", at=t) == 0.0
    for name in ("mn", "mx", "av"):
        assert math.isnan(engine.counter(name, user_id="u2", at=t))
    # Two minutes later every 1 m window is empty again.
    later = t + 2 * 60 * SEC + 10 * SEC
    assert engine.counter("n", user_id="u1", at=later) == 0
    assert engine.counter("d", user_id="u1", at=later) == 0
    assert math.isnan(engine.counter("mx", user_id="u1", at=later))


def test_counter_rejects_wrong_key_and_unknown_name():
    engine = Engine.from_text(RULES, capacity=64)
    with pytest.raises(KeyError):
        engine.counter("nope", user_id="u1", at=T0)
    with pytest.raises(TypeError, match="ip"):
        engine.counter("wn", user_id="u1", at=T0)
    with pytest.raises(TypeError):
        engine.counter("n", user_id="u1", ip="x", at=T0)


def test_evaluate_matches_decide_on_a_stream(rng):
    """evaluate() before decide() of each event gives the same decision
    (features included) and writes nothing."""
    engine = Engine.from_text(RULES, capacity=256)
    t = 0
    for i in range(300):
        t += rng.randrange(0, 3 * SEC)
        ev = make_event(i, rng.randrange(3), rng.randrange(2), max(t - rng.randrange(0, 2 * SEC), 0),
                        round(rng.uniform(0.5, 500.0), 2), rng.randrange(8), rng.choice(["withdrawal", "deposit"]))
        before = {n: engine.counter(n, at=ev["ts"], **engine_key(n, ev)) for n in SPECS}
        e1 = engine.evaluate(ev)
        e2 = engine.evaluate(ev)
        after = {n: engine.counter(n, at=ev["ts"], **engine_key(n, ev)) for n in SPECS}
        assert same_features(before, after)
        d = engine.decide(ev)
        for e in (e1, e2):
            assert (e.action, e.score, e.rules, e.errors) == (d.action, d.score, d.rules, d.errors)
            diff = {k: (e.features[k], d.features[k]) for k in d.features if not same(e.features.get(k), d.features[k])}
            assert same_features(e.features, d.features), (i, ev, diff)
