"""``fraudcore demo``: a synthetic exchange event stream through the example
rules, with live progress, the decision mix, the top rules, throughput,
latency percentiles, how the planted fraud was caught, and a few decisions
explained."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from .decision import Decision
from .engine import Engine
from .synth import ExchangeStream

__all__ = ["run_demo"]


def _bad_addresses(rules_path: Path) -> list[str]:
    lists = rules_path.parent / "lists" / "bad_addresses.txt"
    if not lists.exists():
        return []
    return [line.strip() for line in lists.read_text().splitlines() if line.strip() and not line.startswith("#")]


def run_demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    rules = Path(args.rules)
    # Pre-touched counter memory, as a production deployment runs it.
    engine = Engine.from_file(rules, prefault=True)
    policy = engine.policy
    native = sum(r.native for r in policy.rules)
    print(f"fraudcore demo: {rules} (version {engine.version}): {len(policy.rules)} rules "
          f"({native} on the native VM), {len(policy.rules_file.counters)} counters", file=out)

    stream = ExchangeStream(seed=args.seed, bad_addresses=_bad_addresses(rules))
    t0 = time.perf_counter()
    events = stream.events(args.events)
    print(f"generated {len(events):,} events in {time.perf_counter() - t0:.1f} s (seed {args.seed})", file=out)

    lat = np.empty(len(events), dtype=np.int64)
    actions: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    by_label: dict[str, Counter[str]] = {}
    examples: dict[str, tuple[dict, Decision]] = {}
    clock = time.perf_counter_ns
    decide = engine.decide
    gc.collect()
    gc.freeze()  # the events are long-lived: keep the collector off them
    start = clock()
    last_report = start
    for i, event in enumerate(events):
        t = clock()
        d = decide(event)
        lat[i] = clock() - t
        actions[d.action] += 1
        if d.score:
            hits.update(d.rules)
        label = event.get("label", "")
        by_label.setdefault(label, Counter())[d.action] += 1
        if label and label not in examples and d.action != "allow":
            examples[label] = (event, d)
        if t - last_report > 250_000_000:
            last_report = t
            done = i + 1
            rate = done / ((t - start) / 1e9)
            print(f"\r  {done:>10,} / {len(events):,} events  {rate:>10,.0f}/s  "
                  f"block {actions['block']:,}  review {actions['review']:,}", end="", file=out, flush=True)
    elapsed = (clock() - start) / 1e9
    gc.unfreeze()
    n = len(events)
    print(f"\r  {n:>10,} / {n:,} events  {n / elapsed:>10,.0f}/s{' ' * 30}", file=out)

    print("\nDecisions", file=out)
    for action in policy.actions:
        print(f"  {action:<8} {actions[action]:>10,}  {100 * actions[action] / n:6.2f} %", file=out)
    print("\nTop rules", file=out)
    for rule, count in hits.most_common(10):
        print(f"  {rule:<34} {count:>10,}", file=out)
    print("\nPlanted fraud (label → decisions)", file=out)
    for label in sorted(by_label):
        c = by_label[label]
        total = sum(c.values())
        caught = total - c["allow"]
        name = label or "(normal traffic)"
        print(f"  {name:<20} {total:>9,} events, {caught:>9,} reviewed or blocked ({100 * caught / total:5.1f} %)", file=out)
    p = np.percentile(lat, [50, 90, 99, 99.9]) / 1000
    print(f"\nThroughput {n / elapsed:,.0f} events/s on one core (decide from a dict, timing included)", file=out)
    print(f"Latency µs: p50 {p[0]:.2f}  p90 {p[1]:.2f}  p99 {p[2]:.2f}  p99.9 {p[3]:.2f}  max {lat.max() / 1000:.1f}", file=out)
    stats = engine.stats()
    if stats.get("counters"):
        print(f"Counter store: {stats['keys']:,} keys, {stats['memory_bytes'] / 2**20:,.1f} MiB, "
              f"{stats['evictions']:,} evictions", file=out)

    print("\nA few decisions explained", file=out)
    for label, (event, d) in list(examples.items())[:4]:
        print(f"  [{label}] {event['type']} by {event['user_id']} amount {event['amount']:.2f} → "
              f"{d.action} (score {d.score})", file=out)
        for rule, reason in zip(d.rules, d.reasons):
            print(f"      {rule}: {reason}", file=out)
        if d.features:
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in d.features.items())
            print(f"      counters: {shown}", file=out)
    return 0


def _fmt(v: object) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)
