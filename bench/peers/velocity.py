"""The stateful half of the peers suite: five velocity counters of
examples/rules.yaml, one or more of each kind (count, sum, distinct, max),
and the five rules that read them.

- ``load()``: examples/rules.yaml cut down to those counters and rules (their
  definitions verbatim, so they cannot drift from the example), and each
  counter's shape, checked against the file.
- ``match(event, values)``: the five rules in plain Python, on the counter
  values a path read; ``common.Verdicts`` turns the matches into fraudcore's
  decision.
- ``PythonCounters``: the counters in plain Python, with the bucketed
  windows of bench/handwritten_counters.py (the same semantics as
  fraudcore's: a value covers the window plus at most one bucket).
- ``Oracle``: every counted value kept whole, both window semantics computed
  by brute force: the exact window ``(ts - window, ts]`` (what the Redis
  sorted sets keep) and fraudcore's bucketed one
  ``[(ts // res - 60) * res, ts]``. The suite checks each path against the
  semantics it implements.

Every path decides an event the same way: count it in the counters whose
``where`` holds, read the counters its rules need (the withdrawal counters
only for withdrawals: every rule reading them requires one), decide. A path's
``decide(event)`` returns ``(action, score, rules, values)``, ``values`` the
counter values in ``COUNTERS`` order, ``None`` where not read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import yaml

from fraudcore.rules.load import RulesFile, load_rules

from ..common import Mismatch
from ..handwritten_counters import COUNT, MAX, SUM, Distinct, N, Window
from .common import Verdicts

__all__ = ["COUNTERS", "RULES", "Oracle", "PythonCounters", "Spec", "load", "match", "same"]

EXAMPLE_RULES = Path(__file__).resolve().parent.parent.parent / "examples" / "rules.yaml"
# In file order (fraudcore lists matched rules and reads counters in it).
COUNTERS = ("withdrawals_1h", "withdrawn_24h", "devices_24h", "ip_events_10m", "largest_withdrawal_7d")
RULES = ("withdrawal_velocity", "daily_withdrawal_volume", "many_devices", "ip_burst", "largest_ever")
WITHDRAWALS = 'type == "withdrawal"'


class Spec(NamedTuple):
    name: str
    agg: str               # count, sum, distinct, max
    by: str                # the key field
    of: str | None         # the summed / maxed / distinct field
    withdrawals_only: bool  # where: type == "withdrawal"
    window_ms: int
    res_ms: int            # bucket width: window / 60 for all five


# Each counter's shape as the plain-Python and Redis paths hard-code it;
# load() checks it against the rules file.
SHAPES = {
    "withdrawals_1h": ("count", "user_id", None, True),
    "withdrawn_24h": ("sum", "user_id", "amount", True),
    "devices_24h": ("distinct", "user_id", "device_id", False),
    "ip_events_10m": ("count", "ip", None, False),
    "largest_withdrawal_7d": ("max", "user_id", "amount", True),
}


def load() -> tuple[RulesFile, list[Spec]]:
    """The cut-down rules file (compile it for fraudcore) and the counters' specs."""
    doc = yaml.safe_load(EXAMPLE_RULES.read_text(encoding="utf-8"))
    sub = {
        "version": f"{doc['version']}-peers",
        "time": doc["time"],
        "fields": doc["fields"],
        "counters": {k: doc["counters"][k] for k in COUNTERS},
        "rules": [r for r in doc["rules"] if r["id"] in RULES],
        "decision": doc["decision"],
    }
    rf = load_rules(f"{EXAMPLE_RULES} (peers subset)", text=yaml.safe_dump(sub, sort_keys=False))
    if tuple(r.id for r in rf.rules) != RULES:
        raise Mismatch(f"bench peers: examples/rules.yaml no longer has the rules {RULES} in this order")
    specs = []
    for name, c in rf.counters.items():
        agg, by, of, withdrawals_only = SHAPES[name]
        where = c.where.text.strip() if c.where else None
        if (c.agg, c.by, c.of, where) != (agg, (by,), of, WITHDRAWALS if withdrawals_only else None):
            raise Mismatch(f"bench peers: counter {name} of examples/rules.yaml changed "
                           f"({c.agg} of {c.of} by {c.by} where {where}); update bench/peers/velocity.py")
        if c.window_ms != (N - 1) * c.resolution_ms:
            raise Mismatch(f"bench peers: counter {name}: window {c.window_ms} ms is not 60 buckets of {c.resolution_ms} ms")
        specs.append(Spec(name, agg, by, of, withdrawals_only, c.window_ms, c.resolution_ms))
    return rf, specs


def match(event: dict, values: tuple) -> list[str]:
    """The ids of the five rules that match, in file order (their CEL in
    examples/rules.yaml, written in Python)."""
    withdrawals_1h, withdrawn_24h, devices_24h, ip_events_10m, largest_withdrawal_7d = values
    withdrawal = event["type"] == "withdrawal"
    rules = []
    if withdrawal and withdrawals_1h > 5:
        rules.append("withdrawal_velocity")
    if withdrawal and withdrawn_24h > (250000.0 if event["kyc_level"] >= 2 else 50000.0):
        rules.append("daily_withdrawal_volume")
    if devices_24h >= 4:
        rules.append("many_devices")
    if ip_events_10m > 100:
        rules.append("ip_burst")
    if withdrawal:
        amount = event["amount"]
        if amount >= largest_withdrawal_7d and amount > 5000.0 and event["account_age_days"] < 30:
            rules.append("largest_ever")
    return rules


def same(a, b) -> bool:
    """Counter values equal: ints exactly; floats to 1e-9 relative (a sum
    depends on the order its terms were added in: by bucket in fraudcore, by
    event in the oracle, in long double in Redis' INCRBYFLOAT), NaN == NaN."""
    if a is None or b is None or isinstance(a, int) and isinstance(b, int):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


class PythonCounters:
    """The five counters in plain Python: bench/handwritten_counters.py's
    ``Window`` / ``Distinct``, fields read once, straight-line code."""

    name = "plain Python (handwritten_counters)"

    def __init__(self, rf: RulesFile, specs: list[Spec]):
        s = {x.name: x for x in specs}
        self.verdicts = Verdicts(rf)
        self.withdrawals_1h = Window(s["withdrawals_1h"].window_ms, s["withdrawals_1h"].res_ms, COUNT)
        self.withdrawn_24h = Window(s["withdrawn_24h"].window_ms, s["withdrawn_24h"].res_ms, SUM)
        self.devices_24h = Distinct(s["devices_24h"].window_ms, s["devices_24h"].res_ms)
        self.ip_events_10m = Window(s["ip_events_10m"].window_ms, s["ip_events_10m"].res_ms, COUNT)
        self.largest = Window(s["largest_withdrawal_7d"].window_ms, s["largest_withdrawal_7d"].res_ms, MAX)

    def decide(self, event: dict) -> tuple:
        ts = event["ts"]
        user = event["user_id"]
        ip = event["ip"]
        devices_24h = self.devices_24h
        devices_24h.add(user, ts, event["device_id"])
        ip_events = self.ip_events_10m
        ip_events.add(ip, ts)
        if event["type"] == "withdrawal":
            amount = event["amount"]
            self.withdrawals_1h.add(user, ts)
            self.withdrawn_24h.add(user, ts, amount)
            self.largest.add(user, ts, amount)
            values = (self.withdrawals_1h.read(user, ts), self.withdrawn_24h.read(user, ts),
                      devices_24h.read(user, ts), ip_events.read(ip, ts), self.largest.read(user, ts))
        else:
            values = (None, None, devices_24h.read(user, ts), ip_events.read(ip, ts), None)
        return (*self.verdicts(match(event, values)), values)


def _aggregate(agg: str, values: list):
    if agg == "count":
        return len(values)
    if agg == "distinct":
        return len(set(values))
    if agg == "sum":
        return sum(values, 0.0)
    return max(values) if values else math.nan


class Oracle:
    """Every counted value, per counter and key, kept whole; a read scans
    them. For events in time order (the suite's stateful stream has no
    jitter), so a key's list is sorted by time."""

    def __init__(self, specs: list[Spec]):
        self.specs = specs
        self.logs: list[defaultdict] = [defaultdict(list) for _ in specs]

    def values(self, event: dict) -> tuple[tuple, tuple]:
        """Count ``event``, then the values the paths read: (exact window, bucketed)."""
        ts = event["ts"]
        withdrawal = event["type"] == "withdrawal"
        exact: list = [None] * len(self.specs)
        bucketed: list = [None] * len(self.specs)
        for i, s in enumerate(self.specs):
            if s.withdrawals_only and not withdrawal:
                continue
            log = self.logs[i][event[s.by]]
            log.append((ts, event[s.of] if s.of else None))
            lo_exact = ts - s.window_ms                       # exclusive
            lo_bucket = (ts // s.res_ms - (N - 1)) * s.res_ms  # inclusive, <= lo_exact
            in_exact, in_bucket = [], []
            for t, v in reversed(log):
                if t < lo_bucket:
                    break
                in_bucket.append(v)
                if t > lo_exact:
                    in_exact.append(v)
            exact[i] = _aggregate(s.agg, in_exact)
            bucketed[i] = _aggregate(s.agg, in_bucket)
        return tuple(exact), tuple(bucketed)
