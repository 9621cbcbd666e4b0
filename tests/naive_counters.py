"""The exact twin of the native counter store: every event kept, every answer
computed from the full history. Obviously correct, and slow on purpose.

The store's documented bound, for a read at time ``t`` with window ``w`` and
resolution ``r`` (bucket ``bt = t // r``), at or after the key's newest event:
its value includes every event of ``(t - w, t]`` and possibly events of
``(t - W - r, t - w]`` and of ``(t, (bt + 1) * r)``, where ``W = ceil(w / r) * r``
is the window rounded up to whole buckets (``W == w`` when ``r`` divides ``w``,
and then the excess is at most one bucket). :meth:`NaiveCounters.bounds`
returns the exact value over the inner and over the outer interval.
"""

from __future__ import annotations

import math
from collections import defaultdict

AGGS = ("count", "sum", "min", "max", "avg", "distinct")


def aggregate(agg: str, events: list[tuple[int, float, object]]) -> float:
    """The exact aggregate of (ts, value, item) events; NaN for an empty min/max/avg."""
    if agg == "count":
        return len(events)
    if agg == "distinct":
        return len({item for _, _, item in events})
    values = [v for _, v, _ in events if math.isfinite(v)]
    if agg == "sum":
        return math.fsum(values)
    if not values:
        return math.nan
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    return math.fsum(values) / len(values)


class NaiveCounters:
    def __init__(self, specs):
        self.specs = {name: (agg, w, r) for name, agg, w, r in specs}
        self.events: dict[tuple[str, object], list[tuple[int, float, object]]] = defaultdict(list)

    def update(self, name, key, ts, value=0.0, item=None):
        agg = self.specs[name][0]
        if agg in ("sum", "min", "max", "avg") and not math.isfinite(value):
            return
        self.events[name, key].append((ts, value, item))

    def window(self, name, key, lo_exclusive, hi_exclusive):
        """Events with lo_exclusive < ts < hi_exclusive."""
        return [e for e in self.events.get((name, key), ()) if lo_exclusive < e[0] < hi_exclusive]

    def exact(self, name, key, t):
        """The exact value over (t - w, t]."""
        agg, w, _ = self.specs[name]
        return aggregate(agg, self.window(name, key, t - w, t + 1))

    def bounds(self, name, key, t):
        """(inner events, outer events): (t - w, t] and (t - W - r, (t // r + 1) * r)."""
        agg, w, r = self.specs[name]
        whole = -(-w // r) * r
        inner = self.window(name, key, t - w, t + 1)
        outer = self.window(name, key, t - whole - r, (t // r + 1) * r)
        return inner, outer
