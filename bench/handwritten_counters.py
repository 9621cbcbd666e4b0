"""examples/rules.yaml (26 rules, 12 velocity counters) written by hand in
plain Python: the baseline a developer would write instead of fraudcore.

Counters are sliding windows kept in buckets of ``window / 60`` (5 s for the
5-minute login counter), like fraudcore's, so that both give the same values
(fraudcore documents that a value may include events up to one bucket older
than the window; this baseline has the same bound on purpose):

* count / sum / min / max / avg: a dict from key to a deque of
  ``[bucket, count, aggregate]`` lists, oldest first. A read at time ``t``
  (bucket ``bt``) combines the buckets ``bt - 60 .. bt``; buckets at or below
  the key's newest bucket minus 61 are dropped (fraudcore's ring of 61).
* distinct: a dict from key to a dict ``item -> newest bucket seen``; a read
  counts the items seen in ``bt - 60 .. bt`` (exact; fraudcore is exact up to
  16 items per key and a HyperLogLog beyond, which no rule threshold here can
  tell apart).

Reasonably optimized: each counter is updated only when its ``where`` holds,
and read only when a rule that can still match needs it (the withdrawal
counters only for withdrawals, and so on); fields are read once into locals;
module-level frozensets; the case-insensitive regex as substring tests on the
lowered agent (see bench/handwritten.py).

``HandwrittenEngine().decide(event)`` counts the event, then returns
``(action, score, rule ids)`` with fraudcore's decision semantics.
"""

from __future__ import annotations

from collections import deque
from math import nan

from .handwritten import BAD_ADDRESSES, DISPOSABLE_EMAIL_DOMAINS, HIGH_RISK_COUNTRIES, PRIVACY_ASSETS, VIP_USERS

__all__ = ["HandwrittenEngine", "WINDOWS"]

USDT_NETWORKS = frozenset(("ethereum", "tron", "bsc", "solana"))
SENSITIVE = frozenset(("withdrawal", "api_key_change"))

_S, _M, _H, _D = 1000, 60_000, 3_600_000, 86_400_000
#: counter -> (window ms, bucket ms): what the suite checks against the engine.
WINDOWS = {
    "withdrawals_1h": (_H, _H // 60),
    "withdrawn_24h": (24 * _H, 24 * _H // 60),
    "devices_24h": (24 * _H, 24 * _H // 60),
    "ip_events_10m": (10 * _M, 10 * _M // 60),
    "largest_withdrawal_7d": (7 * _D, 7 * _D // 60),
    "to_address_30d": (30 * _D, 30 * _D // 60),
    "avg_withdrawal_7d": (7 * _D, 7 * _D // 60),
    "smallest_deposit_1d": (_D, _D // 60),
    "users_per_device_24h": (24 * _H, 24 * _H // 60),
    "logins_5m": (5 * _M, 5 * _S),
    "deposits_1h": (_H, _H // 60),
    "address_senders_7d": (7 * _D, 7 * _D // 60),
}
N = 61          # buckets a value spans: the window's 60 and the partly covered oldest one
COUNT, SUM, MIN, MAX, AVG = range(5)

ALLOW, REVIEW, BLOCK = 0, 1, 2
ACTIONS = ("allow", "review", "block")
REVIEW_FROM, BLOCK_FROM = 50, 100


class Window:
    """One bucketed sliding-window aggregate (count, sum, min, max or avg) per key."""

    __slots__ = ("res", "agg", "keys")

    def __init__(self, window_ms: int, res_ms: int, agg: int):
        assert window_ms == 60 * res_ms
        self.res = res_ms
        self.agg = agg
        self.keys: dict = {}

    def add(self, key, ts: int, value: float = 0.0) -> None:
        b = ts // self.res
        dq = self.keys.get(key)
        if dq is None:
            self.keys[key] = deque(([b, 1, value],))
            return
        last = dq[-1]
        lb = last[0]
        if b == lb:
            self._fold(last, value)
            return
        if b > lb:
            dq.append([b, 1, value])
            floor = b - N
            while dq[0][0] <= floor:
                dq.popleft()
            return
        if b <= lb - N:
            return                       # older than anything still kept: not counted
        # A late (early-stamped) event: its bucket is among the older ones.
        for i in range(len(dq) - 1, -1, -1):
            bk = dq[i]
            if bk[0] == b:
                self._fold(bk, value)
                return
            if bk[0] < b:
                dq.insert(i + 1, [b, 1, value])
                return
        dq.appendleft([b, 1, value])

    def _fold(self, bucket: list, value: float) -> None:
        """Add one event to a bucket [b, count, aux]."""
        bucket[1] += 1
        agg = self.agg
        if agg == SUM or agg == AVG:
            bucket[2] += value
        elif agg == MIN:
            if value < bucket[2]:
                bucket[2] = value
        elif agg == MAX:
            if value > bucket[2]:
                bucket[2] = value

    def read(self, key, ts: int):
        """count -> int; sum -> float (0.0 empty); min, max, avg -> float (NaN empty)."""
        dq = self.keys.get(key)
        agg = self.agg
        if dq is None:
            return 0 if agg == COUNT else (0.0 if agg == SUM else nan)
        bt = ts // self.res
        lo = bt - N
        if agg == COUNT:
            n = 0
            for b, c, _ in dq:
                if lo < b <= bt:
                    n += c
            return n
        if agg == SUM:
            s = 0.0
            for b, _, v in dq:
                if lo < b <= bt:
                    s += v
            return s
        if agg == AVG:
            n = 0
            s = 0.0
            for b, c, v in dq:
                if lo < b <= bt:
                    n += c
                    s += v
            return s / n if n else nan
        vals = [v for b, _, v in dq if lo < b <= bt]
        if not vals:
            return nan
        return min(vals) if agg == MIN else max(vals)


class Distinct:
    """Distinct items per key in a bucketed sliding window."""

    __slots__ = ("res", "keys")

    def __init__(self, window_ms: int, res_ms: int):
        assert window_ms == 60 * res_ms
        self.res = res_ms
        self.keys: dict = {}

    def add(self, key, ts: int, item) -> None:
        b = ts // self.res
        items = self.keys.get(key)
        if items is None:
            self.keys[key] = {item: b}
            return
        seen = items.get(item)
        if seen is None or b > seen:
            items[item] = b
            if len(items) > 32:                      # drop items that left the window
                floor = b - N
                for k in [k for k, s in items.items() if s <= floor]:
                    del items[k]

    def read(self, key, ts: int) -> int:
        items = self.keys.get(key)
        if items is None:
            return 0
        bt = ts // self.res
        lo = bt - N
        n = 0
        for s in items.values():
            if lo < s <= bt:
                n += 1
        return n


class HandwrittenEngine:
    """The 26 rules and 12 counters of examples/rules.yaml, by hand."""

    def __init__(self) -> None:
        W = WINDOWS
        self.withdrawals_1h = Window(*W["withdrawals_1h"], COUNT)
        self.withdrawn_24h = Window(*W["withdrawn_24h"], SUM)
        self.devices_24h = Distinct(*W["devices_24h"])
        self.ip_events_10m = Window(*W["ip_events_10m"], COUNT)
        self.largest_withdrawal_7d = Window(*W["largest_withdrawal_7d"], MAX)
        self.to_address_30d = Window(*W["to_address_30d"], COUNT)
        self.avg_withdrawal_7d = Window(*W["avg_withdrawal_7d"], AVG)
        self.smallest_deposit_1d = Window(*W["smallest_deposit_1d"], MIN)
        self.users_per_device_24h = Distinct(*W["users_per_device_24h"])
        self.logins_5m = Window(*W["logins_5m"], COUNT)
        self.deposits_1h = Window(*W["deposits_1h"], COUNT)
        self.address_senders_7d = Distinct(*W["address_senders_7d"])

    def keys(self) -> dict[str, int]:
        """Keys held per counter."""
        return {name: len(getattr(self, name).keys) for name in WINDOWS}

    def ingest(self, event: dict) -> None:
        """Count an event without deciding it (to populate the state)."""
        typ = event["type"]
        user = event["user_id"]
        ts = event["ts"]
        device = event["device_id"]
        self.devices_24h.add(user, ts, device)
        self.ip_events_10m.add(event["ip"], ts)
        self.users_per_device_24h.add(device, ts, user)
        if typ == "withdrawal":
            amount = event["amount"]
            dest = event["dest_address"]
            self.withdrawals_1h.add(user, ts)
            self.withdrawn_24h.add(user, ts, amount)
            self.largest_withdrawal_7d.add(user, ts, amount)
            self.to_address_30d.add((user, dest), ts)
            self.avg_withdrawal_7d.add(user, ts, amount)
            if dest != "":
                self.address_senders_7d.add(dest, ts, user)
        elif typ == "deposit":
            self.smallest_deposit_1d.add(user, ts, event["amount"])
            self.deposits_1h.add(user, ts)
        elif typ == "login":
            self.logins_5m.add((user, event["ip"]), ts)

    def decide(self, event: dict) -> tuple[str, int, list[str]]:
        typ = event["type"]
        user = event["user_id"]
        ts = event["ts"]
        amount = event["amount"]
        country = event["country"]
        ip_country = event["ip_country"]
        age = event["account_age_days"]
        kyc = event["kyc_level"]
        new_device = event["is_new_device"]
        agent = event["user_agent"]
        device = event["device_id"]
        ip = event["ip"]
        withdrawal = typ == "withdrawal"

        # Count the event (where-filters), then read what the rules need.
        devices_24h = self.devices_24h
        devices_24h.add(user, ts, device)
        ip_events = self.ip_events_10m
        ip_events.add(ip, ts)
        upd = self.users_per_device_24h
        upd.add(device, ts, user)

        rank = ALLOW
        score = 0
        rules: list[str] = []

        if country in HIGH_RISK_COUNTRIES or ip_country in HIGH_RISK_COUNTRIES:
            rank = BLOCK; score += 100; rules.append("sanctioned_country")
        if withdrawal:
            dest = event["dest_address"]
            self.withdrawals_1h.add(user, ts)
            self.withdrawn_24h.add(user, ts, amount)
            self.largest_withdrawal_7d.add(user, ts, amount)
            self.to_address_30d.add((user, dest), ts)
            self.avg_withdrawal_7d.add(user, ts, amount)
            senders = self.address_senders_7d
            if dest != "":
                senders.add(dest, ts, user)
            if dest in BAD_ADDRESSES:
                rank = BLOCK; score += 100; rules.append("known_bad_address")
            if senders.read(dest, ts) >= 5 and user not in VIP_USERS:
                rank = max(rank, REVIEW); score += 45; rules.append("shared_destination")
            if self.withdrawals_1h.read(user, ts) > 5:
                rank = BLOCK; score += 80; rules.append("withdrawal_velocity")
            if self.withdrawn_24h.read(user, ts) > (250000.0 if kyc >= 2 else 50000.0):
                rank = max(rank, REVIEW); score += 50; rules.append("daily_withdrawal_volume")
        elif typ == "deposit":
            self.smallest_deposit_1d.add(user, ts, amount)
            self.deposits_1h.add(user, ts)
        elif typ == "login":
            self.logins_5m.add((user, ip), ts)
        if devices_24h.read(user, ts) >= 4:
            rank = max(rank, REVIEW); score += 30; rules.append("many_devices")
        if upd.read(device, ts) > 3:
            rank = BLOCK; score += 70; rules.append("device_farm")
        if ip_events.read(ip, ts) > 100:
            rank = max(rank, REVIEW); score += 25; rules.append("ip_burst")
        if typ == "login" and (self.logins_5m.read((user, ip), ts) > 10 or event["failed_logins_1h"] >= 5):
            rank = BLOCK; score += 60; rules.append("login_brute_force")
        if typ == "deposit" and self.deposits_1h.read(user, ts) >= 10:
            rank = max(rank, REVIEW); score += 20; rules.append("deposit_bursts")
        if withdrawal:
            if amount > 10000.0 and age < 7:
                rank = max(rank, REVIEW); score += 40; rules.append("new_account_large_withdrawal")
            if amount > 1000.0 and amount > 3.0 * self.avg_withdrawal_7d.read(user, ts):
                rank = max(rank, REVIEW); score += 35; rules.append("unusual_amount")
            if amount > 5000.0 and age < 30 and amount >= self.largest_withdrawal_7d.read(user, ts):
                rank = max(rank, REVIEW); score += 20; rules.append("largest_ever")
            if amount > 2000.0 and self.to_address_30d.read((user, dest), ts) == 1:
                score += 15; rules.append("first_time_address")
            smallest = self.smallest_deposit_1d.read(user, ts)
            if smallest < 10.0 and amount > 100.0 * smallest:
                rank = max(rank, REVIEW); score += 40; rules.append("test_deposit_then_drain")
        if kyc < 2 and amount >= 2000.0 and (withdrawal or typ == "transfer"):
            rank = max(rank, REVIEW); score += 30; rules.append("low_kyc_high_value")
        if new_device and not event["two_fa"] and typ in SENSITIVE:
            rank = BLOCK; score += 90; rules.append("new_device_no_2fa")
        if typ == "api_key_change" and new_device:
            rank = max(rank, REVIEW); score += 50; rules.append("api_key_change_new_device")
        if event["email_domain"] in DISPOSABLE_EMAIL_DOMAINS and age < 30:
            rank = max(rank, REVIEW); score += 25; rules.append("disposable_email")
        if agent.startswith("curl/") or "python-requests" in agent or agent == "":
            score += 10; rules.append("scripted_client")
        lowered = agent.lower()
        if "headless" in lowered or "phantomjs" in lowered or "selenium" in lowered:
            rank = max(rank, REVIEW); score += 30; rules.append("headless_browser")
        if withdrawal and "ip_country" in event and ip_country != country:
            score += 15; rules.append("country_mismatch")
        asset = event["asset"]
        if withdrawal and asset in PRIVACY_ASSETS and amount > 500.0:
            rank = max(rank, REVIEW); score += 25; rules.append("privacy_coin_out")
        if asset == "USDT" and event["network"] not in USDT_NETWORKS:
            rank = max(rank, REVIEW); score += 20; rules.append("odd_network")
        if typ == "deposit" and 9000.0 <= amount < 10000.0 and int(amount) % 100 == 0:
            score += 15; rules.append("round_amount_structuring")
        if withdrawal and ts // 3600000 % 24 < 5 and age < 3:
            score += 10; rules.append("night_withdrawal_young_account")

        if score >= BLOCK_FROM:
            rank = BLOCK
        elif score >= REVIEW_FROM and rank < REVIEW:
            rank = REVIEW
        return ACTIONS[rank], score, rules
