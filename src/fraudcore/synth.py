"""A seeded, synthetic crypto-exchange event stream.

Used by the tests, the benchmarks (``python -m bench``) and ``fraudcore demo``.
Every event carries every field of the example policy's schema
(``examples/rules.yaml``, ``fields:``) with its Python type, plus a ``label``:
``""`` for normal traffic, or the name of the planted fraud pattern the event
belongs to.

    >>> from fraudcore.synth import ExchangeStream
    >>> s = ExchangeStream(seed=7)
    >>> events = s.events(10_000)           # list of dicts
    >>> cols = s.columns(10_000)            # the same events, as numpy columns

Determinism: the stream is a pure function of the constructor's arguments. It
is produced in blocks, each drawn from its own seeded generator, so
``events(n)`` is always a prefix of ``events(m)`` for ``n <= m``, and
``iter_events()`` yields the same events again.

Normal traffic
--------------
- Event types login, trade, deposit, withdrawal, transfer, api_key_change in
  ``type_weights`` proportions (defaults in :data:`TYPE_WEIGHTS`).
- Users are Zipf-like (weight ``(rank + 100) ** -1.1``): a few hundred heavy
  users, mostly API traders (their traffic is mostly trades), produce a large
  share of the events.
- Static per-user attributes: KYC country (mostly low-risk, about 0.3 % from
  the example's high-risk list), fiat currency, e-mail domain (about 0.5 %
  disposable), KYC level, account age, 1-3 devices, a home IP, 1-3 own
  external wallets, whether 2FA is enabled, a user agent (browsers and the
  mobile app; API traders use python-requests / curl / ccxt; rare headless
  browsers and empty agents).
- Amounts are log-normal USD values per event type (0.0 for login and
  api_key_change); assets and networks are realistic (USDT over tron,
  ethereum, bsc, solana, and rarely omni).
- ``ts`` is epoch milliseconds: Poisson arrivals at ``rate_per_s``, then about
  2 % of events are reported up to ``jitter_ms`` (default 2000) early, so
  ``ts[i] >= max(ts[:i]) - jitter_ms`` always holds.

Planted patterns (labels)
-------------------------
Instances arrive at random so that about ``fraud_rate`` of the events belong to
one; ``patterns`` weights the mix. Pattern spans are seconds to minutes (the
rules' windows are hours to days, so compressing them changes no decision).

``account_takeover``
    A victim logs in from a new device (``is_new_device``), from another
    country, without 2FA; changes an API key; then makes 6-9 fast withdrawals
    (3-20 s apart) to one fresh address. Stateless rules: ``new_device_no_2fa``,
    ``api_key_change_new_device``, ``country_mismatch``; counters:
    ``withdrawal_velocity`` (6+ in an hour), ``first_time_address``.
``probing``
    A young low-KYC account makes 10-14 tiny deposits (0.5-9 USD) then one
    large withdrawal (2,000-25,000 USD) to a fresh address ("test deposit then
    drain"). Stateless: ``low_kyc_high_value`` (and ``new_account_large_withdrawal``
    above 10,000 USD); counters: ``deposit_bursts``, ``test_deposit_then_drain``.
``mule``
    6-12 young low-KYC accounts each withdraw 2,000-9,000 USD to the same fresh
    address within minutes. Stateless: ``low_kyc_high_value``; counters:
    ``shared_destination`` (5+ senders), ``first_time_address``.
``device_farm``
    One fresh device is used by 5-8 fresh accounts (login, then a deposit),
    mostly with disposable e-mail domains, some with a headless browser.
    Stateless: ``disposable_email``, ``headless_browser``; counter:
    ``device_farm`` (more than 3 users per device).
``brute_force``
    15-40 logins on one account from one IP, a few seconds apart, with a
    scripted client and ``failed_logins_1h`` rising 1, 2, 3...
    Stateless: ``login_brute_force`` (from the 5th login on),
    ``scripted_client``; counters: ``logins_5m``, ``ip_burst`` (long bursts).
``bad_address`` (only when ``bad_addresses`` is given)
    A single withdrawal by a normal user to an address of ``bad_addresses``,
    at ``bad_address_rate`` of all events. Stateless: ``known_bad_address``.
    The package does not read the repository's list file itself: pass
    ``load_rules("examples/rules.yaml").lists["bad_addresses"].values``.

Columns: numeric fields are ``int64`` / ``float64`` / ``bool`` arrays, string
fields (and ``label``) are ``object`` arrays of ``str``.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["ExchangeStream", "FIELDS", "LABELS", "TYPE_WEIGHTS", "PATTERN_WEIGHTS"]

#: The event schema of examples/rules.yaml, as Python types (``ts`` included).
FIELDS: dict[str, type] = {
    "type": str,
    "user_id": str,
    "amount": float,
    "currency": str,
    "asset": str,
    "network": str,
    "device_id": str,
    "ip": str,
    "ip_country": str,
    "country": str,
    "user_agent": str,
    "email_domain": str,
    "account_age_days": int,
    "kyc_level": int,
    "dest_address": str,
    "is_new_device": bool,
    "two_fa": bool,
    "failed_logins_1h": int,
    "ts": int,
}
_KEYS = (*FIELDS, "label")
_DTYPES = {str: object, float: np.float64, int: np.int64, bool: np.bool_}

TYPES = ("login", "trade", "deposit", "withdrawal", "transfer", "api_key_change")
_LOGIN, _TRADE, _DEPOSIT, _WITHDRAWAL, _TRANSFER, _API = range(6)
#: Default proportions of the event types in normal traffic.
TYPE_WEIGHTS: dict[str, float] = {
    "login": 0.22, "trade": 0.52, "deposit": 0.11, "withdrawal": 0.08, "transfer": 0.065, "api_key_change": 0.005,
}
# API traders (the heaviest users) mostly trade.
_TRADER_TYPE_WEIGHTS = {"login": 0.01, "trade": 0.975, "deposit": 0.006, "withdrawal": 0.003, "transfer": 0.005, "api_key_change": 0.001}

#: Default mix of the planted patterns (relative weights).
PATTERN_WEIGHTS: dict[str, float] = {
    "account_takeover": 0.25, "probing": 0.2, "mule": 0.2, "device_farm": 0.15, "brute_force": 0.2,
}
# Mean events per instance, to turn fraud_rate (a share of events) into an
# instance arrival rate.
_PATTERN_SIZE = {"account_takeover": 9.5, "probing": 14.0, "mule": 10.8, "device_farm": 13.0, "brute_force": 27.5}
LABELS = ("", *PATTERN_WEIGHTS, "bad_address")

# (log-normal median USD, sigma) per type; login and api_key_change carry 0.0.
_AMOUNT = {_TRADE: (150.0, 1.8), _DEPOSIT: (300.0, 1.5), _WITHDRAWAL: (400.0, 1.6), _TRANSFER: (100.0, 1.4)}

_ASSETS = ("BTC", "ETH", "USDT", "USDC", "SOL", "XRP", "XMR", "ZEC", "DASH")
_ASSET_W = (0.30, 0.25, 0.25, 0.08, 0.06, 0.04, 0.01, 0.005, 0.005)
_NETWORKS: dict[str, tuple[tuple[str, float], ...]] = {
    "BTC": (("bitcoin", 1.0),),
    "ETH": (("ethereum", 0.85), ("arbitrum", 0.10), ("base", 0.05)),
    "USDT": (("tron", 0.50), ("ethereum", 0.30), ("bsc", 0.15), ("solana", 0.045), ("omni", 0.005)),
    "USDC": (("ethereum", 0.60), ("solana", 0.25), ("base", 0.15)),
    "SOL": (("solana", 1.0),),
    "XRP": (("ripple", 1.0),),
    "XMR": (("monero", 1.0),),
    "ZEC": (("zcash", 1.0),),
    "DASH": (("dash", 1.0),),
}


def _network_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per asset: the cumulative network probabilities and network codes
    (padded), and the pool of network names (last: "")."""
    nets = sorted({net for opts in _NETWORKS.values() for net, _ in opts})
    width = max(len(v) for v in _NETWORKS.values())
    cdf = np.ones((len(_ASSETS), width))
    code = np.zeros((len(_ASSETS), width), dtype=np.int64)
    for i, a in enumerate(_ASSETS):
        w = np.asarray([w for _, w in _NETWORKS[a]], dtype=np.float64)
        c = np.cumsum(w / w.sum())
        c[-1] = 1.0
        cdf[i, : len(c)] = c
        code[i, :] = nets.index(_NETWORKS[a][-1][0])
        code[i, : len(c)] = [nets.index(net) for net, _ in _NETWORKS[a]]
    return cdf, code, np.array(nets + [""], dtype=object)


_NET_CDF, _NET_CODE, _NET_POOL = _network_tables()
_ASSET_POOL = np.array(list(_ASSETS) + [""], dtype=object)

_LOW_RISK = (
    ("US", 18), ("GB", 7), ("DE", 7), ("FR", 5), ("ES", 4), ("IT", 4), ("NL", 3), ("PL", 2), ("CH", 2),
    ("BR", 6), ("AR", 3), ("MX", 3), ("CA", 4), ("AU", 3), ("JP", 4), ("KR", 5), ("SG", 2), ("IN", 6),
    ("TR", 4), ("NG", 3), ("UA", 2), ("AE", 2), ("ZA", 1), ("ID", 3), ("VN", 3), ("PH", 2),
)
_HIGH_RISK = ("KP", "IR", "SY", "CU", "RU", "BY", "MM", "VE")
_HIGH_RISK_W = (0.01, 0.05, 0.02, 0.02, 0.45, 0.15, 0.05, 0.25)
_HIGH_RISK_SHARE = 0.003        # of users (KYC country) and of foreign IP countries

_CURRENCIES = (("USD", 0.62), ("EUR", 0.22), ("GBP", 0.06), ("BRL", 0.03), ("JPY", 0.03), ("KRW", 0.02), ("TRY", 0.02))
_EMAIL = (
    ("gmail.com", 0.44), ("outlook.com", 0.10), ("yahoo.com", 0.08), ("icloud.com", 0.08), ("hotmail.com", 0.05),
    ("proton.me", 0.04), ("gmx.de", 0.03), ("qq.com", 0.03), ("mail.ru", 0.02), ("naver.com", 0.02),
    ("yandex.ru", 0.01), ("acme-capital.com", 0.03), ("fastmail.com", 0.02), ("web.de", 0.02), ("aol.com", 0.025),
)
_DISPOSABLE = ("mailinator.com", "guerrillamail.com", "10minutemail.com", "tempmail.dev", "yopmail.com")
_DISPOSABLE_SHARE = 0.005

_BROWSERS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 0.26),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", 0.10),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 0.06),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 0.08),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", 0.08),
    ("ExchangeApp/5.12.0 (iOS 18.1; iPhone15,2)", 0.20),
    ("ExchangeApp/5.12.0 (Android 14; Pixel 8)", 0.19),
    ("python-requests/2.32.3", 0.012),
    ("curl/8.5.0", 0.005),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", 0.002),
    ("", 0.001),
)
_API_AGENTS = (("python-requests/2.32.3", 0.45), ("ccxt/4.4.26 (+https://github.com/ccxt/ccxt) Python/3.12", 0.35),
               ("curl/8.5.0", 0.10), ("okhttp/4.12.0", 0.10))
_SCRIPTED = ("python-requests/2.31.0", "curl/8.4.0", "python-requests/2.32.3")
_HEADLESS = _BROWSERS[9][0]

_DAY_MS = 86_400_000
_BLOCK = 1 << 15                # normal events per block
_N_TRADERS = 300                # the heaviest users are API traders
_WARMUP_MS = 15 * 60_000        # longer than any pattern instance


def _probs(weights: Sequence[float]) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return p / p.sum()


def _hex(rng: np.random.Generator, n: int, nbytes: int, prefix: str) -> list[str]:
    """``n`` random hex strings of ``nbytes`` bytes, with ``prefix``."""
    h = rng.bytes(n * nbytes).hex()
    w = 2 * nbytes
    return [prefix + h[i : i + w] for i in range(0, n * w, w)]


def _ips(rng: np.random.Generator, n: int) -> list[str]:
    a = rng.integers(1, 224, n).tolist()
    b, c, d = (rng.integers(0, 256, n).tolist() for _ in range(3))
    d = [x or 1 for x in d]
    return [f"{w}.{x}.{y}.{z}" for w, x, y, z in zip(a, b, c, d)]


class _Users:
    """Static per-user attributes, as arrays indexed by user number."""

    def __init__(self, seed: int, n: int):
        rng = np.random.default_rng([seed, 0x5EED, 1])
        self.n = n
        self.ids = np.array([f"u{i:07d}" for i in range(n)], dtype=object)
        # Zipf-like activity: rank r has weight (r + 100) ** -1.1; ranks are
        # shuffled onto user numbers so heavy users are not u0000000...
        w = (np.arange(n, dtype=np.float64) + 100.0) ** -1.1
        self.cdf = np.cumsum(w / w.sum())
        self.cdf[-1] = 1.0
        self.by_rank = rng.permutation(n)
        self.trader = np.zeros(n, dtype=bool)
        self.trader[self.by_rank[: min(_N_TRADERS, n)]] = True

        countries = [c for c, _ in _LOW_RISK] + list(_HIGH_RISK)
        cw = np.concatenate([_probs([w for _, w in _LOW_RISK]) * (1 - _HIGH_RISK_SHARE),
                             _probs(_HIGH_RISK_W) * _HIGH_RISK_SHARE])
        self.country_pool = np.array(countries, dtype=object)
        self.country_p = cw
        self.country = rng.choice(len(countries), n, p=cw)
        self.currency_pool = np.array([c for c, _ in _CURRENCIES], dtype=object)
        self.currency = rng.choice(len(_CURRENCIES), n, p=_probs([w for _, w in _CURRENCIES]))
        emails = [d for d, _ in _EMAIL] + list(_DISPOSABLE)
        ew = np.concatenate([_probs([w for _, w in _EMAIL]) * (1 - _DISPOSABLE_SHARE),
                             np.full(len(_DISPOSABLE), _DISPOSABLE_SHARE / len(_DISPOSABLE))])
        self.email_pool = np.array(emails, dtype=object)
        self.email = rng.choice(len(emails), n, p=ew)
        self.kyc = rng.choice(4, n, p=[0.05, 0.30, 0.60, 0.05]).astype(np.int64)
        young = rng.random(n) < 0.04
        self.age0 = np.where(young, rng.integers(0, 7, n), np.minimum(7 + rng.exponential(400, n), 3650)).astype(np.int64)
        self.has_2fa = rng.random(n) < 0.85
        agents = [a for a, _ in _BROWSERS] + [a for a, _ in _API_AGENTS]
        self.agent_pool = np.array(agents, dtype=object)
        ua = rng.choice(len(_BROWSERS), n, p=_probs([w for _, w in _BROWSERS]))
        ua_api = len(_BROWSERS) + rng.choice(len(_API_AGENTS), n, p=_probs([w for _, w in _API_AGENTS]))
        self.agent = np.where(self.trader, ua_api, ua)
        # Devices, wallets: three slots per user, the first n_* in use.
        self.n_devices = rng.choice([1, 2, 3], n, p=[0.55, 0.33, 0.12])
        self.device_pool = np.array(_hex(rng, 3 * n, 8, "dv"), dtype=object)
        self.n_wallets = rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1])
        self.wallet_pool = np.array(_hex(rng, 3 * n, 20, "0x"), dtype=object)
        self.home_ip = np.array(_ips(rng, n), dtype=object)
        self.roaming_ips = np.array(_ips(rng, 1 << 14), dtype=object)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        ranks = np.searchsorted(self.cdf, rng.random(size), side="right")
        return self.by_rank[np.minimum(ranks, self.n - 1)]


class ExchangeStream:
    """A deterministic synthetic exchange event stream (see the module docs)."""

    def __init__(
        self,
        seed: int = 7,
        users: int = 100_000,
        start_ms: int = 1_764_806_400_000,
        rate_per_s: float = 2000.0,
        *,
        fraud_rate: float = 0.01,
        patterns: Mapping[str, float] | None = None,
        type_weights: Mapping[str, float] | None = None,
        bad_addresses: Sequence[str] = (),
        bad_address_rate: float = 0.0005,
        jitter_ms: int = 2000,
    ):
        if users < 1:
            raise ValueError("users must be at least 1")
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if not 0.0 <= fraud_rate < 0.5:
            raise ValueError("fraud_rate must be in [0, 0.5)")
        if jitter_ms < 0:
            raise ValueError("jitter_ms must be >= 0")
        self.seed = seed
        self.users = users
        self.start_ms = start_ms
        self.rate_per_s = rate_per_s
        self.fraud_rate = fraud_rate
        self.bad_addresses = tuple(bad_addresses)
        self.bad_address_rate = bad_address_rate if self.bad_addresses else 0.0
        self.jitter_ms = jitter_ms
        pw = dict(PATTERN_WEIGHTS if patterns is None else patterns)
        unknown = set(pw) - set(PATTERN_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown patterns {sorted(unknown)}; expected some of {sorted(PATTERN_WEIGHTS)}")
        self.patterns = {k: v for k, v in pw.items() if v > 0}
        tw = dict(TYPE_WEIGHTS if type_weights is None else type_weights)
        if set(tw) - set(TYPES):
            raise ValueError(f"unknown event types {sorted(set(tw) - set(TYPES))}; expected some of {list(TYPES)}")
        self.type_weights = {t: float(tw.get(t, 0.0)) for t in TYPES}
        self._type_cdf = np.cumsum(_probs([self.type_weights[t] for t in TYPES]))
        self._trader_type_cdf = np.cumsum(_probs([_TRADER_TYPE_WEIGHTS[t] for t in TYPES]))
        self._users: _Users | None = None

    def __repr__(self) -> str:
        return (f"ExchangeStream(seed={self.seed}, users={self.users}, start_ms={self.start_ms}, "
                f"rate_per_s={self.rate_per_s}, fraud_rate={self.fraud_rate})")

    # -- public API
    def columns(self, n: int) -> dict[str, np.ndarray]:
        """The first ``n`` events as columns (int64 / float64 / bool / object arrays)."""
        parts: list[dict[str, np.ndarray]] = []
        have = 0
        blocks = self._blocks()
        while have < n:
            b = next(blocks)
            parts.append(b)
            have += len(b["ts"])
        if not parts:
            return {k: np.empty(0, dtype=_DTYPES.get(FIELDS.get(k, str))) for k in _KEYS}
        return {k: np.concatenate([p[k] for p in parts])[:n] for k in _KEYS}

    def events(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` events as dicts (schema fields in order, then ``label``)."""
        return _rows(self.columns(n))

    def iter_events(self) -> Iterator[dict[str, Any]]:
        """The stream, without end."""
        for block in self._blocks():
            yield from _rows(block)

    # -- generation
    def _blocks(self) -> Iterator[dict[str, np.ndarray]]:
        if self._users is None:
            self._users = _Users(self.seed, self.users)
        gen = _Generator(self, self._users)
        k = 0
        while True:
            k += 1
            yield gen.block(k)


# Rows are built by a comprehension over a dict display (generated once, for
# the fixed keys): about twice as fast as ``dict(zip(keys, row))``.
_ROW_SOURCE = "lambda lists: [{%s} for %s in zip(*lists)]" % (
    ", ".join(f"{k!r}: v{i}" for i, k in enumerate(_KEYS)),
    ", ".join(f"v{i}" for i in range(len(_KEYS))),
)
_make_rows = eval(_ROW_SOURCE)


def _rows(cols: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    # The cyclic GC would run dozens of full passes over a million fresh
    # dicts (none of which can be in a cycle): pause it meanwhile.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _make_rows([cols[k].tolist() for k in _KEYS])
    finally:
        if enabled:
            gc.enable()


class _Generator:
    """The state of one pass over the stream: time, pending pattern events,
    fresh account numbers."""

    def __init__(self, s: ExchangeStream, users: _Users):
        self.s = s
        self.u = users
        self.t = float(s.start_ms)
        self.pending: list[dict[str, Any]] = []     # pattern events beyond the current block
        self.next_account = users.n                 # fresh accounts get numbers after the normal ones
        sizes = sum(w * _PATTERN_SIZE[p] for p, w in s.patterns.items()) / max(sum(s.patterns.values()), 1e-12)
        labelled = s.fraud_rate + s.bad_address_rate
        # Instances per ms, and normal events per ms, so the total is rate_per_s.
        self.instance_rate = s.fraud_rate * s.rate_per_s / 1000.0 / sizes if s.patterns else 0.0
        self.bad_rate = s.bad_address_rate * s.rate_per_s / 1000.0
        self.normal_rate = (1.0 - labelled) * s.rate_per_s / 1000.0
        self.pattern_names = list(s.patterns)
        self.pattern_p = _probs(list(s.patterns.values())) if s.patterns else None
        # Warm-up: instances that started before the stream, so the stream is
        # stationary from its first event (their later events are pending).
        rng = np.random.default_rng([s.seed, 0xB10C, 0])
        prng = random.Random(int(rng.integers(1 << 62)))
        self._plant(rng, prng, self.t - _WARMUP_MS, self.t, self.pending)
        self.pending = [r for r in self.pending if r["_t"] > self.t]

    def _plant(self, rng: np.random.Generator, prng: random.Random, t0: float, t1: float,
               out: list[dict[str, Any]]) -> None:
        """Pattern instances starting in [t0, t1): their rows into ``out``."""
        span = t1 - t0
        if self.pattern_names:
            for _ in range(int(rng.poisson(self.instance_rate * span))):
                name = self.pattern_names[int(rng.choice(len(self.pattern_names), p=self.pattern_p))]
                out.extend(getattr(self, "_" + name)(prng, t0 + prng.random() * span))
        if self.bad_rate:
            for _ in range(int(rng.poisson(self.bad_rate * span))):
                out.append(self._bad_address(prng, t0 + prng.random() * span))

    def block(self, k: int) -> dict[str, np.ndarray]:
        s, u = self.s, self.u
        rng = np.random.default_rng([s.seed, 0xB10C, k])
        n = _BLOCK
        # Arrival times (ms, float) of the normal events.
        t = self.t + np.cumsum(rng.exponential(1.0 / self.normal_rate, n))
        t0, t1 = self.t, float(t[-1])
        self.t = t1
        cols = self._normal(rng, n, t)

        # Pattern instances starting inside this block.
        prng = random.Random(int(rng.integers(1 << 62)))
        new: list[dict[str, Any]] = []
        self._plant(rng, prng, t0, t1, new)
        rows = [r for r in self.pending if r["_t"] <= t1] + [r for r in new if r["_t"] <= t1]
        self.pending = [r for r in self.pending if r["_t"] > t1] + [r for r in new if r["_t"] > t1]

        if rows:
            extra = {k: np.array([r[k] for r in rows], dtype=_DTYPES[FIELDS.get(k, str)]) for k in _KEYS if k != "ts"}
            extra["ts"] = np.zeros(len(rows), dtype=np.int64)
            extra["_t"] = np.array([r["_t"] for r in rows], dtype=np.float64)
            cols["_t"] = t
            cols = {k: np.concatenate([cols[k], extra[k]]) for k in cols}
            order = np.argsort(cols["_t"], kind="stable")
            cols = {k: v[order] for k, v in cols.items()}
            t = cols.pop("_t")
        # Reported time: arrival order, with ~2 % of events stamped up to
        # jitter_ms early (clock skew between gateways).
        ts = np.floor(t).astype(np.int64)
        if s.jitter_ms:
            early = rng.random(len(ts)) < 0.02
            ts -= np.where(early, rng.integers(1, s.jitter_ms + 1, len(ts)), 0)
        cols["ts"] = ts
        days = (ts - s.start_ms) // _DAY_MS
        cols["account_age_days"] = np.maximum(cols["account_age_days"] + days, 0)
        return cols

    def _normal(self, rng: np.random.Generator, n: int, t: np.ndarray) -> dict[str, np.ndarray]:
        s, u = self.s, self.u
        who = u.sample(rng, n)
        trader = u.trader[who]
        r = rng.random(n)
        typ = np.where(trader, np.searchsorted(s._trader_type_cdf, r, side="right"),
                       np.searchsorted(s._type_cdf, r, side="right"))
        typ = np.minimum(typ, len(TYPES) - 1)
        # Amounts: log-normal USD per type, cents; some deposits and
        # withdrawals are round hundreds.
        amount = np.zeros(n)
        z = rng.standard_normal(n)
        for code, (median, sigma) in _AMOUNT.items():
            m = typ == code
            amount[m] = np.exp(math.log(median) + sigma * z[m])
        amount = np.round(np.minimum(amount, 5_000_000.0), 2)
        roundable = ((typ == _DEPOSIT) | (typ == _WITHDRAWAL)) & (amount > 150) & (rng.random(n) < 0.1)
        amount[roundable] = np.round(amount[roundable], -2)
        money = (typ != _LOGIN) & (typ != _API)
        # Asset and network (empty for login / api_key_change).
        asset = rng.choice(len(_ASSETS), n, p=_probs(_ASSET_W))
        pick = (rng.random(n)[:, None] >= _NET_CDF[asset]).sum(axis=1)
        network = _NET_CODE[asset, np.minimum(pick, _NET_CDF.shape[1] - 1)]
        asset = np.where(money, asset, len(_ASSETS))
        network = np.where(money, network, len(_NET_POOL) - 1)
        # Devices: one of the user's own; ~1 % of logins (0.3 % otherwise)
        # come from a new device.
        dev = u.device_pool[who * 3 + (rng.random(n) * u.n_devices[who]).astype(np.int64)]
        new_dev = rng.random(n) < np.where(typ == _LOGIN, 0.01, 0.003)
        if new_dev.any():
            dev[new_dev] = _hex(rng, int(new_dev.sum()), 8, "dv")
        two_fa = u.has_2fa[who] | (((typ == _WITHDRAWAL) | (typ == _API)) & (rng.random(n) < 0.9))
        # IPs: home IP mostly; IP country = KYC country mostly.
        ip = np.where(rng.random(n) < 0.85, u.home_ip[who], u.roaming_ips[rng.integers(0, len(u.roaming_ips), n)])
        country = u.country[who]
        ip_country = np.where(rng.random(n) < 0.96, country, rng.choice(len(u.country_pool), n, p=u.country_p))
        # Destination: withdrawals only; own wallets mostly, else fresh.
        wd = typ == _WITHDRAWAL
        dest = np.full(n, "", dtype=object)
        dest[wd] = u.wallet_pool[who[wd] * 3 + (rng.random(int(wd.sum())) * u.n_wallets[who[wd]]).astype(np.int64)]
        fresh = wd & (rng.random(n) < 0.15)
        if fresh.any():
            dest[fresh] = _hex(rng, int(fresh.sum()), 20, "0x")
        # Failed logins reported by the identity service: mostly none.
        failed = np.where(typ == _LOGIN, rng.choice(5, n, p=[0.9, 0.075, 0.018, 0.005, 0.002]), 0).astype(np.int64)
        return {
            "type": np.array(TYPES, dtype=object)[typ],
            "user_id": u.ids[who],
            "amount": amount,
            "currency": u.currency_pool[u.currency[who]],
            "asset": _ASSET_POOL[asset],
            "network": _NET_POOL[network],
            "device_id": dev,
            "ip": ip,
            "ip_country": u.country_pool[ip_country],
            "country": u.country_pool[country],
            "user_agent": u.agent_pool[u.agent[who]],
            "email_domain": u.email_pool[u.email[who]],
            "account_age_days": u.age0[who].copy(),
            "kyc_level": u.kyc[who],
            "dest_address": dest,
            "is_new_device": new_dev,
            "two_fa": two_fa,
            "failed_logins_1h": failed,
            "ts": np.zeros(n, dtype=np.int64),     # set from the arrival times by block()
            "label": np.full(n, "", dtype=object),
        }

    # -- planted patterns: each returns rows with an arrival time "_t" (ms)
    def _existing(self, r: random.Random) -> dict[str, Any]:
        """The attributes of a random existing user (victims)."""
        u = self.u
        i = r.randrange(u.n)
        return {
            "user_id": u.ids[i], "currency": u.currency_pool[u.currency[i]], "country": u.country_pool[u.country[i]],
            "email_domain": u.email_pool[u.email[i]], "account_age_days": int(u.age0[i]), "kyc_level": int(u.kyc[i]),
            "user_agent": u.agent_pool[u.agent[i]], "device_id": u.device_pool[3 * i], "ip": u.home_ip[i],
        }

    def _fresh(self, r: random.Random, age: tuple[int, int], kyc: int, email: str | None = None) -> dict[str, Any]:
        """A new account created by the fraudster."""
        self.next_account += 1
        country = r.choice(("US", "GB", "DE", "BR", "NG", "TR", "IN", "UA", "VN"))
        return {
            "user_id": f"u{self.next_account:07d}", "currency": "USD", "country": country,
            "email_domain": email or r.choice(("gmail.com", "outlook.com", "proton.me", "yahoo.com")),
            "account_age_days": r.randint(*age), "kyc_level": kyc,
            "user_agent": r.choice([a for a, _ in _BROWSERS[:7]]), "device_id": _rhex(r, 8, "dv"),
            "ip": _rip(r),
        }

    @staticmethod
    def _row(who: dict[str, Any], t: float, label: str, **kw: Any) -> dict[str, Any]:
        row = {
            "type": "login", "user_id": who["user_id"], "amount": 0.0, "currency": who["currency"], "asset": "",
            "network": "", "device_id": who["device_id"], "ip": who["ip"], "ip_country": who["country"],
            "country": who["country"], "user_agent": who["user_agent"], "email_domain": who["email_domain"],
            "account_age_days": who["account_age_days"], "kyc_level": who["kyc_level"], "dest_address": "",
            "is_new_device": False, "two_fa": True, "failed_logins_1h": 0, "label": label, "_t": t,
        }
        row.update(kw)
        return row

    def _account_takeover(self, r: random.Random, t: float) -> list[dict[str, Any]]:
        victim = self._existing(r)
        other = [c for c, _ in _LOW_RISK if c != victim["country"]] + ["RU", "VE"]
        attacker = dict(victim, device_id=_rhex(r, 8, "dv"), ip=_rip(r), user_agent=_BROWSERS[0][0])
        ipc = r.choice(other)
        common = dict(ip_country=ipc, is_new_device=True, two_fa=False)
        rows = [self._row(attacker, t, "account_takeover", failed_logins_1h=r.randint(0, 2), **common)]
        t += r.uniform(20_000, 90_000)
        rows.append(self._row(attacker, t, "account_takeover", type="api_key_change", **common))
        address = _rhex(r, 20, "0x")
        asset = r.choice(("BTC", "ETH", "USDT"))
        network = {"BTC": "bitcoin", "ETH": "ethereum", "USDT": "tron"}[asset]
        t += r.uniform(30_000, 120_000)
        for _ in range(r.randint(6, 9)):
            amount = round(min(math.exp(r.gauss(math.log(3000.0), 0.8)), 250_000.0), 2)
            rows.append(self._row(attacker, t, "account_takeover", type="withdrawal", amount=amount, asset=asset,
                                  network=network, dest_address=address, **common))
            t += r.uniform(3_000, 20_000)
        return rows

    def _probing(self, r: random.Random, t: float) -> list[dict[str, Any]]:
        who = self._fresh(r, (0, 6), 1)
        if r.random() < 0.5:
            who["user_agent"] = r.choice(_SCRIPTED)
        asset = r.choice(("USDT", "ETH", "BTC"))
        network = {"BTC": "bitcoin", "ETH": "ethereum", "USDT": "tron"}[asset]
        rows = [self._row(who, t, "probing", is_new_device=True)]
        for _ in range(r.randint(10, 14)):
            t += r.uniform(2_000, 15_000)
            rows.append(self._row(who, t, "probing", type="deposit", amount=round(r.uniform(0.5, 9.0), 2),
                                  asset=asset, network=network))
        t += r.uniform(30_000, 300_000)
        rows.append(self._row(who, t, "probing", type="withdrawal", amount=round(r.uniform(2_000, 25_000), 2),
                              asset=asset, network=network, dest_address=_rhex(r, 20, "0x")))
        return rows

    def _mule(self, r: random.Random, t: float) -> list[dict[str, Any]]:
        address = _rhex(r, 20, "0x")
        rows = []
        for _ in range(r.randint(6, 12)):
            who = self._fresh(r, (1, 20), 1)
            for _ in range(1 if r.random() < 0.8 else 2):
                rows.append(self._row(who, t, "mule", type="withdrawal", amount=round(r.uniform(2_000, 9_000), 2),
                                      asset="USDT", network="tron", dest_address=address))
                t += r.uniform(5_000, 60_000)
        return rows

    def _device_farm(self, r: random.Random, t: float) -> list[dict[str, Any]]:
        device, ip = _rhex(r, 8, "dv"), _rip(r)
        agent = _HEADLESS if r.random() < 0.3 else _BROWSERS[0][0]
        rows = []
        for _ in range(r.randint(5, 8)):
            email = r.choice(_DISPOSABLE) if r.random() < 0.7 else None
            who = self._fresh(r, (0, 2), r.choice((0, 1)), email)
            who.update(device_id=device, ip=ip, user_agent=agent)
            rows.append(self._row(who, t, "device_farm", is_new_device=True, two_fa=False))
            t += r.uniform(1_000, 10_000)
            rows.append(self._row(who, t, "device_farm", type="deposit", amount=round(r.uniform(20, 400), 2),
                                  asset="USDT", network="tron", two_fa=False))
            t += r.uniform(5_000, 40_000)
        return rows

    def _brute_force(self, r: random.Random, t: float) -> list[dict[str, Any]]:
        victim = self._existing(r)
        attacker = dict(victim, device_id=_rhex(r, 8, "dv"), ip=_rip(r), user_agent=r.choice(_SCRIPTED))
        ipc = r.choice([c for c, _ in _LOW_RISK])
        rows = []
        for i in range(r.randint(15, 40)):
            rows.append(self._row(attacker, t, "brute_force", ip_country=ipc, is_new_device=True, two_fa=False,
                                  failed_logins_1h=i + 1))
            t += r.uniform(500, 8_000)
        return rows

    def _bad_address(self, r: random.Random, t: float) -> dict[str, Any]:
        who = self._existing(r)
        return self._row(who, t, "bad_address", type="withdrawal", amount=round(math.exp(r.gauss(math.log(800.0), 1.2)), 2),
                         asset="ETH", network="ethereum", dest_address=r.choice(self.s.bad_addresses))


def _rhex(r: random.Random, nbytes: int, prefix: str) -> str:
    return prefix + r.getrandbits(8 * nbytes).to_bytes(nbytes, "big").hex()


def _rip(r: random.Random) -> str:
    return f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
