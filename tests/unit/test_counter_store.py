"""The native counter store against its exact twin (tests/naive_counters.py)."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from naive_counters import NaiveCounters  # noqa: E402

from fraudcore._native.counters import CounterStore, item_hash, key_hash  # noqa: E402
from fraudcore.errors import FraudcoreError, StateError  # noqa: E402

T0 = 1_764_806_400_000
SPECS = [
    ("count", "count", 10_000, 1_000),
    ("sum", "sum", 10_000, 1_000),
    ("min", "min", 10_000, 1_000),
    ("max", "max", 10_000, 1_000),
    ("avg", "avg", 10_000, 1_000),
    ("distinct", "distinct", 10_000, 1_000),
    ("count_odd", "count", 7_000, 3_000),  # a window that is not a whole number of buckets
    ("sum_fine", "sum", 1_000, 17),
    ("max_long", "max", 10_000, 125),      # a ring of 81 buckets: no occupancy bits
    ("count_ring", "count", 60_000, 1_000),  # grouped rings: 61 buckets (groups wholly inside a window)...
    ("count_short", "count", 20_000, 1_000),  # ...and 21 (a read spans two or three groups)
]


def check_bounds(agg, got, inner, outer):
    """The store's value lies between the exact value over the window and over
    the window plus one bucket (see naive_counters)."""
    iv = [v for _, v, _ in inner]
    ov = [v for _, v, _ in outer]
    if agg == "count":
        assert len(inner) <= got <= len(outer)
    elif agg == "distinct":
        assert len({i for *_, i in inner}) <= got <= len({i for *_, i in outer})
    elif agg == "sum":  # values are non-negative in these streams
        assert math.fsum(iv) - 1e-6 <= got <= math.fsum(ov) + 1e-6
    elif agg == "min":
        if math.isnan(got):  # an empty window: allowed only when the inner one is empty
            assert not iv
        else:
            assert min(ov) <= got
            if iv:
                assert got <= min(iv)
    elif agg == "max":
        if math.isnan(got):  # an empty window: allowed only when the inner one is empty
            assert not iv
        else:
            assert got <= max(ov)
            if iv:
                assert got >= max(iv)
    elif agg == "avg":
        if math.isnan(got):  # an empty window: allowed only when the inner one is empty
            assert not iv
        else:
            assert min(ov) - 1e-9 <= got <= max(ov) + 1e-9
            if len(inner) == len(outer):
                assert got == pytest.approx(math.fsum(iv) / len(iv))


# ----------------------------------------------------------- basic aggs ----


def test_every_aggregation():
    s = CounterStore(SPECS, capacity=64)
    for i, v in enumerate([3.0, 1.0, 4.0, 1.0, 5.0]):
        for name in ("count", "sum", "min", "max", "avg"):
            assert s.update_key(name, ("u1",), T0 + i * 1000, v)
        s.update_key("distinct", "u1", T0 + i * 1000, item=f"dev{int(v)}")
    at = T0 + 4000
    assert s.read_key("count", "u1", at) == 5
    assert s.read_key("sum", "u1", at) == 14.0
    assert s.read_key("min", "u1", at) == 1.0
    assert s.read_key("max", "u1", at) == 5.0
    assert s.read_key("avg", "u1", at) == pytest.approx(2.8)
    assert s.read_key("distinct", "u1", at) == 4
    # An unknown key: empty window.
    assert s.read_key("count", "nobody", at) == 0
    assert s.read_key("sum", "nobody", at) == 0.0
    for name in ("min", "max", "avg"):
        assert math.isnan(s.read_key(name, "nobody", at))
    # The window slides: 10 s later only the last events remain, 20 s later none.
    assert s.read_key("count", "u1", T0 + 4000 + 10_000) <= 1
    assert s.read_key("count", "u1", T0 + 30_000) == 0
    assert math.isnan(s.read_key("max", "u1", T0 + 30_000))


def test_compound_keys_and_key_types():
    s = CounterStore([("c", "count", 60_000, 1_000)], capacity=64)
    keys = [("u1", "addr1"), ("u1", "addr2"), ("addr1", "u1"), ("u1",), 1, 1.0, True, b"1", "1", None, ("u1", 1)]
    for n, k in enumerate(keys):
        for _ in range(n + 1):
            s.update_key("c", k, T0)
    for n, k in enumerate(keys):
        assert s.read_key("c", k, T0) == n + 1, k
    assert key_hash("u1") == key_hash(("u1",))
    assert key_hash(0.0) == key_hash(-0.0)
    assert key_hash(2**100) != key_hash(2**100 + 1)
    with pytest.raises(TypeError, match="key part"):
        s.update_key("c", (object(),), T0)


def test_hashes_are_process_independent():
    code = "from fraudcore._native.counters import key_hash, item_hash; print(key_hash(('u1', 7, 2.5)), item_hash('d'))"
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == f"{key_hash(('u1', 7, 2.5))} {item_hash('d')}"


# ------------------------------------------------------ against the twin ----

event = st.tuples(
    st.integers(0, 60_000),  # time offset: out of order, some too old by the time they arrive
    st.integers(0, 4),  # few keys, so entries are shared and reused
    st.floats(0, 1000, allow_nan=False),
    st.integers(0, 11),  # distinct items: below the sketch threshold
)


@given(events=st.lists(event, max_size=120), compound=st.booleans(), late=st.integers(0, 30_000))
def test_matches_exact_twin(events, compound, late):
    s = CounterStore(SPECS, capacity=8, max_future_ms=None)  # 8 slots: 5 keys never evict
    twin = NaiveCounters(SPECS)
    newest = 0
    for off, k, v, item in events:
        key = ("user", k) if compound else f"user{k}"
        ts = T0 + off
        newest = max(newest, ts)
        for name, agg, _, _ in SPECS:
            if s.update_key(name, key, ts, v, item=item if agg == "distinct" else None):
                twin.update(name, key, ts, v, item)
        # Reads at "now" (the newest time seen), as the engine reads.
        for name, agg, _, _ in SPECS:
            inner, outer = twin.bounds(name, key, newest)
            check_bounds(agg, s.read_key(name, key, newest), inner, outer)
    # Later reads, as the window slides past the events.
    for k in range(5):
        key = ("user", k) if compound else f"user{k}"
        for name, agg, _, _ in SPECS:
            inner, outer = twin.bounds(name, key, newest + late)
            check_bounds(agg, s.read_key(name, key, newest + late), inner, outer)


@given(events=st.lists(st.tuples(st.integers(0, 200_000), st.integers(0, 2)), max_size=150),
       back=st.integers(0, 2_999))
def test_grouped_rings_read_in_the_past(events, back):
    """A read up to three buckets before a key's newest event (a late
    event's decision) still has every bucket of its window, in a grouped
    ring of 64 slots: it is within the bounds, whichever groups it takes
    from the coarse buckets and whichever from the fine ones. Further back
    it has at least the buckets the ring still holds."""
    specs = [sp for sp in SPECS if sp[0] in ("count_ring", "count_short")]
    s = CounterStore(specs, capacity=8, max_future_ms=None)
    twin = NaiveCounters(specs)
    newest = {}
    for off, k in events:      # over 200 buckets: the ring laps
        ts = T0 + off
        for name, _, _, _ in specs:
            if s.update_key(name, k, ts):
                twin.update(name, k, ts)
        newest[k] = max(newest.get(k, ts), ts)
        at = newest[k] // 1_000 * 1_000 - back      # up to three whole buckets back
        for name, _, _, _ in specs:
            inner, outer = twin.bounds(name, k, at)
            check_bounds("count", s.read_key(name, k, at), inner, outer)
    # Further back, a read has at least the events whose buckets the ring
    # still holds (no later bucket took their slot).
    for k in newest:
        for name, _, _, _ in specs:
            held = {}
            for ts, _, _ in twin.window(name, k, 0, newest[k] + 1):
                b = ts // 1_000
                held[b % 64] = max(held.get(b % 64, b), b)
            for at in range(T0, newest[k] + 1, 2_500):
                inner, outer = twin.bounds(name, k, at)
                kept = [ts for ts, _, _ in inner if held[ts // 1_000 % 64] == ts // 1_000]
                assert len(kept) <= s.read_key(name, k, at) <= len(outer)


@given(events=st.lists(event, max_size=80))
def test_skipped_events_are_outside_every_later_window(events):
    """Whatever the store skips as too old lies before (t - window) for every
    read time t at or after the key's newest event."""
    spec = [("count", "count", 10_000, 1_000)]
    s = CounterStore(spec, capacity=8, max_future_ms=None)
    twin = NaiveCounters(spec)
    newest = {}
    for off, k, _, _ in events:
        ts = T0 + off
        if s.update_key("count", k, ts):
            twin.update("count", k, ts)
        else:
            assert ts <= newest[k] - 10_000
        newest[k] = max(newest.get(k, ts), ts)
        inner, outer = twin.bounds("count", k, newest[k])
        assert len(inner) <= s.read_key("count", k, newest[k]) <= len(outer)


@given(events=st.lists(event, max_size=150), lookahead=st.sampled_from([0, 1, 8]))
def test_update_many_is_updates_one_by_one(events, lookahead):
    """The pipelined batch leaves every key as the same updates made one at
    a time, and counts (returns) the same ones."""
    batch = CounterStore(SPECS, capacity=8, max_future_ms=None)
    single = CounterStore(SPECS, capacity=8, max_future_ms=None)
    hashes = [key_hash(f"user{k}") for _, k, _, _ in events]
    hi = np.array([h[0] for h in hashes], dtype=np.uint64)
    lo = np.array([h[1] for h in hashes], dtype=np.uint64)
    ts = np.array([T0 + off for off, _, _, _ in events], dtype=np.int64)
    values = np.array([v for _, _, v, _ in events], dtype=np.float64)
    items = np.array([item_hash(it) for _, _, _, it in events], dtype=np.uint64)
    for name, _, _, _ in SPECS:
        counted = batch.update_many(name, hi, lo, ts, values, items, lookahead=lookahead)
        expected = sum(single.update_hash(single.index(name), int(h), int(l), int(t), float(v), int(i))
                       for h, l, t, v, i in zip(hi, lo, ts, values, items))
        assert counted == expected
        for k in range(5):
            for at in (T0 + 30_000, T0 + 60_000, T0 + 75_000):
                a, b = batch.read_key(name, f"user{k}", at), single.read_key(name, f"user{k}", at)
                assert a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("name", ["count", "sum", "max_long", "count_short"])
def test_a_key_back_after_a_window(name):
    """A key whose previous event is a window old reads its new event
    alone; an event that comes late, inside the new window, is read with
    it, and a read in the past still finds the old buckets the ring kept."""
    s = CounterStore(SPECS, capacity=8, max_future_ms=None)
    agg = {n: a for n, a, _, _ in SPECS}[name]
    for off in (0, 1_500, 3_000):
        s.update_key(name, "u", T0 + off, 1.0)
    s.update_key(name, "u", T0 + 30_000, 2.0)            # 27 s later
    assert s.read_key(name, "u", T0 + 30_000) == (1 if agg == "count" else 2.0)
    s.update_key(name, "u", T0 + 24_000, 5.0)            # late, inside the window of 30 s
    assert s.read_key(name, "u", T0 + 30_000) == {"count": 2, "sum": 7.0}.get(agg, 5.0)
    assert s.read_key(name, "u", T0 + 26_000) == {"count": 1, "sum": 5.0}.get(agg, 5.0)
    s.update_key(name, "u", T0 + 31_000, 1.0)            # and on, in order
    assert s.read_key(name, "u", T0 + 31_000) == {"count": 3, "sum": 8.0}.get(agg, 5.0)
    # The first three events are still in the ring for a read at their time.
    assert s.read_key(name, "u", T0 + 3_000) == {"count": 3, "sum": 3.0}.get(agg, 1.0)


def test_update_many_checks_its_arrays():
    s = CounterStore(SPECS, capacity=8)
    one = np.ones(3, dtype=np.uint64)
    with pytest.raises(ValueError, match="same length"):
        s.update_many("count", one, one[:2], np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="lookahead"):
        s.update_many("count", one, one, np.ones(3, dtype=np.int64), lookahead=-1)
    with pytest.raises(ValueError):     # not uint64: a buffer dtype mismatch, never a silent cast
        s.update_many("count", np.ones(3), one, np.ones(3, dtype=np.int64))
    assert s.update_many("count", one[:0], one[:0], np.ones(0, dtype=np.int64)) == 0


# ------------------------------------------------------------- distinct ----


@pytest.mark.parametrize("n", [16, 17, 100, 1_000, 10_000, 100_000])
def test_distinct_error(n):
    s = CounterStore([("d", "distinct", 3_600_000, 60_000)], capacity=16, sketches=2)
    for i in range(n):
        s.update_key("d", "u1", T0 + i % 1000, item=f"device-{i}")
    got = s.read_key("d", "u1", T0 + 1000)
    if n <= 16:
        assert got == n
    else:
        # p = 12: standard error 1.6 %; 5 % is more than 3 sigma.
        assert abs(got - n) <= 0.05 * n, (got, n)
    assert s.stats()["counters"]["d"]["sketches_in_use"] == (1 if n > 16 else 0)


def test_distinct_sketch_slides():
    s = CounterStore([("d", "distinct", 60_000, 1_000)], capacity=16)
    for i in range(5_000):
        s.update_key("d", "u1", T0 + i % 10_000, item=i)  # first 10 s
    for i in range(5_000, 7_000):
        s.update_key("d", "u1", T0 + 100_000, item=i)  # 100 s later
    got = s.read_key("d", "u1", T0 + 100_000)
    assert abs(got - 2_000) <= 0.05 * 2_000
    assert s.read_key("d", "u1", T0 + 200_000) == 0


def test_distinct_repeated_items_and_expiry():
    s = CounterStore([("d", "distinct", 10_000, 1_000)], capacity=16)
    for rep in range(50):
        for i in range(10):
            s.update_key("d", "u1", T0 + rep, item=i)
    assert s.read_key("d", "u1", T0 + 50) == 10
    # Ten new items 20 s later replace the expired ones: still exact, no sketch.
    for i in range(10, 20):
        s.update_key("d", "u1", T0 + 20_000, item=i)
    assert s.read_key("d", "u1", T0 + 20_000) == 10
    assert s.stats()["counters"]["d"]["sketches_in_use"] == 0


sketch_op = st.tuples(
    st.sampled_from(["add", "read"]),
    st.integers(0, 150_000),  # ms after T0: 1 s buckets, a 60 s window
    st.integers(0, 400),  # item
)


@given(ops=st.lists(sketch_op, min_size=1, max_size=400))
def test_sketch_estimate_cache_matches_full_scan(ops):
    """The cached estimate (kept current by writes, rebuilt on a new bucket)
    equals a scan of every register, whatever the order of writes and reads:
    late writes, reads in the past, buckets moving back and forth."""
    s = CounterStore([("d", "distinct", 60_000, 1_000)], capacity=16, sketches=1)
    for i in range(40):  # past the exact set: the key has a sketch
        s.update_key("d", "u", T0, item=f"seed-{i}")
    for op, dt, item in ops:
        if op == "add":
            s.update_key("d", "u", T0 + dt, item=item)
        else:
            at = T0 + dt
            assert s.sketch_estimate("d", "u", at) == s.sketch_estimate("d", "u", at, cached=False)
    at = T0 + ops[-1][1]
    assert s.sketch_estimate("d", "u", at) == s.sketch_estimate("d", "u", at, cached=False)


def test_sketch_pool_exhausted():
    s = CounterStore([("d", "distinct", 60_000, 1_000)], capacity=16, sketches=1)
    for i in range(200):
        s.update_key("d", "a", T0, item=i)
        s.update_key("d", "b", T0, item=i)
    st_ = s.stats()["counters"]["d"]
    assert st_["sketches_in_use"] == 1
    assert st_["sketch_pool_full"] > 0
    assert abs(s.read_key("d", "a", T0) - 200) <= 10  # the first key got the sketch
    assert s.read_key("d", "b", T0) == 16  # documented: saturates at the exact set


# ------------------------------------------------------------- capacity ----


def test_eviction_when_full():
    s = CounterStore([("c", "count", 60_000, 1_000), ("m", "max", 60_000, 1_000)], capacity=16)
    for k in range(100):
        for j in range(k % 3 + 1):
            s.update_key("c", f"k{k}", T0 + k * 10 + j)
        s.update_key("m", f"k{k}", T0 + k * 10, float(k))
    st_ = s.stats()["counters"]["c"]
    assert st_["keys"] == 16
    assert st_["evictions"] >= 100 - 16
    # The stalest keys went; the newest are intact and exact.
    for k in range(100 - 8, 100):
        assert s.read_key("c", f"k{k}", T0 + 1000) == k % 3 + 1
        assert s.read_key("m", f"k{k}", T0 + 1000) == float(k)
    held = sum(s.read_key("c", f"k{k}", T0 + 1000) > 0 for k in range(100))
    assert held <= 16
    assert s.bytes_per_key("c") == 64 + 8 * 64           # a grouped ring: head, coarse buckets, 64 slots
    assert s.bytes_per_key("m") == 32 + 16 * 61 + 16      # padded to whole cache lines


def test_bytes_per_key_documented():
    s = CounterStore(
        [("c", "count", 3_600_000, 60_000), ("d", "distinct", 86_400_000, 1_440_000),
         ("c10", "count", 10_000, 1_000), ("c80", "count", 80_000, 1_000)], capacity=1 << 20, sketches=4
    )
    assert s.bytes_per_key("c") == 576     # 61 buckets: a grouped ring, 32 + 32 + 8 * 64
    assert s.bytes_per_key("c10") == 128   # 11 buckets: 32 + 8 * 11 = 120, padded to a multiple of 64
    assert s.bytes_per_key("c80") == 704   # 81 buckets: 32 + 8 * 81 = 680, padded
    assert s.bytes_per_key("d") == 320     # 32 + 16 * 16 = 288, padded
    assert s.sketch_bytes == 4096 * 24 * 4 + 8192  # stamps, then the estimate cache
    st_ = s.stats()["counters"]
    assert st_["c"]["capacity"] == 1 << 20
    assert st_["d"]["bytes"] == (1 << 20) * 320 + 4 * s.sketch_bytes


def test_capacity_rounds_to_power_of_two_and_per_counter():
    s = CounterStore([("a", "count", 1000, 100), ("b", "sum", 1000, 100)], capacity=[100, 3])
    st_ = s.stats()["counters"]
    assert (st_["a"]["capacity"], st_["b"]["capacity"]) == (128, 4)


# ------------------------------------------------------------ bad input ----


def test_nan_and_infinite_values_are_skipped():
    s = CounterStore(SPECS, capacity=16)
    assert s.update_key("sum", "u", T0, 5.0)
    assert not s.update_key("sum", "u", T0, math.nan)
    assert not s.update_key("max", "u", T0, math.inf)
    assert s.update_key("count", "u", T0, math.nan)  # count ignores the value
    assert s.read_key("sum", "u", T0) == 5.0
    assert math.isnan(s.read_key("max", "u", T0))
    assert s.stats()["counters"]["sum"]["nan_skipped"] == 1


def test_far_future_and_far_past():
    now = int(time.time() * 1000)
    day = 86_400_000
    s = CounterStore([("c", "count", 60_000, 1_000)], capacity=16)
    assert s.update_key("c", "u", now)
    assert not s.update_key("c", "u", now + 2 * day)  # two days ahead of the mark and of the clock
    assert not s.update_key("c", "v", 2**62)
    assert s.stats()["counters"]["c"]["future_skipped"] == 2
    assert s.update_key("c", "u", now + 3_600_000)  # an hour ahead is fine
    assert not s.update_key("c", "u", now - 365 * day)  # older than u's window
    assert s.stats()["counters"]["c"]["too_old"] == 1
    assert s.update_key("c", "w", -(2**62))  # a new key: counted, invisible to any current read
    assert s.read_key("c", "w", now) == 0
    assert s.read_key("c", "u", now + 3_600_000) == 1
    assert s.stats()["high_water_ms"] == now + 3_600_000


def test_an_old_first_event_does_not_stop_counting():
    """The first event sets the high-water mark; if it is ancient (seconds
    sent as milliseconds), events at the real time are far beyond the mark
    but not beyond the wall clock: they count, and the mark catches up."""
    s = CounterStore([("c", "count", 60_000, 1_000)], capacity=16)
    assert s.update_key("c", "x", 1_000)
    assert s.update_key("c", "u", T0)
    assert s.update_key("c", "u", T0 + 1)
    assert s.read_key("c", "u", T0 + 1) == 2
    assert s.stats()["high_water_ms"] == T0 + 1
    assert s.stats()["counters"]["c"]["future_skipped"] == 0


def test_huge_key():
    s = CounterStore([("c", "count", 60_000, 1_000)], capacity=16)
    big = "x" * 10_000_000
    assert s.update_key("c", (big, "y"), T0)
    s.update_key("c", "small", T0)
    assert s.read_key("c", (big, "y"), T0) == 1
    assert s.read_key("c", (big[:-1] + "z", "y"), T0) == 0
    assert s.read_key("c", "small", T0) == 1


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([("a", "median", 1000, 100)], "agg must be one of"),
        ([("a", "count", 1000, 0)], "resolution_ms"),
        ([("a", "count", 100, 1000)], "resolution_ms"),
        ([("a", "count", 7_776_000_000, 1)], "buckets"),
        ([("a", "count", 1000, 100), ("a", "sum", 1000, 100)], "duplicate"),
    ],
)
def test_bad_specs(specs, message):
    with pytest.raises(ValueError, match=message):
        CounterStore(specs)


def test_a_region_without_counters_holds_shared_rules(tmp_path):
    path = tmp_path / "rules-only"
    a = CounterStore([], path=path)
    b = CounterStore([], path=path, create=False)
    seq = a.publish_rules("r.yaml", "version: 2\nrules: []\n")
    assert b.read_rules() == (seq, "r.yaml", "version: 2\nrules: []\n")
    assert a.stats()["counters"] == {}
    with pytest.raises(StateError):
        CounterStore([("c", "count", 60_000, 1_000)], path=path, create=False)
    a.close()
    b.close()


# ------------------------------------------------------------ the file -----


def test_shared_file_roundtrip(tmp_path):
    path = tmp_path / "state"
    with CounterStore(SPECS, path=path, capacity=64) as a:
        b = CounterStore(SPECS, path=str(path), capacity=64, create=False)
        a.update_key("count", "u", T0)
        b.update_key("count", "u", T0 + 1)
        assert a.read_key("count", "u", T0 + 1) == b.read_key("count", "u", T0 + 1) == 2
        b.close()
    c = CounterStore(SPECS, path=path, capacity=64)
    assert c.read_key("count", "u", T0 + 1) == 2
    assert c.path == str(path)
    with pytest.raises(ValueError, match="closed"):
        c.close() or c.read_key("count", "u", T0)


def test_missing_file_without_create(tmp_path):
    with pytest.raises(StateError, match="no such"):
        CounterStore(SPECS, path=tmp_path / "nope", create=False)


def test_foreign_file(tmp_path):
    path = tmp_path / "state"
    path.write_bytes(b"PK\x03\x04 not a counter file" * 100)
    with pytest.raises(StateError, match="not a fraudcore counter-state file"):
        CounterStore(SPECS, path=path)
    path.write_bytes(b"")
    with pytest.raises(StateError, match=str(path)):
        CounterStore(SPECS, path=path)
    assert issubclass(StateError, FraudcoreError)


def test_truncated_file(tmp_path):
    path = tmp_path / "state"
    CounterStore(SPECS, path=path, capacity=64).close()
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(StateError, match="truncated"):
        CounterStore(SPECS, path=path, capacity=64)


def test_other_layout_version(tmp_path):
    path = tmp_path / "state"
    CounterStore(SPECS, path=path, capacity=64).close()
    with open(path, "r+b") as f:
        f.seek(8)
        f.write(struct.pack("<I", 999))
    with pytest.raises(StateError, match="layout version 999"):
        CounterStore(SPECS, path=path, capacity=64)


def test_other_definitions(tmp_path):
    path = tmp_path / "state"
    CounterStore(SPECS, path=path, capacity=64).close()
    other = [s if s[0] != "sum" else ("sum", "sum", 20_000, 1_000) for s in SPECS]
    with pytest.raises(StateError, match=r"counter 'sum': window_ms is 10000 in the file, 20000 requested"):
        CounterStore(other, path=path, capacity=64)
    with pytest.raises(StateError, match="capacity is 64 in the file, 128 requested"):
        CounterStore(SPECS, path=path, capacity=128)
    with pytest.raises(StateError, match="'extra' is not in the file"):
        CounterStore([*SPECS, ("extra", "count", 1000, 100)], path=path, capacity=64)
    # The file is untouched by the failed opens.
    CounterStore(SPECS, path=path, capacity=64).close()


def test_large_table_creates_instantly(tmp_path):
    import time

    start = time.perf_counter()
    s = CounterStore([("c", "count", 3_600_000, 60_000)], path=tmp_path / "big", capacity=1 << 21)
    assert time.perf_counter() - start < 1.0
    assert s.stats()["bytes"] > 10**9
    assert s.update_key("c", "u", T0)


# ------------------------------------------------------- bench helpers ----


def test_bench_helpers_do_the_work_they_time():
    from fraudcore._native.counters import bench_chase, bench_lines

    s = CounterStore([("c", "count", 3_600_000, 60_000)], capacity=4096)
    assert s.bench_update(0, 3000, 1000, T0, 8) > 0
    assert s.stats()["counters"]["c"]["keys"] == 1000       # every key was counted
    assert s.bench_read(0, 1000, 1000, T0) > 0
    assert bench_chase(np.random.default_rng(0).permutation(1 << 12).astype(np.uint32), 10_000) > 0
    with pytest.raises(ValueError, match="at least 2 lines"):
        bench_chase(np.zeros(1, dtype=np.uint32), 10)
    order = np.random.default_rng(1).integers(0, 1 << 12, 1 << 12).astype(np.uint32)
    for huge in (True, False):
        ns, total = bench_lines(order, 3000, 8, huge)
        assert ns > 0 and total == int(order[:3000].astype(np.uint64).sum())   # loaded the lines named
    with pytest.raises(ValueError, match="1 <= steps <= lines"):
        bench_lines(order, len(order) + 1, 8)
