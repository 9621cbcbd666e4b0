"""The peers suite: fraudcore beside other engines, in one run, on the same
rules and the same events.

Stateless: the 20 rules of bench/rules20.yaml on seeded exchange events
(``cel_suite.bench_events``: ExchangeStream(seed=7) with the example
bad-address list, no labels), decided by fraudcore (``Policy.decide``, the
native VM), the hand-written Python (bench/handwritten.py), rule-engine,
zen-engine (GoRules; also with its one regex rule written without a regex),
common-expression-language (CEL in Rust) and cel-python (CEL in Python); one
module a peer in bench/peers/, whose docstrings give each translation.
A peer answers which rules matched; ``peers.common.Verdicts`` turns that
into fraudcore's (action, score, rules), inside the timed call.

Stateful: five velocity counters of examples/rules.yaml (count x2, sum,
distinct, max) and the five rules reading them (bench/peers/velocity.py),
on a slow seeded stream (0.2 events/s, 2,000 users, in time order, 5 %
planted fraud) so that
the windows slide within the run: fraudcore's ``Engine.decide`` (its counter
memory faulted in at start, as deployed; and, for contrast, as it starts by
default, where a new key's first touch page-faults inside decide), plain
Python (bench/handwritten_counters.py's windows), and Redis via redis-py,
(i) sorted sets and (ii) time buckets, one pipeline per event, against a
redis-server the suite starts on a free loopback port (no persistence, a
temporary directory) and stops at the end. A PING per event gives the
round-trip floor of any Redis path.

Correctness before timing
- Stateless: every peer's matched rules, and the decision made from them,
  equal fraudcore's on every event of the set (all ``events``, the slow
  peers too), or the suite stops (``Mismatch``) before timing anything. A
  rule a peer cannot express would be listed in ``unsupported`` and left out
  of that peer's comparison (none is, for these peers).
- Stateful: a brute-force oracle keeps every counted value. On every event
  (check events, then the timed ones, verified after each repeat): fraudcore
  (its counter values only on the untimed check events), plain Python and the
  Redis buckets equal the oracle's bucketed window (fraudcore's documented
  bound: the window plus at most the one partly covered oldest bucket) and
  decide alike; the Redis sorted sets equal the oracle's exact window
  ``(ts - window, ts]``. Sums agree to 1e-9 relative (addition order differs).
  How often, and by how much, the exact window differs from fraudcore's is
  reported, with the decisions it changed.

Timing: ``perf_counter_ns`` around a whole pass (µs per event), GC disabled,
one untimed warm-up pass; paths interleaved repeat by repeat; medians, and
the ratio of each path to fraudcore on the same events (the slow peers run on
the first ``slow_events`` events, and fraudcore is timed on those too). The
counter paths get a fresh slice of the stream each repeat, all the same one.

Writes a bar chart next to the results, bench/results/peers.png
(peers-quick.png with ``quick``; ``run(out=DIR)`` puts it in DIR), and
returns its path in the result.
"""

from __future__ import annotations

import gc
import importlib
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fraudcore import Engine
from fraudcore.rules.policy import compile_policy
from fraudcore.synth import ExchangeStream

from .machine import summary as machine_summary
from . import handwritten
from .cel_suite import bench_events
from .common import Mismatch, spread
from .peers import velocity
from .peers.common import RULES20, Verdicts, rules20, version_of
from .peers.redis_counters import Buckets, SortedSets
from .peers.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"     # bench/__main__.py's default --out

FULL = {"events": 10_000, "slow_events": 1_000, "repeats": 7,
        "counter_check_events": 20_000, "counter_events": 3_000, "counter_repeats": 7}
QUICK = {"events": 2_000, "slow_events": 200, "repeats": 5,
         "counter_check_events": 3_000, "counter_events": 800, "counter_repeats": 5}
# Slow enough that the windows slide within a run, in time order (the sorted
# sets' exact window is defined for that), with 5x the default planted fraud
# so that the counter rules fire now and then.
COUNTER_STREAM = {"seed": 8, "users": 2_000, "rate_per_s": 0.2, "jitter_ms": 0, "fraud_rate": 0.05}
SLOW = ("rule-engine", "cel-python")          # milliseconds an event: timed on the first slow_events
FRAUDCORE_SLOW = "fraudcore, on the slow peers' events"

# import name -> PyPI name, for the message when one is missing.
REQUIRED = {"rule_engine": "rule-engine", "zen": "zen-engine", "cel": "common-expression-language",
            "celpy": "cel-python", "redis": "redis", "matplotlib": "matplotlib"}
HINT = "run `make bench-deps` (bash bench/deps.sh .venv/bin/python) to install the benchmark peers"


def require_peers() -> None:
    """Every peer package and redis-server, or stop with what is missing."""
    missing = []
    for module, dist in REQUIRED.items():
        try:
            importlib.import_module(module)
        except ImportError as e:
            missing.append(f"{dist} ({e})")
    if shutil.which("redis-server") is None:
        missing.append("redis-server (Debian package redis-server, not on PATH)")
    if missing:
        raise SystemExit("bench peers: missing " + "; ".join(missing) + f".\n{HINT}")


def timed(fn: Callable[[Any], Any], events: Sequence[Any]) -> tuple[float, list]:
    """ns per event of one pass of ``fn`` over ``events``, GC off; and the results."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        out = [fn(e) for e in events]
        t1 = time.perf_counter_ns()
    finally:
        gc.enable()
    return (t1 - t0) / len(events), out


def interleaved(paths: dict[str, tuple[Callable, Sequence]], repeats: int, log: Callable[[str], None],
                tag: str) -> dict[str, list[float]]:
    """A warm-up pass each, then ``repeats`` rounds of one timed pass each."""
    for fn, evs in paths.values():
        timed(fn, evs)
    times: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(repeats):
        log(f"peers: {tag} repeat {r + 1}/{repeats}")
        for name, (fn, evs) in paths.items():
            times[name].append(timed(fn, evs)[0])
    return times


def summary(times: dict[str, list[float]], baseline: dict[str, str], events: dict[str, int]) -> dict[str, Any]:
    """Per path: ns spread, events, and the ratio to its fraudcore baseline
    (of the medians, and paired per repeat)."""
    out = {}
    for name, ns in times.items():
        base = times[baseline[name]]
        out[name] = {"ns_per_event": spread(ns), "events": events[name], "baseline": baseline[name],
                     "ratio_to_fraudcore": statistics.median(ns) / statistics.median(base),
                     "ratio_per_repeat": [a / b for a, b in zip(ns, base)]}
    return out


# ----------------------------------------------------------------- stateless --

def stateless(cfg: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    # Imported here, after require_peers(): each imports its peer package.
    from .peers.cel_rust_peer import CelRustPeer
    from .peers.celpy_peer import CelPyPeer
    from .peers.rule_engine_peer import RuleEnginePeer
    from .peers.zen_peer import ZenPeer

    rf = rules20()
    policy = compile_policy(rf)
    if policy._native is None or not all(r.native for r in policy.rules):
        raise SystemExit("bench peers: the native VM is not available for every rule (run `make setup`; "
                         "is FRAUDCORE_NO_EXTENSIONS set?)")
    verdicts = Verdicts(rf)
    peers = [ZenPeer(rf), ZenPeer(rf, regex=False), CelRustPeer(rf), RuleEnginePeer(rf), CelPyPeer(rf)]
    log(f"peers: generating {cfg['events']} events (synth seed 7)")
    events = bench_events(cfg["events"])
    slow = events[: cfg["slow_events"]]
    log(f"peers: checking {', '.join(p.name for p in peers)} and the hand-written rules against fraudcore "
        f"on every event")
    agreement = check_stateless(policy, peers, verdicts, events, log)

    def decides(peer):
        matched = peer.matched
        return lambda e: verdicts(matched(e))

    paths = {"fraudcore": (policy.decide, events), FRAUDCORE_SLOW: (policy.decide, slow),
             "hand-written Python": (handwritten.decide, events)}
    for p in peers:
        paths[p.name] = (decides(p), slow if p.name in SLOW else events)
    times = interleaved(paths, cfg["repeats"], log, "stateless")
    baseline = {k: FRAUDCORE_SLOW if evs is slow else "fraudcore" for k, (_, evs) in paths.items()}
    return {
        "rules": str(RULES20.relative_to(ROOT)),
        "agreement": agreement,
        "peers": {p.name: {"package": p.dist, "version": p.version, "unsupported": p.unsupported,
                           "module": f"bench/peers/{type(p).__module__.rsplit('.', 1)[1]}.py"} for p in peers},
        "paths": summary(times, baseline, {k: len(evs) for k, (_, evs) in paths.items()}),
    }


def check_stateless(policy, peers, verdicts, events, log) -> dict[str, Any]:
    """Every peer == fraudcore == hand-written on every event, or Mismatch."""
    hits: dict[str, int] = {}
    for i, e in enumerate(events):
        d = policy.decide(e)
        expect = (d.action, d.score, d.rules)
        if d.errors or handwritten.decide(e)[:3] != expect:
            raise Mismatch(f"bench peers: fraudcore and the hand-written rules differ on event #{i} "
                           f"(errors {d.errors}); run `python -m bench cel` for details")
        for p in peers:
            try:
                matched = p.matched(e)
            except Exception as err:  # reported as a disagreement, with the event
                raise Mismatch(f"bench peers: {p.name} failed on event #{i}: {err!r}\n  event: {e}") from err
            if p.unsupported:   # compare the rules it could express; no decision without the others
                got = [r for r in matched if r not in p.unsupported]
                want = [r for r in d.rules if r not in p.unsupported]
            else:
                got, want = verdicts(matched), expect
            if got != want:
                raise Mismatch(f"bench peers: {p.name} decided event #{i} differently; nothing was timed.\n"
                               f"  event:     {e}\n  fraudcore: {want}\n  {p.name}: {got}")
        for r in d.rules:
            hits[r] = hits.get(r, 0) + 1
        if (i + 1) % 2000 == 0:
            log(f"peers: {i + 1}/{len(events)} events agree")
    return {"events": len(events), "rule_hits": dict(sorted(hits.items())),
            "rules_hit": len(hits), "rules": len(policy.rules)}


# ------------------------------------------------------------------ stateful --

# The counter paths, by the names they are reported under.
FC, FC_LAZY, PY, ZSETS, BUCKETS, PING = ("fraudcore", "fraudcore, not prefaulted", "plain Python",
                                         "Redis sorted sets", "Redis time buckets", "Redis PING (round-trip floor)")
CAPACITY = 2 ** 16      # keys a counter holds: room for every key of the stream, no eviction


def stateful(cfg: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    import redis  # after require_peers()

    rf, specs = velocity.load()
    n_check, m, repeats = cfg["counter_check_events"], cfg["counter_events"], cfg["counter_repeats"]
    total = n_check + (1 + repeats) * m
    log(f"peers: generating {total:,} counter events ({COUNTER_STREAM})")
    events = ExchangeStream(**COUNTER_STREAM).events(total)
    for e in events:
        del e["label"]
    # fraudcore as a deployment runs it, its counter memory faulted in at
    # start; and as it starts by default, where each new key's first touch of
    # its ~1 KB of buckets page-faults inside decide (the stream keeps
    # bringing new IPs). Two policies: an engine decides in its policy's slots.
    engine = Engine(compile_policy(rf), capacity=CAPACITY, prefault=True)
    lazy = Engine(compile_policy(rf), capacity=CAPACITY)
    python = velocity.PythonCounters(rf, specs)
    oracle = velocity.Oracle(specs)
    check = CounterCheck(specs, velocity.same)
    server = RedisServer()
    redis_version = server.version()
    with server:
        log(f"peers: {redis_version.split(' sha')[0]} on 127.0.0.1:{server.port}")
        client = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            zsets, buckets = SortedSets(client, rf, specs), Buckets(client, rf, specs)
            paths = {FC: engine.decide, FC_LAZY: lazy.decide, PY: python.decide, ZSETS: zsets.decide,
                     BUCKETS: buckets.decide, PING: lambda e: client.ping()}
            log(f"peers: checking the counter paths on {n_check:,} events "
                f"({(events[n_check - 1]['ts'] - events[0]['ts']) / 3.6e6:.1f} h of event time)")
            for e in events[:n_check]:
                d = engine.decide(e)
                fc_values = tuple(engine._engine.counter_values())    # right away: the next decide overwrites them
                outs = {name: fn(e) for name, fn in paths.items() if name not in (FC, PING)}
                check.event(e, oracle.values(e), {FC: d, **outs}, fc_values)
            times: dict[str, list[float]] = {k: [] for k in paths}
            for r in range(repeats + 1):                    # the first round is the warm-up
                if r:
                    log(f"peers: counters repeat {r}/{repeats}")
                part = events[n_check + r * m : n_check + (r + 1) * m]
                outs = {}
                for name, fn in paths.items():
                    ns, outs[name] = timed(fn, part)
                    if r:
                        times[name].append(ns)
                for i, e in enumerate(part):
                    check.event(e, oracle.values(e), {k: v[i] for k, v in outs.items()}, None)
            stored = client.dbsize()
        finally:
            client.close()
    keys = engine.stats()["keys"]
    engine.close()
    lazy.close()
    return {
        "counters": [s._asdict() for s in specs],
        "rules": list(velocity.RULES),
        "stream": {**COUNTER_STREAM, "events": total, "check_events": n_check, "timed_events_per_repeat": m,
                   "hours_of_event_time": (events[-1]["ts"] - events[0]["ts"]) / 3.6e6},
        "fraudcore_engine": {"capacity": CAPACITY, "keys_at_end": keys, "prefault": {FC: True, FC_LAZY: False}},
        "redis_server": redis_version, "redis_py": version_of("redis"), "hiredis": version_of("hiredis"),
        "redis_keys_at_end": stored,
        "agreement": check.report(),
        "paths": summary(times, {k: FC for k in times}, {k: m for k in times}),
    }


class CounterCheck:
    """Each counter path against the semantics it implements, event by event
    (see the module docs); stops at the first disagreement."""

    def __init__(self, specs, same: Callable[[Any, Any], bool]):
        self.names = [s.name for s in specs]
        self.same = same
        self.events = 0
        self.fc_value_checks = 0
        self.rule_hits: dict[str, int] = {}
        self.reads = {n: 0 for n in self.names}
        self.exact_differs = {n: 0 for n in self.names}
        self.exact_max_diff = {n: 0.0 for n in self.names}
        self.zset_decisions_differ = 0

    def _values(self, what: str, got: tuple, want: tuple, e: dict) -> None:
        if not all(map(self.same, got, want)):
            raise Mismatch(f"bench peers: counters: {what} on event #{self.events}; nothing more is timed.\n"
                           f"  event: {e}\n  counters: {self.names}\n  got:      {got}\n  expected: {want}")

    def event(self, e: dict, oracle_values: tuple[tuple, tuple], outs: dict[str, Any], fc_values: tuple | None) -> None:
        """``outs``: each path's output for ``e``; ``fc_values``: fraudcore's
        counter values, when read (untimed events only)."""
        exact, bucketed = oracle_values
        d = outs[FC]
        decision = (d.action, d.score, d.rules)
        if d.errors:
            raise Mismatch(f"bench peers: counters: fraudcore rule errors {d.errors} on event #{self.events}: {e}")
        if fc_values is not None:
            # fraudcore reads a counter when a rule needs it; compare those the other paths read.
            read = tuple(v if b is not None else None for v, b in zip(fc_values, bucketed))
            self._values("fraudcore != the bucketed window", read, bucketed, e)
            self.fc_value_checks += 1
        self._values("plain Python != the bucketed window", outs[PY][3], bucketed, e)
        self._values("Redis time buckets != the bucketed window", outs[BUCKETS][3], bucketed, e)
        self._values("Redis sorted sets != the exact window", outs[ZSETS][3], exact, e)
        lazy = outs[FC_LAZY]
        others = {FC_LAZY: (lazy.action, lazy.score, lazy.rules), PY: outs[PY][:3], BUCKETS: outs[BUCKETS][:3]}
        if any(o != decision for o in others.values()):
            raise Mismatch(f"bench peers: counters: decisions differ on event #{self.events}.\n  event: {e}\n"
                           f"  fraudcore: {decision}\n" + "".join(f"  {k}: {v}\n" for k, v in others.items()))
        for n, x, b in zip(self.names, exact, bucketed):
            if b is None:
                continue
            self.reads[n] += 1
            if not self.same(x, b):
                self.exact_differs[n] += 1
                self.exact_max_diff[n] = max(self.exact_max_diff[n], abs(b - x))
        self.zset_decisions_differ += outs[ZSETS][:3] != decision
        for r in decision[2]:
            self.rule_hits[r] = self.rule_hits.get(r, 0) + 1
        self.events += 1

    def report(self) -> dict[str, Any]:
        return {"events": self.events, "fraudcore_value_checks": self.fc_value_checks,
                "rule_hits": dict(sorted(self.rule_hits.items())), "reads": self.reads,
                "exact_window_differs": self.exact_differs, "exact_window_max_diff": self.exact_max_diff,
                "sorted_set_decisions_differ": self.zset_decisions_differ}


# ----------------------------------------------------------------------- run --

def run(quick: bool = False, log: Callable[[str], None] = print, out: Path | None = None) -> dict[str, Any]:
    require_peers()
    cfg = QUICK if quick else FULL
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "suite": "peers",
        "config": {**cfg, "quick": quick, "seed": 7, "slow_peers": list(SLOW),
                   "gc": "disabled during every timed pass (gc.collect() before)",
                   "timer": "time.perf_counter_ns around whole passes",
                   "order": "paths interleaved per repeat, one warm-up pass each"},
        "stateless": stateless(cfg, log),
        "stateful": stateful(cfg, log),
    }
    png = chart(result, (out or RESULTS) / ("peers-quick.png" if quick else "peers.png"))
    result["chart"] = str(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    result["suite_seconds"] = time.perf_counter() - t0
    log(f"peers: chart {result['chart']}")
    return result


def chart(result: dict[str, Any], path: Path) -> Path:
    from .plots import bar_chart

    panels = []
    for key, title in (("stateless", "20 stateless rules (bench/rules20.yaml)"),
                       ("stateful", "5 velocity counters + 5 rules (examples/rules.yaml)")):
        rows = [(_label(name, p), p["ns_per_event"]["median"] / 1e3, p["ratio_to_fraudcore"])
                for name, p in result[key]["paths"].items() if name != FRAUDCORE_SLOW]
        panels.append((title, sorted(rows, key=lambda r: r[1])))
    quick = " (quick)" if result["config"]["quick"] else ""
    return bar_chart(panels, f"fraudcore and its peers, µs per event{quick}; ratio to fraudcore in brackets", path)


def _label(name: str, p: dict[str, Any]) -> str:
    return f"{name} ({p['events']:,} ev)" if name in SLOW else name


# ------------------------------------------------------------------ markdown --

def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    cfg = result["config"]
    sl, sf = result["stateless"], result["stateful"]
    out = [
        f"# bench peers{' (quick)' if cfg['quick'] else ''}",
        "",
        machine_summary(machine),
        "",
        f"Medians of {cfg['repeats']} (rules) and {cfg['counter_repeats']} (counters) interleaved repeats, GC off; "
        "x fraudcore = path / fraudcore on the same events. "
        f"Chart: `{Path(result['chart']).name}`.",
        "",
        f"## 20 stateless rules ({sl['rules']})",
        "",
        f"Decisions checked equal to fraudcore's on all {sl['agreement']['events']:,} events before timing; "
        f"{sl['agreement']['rules_hit']}/{sl['agreement']['rules']} rules hit: "
        + ", ".join(f"{k} {v}" for k, v in sl["agreement"]["rule_hits"].items()) + ".",
        "",
        "| path | version | µs/event | min | max | events | x fraudcore |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, p in sl["paths"].items():
        peer = sl["peers"].get(name, {})
        s = p["ns_per_event"]
        note = f" ({len(peer['unsupported'])} rules not expressible)" if peer.get("unsupported") else ""
        out.append(f"| {name}{note} | {peer.get('version') or ''} | {s['median'] / 1e3:,.2f} | {s['min'] / 1e3:,.2f} | "
                   f"{s['max'] / 1e3:,.2f} | {p['events']:,} | {p['ratio_to_fraudcore']:,.1f} |")
    a = sf["agreement"]
    st = sf["stream"]
    out += [
        "",
        f"## Velocity counters ({', '.join(c['name'] for c in sf['counters'])}) and their 5 rules",
        "",
        f"{st['events']:,} events of ExchangeStream("
        + ", ".join(f"{k}={st[k]}" for k in COUNTER_STREAM) + f"), {st['hours_of_event_time']:.1f} h of event time; "
        f"{st['timed_events_per_repeat']:,} fresh events a repeat. {sf['redis_server'].split(' sha')[0]}, "
        f"redis-py {sf['redis_py']} (hiredis {sf['hiredis']}), one pipeline per event over loopback.",
        "",
        "| path | µs/event | min | max | x fraudcore |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, p in sf["paths"].items():
        s = p["ns_per_event"]
        out.append(f"| {name} | {s['median'] / 1e3:,.2f} | {s['min'] / 1e3:,.2f} | {s['max'] / 1e3:,.2f} | "
                   f"{p['ratio_to_fraudcore']:,.1f} |")
    differs = ", ".join(f"{n} {a['exact_window_differs'][n]}/{a['reads'][n]} (max {a['exact_window_max_diff'][n]:g})"
                        for n in a["reads"])
    out += [
        "",
        f"Checked on all {a['events']:,} events (fraudcore's counter values on the first "
        f"{a['fraudcore_value_checks']:,}): fraudcore, plain Python and the Redis time buckets equal a brute-force "
        f"oracle's bucketed window (the window plus at most the partly covered oldest bucket, fraudcore's "
        f"documented bound) and decide alike; the Redis sorted sets equal its exact window. Reads where the exact "
        f"window differs from fraudcore's: {differs}; decisions this changed: {a['sorted_set_decisions_differ']}. "
        "Rules hit: " + (", ".join(f"{k} {v}" for k, v in a["rule_hits"].items()) or "none") + ".",
        "",
        f"`{FC}` runs with its counter memory faulted in at start (`Engine(prefault=True)`, as deployed); "
        f"`{FC_LAZY}` is the default, where the first touch of a new key's buckets page-faults inside decide.",
        "",
        "Notes: rule-engine and zen-engine rules are translations (see bench/peers/*_peer.py); both CEL peers run "
        "the file's CEL verbatim. zen-engine and common-expression-language compile `matches()`'s regex on every "
        "call (about 170 µs for `(?i)headless|phantomjs|selenium`): the zen-engine row without regex writes that "
        "rule as `contains(lower(user_agent), ...)`; common-expression-language has no lowerAscii() to do the same.",
        "",
    ]
    return "\n".join(out)
