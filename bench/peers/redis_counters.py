"""The five velocity counters kept in Redis through redis-py, the two usual
ways, each event one pipeline (one round trip: its updates, then its reads).

``SortedSets`` (i): one sorted set per counter and key, members scored by
event time. Update: ZADD + EXPIRE. Read: ZREMRANGEBYSCORE (drop what left
the window) then ZCARD (count; distinct, whose members are the items, each
scored by its latest time) or ZRANGEBYSCORE (sum, max: the members carry the
amount, ``"<event seq>:<amount>"``, summed or maxed here). This is the exact
sliding window ``(ts - window, ts]``, for events in time order.

``Buckets`` (ii): one key per counter, key and time bucket of the counter's
resolution (window / 60), like fraudcore's windows. Update: INCR (count),
INCRBYFLOAT (sum), SADD (distinct) or ZADD GT of one member (max), then
EXPIRE. Read: the window's 60 buckets and the partly covered oldest one
(fraudcore's bound), summed from one MGET, or merged by SUNION (distinct) or
ZUNION AGGREGATE MAX (max). The same values as fraudcore's.

EXPIRE sets a wall-clock TTL of a window (plus two buckets), as a deployment
would so that idle keys go; the benchmark replays days of event time in
seconds, so nothing expires during it: the reads pick the window by event
time, which is what the values depend on.
"""

from __future__ import annotations

import math

from ..handwritten_counters import N
from .common import Verdicts
from .velocity import Spec, match

__all__ = ["Buckets", "SortedSets"]


def _ttl_s(ms: int) -> int:
    return -(-ms // 1000)


def _amount(member: bytes) -> float:
    return float(member.rpartition(b":")[2])


class _Pipelined:
    """One pipeline per event over the counters the event touches."""

    def __init__(self, client, rf, specs: list[Spec]):
        self.pipe = client.pipeline(transaction=False)
        self.specs = specs
        self.verdicts = Verdicts(rf)
        self.prefix = [f"{self.tag}:{s.name}:" for s in specs]

    def decide(self, event: dict) -> tuple:
        withdrawal = event["type"] == "withdrawal"
        active = [i for i, s in enumerate(self.specs) if withdrawal or not s.withdrawals_only]
        for i in active:
            self.queue(self.specs[i], self.prefix[i] + str(event[self.specs[i].by]), event)
        results = self.pipe.execute()
        values: list = [None] * len(self.specs)
        per = len(results) // len(active)           # commands queued per counter
        for j, i in enumerate(active):
            values[i] = self.parse(self.specs[i], results[j * per + per - 1])
        values = tuple(values)
        return (*self.verdicts(match(event, values)), values)


class SortedSets(_Pipelined):
    name = "Redis sorted sets (exact window)"
    tag = "z"

    def __init__(self, client, rf, specs: list[Spec]):
        super().__init__(client, rf, specs)
        self.seq = 0          # makes each event's member unique within a set

    def decide(self, event: dict) -> tuple:
        self.seq += 1
        return super().decide(event)

    def queue(self, s: Spec, key: str, event: dict) -> None:
        p = self.pipe
        ts = event["ts"]
        if s.agg == "distinct":
            member = event[s.of]
        elif s.of is not None:
            member = f"{self.seq}:{event[s.of]!r}"
        else:
            member = self.seq
        p.zadd(key, {member: ts})
        p.expire(key, _ttl_s(s.window_ms))
        p.zremrangebyscore(key, "-inf", ts - s.window_ms)
        if s.agg in ("count", "distinct"):
            p.zcard(key)
        else:
            p.zrangebyscore(key, f"({ts - s.window_ms}", ts)

    @staticmethod
    def parse(s: Spec, reply):
        if s.agg in ("count", "distinct"):
            return reply
        if s.agg == "sum":
            return sum(map(_amount, reply), 0.0)
        return max(map(_amount, reply)) if reply else math.nan


class Buckets(_Pipelined):
    name = "Redis time buckets (fraudcore's window)"
    tag = "b"

    def queue(self, s: Spec, key: str, event: dict) -> None:
        p = self.pipe
        b = event["ts"] // s.res_ms
        k = f"{key}:{b}"
        if s.agg == "count":
            p.incr(k)
        elif s.agg == "sum":
            p.incrbyfloat(k, event[s.of])
        elif s.agg == "distinct":
            p.sadd(k, event[s.of])
        else:
            p.zadd(k, {"max": event[s.of]}, gt=True)
        p.expire(k, _ttl_s(s.window_ms + 2 * s.res_ms))
        keys = [f"{key}:{x}" for x in range(b - (N - 1), b + 1)]
        if s.agg in ("count", "sum"):
            p.mget(keys)
        elif s.agg == "distinct":
            p.sunion(keys)
        else:
            p.zunion(keys, aggregate="MAX", withscores=True)

    @staticmethod
    def parse(s: Spec, reply):
        if s.agg == "count":
            return sum(int(x) for x in reply if x is not None)
        if s.agg == "sum":
            return sum((float(x) for x in reply if x is not None), 0.0)
        if s.agg == "distinct":
            return len(reply)
        return reply[0][1] if reply else math.nan
