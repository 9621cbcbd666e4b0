"""The CEL suite: compile time, and a 20-rule stateless policy evaluated on
seeded synthetic exchange events by the native VM, by ``Policy.decide``
(dict -> Decision), by the same rules hand-written in Python, and by the
reference interpreter.

Method
- Events: ``fraudcore.synth.ExchangeStream(seed=7)`` with the example
  bad-address list, without their ``label`` key (what a gateway sends).
- Before timing, every event is decided by all three paths; any difference in
  (action, score, rules), or any rule error, aborts the run.
- Timed loops use ``time.perf_counter_ns`` around a whole pass over the
  events, with the cyclic GC disabled (``gc.disable()``, after a
  ``gc.collect()``) and one untimed warm-up pass first. The decide,
  hand-written and reference passes are interleaved repeat by repeat, so
  machine noise hits them alike; ratios are of the medians, and also given
  per repeat (paired).
- Also timed, to locate the cost: ``policy._native.run`` (load the slots, run
  the rules, return rank/score/masks: decide without building the Decision),
  and an empty Python call (the floor of any per-event loop).
- VM only: ``policy._native.time_rules(event, iterations)`` (every rule over
  slots already loaded from the event, timed in C) for a sample of events;
  per repeat, the median over the sample.
- Targets (from the issue) are reported as pass/fail, never asserted.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fraudcore.rules.load import load_rules
from fraudcore.rules.policy import compile_policy
from fraudcore.synth import ExchangeStream

from .machine import summary as machine_summary
from . import handwritten
from .common import Mismatch, spread

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_RULES = ROOT / "examples" / "rules.yaml"
RULES20 = Path(__file__).resolve().parent / "rules20.yaml"

FULL = {"events": 20_000, "ref_events": 1_000, "repeats": 11, "vm_sample": 500, "vm_iterations": 5_000, "compile_repeats": 21}
QUICK = {"events": 5_000, "ref_events": 300, "repeats": 7, "vm_sample": 100, "vm_iterations": 2_000, "compile_repeats": 7}

TARGETS = {
    "vm_only_ns_max": 300.0,              # all 20 rules on loaded slots
    "handwritten_over_decide_min": 1.5,   # dict -> Decision vs hand-written Python
    "reference_over_decide_min": 30.0,    # dict -> Decision vs reference interpreter
}


def bench_events(n: int) -> list[dict[str, Any]]:
    bad = load_rules(EXAMPLE_RULES).lists["bad_addresses"].values
    events = ExchangeStream(seed=7, bad_addresses=bad).events(n)
    for e in events:
        del e["label"]
    return events


def compile_times(path: Path, repeats: int) -> dict[str, Any]:
    """Load + compile, in ms: the first (cold) and the median of repeats."""
    out = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter_ns()
        compile_policy(load_rules(path))
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return {"file": str(path.relative_to(ROOT)), "first_ms": out[0], "ms": spread(out[1:])}


def check_agreement(policy, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Hand-written == decide == decide_reference on every event, or abort."""
    fired: dict[str, int] = {}
    actions: dict[str, int] = {}
    for i, e in enumerate(events):
        action, score, rules, reasons = handwritten.decide(e)
        d = policy.decide(e)
        r = policy.decide_reference(e)
        native = (d.action, d.score, d.rules)
        reference = (r.action, r.score, r.rules)
        if d.errors or r.errors or native != (action, score, rules) or reference != native or d.reasons != reasons:
            raise Mismatch(
                f"bench cel: decisions differ on event #{i}; nothing was timed.\n"
                f"  event:       {e}\n"
                f"  handwritten: {(action, score, rules)}\n"
                f"  decide:      {native} errors={d.errors}\n"
                f"  reference:   {reference} errors={r.errors}"
            )
        actions[action] = actions.get(action, 0) + 1
        for rule in rules:
            fired[rule] = fired.get(rule, 0) + 1
    return {"events": len(events), "actions": actions, "rule_hits": dict(sorted(fired.items()))}


def time_pass(fn: Callable[[dict[str, Any]], Any], events: Sequence[dict[str, Any]]) -> float:
    """ns per event of one pass of ``fn`` over ``events``, GC disabled."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for e in events:
            fn(e)
        t1 = time.perf_counter_ns()
    finally:
        gc.enable()
    return (t1 - t0) / len(events)


def vm_only(policy, sample: Sequence[dict[str, Any]], iterations: int) -> float:
    """Median over ``sample`` of ns per run of all rules on loaded slots."""
    native = policy._native
    gc.collect()
    gc.disable()
    try:
        per_event = [native.time_rules(e, iterations) for e in sample]
    finally:
        gc.enable()
    return statistics.median(per_event)


def run(quick: bool = False, log: Callable[[str], None] = print, out: Path | None = None) -> dict[str, Any]:
    cfg = QUICK if quick else FULL
    log(f"cel: compile times ({cfg['compile_repeats']} repeats)")
    compile_ = {
        "example_rules": compile_times(EXAMPLE_RULES, cfg["compile_repeats"]),
        "rules20": compile_times(RULES20, cfg["compile_repeats"]),
    }
    policy = compile_policy(load_rules(RULES20))
    if policy._native is None or not all(r.native for r in policy.rules):
        raise SystemExit("bench cel: the native VM is not available for every rule (run `make setup`; "
                         "is FRAUDCORE_NO_EXTENSIONS set?)")
    log(f"cel: generating {cfg['events']} events (synth seed 7)")
    events = bench_events(cfg["events"])
    ref_events = events[: cfg["ref_events"]]
    step = max(len(events) // cfg["vm_sample"], 1)
    sample = events[::step][: cfg["vm_sample"]]
    log("cel: checking hand-written == decide == reference on every event")
    agreement = check_agreement(policy, events)

    decide, decide_ref, hand = policy.decide, policy.decide_reference, handwritten.decide

    def floor(e):  # the cost of the loop and one Python call: no path can go below
        return None

    passes = {"decide": (decide, events), "handwritten": (hand, events), "reference": (decide_ref, ref_events),
              "native_run": (policy._native.run, events), "call_floor": (floor, events)}
    for fn, evs in passes.values():           # warm-up
        time_pass(fn, evs)
    vm_only(policy, sample[:10], cfg["vm_iterations"])
    times: dict[str, list[float]] = {k: [] for k in (*passes, "vm_only")}
    for r in range(cfg["repeats"]):
        log(f"cel: repeat {r + 1}/{cfg['repeats']}")
        for name, (fn, evs) in passes.items():
            times[name].append(time_pass(fn, evs))
        times["vm_only"].append(vm_only(policy, sample, cfg["vm_iterations"]))

    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {
        "handwritten_over_decide": med["handwritten"] / med["decide"],
        "reference_over_decide": med["reference"] / med["decide"],
        "handwritten_over_decide_per_repeat": [h / d for h, d in zip(times["handwritten"], times["decide"])],
        "reference_over_decide_per_repeat": [f / d for f, d in zip(times["reference"], times["decide"])],
    }
    targets = [
        {"name": "VM only, 20 rules (median ns)", "target": f"<= {TARGETS['vm_only_ns_max']:.0f}",
         "measured": med["vm_only"], "pass": med["vm_only"] <= TARGETS["vm_only_ns_max"]},
        {"name": "hand-written / decide", "target": f">= {TARGETS['handwritten_over_decide_min']}",
         "measured": ratios["handwritten_over_decide"],
         "pass": ratios["handwritten_over_decide"] >= TARGETS["handwritten_over_decide_min"]},
        {"name": "reference / decide", "target": f">= {TARGETS['reference_over_decide_min']:.0f}",
         "measured": ratios["reference_over_decide"],
         "pass": ratios["reference_over_decide"] >= TARGETS["reference_over_decide_min"]},
    ]
    return {
        "suite": "cel",
        "config": {**cfg, "quick": quick, "seed": 7, "rules": str(RULES20.relative_to(ROOT)),
                   "gc": "disabled during every timed loop (gc.collect() before)",
                   "timer": "time.perf_counter_ns around whole passes; VM only timed in C (CLOCK_MONOTONIC)",
                   "order": "decide, handwritten, reference, native_run, call_floor, vm_only interleaved per repeat"},
        "agreement": agreement,
        "compile": compile_,
        "ns_per_event": {k: spread(v) for k, v in times.items()},
        "ratios": ratios,
        "targets": targets,
    }


def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    ns = result["ns_per_event"]
    cfg = result["config"]
    rows = [
        ("VM only: 20 rules on loaded slots", "vm_only", f"{cfg['vm_sample']} events x {cfg['vm_iterations']} runs"),
        ("decide: dict -> Decision (native)", "decide", f"{cfg['events']} events"),
        ("hand-written Python (bench/handwritten.py)", "handwritten", f"{cfg['events']} events"),
        ("reference interpreter: decide_reference", "reference", f"{cfg['ref_events']} events"),
        ("native run only: dict -> (rank, score, masks), no Decision", "native_run", f"{cfg['events']} events"),
        ("floor: loop + one empty Python call", "call_floor", f"{cfg['events']} events"),
    ]
    out = [
        f"# bench cel{' (quick)' if cfg['quick'] else ''}",
        "",
        machine_summary(machine),
        "",
        f"20 stateless rules ({cfg['rules']}), synthetic exchange events (seed {cfg['seed']}); "
        f"median of {cfg['repeats']} interleaved repeats, GC disabled in timed loops.",
        "",
        "| path | median ns/event | min | max | over |",
        "|---|---:|---:|---:|---|",
    ]
    for label, key, over in rows:
        s = ns[key]
        out.append(f"| {label} | {s['median']:,.0f} | {s['min']:,.0f} | {s['max']:,.0f} | {over} |")
    out += ["", "| compile (load + compile) | first ms | median ms | min | max |", "|---|---:|---:|---:|---:|"]
    for c in result["compile"].values():
        out.append(f"| {c['file']} | {c['first_ms']:.2f} | {c['ms']['median']:.2f} | {c['ms']['min']:.2f} | {c['ms']['max']:.2f} |")
    r = result["ratios"]
    out += ["", "| target | goal | measured | |", "|---|---|---:|---|"]
    for t in result["targets"]:
        out.append(f"| {t['name']} | {t['target']} | {t['measured']:,.2f} | {'PASS' if t['pass'] else 'FAIL'} |")
    hw = r["handwritten_over_decide_per_repeat"]
    rf = r["reference_over_decide_per_repeat"]
    out += [
        "",
        f"Paired per-repeat ratios: hand-written/decide {min(hw):.2f}-{max(hw):.2f}, "
        f"reference/decide {min(rf):.1f}-{max(rf):.1f}. Other engines on the same rules: the peers suite.",
        "",
    ]
    return "\n".join(out)
