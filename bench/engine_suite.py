"""The engine suite: velocity counters and the decision path with state.

What is measured
- counters: ns per update and per read of a CounterStore (count, sum,
  distinct; 1-hour window, 60 buckets) on a table of 2^21 slots holding
  1,000,000 keys (and, for contrast, 1,024 keys that stay in cache): timed in
  C by ``bench_update`` / ``bench_read`` (no Python per operation): updates
  one after another, and as ``update_many`` runs a batch (the lines of the
  update 8 ahead prefetched); and from Python by ``update_key`` /
  ``read_key`` (a loop over prepared str keys).
- decide: ``Engine.from_file("examples/rules.yaml", capacity=..., prefault=True)``
  (26 rules, 12 counters; each counter's capacity the power of two at or
  above twice its keys after populating, counted by the hand-written engine
  first: a deployment sizes tables from its key cardinalities; prefault as a
  deployment runs it) whose store is first populated with one event per user
  of a 1,000,000-user population (a backfill built from the stream's own
  per-user attributes: ExchangeStream's Zipf-like traffic alone would reach
  only ~360k distinct users in 2M events) and then the first ``populate``
  events of ``ExchangeStream(seed=7, users=1_000_000)``, through
  ``engine.ingest``. Then ``engine.decide(event)`` on fresh events of the
  same stream, each call timed with ``perf_counter_ns`` (GC off): per-event
  p50 / p90 / p99 / p99.9, mean, and events per second of the whole pass.
  The events of a slice are dicts made before the pass, so each call also
  loads its event from memory; a second slice per repeat is decoded from
  MessagePack frames, each just before its call (as the server gets it:
  the event in cache), and reported on its own row. The targets are judged
  on the first. Each decision is kept as (action, score, rules) in arrays
  sized before the pass (see Outcomes), not as the Decision itself; keeping
  and decoding are left out of the whole pass.
- hand-written: the same rules and counters in plain Python
  (bench/handwritten_counters.py), populated with the same events, deciding
  the same fresh events, interleaved with decide repeat by repeat (each
  repeat a new slice of the stream, so both states stay equal). Its decisions
  (action, score, rules) must equal fraudcore's on a low-rate check stream
  before anything is timed, and on every timed event afterwards; any
  difference aborts the run.
- decide_many: the engine's batch call on columns (``ExchangeStream.columns``
  slices, numpy arrays), on columns with the cyclic GC on, and on a list of
  dicts; events per second. Then on columns once more with 10,000 users
  (the state stays in cache): what a row costs the core, beside what it
  costs at a million users, where rows wait for memory.
- Targets (from the issue) are reported as pass/fail, never asserted.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import msgspec  # noqa: E402
import numpy as np  # noqa: E402

from fraudcore import Engine  # noqa: E402
from fraudcore._native.counters import CounterStore, bench_chase, bench_lines  # noqa: E402
from fraudcore.rules.load import load_rules  # noqa: E402
from fraudcore.synth import TYPES, ExchangeStream  # noqa: E402

from .machine import summary as machine_summary
from . import handwritten_counters  # noqa: E402
from .common import Mismatch, spread  # noqa: E402
from .handwritten_counters import HandwrittenEngine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_RULES = ROOT / "examples" / "rules.yaml"
SEED = 7

# prefault: counter memory touched at start (like a JVM's AlwaysPreTouch), in
# huge pages where the kernel allows. Capacities: see sized_capacity().
FULL = {"prefault": True, "users": 1_000_000, "populate": 2_000_000, "repeats": 7, "decide_events": 50_000,
        "check_events": 20_000, "many_events": 200_000, "many_repeats": 5, "cache_users": 10_000,
        "cache_events": 100_000, "counter_keys": 1_000_000, "counter_ops": 2_000_000, "counter_py_ops": 300_000, "counter_repeats": 7}
QUICK = {"prefault": True, "users": 100_000, "populate": 200_000, "repeats": 5, "decide_events": 20_000,
         "check_events": 5_000, "many_events": 50_000, "many_repeats": 3, "cache_users": 10_000,
         "cache_events": 20_000, "counter_keys": 200_000, "counter_ops": 500_000, "counter_py_ops": 100_000, "counter_repeats": 5}

TARGETS = {
    "counter_update_ns_max": 100.0,
    "decide_p50_us_max": 3.0,
    "decide_p99_us_max": 15.0,
    "handwritten_over_decide_min": 4.0,
    "decide_many_eps_min": 1_000_000.0,
}
QUOTED = {"plain Python, 4 counters (dicts + deques)": "7-11 µs/event",
          "Redis sorted sets over loopback, 4 counters (redis-py, one pipeline per event)": "~400 µs/event"}

BATCH_LOOKAHEAD = 8     # update_many: events ahead whose lines are prefetched
COUNTER_SPECS = [("count", "count", 3_600_000, 60_000), ("sum", "sum", 3_600_000, 60_000),
                 ("distinct", "distinct", 3_600_000, 60_000)]




def sized_capacity(keys: dict[str, int], headroom: float = 2.0) -> dict[str, int]:
    """Per counter: the power of two at or above ``headroom`` times its keys
    (at least 2^16), so tables stay at most half full as the timed events
    add keys."""
    return {name: max(1 << 16, 1 << max(int(n * headroom) - 1, 0).bit_length()) for name, n in keys.items()}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# decide_many's inputs, each timed on its own fresh events.
MANY_KINDS = ("columns", "columns, GC on", "list")


class GCOff:
    """Collect, then time with the cyclic GC off (``off`` False: on)."""

    def __init__(self, off: bool = True):
        self.off = off

    def __enter__(self):
        gc.collect()
        if self.off:
            gc.disable()

    def __exit__(self, *exc):
        gc.enable()


# ------------------------------------------------------------------ events --

def rows(cols: dict[str, np.ndarray], lo: int, hi: int) -> list[dict[str, Any]]:
    """Events lo..hi of columns as dicts, without the ``label`` (what a gateway sends)."""
    names = [k for k in cols if k != "label"]
    lists = [cols[k][lo:hi].tolist() for k in names]
    with GCOff():
        return [dict(zip(names, r)) for r in zip(*lists)]


def column_slice(cols: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    return {k: v[lo:hi] for k, v in cols.items() if k != "label"}


def backfill(stream: ExchangeStream, template: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One event per user of the population (users in random order), in the
    hour before the stream starts: the stream's per-user attributes (id,
    country, e-mail, KYC, age, agent, first device, home IP, first wallet for
    withdrawals), with the type, amount, asset... of ``template`` events."""
    u = stream._users                      # built by the stream's first columns() call
    n = u.n
    rng = np.random.default_rng([SEED, 0xFEED])
    who = rng.permutation(n)
    cols = {k: v[:n].copy() for k, v in template.items() if k != "label"}
    cols["user_id"] = u.ids[who]
    cols["currency"] = u.currency_pool[u.currency[who]]
    cols["country"] = u.country_pool[u.country[who]]
    cols["ip_country"] = cols["country"].copy()
    cols["email_domain"] = u.email_pool[u.email[who]]
    cols["kyc_level"] = u.kyc[who]
    cols["account_age_days"] = u.age0[who]
    cols["user_agent"] = u.agent_pool[u.agent[who]]
    cols["device_id"] = u.device_pool[3 * who]
    cols["ip"] = u.home_ip[who]
    wd = cols["type"] == "withdrawal"
    dest = np.full(n, "", dtype=object)
    dest[wd] = u.wallet_pool[3 * who[wd]]
    cols["dest_address"] = dest
    cols["ts"] = stream.start_ms - 3_600_000 + (np.arange(n, dtype=np.int64) * 3_600_000) // n
    return cols


# ---------------------------------------------------------------- counters --

def bench_counters(cfg: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    keys, ops, py_ops = cfg["counter_keys"], cfg["counter_ops"], cfg["counter_py_ops"]
    cap = 2 ** 21 if keys > 2 ** 18 else 2 ** 19
    # Two stores of the same shape: one for the C loops (keys fmix64(i)), one
    # for the Python calls (str keys), each holding `keys` keys per counter.
    # The C loops' store is pre-touched with huge pages where allowed (as a
    # deployment runs it: Engine(prefault=True)); the Python calls' is not.
    store = CounterStore(COUNTER_SPECS, capacity=cap, sketches=16, max_future_ms=None, prefault=True)
    pstore = CounterStore(COUNTER_SPECS, capacity=cap, sketches=16, max_future_ms=None)
    ts0 = 1_700_000_000_000
    names = [s[0] for s in COUNTER_SPECS]
    # Fill every counter with `keys` keys first (claims slots and touches pages).
    log(f"engine/counters: filling {len(names)} tables with {keys:,} keys each (twice)")
    for c in range(len(names)):
        store.bench_update(c, keys, keys, ts0)
    str_keys = [f"u{i:07d}" for i in range(keys)]
    rng = np.random.default_rng([SEED, 0xC0])
    py_keys = [str_keys[i] for i in rng.integers(0, keys, py_ops).tolist()]
    py_items = [f"dv{i:x}" for i in rng.integers(0, 6, py_ops).tolist()]
    for c, name in enumerate(names):                 # the Python keys too
        for k in str_keys:
            pstore.update_key(c, k, ts0, 1.0, k if name == "distinct" else None)
    at = ts0 + ops

    def c_update(c: int, nkeys: int, lookahead: int = 0) -> float:
        return store.bench_update(c, ops, nkeys, ts0 + 1, lookahead)

    def c_read(c: int, nkeys: int) -> float:
        return store.bench_read(c, ops, nkeys, at)

    def py_update(c: int) -> float:
        upd = pstore.update_key
        distinct = names[c] == "distinct"
        ts = at
        with GCOff():
            t0 = time.perf_counter_ns()
            if distinct:
                for k, it in zip(py_keys, py_items):
                    upd(c, k, ts, 0.0, it)
            else:
                for k in py_keys:
                    upd(c, k, ts, 1.5)
            t1 = time.perf_counter_ns()
        return (t1 - t0) / len(py_keys)

    def py_read(c: int) -> float:
        rd = pstore.read_key
        with GCOff():
            t0 = time.perf_counter_ns()
            for k in py_keys:
                rd(c, k, at)
            t1 = time.perf_counter_ns()
        return (t1 - t0) / len(py_keys)

    def py_floor() -> float:          # the loop and one call of a builtin taking the same arguments
        f = max
        with GCOff():
            t0 = time.perf_counter_ns()
            for k in py_keys:
                f(k, k)
            t1 = time.perf_counter_ns()
        return (t1 - t0) / len(py_keys)

    cases: dict[str, Callable[[], float]] = {}
    for c, name in enumerate(names):
        cases[f"{name}.update.C.{keys}keys"] = (lambda c=c: c_update(c, keys))
        cases[f"{name}.update_many.C.{keys}keys"] = (lambda c=c: c_update(c, keys, BATCH_LOOKAHEAD))
        cases[f"{name}.read.C.{keys}keys"] = (lambda c=c: c_read(c, keys))
        cases[f"{name}.update.C.1024keys"] = (lambda c=c: c_update(c, 1024))
        cases[f"{name}.read.C.1024keys"] = (lambda c=c: c_read(c, 1024))
        cases[f"{name}.update_key.py.{keys}keys"] = (lambda c=c: py_update(c))
        cases[f"{name}.read_key.py.{keys}keys"] = (lambda c=c: py_read(c))
    cases["python_call_floor"] = py_floor
    # The memory's own latency over as many bytes as the largest table: a
    # chain of dependent loads, the floor of an update made one after another.
    chase_bytes = max(st_["capacity"] * st_["bytes_per_key"] for st_ in store.stats()["counters"].values())
    order = rng.permutation(chase_bytes // 64).astype(np.uint32)
    cases["memory.chase"] = lambda: bench_chase(order, ops // 2)
    # And how fast lines come when none waits for another: a batch's floor
    # per line it needs, in huge pages (the store) and in 4 KiB pages (the
    # Python heap, where an event's field objects lie).
    cases["memory.lines"] = lambda: bench_lines(order, ops // 2, BATCH_LOOKAHEAD, True)[0]
    cases["memory.lines_4k"] = lambda: bench_lines(order, ops // 2, BATCH_LOOKAHEAD, False)[0]
    for fn in cases.values():          # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(cfg["counter_repeats"]):
        log(f"engine/counters: repeat {r + 1}/{cfg['counter_repeats']}")
        for name, fn in cases.items():
            times[name].append(fn())
    st = store.stats()
    pst = pstore.stats()
    out = {
        "keys": keys, "capacity": cap, "ops_per_c_timing": ops, "ops_per_py_timing": len(py_keys),
        "window_ms": 3_600_000, "resolution_ms": 60_000,
        "ns": {k: spread(v) for k, v in times.items()},
        "store": {n: {k: st["counters"][n][k] for k in ("keys", "capacity", "bytes_per_key", "evictions", "dropped")}
                  for n in names},
        "py_store": {n: {k: pst["counters"][n][k] for k in ("keys", "capacity", "evictions", "dropped")} for n in names},
        "store_bytes": st["bytes"], "chase_bytes": chase_bytes,
    }
    store.close()
    pstore.close()
    return out


# ------------------------------------------------------------------ decide --

def check_agreement(n: int, log: Callable[[str], None], bad: Sequence[str]) -> dict[str, Any]:
    """Fresh engine and hand-written engine on a low-rate stream (so that the
    planted patterns play out inside the counters' windows): equal decisions."""
    ev = rows(ExchangeStream(seed=SEED + 100, users=5_000, rate_per_s=20.0, bad_addresses=bad).columns(n), 0, n)
    engine = Engine.from_file(EXAMPLE_RULES, capacity=2 ** 16)
    st = engine.stats()["counters"]
    for name, (w, r) in handwritten_counters.WINDOWS.items():
        if (st[name]["window_ms"], st[name]["resolution_ms"]) != (w, r):
            raise Mismatch(f"bench engine: counter {name}: engine window/resolution {st[name]['window_ms']}/"
                           f"{st[name]['resolution_ms']}, hand-written {w}/{r}")
    hw = HandwrittenEngine()
    hits: dict[str, int] = {}
    actions: dict[str, int] = {}
    for i, e in enumerate(ev):
        d = engine.decide(e)
        h = hw.decide(e)
        if d.errors or (d.action, d.score, d.rules) != h:
            raise Mismatch(f"bench engine: decisions differ on check event #{i}; nothing was timed.\n"
                           f"  event: {e}\n  engine: {(d.action, d.score, d.rules)} errors={d.errors} "
                           f"features={d.features}\n  hand-written: {h}")
        actions[d.action] = actions.get(d.action, 0) + 1
        for r in d.rules:
            hits[r] = hits.get(r, 0) + 1
    engine.close()
    log(f"engine: agreement on {n:,} check events; rules hit: {len(hits)}/26")
    return {"events": n, "stream": "ExchangeStream(seed=107, users=5000, rate_per_s=20)", "actions": actions,
            "rule_hits": dict(sorted(hits.items()))}


def timed_pass(fn: Callable[[dict], Any], events: Sequence[dict]) -> float:
    """Seconds for one pass of ``fn`` over ``events``, GC off."""
    with GCOff():
        a = time.perf_counter()
        for e in events:
            fn(e)
        return time.perf_counter() - a


def touched(n: int, dtype: Any) -> np.ndarray:
    """n zeros whose pages are written now: np.zeros of a large array gets
    fresh pages from the kernel, and the first write to each, inside the
    timed pass, is a page fault charged to the call that made it."""
    a = np.empty(n, dtype=dtype)
    a.fill(0)
    return a


class Outcomes:
    """The (action, score, rules) of each decision of a timed pass, in
    arrays sized before it. Keeping the results themselves (a Decision and
    its features per event) grew the heap during the pass: ~1,900 page
    faults in the heap's new pages per 50,000 events. In some repeats each
    fault took ~13 µs (perf: kernel time zeroing pages, under
    _PyObject_Malloc), and the calls that took them made p99 15-18 µs
    instead of 7-8: the harness's allocations, timed as the engine's."""

    def __init__(self, n: int, rule_ids: Sequence[str]) -> None:
        if len(rule_ids) > 64:
            raise ValueError(f"bench engine: Outcomes keeps the matched rules of up to 64 rules, not {len(rule_ids)}")
        self.rule_ids = list(rule_ids)
        self.bit = {r: 1 << i for i, r in enumerate(rule_ids)}
        self.action = np.full(n, None, dtype=object)   # will hold the rules' own action strings: no new objects
        self.score = touched(n, np.int64)
        self.rules = touched(n, np.uint64)
        self.errors = touched(n, np.bool_)

    def keep(self, i: int, action: str, score: int, rules: Sequence[str], errors: bool = False) -> None:
        self.action[i] = action
        self.score[i] = score
        self.rules[i] = sum(self.bit[r] for r in rules)
        self.errors[i] = errors

    def keep_decision(self, i: int, d: Any) -> None:
        self.keep(i, d.action, d.score, d.rules, bool(d.errors))

    def keep_tuple(self, i: int, t: tuple[str, int, list[str]]) -> None:
        self.keep(i, *t)

    def get(self, i: int) -> list[Any]:
        return [self.action[i], int(self.score[i]), [r for r in self.rule_ids if int(self.rules[i]) & self.bit[r]]]


def timed_decide(fn: Callable[[dict], Any], events: Sequence[Any], keep: Callable[[int, Any], None] | None = None,
                 decode: Callable[[Any], dict] | None = None) -> tuple[np.ndarray, float]:
    """Per-call ns (perf_counter_ns around each call) and ns of the whole
    pass. ``decode(item)`` makes each event just before its call (from its
    MessagePack frame, as the server gets it); ``keep(i, result)`` records
    each result after it. Neither is counted in the call or the pass."""
    n = len(events)
    lat = touched(n, np.int64)
    pc = time.perf_counter_ns
    aside = 0
    with GCOff():
        start = pc()
        i = 0
        for e in events:
            if decode is not None:
                t = pc()
                e = decode(e)
                aside += pc() - t
            t0 = pc()
            r = fn(e)
            t1 = pc()
            lat[i] = t1 - t0
            if keep is not None:
                keep(i, r)
                aside += pc() - t1
            i += 1
        end = pc()
    return lat, float(end - start - aside)


PCTS = (50, 90, 99, 99.9)


def latency_summary(lat: np.ndarray, pass_ns: float) -> dict[str, float]:
    p = np.percentile(lat, PCTS)
    return {"p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2]), "p99.9": float(p[3]),
            "mean": float(lat.mean()), "max": float(lat.max()),
            "pass_ns_per_event": pass_ns / len(lat), "events_per_s": len(lat) / pass_ns * 1e9}


def run(quick: bool = False, log: Callable[[str], None] = print, out: Path | None = None) -> dict[str, Any]:
    cfg = QUICK if quick else FULL
    t_suite = time.perf_counter()
    counters = bench_counters(cfg, log)

    example = load_rules(EXAMPLE_RULES)
    bad = example.lists["bad_addresses"].values
    agreement = check_agreement(cfg["check_events"], log, bad)

    users, populate, R, M = cfg["users"], cfg["populate"], cfg["repeats"], cfg["decide_events"]
    many, many_r = cfg["many_events"], cfg["many_repeats"]
    total = populate + 2 * R * M + 2_000 + 3 * many_r * many
    log(f"engine: generating {total:,} stream events (seed {SEED}, {users:,} users) + a {users:,}-event backfill")
    t0 = time.perf_counter()
    stream = ExchangeStream(seed=SEED, users=users, bad_addresses=bad)
    cols = stream.columns(total)
    fill = backfill(stream, ExchangeStream(seed=SEED + 1, users=users).columns(users))
    gen_s = time.perf_counter() - t0

    # The hand-written engine first: its key counts size the engine's tables.
    hw = HandwrittenEngine()
    rss0 = rss_bytes()
    chunk = 100_000
    ingest_s = 0.0
    hw_ingest_s = 0.0
    n_pop = 0
    sources = ((fill, users), (cols, populate))
    for src, n in sources:
        for lo in range(0, n, chunk):
            hw_ingest_s += timed_pass(hw.ingest, rows(src, lo, min(lo + chunk, n)))
    capacity = sized_capacity(hw.keys())
    log(f"engine: hand-written populated ({hw_ingest_s:.1f} s); Engine.from_file(examples/rules.yaml, "
        f"capacity={{{', '.join(f'{k}: 2^{v.bit_length() - 1}' for k, v in capacity.items())}}}, "
        f"prefault={cfg['prefault']}); populating")
    engine = Engine.from_file(EXAMPLE_RULES, capacity=capacity, prefault=cfg["prefault"])
    for src, n in sources:
        for lo in range(0, n, chunk):
            evs = rows(src, lo, min(lo + chunk, n))
            ingest_s += timed_pass(engine.ingest, evs)
            n_pop += len(evs)
        log(f"engine: populated {n_pop:,} events (engine {ingest_s:.1f} s)")
    st = engine.stats()
    store_after_populate = {
        "events": n_pop, "backfill_events": users, "stream_events": populate,
        "engine_ingest_s": ingest_s, "engine_ingest_ns_per_event": ingest_s / n_pop * 1e9,
        "handwritten_ingest_s": hw_ingest_s, "handwritten_ingest_ns_per_event": hw_ingest_s / n_pop * 1e9,
        "generate_events_s": gen_s,
        "keys": st["keys"], "memory_bytes_mapped": st["memory_bytes"], "evictions": st["evictions"],
        "per_counter": {k: {"keys": v["keys"], "capacity": v["capacity"], "evictions": v["evictions"],
                            "dropped": v["dropped"], "too_old": v["too_old"],
                            **({"sketches_in_use": v["sketches_in_use"], "sketch_pool_full": v["sketch_pool_full"]}
                               if "sketches_in_use" in v else {})}
                        for k, v in st["counters"].items()},
        "distinct_users_in_devices_24h": st["counters"]["devices_24h"]["keys"],
        "process_rss_bytes": rss_bytes(), "process_rss_bytes_before_engine": rss0,
        "handwritten_keys": hw.keys(),
    }
    log(f"engine: store keys {st['keys']:,} (devices_24h {st['counters']['devices_24h']['keys']:,} users), "
        f"mapped {st['memory_bytes'] / 2**30:.1f} GiB, process RSS {rss_bytes() / 2**30:.1f} GiB, "
        f"evictions {st['evictions']}")

    # Timed: decide vs hand-written, interleaved; each repeat a fresh slice.
    def floor(e):
        return None

    # Warm-up on the 2,000 events that follow the populating ones (both
    # engines count them, so their states stay equal), then the timed slices,
    # all in stream order (the stream's jitter is 2 s, below every bucket).
    off = populate
    warm = rows(cols, off, off + 2_000)
    off += len(warm)
    for e in warm:
        engine.decide(e)
        hw.decide(e)
    timed_decide(floor, warm)
    slices, frames = [], []
    for r in range(R):
        slices.append(rows(cols, off, off + M))
        frames.append([msgspec.msgpack.encode(e) for e in rows(cols, off + M, off + 2 * M)])
        off += 2 * M
    decode = msgspec.msgpack.Decoder().decode
    lats: dict[str, list[np.ndarray]] = {"decide": [], "decide_decoded": [], "handwritten": [], "call_floor": []}
    summaries: dict[str, list[dict[str, float]]] = {k: [] for k in lats}
    mismatches = 0
    first_mismatch = None
    rule_ids = [r.id for r in example.rules]
    for r in range(R):
        log(f"engine: decide repeat {r + 1}/{R} ({M:,} fresh events)")
        evs = slices[r]
        dec, hand = Outcomes(M, rule_ids), Outcomes(M, rule_ids)
        lat_d, pass_d = timed_decide(engine.decide, evs, dec.keep_decision)
        lat_h, pass_h = timed_decide(hw.decide, evs, hand.keep_tuple)
        lat_f, pass_f = timed_decide(floor, evs)
        # The next slice decoded from frames, each just before its call; the
        # hand-written engine decides it too (untimed), so the states stay equal.
        fresh, hand_fresh = Outcomes(M, rule_ids), Outcomes(M, rule_ids)
        lat_n, pass_n = timed_decide(engine.decide, frames[r], fresh.keep_decision, decode)
        timed_decide(hw.decide, frames[r], hand_fresh.keep_tuple, decode)
        for name, lat, p in (("decide", lat_d, pass_d), ("decide_decoded", lat_n, pass_n),
                             ("handwritten", lat_h, pass_h), ("call_floor", lat_f, pass_f)):
            lats[name].append(lat)
            summaries[name].append(latency_summary(lat, p))
        for ours, theirs in ((dec, hand), (fresh, hand_fresh)):
            bad = ours.errors | (ours.action != theirs.action) | (ours.score != theirs.score) | (ours.rules != theirs.rules)
            mismatches += int(bad.sum())
            if bad.any() and first_mismatch is None:
                i = int(np.argmax(bad))
                first_mismatch = {"repeat": r, "index": i, "decoded": ours is fresh, "engine": ours.get(i),
                                  "engine_errors": bool(ours.errors[i]), "handwritten": theirs.get(i)}
    if mismatches:
        raise Mismatch(f"bench engine: {mismatches} timed decisions differ from the hand-written ones: {first_mismatch}")
    decide: dict[str, Any] = {}
    for name in lats:
        per = summaries[name]
        pooled = latency_summary(np.concatenate(lats[name]), sum(s["pass_ns_per_event"] for s in per) * M)
        decide[name] = {
            "per_repeat": per,
            "median_over_repeats": {k: statistics.median(s[k] for s in per) for k in per[0]},
            "spread": {k: spread([s[k] for s in per]) for k in ("p50", "p99", "mean", "events_per_s")},
            "pooled": pooled,
        }
    ratio_mean = [h["mean"] / d["mean"] for h, d in zip(summaries["handwritten"], summaries["decide"])]
    ratio_p50 = [h["p50"] / d["p50"] for h, d in zip(summaries["handwritten"], summaries["decide"])]
    ratios = {"handwritten_over_decide_mean": decide["handwritten"]["median_over_repeats"]["mean"]
              / decide["decide"]["median_over_repeats"]["mean"],
              "handwritten_over_decide_p50": decide["handwritten"]["median_over_repeats"]["p50"]
              / decide["decide"]["median_over_repeats"]["p50"],
              "handwritten_over_decide_mean_per_repeat": ratio_mean,
              "handwritten_over_decide_p50_per_repeat": ratio_p50}
    st2 = engine.stats()

    # decide_many: columns and lists, fresh slices, engine only; columns
    # also with the cyclic GC on, as a service that does not tune it runs.
    many_times: dict[str, list[float]] = {kind: [] for kind in MANY_KINDS}
    slices = []
    for r in range(many_r):
        batch = {}
        for kind in MANY_KINDS:
            batch[kind] = (rows if kind == "list" else column_slice)(cols, off, off + many)
            off += many
        slices.append(batch)
    engine.decide_many(column_slice(cols, populate, populate + 1_000))   # warm-up (warm events, counted again)
    for r in range(many_r):
        log(f"engine: decide_many repeat {r + 1}/{many_r} ({many:,} events, {', '.join(MANY_KINDS)})")
        for kind, src in slices[r].items():
            many_times[kind].append(many_per_s(engine, src, many, gc_off=kind != "columns, GC on"))
    decide_many = {k: spread(v) for k, v in many_times.items()}
    in_cache = bench_many_in_cache(cfg, log, bad)

    med_d = decide["decide"]["median_over_repeats"]
    upd = counters["ns"]
    def worst(op: str) -> float:
        return max(upd[f"{n}.{op}.C.{counters['keys']}keys"]["median"] for n in ("count", "sum", "distinct"))

    worst_update, worst_batch = worst("update"), worst("update_many")
    targets = [
        {"name": f"counter update, C loop one after another, {counters['keys']:,} keys (worst of count/sum/distinct, median ns)",
         "target": f"<= {TARGETS['counter_update_ns_max']:.0f}", "measured": worst_update,
         "pass": worst_update <= TARGETS["counter_update_ns_max"]},
        {"name": f"counter update in a batch (update_many, {BATCH_LOOKAHEAD} ahead), {counters['keys']:,} keys (worst, median ns)",
         "target": f"<= {TARGETS['counter_update_ns_max']:.0f}", "measured": worst_batch,
         "pass": worst_batch <= TARGETS["counter_update_ns_max"]},
        {"name": f"decide p50 (µs), {store_after_populate['distinct_users_in_devices_24h']:,} users in the store",
         "target": f"<= {TARGETS['decide_p50_us_max']}", "measured": med_d["p50"] / 1000,
         "pass": med_d["p50"] / 1000 <= TARGETS["decide_p50_us_max"]},
        {"name": "decide p99 (µs)", "target": f"<= {TARGETS['decide_p99_us_max']}", "measured": med_d["p99"] / 1000,
         "pass": med_d["p99"] / 1000 <= TARGETS["decide_p99_us_max"]},
        {"name": "hand-written Python / decide (mean per event)", "target": f">= {TARGETS['handwritten_over_decide_min']}",
         "measured": ratios["handwritten_over_decide_mean"],
         "pass": ratios["handwritten_over_decide_mean"] >= TARGETS["handwritten_over_decide_min"]},
        {"name": "decide_many on columns (events/s, one core)", "target": f">= {TARGETS['decide_many_eps_min']:,.0f}",
         "measured": decide_many["columns"]["median"],
         "pass": decide_many["columns"]["median"] >= TARGETS["decide_many_eps_min"]},
    ]
    result = {
        "suite": "engine",
        "config": {**cfg, "quick": quick, "seed": SEED, "rules": str(EXAMPLE_RULES.relative_to(ROOT)),
                   "gc": "disabled during every timed loop but decide_many's \"columns, GC on\" (gc.collect() before each)",
                   "timer": "time.perf_counter_ns around each decide call; C timers (CLOCK_MONOTONIC) for bench_update/read",
                   "order": "per repeat: decide, handwritten, call_floor on the same fresh slice; then decide "
                            "(timed) and handwritten (untimed) on the next slice, decoded from MessagePack frames",
                   "engine_options": {"capacity": capacity, "sketches": 16, "prefault": cfg["prefault"]}},
        "counters": counters,
        "agreement": {**agreement, "timed_events_compared": 2 * R * M, "timed_mismatches": mismatches},
        "populate": store_after_populate,
        "decide": decide,
        "ratios": ratios,
        "decide_many_events_per_s": decide_many,
        "decide_many_in_cache": in_cache,
        "store_after_decide": {"keys": st2["keys"], "evictions": st2["evictions"], "rss_bytes": rss_bytes(),
                               "peak_rss_bytes": peak_rss_bytes()},
        "targets": targets,
        "quoted_in_issue": QUOTED,
        "suite_seconds": time.perf_counter() - t_suite,
    }
    engine.close()
    return result


def many_per_s(engine: Engine, batch: Any, n: int, gc_off: bool = True) -> float:
    """Events per second of one decide_many call over ``batch`` (n events)."""
    with GCOff(gc_off):
        a = time.perf_counter_ns()
        engine.decide_many(batch)
        b = time.perf_counter_ns()
    return n / (b - a) * 1e9


def bench_many_in_cache(cfg: dict[str, Any], log: Callable[[str], None], bad) -> dict[str, Any]:
    """decide_many on columns over a small population, whose state stays in
    the cache: what a row costs the core, beside the rate at a million
    users, where rows wait for memory."""
    users, many, reps = cfg["cache_users"], cfg["cache_events"], cfg["many_repeats"]
    log(f"engine: decide_many with {users:,} users (the state in cache), {reps} x {many:,} events")
    stream = ExchangeStream(seed=SEED, users=users, bad_addresses=bad)
    cols = stream.columns(2 * users + 1_000 + reps * many)
    fill = backfill(stream, ExchangeStream(seed=SEED + 1, users=users).columns(users))
    engine = Engine.from_file(EXAMPLE_RULES, capacity=1 << 16, prefault=cfg["prefault"])
    try:
        for src, n in ((fill, users), (cols, 2 * users)):
            for e in rows(src, 0, n):
                engine.ingest(e)
        off = 2 * users
        engine.decide_many(column_slice(cols, off, off + 1_000))   # warm-up
        off += 1_000
        eps = []
        for _ in range(reps):
            eps.append(many_per_s(engine, column_slice(cols, off, off + many), many))
            off += many
        st = engine.stats()
    finally:
        engine.close()
    return {"users": users, "events_per_batch": many, "events_per_s": spread(eps),
            "keys": st["keys"], "evictions": st["evictions"]}


def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    cfg = result["config"]
    c = result["counters"]
    k = c["keys"]
    pop = result["populate"]
    out = [
        f"# bench engine{' (quick)' if cfg['quick'] else ''}",
        "",
        machine_summary(machine),
        "",
        f"## Counters (ns per operation; median of {cfg['counter_repeats']} repeats, 1 h window, 60 buckets, "
        f"{k:,} keys in a {c['capacity']:,}-slot table)",
        "",
        f"| agg | update, C loop | update_many ({BATCH_LOOKAHEAD} ahead) | read, C loop | update, C, 1,024 keys | "
        "read, C, 1,024 keys | update_key (Python) | read_key (Python) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ns = c["ns"]
    for a in ("count", "sum", "distinct"):
        out.append(f"| {a} | {ns[f'{a}.update.C.{k}keys']['median']:.0f} | {ns[f'{a}.update_many.C.{k}keys']['median']:.0f} | "
                   f"{ns[f'{a}.read.C.{k}keys']['median']:.0f} | "
                   f"{ns[f'{a}.update.C.1024keys']['median']:.0f} | {ns[f'{a}.read.C.1024keys']['median']:.0f} | "
                   f"{ns[f'{a}.update_key.py.{k}keys']['median']:.0f} | {ns[f'{a}.read_key.py.{k}keys']['median']:.0f} |")
    out += [f"", f"Python loop floor (loop + one builtin call with two args): {ns['python_call_floor']['median']:.0f} ns.",
            f"Memory latency: one load whose address the previous load gave, over {c['chase_bytes'] / 2**30:.1f} GiB "
            f"(as much as the largest table above), in huge pages: {ns['memory.chase']['median']:.0f} ns. "
            f"An update made one after another waits for about one such miss.",
            f"Memory throughput: loads of random lines over the same bytes, none waiting for another "
            f"({BATCH_LOOKAHEAD} ahead prefetched): {ns['memory.lines']['median']:.1f} ns a line in huge pages, "
            f"{ns['memory.lines_4k']['median']:.1f} ns in 4 KiB pages (the Python heap's, where an event's field "
            f"objects lie): what a batch pays per line it needs from memory.", ""]
    out += [
        f"## decide with state ({cfg['rules']}: 26 rules, 12 counters)",
        "",
        f"Store populated with {pop['events']:,} events through `engine.ingest` "
        f"({pop['backfill_events']:,}-event backfill, one per user, + {pop['stream_events']:,} stream events) in "
        f"{pop['engine_ingest_s']:.1f} s ({pop['engine_ingest_ns_per_event']:,.0f} ns/event; hand-written ingest "
        f"{pop['handwritten_ingest_s']:.1f} s): {pop['keys']:,} keys in all, "
        f"{pop['distinct_users_in_devices_24h']:,} distinct users (devices_24h keys), "
        f"{pop['memory_bytes_mapped'] / 2**30:.1f} GiB mapped "
        f"({'prefaulted' if cfg['prefault'] else 'lazily touched'}; each table twice its keys, a power of two), process RSS "
        f"{pop['process_rss_bytes'] / 2**30:.1f} GiB (with the hand-written state and the events), evictions {pop['evictions']}.",
        "",
        f"Per-event latency, `perf_counter_ns` around each call, GC off; {cfg['repeats']} repeats x "
        f"{cfg['decide_events']:,} fresh events; median over repeats (pooled in brackets).",
        "",
        "| path | p50 µs | p90 µs | p99 µs | p99.9 µs | mean µs | events/s (whole pass) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"decide": "Engine.decide (dict → Decision)",
              "decide_decoded": "Engine.decide, each event decoded from its MessagePack frame just before the call",
              "handwritten": "hand-written Python (bench/handwritten_counters.py)",
              "call_floor": "floor: loop + timers + empty call"}
    for name, label in labels.items():
        m = result["decide"][name]["median_over_repeats"]
        p = result["decide"][name]["pooled"]
        out.append(f"| {label} | {m['p50'] / 1e3:.2f} ({p['p50'] / 1e3:.2f}) | {m['p90'] / 1e3:.2f} | "
                   f"{m['p99'] / 1e3:.2f} ({p['p99'] / 1e3:.2f}) | {m['p99.9'] / 1e3:.2f} ({p['p99.9'] / 1e3:.2f}) | "
                   f"{m['mean'] / 1e3:.2f} | {m['events_per_s']:,.0f} |")
    r = result["ratios"]
    pr = r["handwritten_over_decide_mean_per_repeat"]
    out += [
        "",
        f"Hand-written / decide: {r['handwritten_over_decide_mean']:.2f}x on the mean, "
        f"{r['handwritten_over_decide_p50']:.2f}x on p50 (paired per repeat, mean: {min(pr):.2f}-{max(pr):.2f}). "
        f"Decisions equal on {result['agreement']['events']:,} check events "
        f"({len(result['agreement']['rule_hits'])}/26 rules hit) and on all "
        f"{result['agreement']['timed_events_compared']:,} timed events.",
        "",
        "## decide_many (events per second, one call per batch of "
        f"{cfg['many_events']:,} fresh events; median of {cfg['many_repeats']})",
        "",
        "| input | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    for kind in MANY_KINDS:
        s = result["decide_many_events_per_s"][kind]
        out.append(f"| {kind} | {s['median']:,.0f} | {s['min']:,.0f} | {s['max']:,.0f} |")
    small = result["decide_many_in_cache"]
    s = small["events_per_s"]
    out.append(f"| columns, {small['users']:,} users (the state in cache; batches of {small['events_per_batch']:,}) "
               f"| {s['median']:,.0f} | {s['min']:,.0f} | {s['max']:,.0f} |")
    out += ["", "## Targets (from the issue; reported, not asserted)", "", "| target | goal | measured | |",
            "|---|---|---:|---|"]
    for t in result["targets"]:
        out.append(f"| {t['name']} | {t['target']} | {t['measured']:,.2f} | {'PASS' if t['pass'] else 'FAIL'} |")
    out += ["", "Quoted in the issue for four counters (not measured here): "
            + "; ".join(f"{k}: {v}" for k, v in result["quoted_in_issue"].items()) + ".", ""]
    return "\n".join(out)
