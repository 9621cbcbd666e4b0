"""The sweep suite: the server's knobs against load, and the settings it
recommends (``fraudcore serve --tuned bench/results/tuned.json``).

What is swept
- the grid (``BASELINE``, ``FAMILIES``): knobs of ``fraudcore serve`` (the
  collector's mode and thresholds, workers, counter capacity, socket buffers,
  TCP_NODELAY, the event loop; prefault stays on) and one of the client
  (``batch``: events per request, ``decide`` or ``decide_batch``). A full
  cartesian product would take hours, so one factor at a time: the baseline
  (the load suite's server), and each variant of each family changed alone
  against it; then the combination of every family's clear winner, measured
  again beside the baseline (the confirmation).
- crossed with load levels: open-loop rates in decisions/s
  (``bench/loadgen.py``: request ``i`` scheduled at ``t0 + i / rate``,
  pipelined over ``conns`` connections whatever is in flight; latency from
  the scheduled time, so a stall counts against every request it delays).
  Each rate: a warm-up at the rate left out of the quantiles, then the
  measured seconds. With ``decide_batch`` of ``n``, a request carries ``n``
  events at ``rate / n`` requests/s, and an event's latency also counts the
  wait for its batch to fill (events arriving at the rate: event ``j`` of a
  batch waits ``(n - 1 - j) / rate`` before the batch is sent), so batching
  is compared with single requests on what a caller waits.
- every point repeated: each repeat a fresh server with a fresh state under
  /dev/shm, the configurations in a rotated (and every other repeat
  reversed) order (a slow spell of the shared machine hits different
  configurations, not one configuration's every repeat); every configuration
  gets the same requests in the same order. Medians over repeats with min-max.
- the machine is shared: before each run the suite waits (bounded) for the
  rest of the machine to go quiet; a run during which other processes kept
  CPU busy, or the load generator itself wrote late, is "disturbed": run once
  more at once, and a repeat still left with a disturbed run is made up by a
  fresh server after the others (both within a budget); what stays disturbed
  is flagged, and a comparison resting on it is not judged (RULE).
- a server's settings are read back through the ``stats`` op after its runs
  and compared with the grid point; its collector's work during the load
  (collections and pauses per generation, from ``stats["server"]["gc"]``,
  taken before and after the rates and subtracted) is recorded.
- allocation per decision: in this process, tracemalloc over a few thousand
  decisions through ``Engine.decide`` and through the server's request path
  (``server.worker.Worker.handle`` on pre-encoded frames): net (retained),
  the objects a full collection finds in cycles (garbage ``gc_mode=off``
  would never free), and the peak of one decision.

The recommendation rule is ``RULE`` below; it is written into the results,
the Markdown and the tuned file's evidence. Written besides what
``python -m bench`` writes: bench/results/tuned.json (the recommended
settings, verified by starting ``fraudcore serve --tuned`` on it and reading
them back through ``stats``), sweep.png (latency against achieved
throughput, one line per configuration) and sweep-winner-hist.png (a
latency histogram of the recommended configuration); ``--quick`` writes
tuned-quick.json and *-quick.png instead, so a quick run never replaces the
record of a full one.

The client is this process (uvloop), on the same machine as the server:
with one worker, client and server are pinned to separate CPUs (as in the
load suite); with two workers nothing is pinned (three busy processes on
two cores), which is part of what that variant measures here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from fraudcore.client import Client  # noqa: E402
from fraudcore.engine import Engine  # noqa: E402
from fraudcore.server.config import TUNABLE, ServerConfig  # noqa: E402
from fraudcore.server.worker import Worker  # noqa: E402

from .common import num
from . import loadgen, machine  # noqa: E402
from .common import spread  # noqa: E402
from .load_suite import EXAMPLE_RULES, ROOT, SEED, Bench, _pinning  # noqa: E402
from .loadgen import EventSource, Proc  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# ------------------------------------------------------------------- grid --

# Every knob, what it is and where it acts. Server knobs are ServerConfig
# fields (and so may go in a tuned file); `batch` is how a client sends.
KNOBS: dict[str, str] = {
    "gc_mode": "server: freeze (gc.freeze after start-up), off (also gc.disable), default",
    "gc_thresholds": "server: gc.set_threshold(g0, g1, g2); none: CPython's (700, 10, 10)",
    "workers": "server: worker processes on one port (SO_REUSEPORT), one shared state region",
    "capacity": "server: keys per counter table (100,000 users: users per slot = 100,000 / capacity)",
    "prefault": "server: the state region faulted in at start (not varied)",
    "sndbuf": "server: SO_SNDBUF of each connection, bytes (0: the kernel's, autotuned)",
    "rcvbuf": "server: SO_RCVBUF of each connection, bytes (0: the kernel's, autotuned)",
    "nodelay": "server: TCP_NODELAY on each connection",
    "loop": "server: uvloop or asyncio's own loop",
    "batch": "client: events per request; 1: `decide`, n > 1: `decide_batch` of n",
}
SERVER_KNOBS = tuple(k for k in KNOBS if k != "batch")
assert set(SERVER_KNOBS) <= TUNABLE, set(SERVER_KNOBS) - TUNABLE

# The load suite's server: every variant below changes one family of it.
BASELINE: dict[str, Any] = {
    "gc_mode": "freeze", "gc_thresholds": None, "workers": 1, "capacity": 2 ** 18, "prefault": True,
    "sndbuf": 0, "rcvbuf": 0, "nodelay": True, "loop": "uvloop", "batch": 1,
}


@dataclass(frozen=True)
class Variant:
    """One change of the baseline (a few knobs of one family)."""

    name: str
    changes: Mapping[str, Any]


FAMILIES: dict[str, tuple[Variant, ...]] = {
    "gc": (Variant("gc off", {"gc_mode": "off"}),
           Variant("gc default", {"gc_mode": "default"}),
           Variant("gc freeze, gen0 10,000", {"gc_thresholds": (10_000, 10, 10)})),
    "workers": (Variant("2 workers", {"workers": 2}),),
    "batch": (Variant("batch 10", {"batch": 10}), Variant("batch 100", {"batch": 100})),
    "capacity": (Variant("capacity 2^17", {"capacity": 2 ** 17}), Variant("capacity 2^19", {"capacity": 2 ** 19})),
    "socket buffers": (Variant("buffers 256 KiB", {"sndbuf": 256 * 1024, "rcvbuf": 256 * 1024}),),
    "nodelay": (Variant("nodelay off", {"nodelay": False}),),
    "loop": (Variant("asyncio loop", {"loop": "asyncio"}),),
}
for _family in FAMILIES.values():
    for _v in _family:
        assert set(_v.changes) <= set(BASELINE), _v


@dataclass(frozen=True)
class Plan:
    """How much of the grid a run covers, and how long each point runs."""

    families: Mapping[str, tuple[str, ...]]  # family -> names of its variants run
    rates: tuple[int, ...]  # open-loop load levels, decisions/s, ascending
    repeats: int  # fresh servers per configuration
    seconds: float  # measured per rate
    warmup_s: float  # at the rate before the measured part (left out of the quantiles)
    warm_events: int  # sent closed-loop to each fresh server before the rates
    conns: int  # pipelined connections of the open loop
    tie_rate: int  # the rate whose p99 breaks ties (see RULE)
    margin: float  # "clearly lower p99" also needs the median this much lower
    confirm_with_baseline: bool  # the confirmation re-measures the baseline beside the combination
    alloc_decisions: int  # traced decisions per allocation row
    quiet_wait_s: float  # before each run, wait up to this long for the rest of the machine to go quiet
    quiet_budget_s: float  # ... and up to this long in all
    retry_budget_s: float  # seconds the suite may spend re-running disturbed runs at once (once each)
    makeup_budget_s: float  # ... and on make-up servers for repeats left disturbed
    users: int = 100_000


FULL = Plan(
    families={f: tuple(v.name for v in vs) for f, vs in FAMILIES.items()},
    rates=(5_000, 10_000, 20_000, 30_000, 40_000), repeats=3, seconds=1.8, warmup_s=0.4, warm_events=10_000,
    conns=8, tie_rate=20_000, margin=0.05, confirm_with_baseline=True, alloc_decisions=5_000,
    quiet_wait_s=5.0, quiet_budget_s=60.0, retry_budget_s=30.0, makeup_budget_s=200.0,
)
QUICK = Plan(
    families={"gc": ("gc off", "gc default"), "workers": ("2 workers",), "batch": ("batch 10",),
              "capacity": ("capacity 2^17",), "socket buffers": ("buffers 256 KiB",), "nodelay": ("nodelay off",),
              "loop": ("asyncio loop",)},
    rates=(20_000, 30_000), repeats=1, seconds=0.8, warmup_s=0.2, warm_events=3_000,
    conns=8, tie_rate=20_000, margin=0.25, confirm_with_baseline=False, alloc_decisions=2_000,
    quiet_wait_s=0.5, quiet_budget_s=4.0, retry_budget_s=4.0, makeup_budget_s=0.0,
)

SLO_US = 1000.0  # p99 target from the issue
MIN_COMPLETION = 0.98  # answers completed at >= 98% of the offered rate
COLLAPSE_US = 20 * SLO_US  # a run's request p99 above this: the higher rates are not run for that server
# The machine is shared: a run during which other processes kept this much
# CPU busy, or the load generator itself wrote late by this much (p99; its
# stalls count against the server, as latency runs from the scheduled time),
# is "disturbed": run once more (budget allowing) and flagged if it stays so.
QUIET_CORES = 0.15  # below this, the rest of the machine counts as quiet before a run
DISTURBED_OTHER_CORES = 0.25
DISTURBED_LAG_US = 250.0

RULE = (
    "A configuration sustains a rate when, at that rate and at every lower rate of the grid, the median over "
    f"repeats of the p99 decision latency (from the scheduled send time) is <= {SLO_US:,.0f} µs, every repeat ran, "
    f"with no error, no unanswered request, no out-of-order or bad sampled answer, and answers completed at "
    f">= {MIN_COMPLETION:.0%} of the offered rate; and its settings read back from the server matched. "
    "Configurations are ranked by the highest rate they sustain, then by the median p99 at the tie-break rate. "
    "A variant replaces the baseline's value of its family only when it is clearly better: it sustains a higher "
    "rate and, at the lowest rate the baseline fails, its worst repeat's p99 is below the baseline's best "
    "repeat's (or the baseline failed there outright: errors, unanswered, collapsed); or it sustains the same rate "
    "and at the tie-break rate its worst repeat's p99 is below the baseline's best repeat's and its median is at "
    "least the margin lower, with a lower median p99 at every rate both sustain as well. Runs disturbed by the "
    "rest of the machine (other processes busy, or the load generator writing late) are run once more when the "
    "retry budget allows (the last attempt counts), and a repeat left with a disturbed run is made up by a "
    "fresh server after the others, budget allowing; a comparison whose runs at its deciding rate are still "
    "disturbed is not judged (the baseline keeps its value). Of several clear winners in a family, the best "
    "ranked. The combination of every family's winner is then measured (the confirmation) and recommended "
    "unless the baseline is clearly better than it there; in that case the best ranked single winner is. With "
    "no clear winner, the baseline is recommended."
)


def _config(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {**BASELINE, **changes}


def _variants(plan: Plan) -> dict[str, list[Variant]]:
    out = {}
    for family, names in plan.families.items():
        by_name = {v.name: v for v in FAMILIES[family]}
        out[family] = [by_name[n] for n in names]
    return out


# ----------------------------------------------------------------- servers --

def _serve_argv(*args: str) -> list[str]:
    """``fraudcore serve ARGS`` with this interpreter's installation."""
    exe = Path(sys.executable).with_name("fraudcore")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fraudcore.cli"]
    return [*cmd, "serve", "--rules", str(EXAMPLE_RULES), "--port", "0", *args]


def _knob_argv(cfg: Mapping[str, Any]) -> list[str]:
    """The command-line flags of a configuration's server knobs."""
    argv = ["--workers", str(cfg["workers"]), "--capacity", str(cfg["capacity"]), "--loop", cfg["loop"],
            "--gc-mode", cfg["gc_mode"], "--sndbuf", str(cfg["sndbuf"]), "--rcvbuf", str(cfg["rcvbuf"])]
    if cfg["gc_thresholds"] is not None:
        argv += ["--gc-thresholds", ",".join(map(str, cfg["gc_thresholds"]))]
    if cfg["prefault"]:
        argv.append("--prefault")
    if not cfg["nodelay"]:
        argv.append("--no-nodelay")
    return argv


def _worker_stats(port: int, workers: int, attempts: int = 24) -> dict[int, dict[str, Any]]:
    """``stats`` of every worker, by pid: a fresh connection per try (the
    kernel picks the worker of a connection by a hash of its address)."""
    out: dict[int, dict[str, Any]] = {}
    for _ in range(attempts):
        with Client("127.0.0.1", port, timeout=10.0) as c:
            st = c.stats()
        out[st["server"]["pid"]] = st
        if len(out) >= workers:
            break
    return out


def _config_mismatches(cfg: Mapping[str, Any], stats: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """Where the settings a server reports differ from ``cfg`` (server knobs),
    and whether its collector is in the state they call for."""
    bad = []
    for pid, st in stats.items():
        srv = st["server"]
        got = srv["config"]
        for k in SERVER_KNOBS:
            if k not in cfg:
                continue
            want = list(cfg[k]) if isinstance(cfg[k], tuple) else cfg[k]
            if got.get(k) != want:
                bad.append(f"pid {pid}: {k} = {got.get(k)!r}, expected {want!r}")
        g = srv["gc"]
        if g["enabled"] != (cfg.get("gc_mode") != "off"):
            bad.append(f"pid {pid}: collector enabled = {g['enabled']} with gc_mode {cfg.get('gc_mode')!r}")
        if cfg.get("gc_thresholds") is not None and list(g["thresholds"]) != list(cfg["gc_thresholds"]):
            bad.append(f"pid {pid}: gc thresholds {g['thresholds']}, expected {list(cfg['gc_thresholds'])}")
    return bad


def _gc_delta(before: Mapping[int, Mapping[str, Any]], after: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The collector's work between two ``stats`` (all workers added up):
    collections and pauses per generation. The server keeps only lifetime
    figures, so the largest and the median pause are over the process's
    life (from its start-up collection on), not over the load alone."""
    gens = []
    for gen in range(3):
        coll = count = 0
        total = life_max = 0.0
        life_p50 = []
        for pid, st in after.items():
            g1 = st["server"]["gc"]
            g0 = before.get(pid, {}).get("server", {}).get("gc")
            p1 = g1["pauses"][gen]
            p0 = g0["pauses"][gen] if g0 else {"count": 0, "total_us": 0.0}
            coll += g1["collections"][gen] - (g0["collections"][gen] if g0 else 0)
            count += p1["count"] - p0["count"]
            total += p1["total_us"] - p0["total_us"]
            life_max = max(life_max, p1["max_us"])
            life_p50.append(p1["p50_us"])
        gens.append({"generation": gen, "collections": coll, "pauses": count, "pause_total_us": round(total, 1),
                     "lifetime_max_us": life_max, "lifetime_p50_us": max(life_p50, default=0.0)})
    any_st = next(iter(after.values()))["server"]["gc"]
    return {"mode": any_st["mode"], "enabled": any_st["enabled"], "thresholds": any_st["thresholds"],
            "frozen": any_st["frozen"], "workers_seen": len(after), "workers_before": len(before),
            "generations": gens}


def _counter_fill(stats: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Keys and evictions of the shared counter tables at the end."""
    st = next(iter(stats.values()))
    counters = st.get("counters", {})
    fill = max((c["keys"] / c["capacity"] for c in counters.values() if c.get("capacity")), default=0.0)
    return {"keys": st.get("keys"), "evictions": st.get("evictions"), "max_table_fill": round(fill, 4),
            "memory_bytes": st.get("memory_bytes"), "server_errors": st["server"].get("errors")}


# ------------------------------------------------------------------ frames --

class Frames:
    """Every request of a server's run, encoded once: the warm-up, then per
    rate the events of its warm-up and measured part, as ``decide`` frames
    and as ``decide_batch`` frames of each batch size. Every configuration
    and repeat replays the same events in the same order on a fresh state."""

    def __init__(self, plan: Plan, bad: Sequence[str], batches: Sequence[int]):
        src = EventSource(SEED, plan.users, bad)
        self.warm = loadgen.decide_frames(src.take(plan.warm_events))
        self.by: dict[tuple[int, int], list[bytes]] = {}
        for rate in plan.rates:
            n = int(round(rate * (plan.warmup_s + plan.seconds)))
            events = src.take(n - n % max(batches))
            for b in batches:
                self.by[(rate, b)] = loadgen.decide_frames(events) if b == 1 else loadgen.batch_frames(events, b)
        self.events = src.taken


def decision_latency(lat_ns: np.ndarray, batch: int, rate: float) -> np.ndarray:
    """Per event, from when it arrived: a request's latency (from its
    scheduled send time) plus, for event ``j`` of a batch of ``batch``, the
    ``(batch - 1 - j) / rate`` it waited for the batch to fill."""
    if batch == 1:
        return lat_ns
    fill = (np.arange(batch - 1, -1, -1) * (1e9 / rate)).astype(np.int64)
    return (lat_ns[:, None] + fill[None, :]).ravel()


# ------------------------------------------------------------------- sweep --

def _name(variants: Sequence[Variant]) -> str:
    return " + ".join(v.name for v in variants) if variants else "baseline"


class Sweep:
    """The servers of one sweep and their measurements."""

    def __init__(self, plan: Plan, log: Callable[[str], None], batches: Sequence[int]):
        self.plan = plan
        self.log = log
        self.bench = Bench({}, log)  # the load suite's measure: summary, verify, server CPU
        self.pin = _pinning()
        self.all_cpus = os.sched_getaffinity(0)
        t0 = time.perf_counter()
        self.frames = Frames(plan, self.bench.bad, batches)
        log(f"sweep: {self.frames.events:,} events encoded in {time.perf_counter() - t0:.1f} s")
        self.points: list[dict[str, Any]] = []
        self.discarded: list[dict[str, Any]] = []  # disturbed attempts that were run once more
        self.retry_left_s = plan.retry_budget_s
        self.makeup_left_s = plan.makeup_budget_s
        self.quiet_left_s = plan.quiet_budget_s
        # (phase, config, rate) -> {server index: decision latencies, ns}
        self.lat: dict[tuple[str, str, int], dict[int, np.ndarray]] = {}
        self.servers: list[dict[str, Any]] = []
        self.state_dirs: list[str] = []

    def close(self) -> None:
        os.sched_setaffinity(0, self.all_cpus)
        self.bench.loop.close()
        asyncio.set_event_loop(None)

    def phase(self, phase: str, configs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Every configuration once per repeat, the order rotated by a
        fraction of the list each repeat, and reversed every other repeat;
        then, budget allowing, a make-up server for each repeat that ended
        with a disturbed run (later, so past a spell of load from elsewhere)."""
        n = len(configs)
        for rep in range(self.plan.repeats):
            k = rep * n // self.plan.repeats
            order = [*configs[k:], *configs[:k]]
            for name, cfg in (order[::-1] if rep % 2 else order):
                self.serve(phase, rep, name, cfg)
        for idx, info in enumerate(list(self.servers)):
            if info["phase"] != phase or info.get("replaced") or info.get("makeup"):
                continue
            if not any(p["disturbed"] for p in self.points if p["server_index"] == idx):
                continue
            cost = info.get("start_s", 0.0) + info.get("load_s", 0.0) + 2.0
            if cost > self.makeup_left_s:
                if self.plan.makeup_budget_s:
                    self.log(f"sweep: no budget left for a make-up of {info['config']} repeat {info['repeat'] + 1}")
                continue
            self.makeup_left_s -= cost
            info["replaced"] = True
            self.discarded += [p for p in self.points if p["server_index"] == idx]
            self.points = [p for p in self.points if p["server_index"] != idx]
            for lats in self.lat.values():
                lats.pop(idx, None)
            self.log(f"sweep: {info['config']} repeat {info['repeat'] + 1} had disturbed runs: a make-up server")
            self.serve(phase, info["repeat"], info["config"], info["knobs"], makeup=True)

    def serve(self, phase: str, rep: int, name: str, cfg: dict[str, Any], makeup: bool = False) -> None:
        """A fresh server of ``cfg``: warm it, run the rates, read its stats, stop it."""
        plan = self.plan
        state_dir = tempfile.mkdtemp(prefix="fraudcore-bench-sweep-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.state_dirs.append(state_dir)
        pin = self.pin if cfg["workers"] == 1 else None
        os.sched_setaffinity(0, pin[0] if pin else self.all_cpus)
        proc = Proc(f"fraudcore serve [{name}]", _serve_argv("--state", os.path.join(state_dir, "state"), *_knob_argv(cfg)),
                    ROOT, pin[1] if pin else None)
        index = len(self.servers)
        info: dict[str, Any] = {"phase": phase, "repeat": rep, "config": name, "knobs": cfg, "makeup": makeup,
                                "argv": ["fraudcore", *proc.argv[proc.argv.index("serve"):]],
                                "cpus": {"client": sorted(pin[0]), "server": sorted(pin[1])} if pin else "unpinned"}
        info["argv"][info["argv"].index("--state") + 1] = "<tmp>/state"
        self.servers.append(info)
        try:
            t0 = time.perf_counter()
            proc.start()
            info["start_s"] = time.perf_counter() - t0
            self.log(f"sweep: [{phase} {rep + 1}/{plan.repeats}] {name}: {proc.banner} (started in {info['start_s']:.1f} s)")
            self.bench.warm(name, proc, None, self.frames.warm)
            before = _worker_stats(proc.port, cfg["workers"])
            load_s = 0.0
            for i, rate in enumerate(plan.rates):
                point = self.measure(phase, rep, name, cfg, proc, rate, index)
                load_s += point["load_s_all_attempts"]
                if point["collapsed"]:
                    info["skipped_rates"] = list(plan.rates[i + 1:])
                    if info["skipped_rates"]:
                        self.log(f"sweep: {name} collapsed at {rate:,}/s: rates {info['skipped_rates']} not run")
                    break
            after = _worker_stats(proc.port, cfg["workers"])
            info["config_mismatches"] = _config_mismatches(cfg, after)
            info["gc"] = _gc_delta(before, after)
            info["load_s"] = load_s
            info["counters"] = _counter_fill(after)
            info["worker_pids"] = sorted(after)
        except Exception as e:  # noqa: BLE001 - recorded; the configuration fails the rule
            info["failure"] = f"{type(e).__name__}: {e}"
            self.log(f"sweep: {name} failed: {info['failure']}")
        finally:
            proc.finish(info, state_dir)
            os.sched_setaffinity(0, self.all_cpus)

    def quiet(self) -> tuple[float, float]:
        """Wait (up to ``quiet_wait_s``) until the rest of the machine is
        quiet: (seconds waited, busy cores in the last 0.1 s sample; the
        server is idle between runs and this process asleep)."""
        t0 = time.perf_counter()
        limit = min(self.plan.quiet_wait_s, max(0.1, self.quiet_left_s))
        while True:
            m0 = loadgen.machine_ticks()
            time.sleep(0.1)
            busy = loadgen.machine_cores(m0, loadgen.machine_ticks(), os.cpu_count() or 1)["busy_cores"]
            waited = time.perf_counter() - t0
            if busy < QUIET_CORES or waited >= limit:
                self.quiet_left_s -= max(0.0, waited - 0.1)  # the first sample is free
                return round(waited, 2), round(busy, 2)

    def measure(self, phase: str, rep: int, name: str, cfg: dict[str, Any], proc: Proc, rate: int,
                index: int) -> dict[str, Any]:
        """One rate on ``proc``; a disturbed run once more (budget allowing)."""
        attempts = []
        while True:
            waited, busy = self.quiet()
            point, dec = self.attempt(phase, rep, name, cfg, proc, rate)
            point["quiet_wait_s"], point["busy_cores_before"] = waited, busy
            attempts.append(point)
            if not point["disturbed"] or len(attempts) > 1 or self.retry_left_s < point["wall_s"]:
                break
            self.retry_left_s -= point["wall_s"]
            self.log(f"sweep: {name} at {rate:,}/s disturbed (other load {point['other_load_cores']:.2f} cores, "
                     f"sender lag p99 {_f(point['send_lag_us_p99'])} µs): once more")
        point["attempts"] = len(attempts)
        point["server_index"] = index
        point["load_s_all_attempts"] = sum(p["wall_s"] for p in attempts)
        self.discarded += attempts[:-1]
        if dec is not None:
            self.lat.setdefault((phase, name, rate), {})[index] = dec
        self.points.append(point)
        return point

    def attempt(self, phase: str, rep: int, name: str, cfg: dict[str, Any], proc: Proc,
                rate: int) -> tuple[dict[str, Any], np.ndarray | None]:
        plan = self.plan
        batch = cfg["batch"]
        frames = self.frames.by[(rate, batch)]
        skip = int(rate / batch * plan.warmup_s)
        rec = self.bench.measure(
            name, proc, frames, kind="decide" if batch == 1 else "batch", items=batch,
            label={"scenario": "open", "rate": rate, "repeat": rep, "phase": phase, "batch": batch, "conns": plan.conns},
            conns=plan.conns, rate=rate / batch, skip=skip, timeout=plan.warmup_s + plan.seconds + 60.0)
        self.bench.runs.clear()
        lats = self.bench.open_lat.pop((name, rate), None)
        ol = rec.get("open_loop", {})
        point: dict[str, Any] = {
            "phase": phase, "config": name, "repeat": rep, "rate": rate, "batch": batch,
            "latency_us": {}, "request_latency_us": rec.get("latency_us", {}),
            "decisions_per_s": rec.get("items_per_s", 0.0),
            "send_ratio": ol.get("achieved_send_rate", 0.0) / ol["target_rate"] if ol else 0.0,
            "completion_ratio": ol.get("completion_rate", 0.0) / ol["target_rate"] if ol else 0.0,
            "send_lag_us_p99": ol.get("send_lag_us", {}).get("p99"),
            "errors": rec["errors"], "unanswered": rec["unanswered"], "bad_ids": rec["bad_ids"],
            "lost_connections": len(rec["lost_connections"]), "timed_out": rec["timed_out"],
            "verify_bad": rec["verify"]["bad"], "sampled_answers": rec["verify"]["sampled_answers"],
            "decisions_with_errors": rec["verify"]["decisions_with_errors"],
            "server_cpu_us_per_decision": rec.get("server_cpu_us_per_item"),
            "server_cpu_share": rec["server_cpu_share"], "worker_split": rec["worker_split"],
            "other_load_cores": rec["other_load_cores"], "steal_cores": rec["machine"]["steal_cores"],
            "wall_s": rec["wall_s"],
        }
        if rec["error_samples"]:
            point["error_samples"] = rec["error_samples"][:2]
        dec = None
        if lats:
            dec = decision_latency(lats[-1], batch, rate)
            point["latency_us"] = loadgen.percentiles(dec)
        # Collapse is the server falling behind: judged on the requests' latency
        # (a batch's fill wait is no backlog, and shrinks as the rate grows).
        point["collapsed"] = bool(rec["unanswered"] or rec["timed_out"] or not point["latency_us"]
                                  or point["request_latency_us"]["p99"] > COLLAPSE_US)
        point["disturbed"] = bool(point["other_load_cores"] > DISTURBED_OTHER_CORES
                                  or (point["send_lag_us_p99"] or 0.0) > DISTURBED_LAG_US)
        return point, dec


# ------------------------------------------------------------- the rule ----

def _hard_fail(p: Mapping[str, Any], repeats: int) -> bool:
    return bool(p["runs"] < repeats or p["errors"] or p["unanswered"] or p["bad"] or p["completion_ratio_min"] < MIN_COMPLETION)


def aggregate(points: Sequence[Mapping[str, Any]], servers: Sequence[Mapping[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """Per phase and configuration: each rate's medians and spreads over
    repeats, whether it is sustained, and the configuration's standing."""
    by: dict[tuple[str, str], dict[int, list[Mapping[str, Any]]]] = {}
    servers = [s for s in servers if not s.get("replaced")]  # their runs were made up by another server
    for s in servers:  # a server that failed before its first run still has a (failing) summary
        by.setdefault((s["phase"], s["config"]), {})
    for p in points:
        by.setdefault((p["phase"], p["config"]), {}).setdefault(p["rate"], []).append(p)
    out = []
    for (phase, name), rates in by.items():
        mism = [m for s in servers if s["phase"] == phase and s["config"] == name for m in s.get("config_mismatches", [])]
        failed = [s["failure"] for s in servers if s["phase"] == phase and s["config"] == name and "failure" in s]
        per_rate: dict[int, dict[str, Any]] = {}
        for rate in plan.rates:
            ps = [p for p in rates.get(rate, []) if p["latency_us"]]
            if not ps:
                continue
            agg = {q: spread([p["latency_us"][q] for p in ps]) for q in ("p50", "p99", "p99.9", "max")}
            agg.update({
                "runs": len(ps), "batch": ps[0]["batch"],
                "decisions_per_s": spread([p["decisions_per_s"] for p in ps]),
                "completion_ratio_min": min(p["completion_ratio"] for p in ps),
                "send_ratio_min": min(p["send_ratio"] for p in ps),
                "errors": sum(p["errors"] for p in ps), "unanswered": sum(p["unanswered"] for p in ps),
                "bad": sum(p["bad_ids"] + p["verify_bad"] + p["lost_connections"] + p["timed_out"] for p in ps),
                "server_cpu_us_per_decision": statistics.median(p["server_cpu_us_per_decision"] or 0.0 for p in ps),
                "server_cpu_share": statistics.median(p["server_cpu_share"] for p in ps),
                "other_load_cores": statistics.median(p["other_load_cores"] for p in ps),
                "worker_split": [p["worker_split"] for p in ps] if ps[0]["worker_split"] else None,
                "disturbed": sum(p["disturbed"] for p in ps),
                "send_lag_us_p99": statistics.median(p["send_lag_us_p99"] or 0.0 for p in ps),
            })
            agg["hard_fail"] = _hard_fail(agg, plan.repeats)
            agg["sustained"] = bool(not agg["hard_fail"] and agg["p99"]["median"] <= SLO_US and not mism and not failed)
            per_rate[rate] = agg
        sustained = 0
        first_failed = None
        for rate in plan.rates:
            if rate in per_rate and per_rate[rate]["sustained"]:
                sustained = rate
            else:
                first_failed = rate
                break
        tie = per_rate.get(plan.tie_rate)
        out.append({"phase": phase, "config": name, "per_rate": per_rate, "sustained_rate": sustained,
                    "first_failed_rate": first_failed, "tie_p99_us": tie["p99"] if tie else None,
                    "config_mismatches": mism, "failures": failed})
    return out


def _rank(s: Mapping[str, Any]) -> tuple[float, float]:
    tie = s["tie_p99_us"]
    return (s["sustained_rate"], -(tie["median"] if tie else float("inf")))


def deciding_rate(a: Mapping[str, Any], b: Mapping[str, Any], plan: Plan) -> int:
    """The rate at which ``a`` and ``b`` are compared: the lowest rate the
    weaker fails when they sustain different rates, else the tie-break rate."""
    if a["sustained_rate"] != b["sustained_rate"]:
        return min((a, b), key=lambda s: s["sustained_rate"])["first_failed_rate"]
    return plan.tie_rate


def disturbed(a: Mapping[str, Any], b: Mapping[str, Any], plan: Plan) -> bool:
    """Whether a run of either at their deciding rate was disturbed."""
    r = deciding_rate(a, b, plan)
    return any(s["per_rate"].get(r, {}).get("disturbed") for s in (a, b))


def clearly_better(a: Mapping[str, Any], b: Mapping[str, Any], plan: Plan) -> bool:
    """Whether configuration summary ``a`` beats ``b`` by more than the spread
    of their repeats, on undisturbed runs (RULE)."""
    if disturbed(a, b, plan):
        return False
    if a["sustained_rate"] != b["sustained_rate"]:
        if a["sustained_rate"] < b["sustained_rate"]:
            return False
        f = b["first_failed_rate"]  # <= a's sustained rate
        pa, pb = a["per_rate"][f], b["per_rate"].get(f)
        return pb is None or pb["hard_fail"] or pa["p99"]["max"] < pb["p99"]["min"]
    ta, tb = a["tie_p99_us"], b["tie_p99_us"]
    if ta is None or tb is None:
        return ta is not None
    # The same direction at every rate both sustain: p99 at one rate swings by
    # tens of percent from server to server, so three repeats at one rate
    # alone would crown a winner by chance (about 1 in 20 per comparison).
    both = [r for r in plan.rates if r <= a["sustained_rate"] and r in a["per_rate"] and r in b["per_rate"]]
    consistent = all(a["per_rate"][r]["p99"]["median"] < b["per_rate"][r]["p99"]["median"] for r in both)
    return consistent and ta["max"] < tb["min"] and ta["median"] <= (1 - plan.margin) * tb["median"]


def _verdict(a: Mapping[str, Any], base: Mapping[str, Any], plan: Plan) -> str:
    if disturbed(a, base, plan):
        return f"not judged: disturbed runs at {deciding_rate(a, base, plan):,}/s"
    if clearly_better(a, base, plan):
        return "clearly better"
    if clearly_better(base, a, plan):
        return "clearly worse"
    ta, tb = a["tie_p99_us"], base["tie_p99_us"]
    if a["sustained_rate"] == base["sustained_rate"] and ta and tb and (ta["max"] < tb["min"] or tb["max"] < ta["min"]):
        return f"mixed: p99 {'lower' if ta['median'] < tb['median'] else 'higher'} at {plan.tie_rate:,}/s, not at every rate"
    return "within the noise"


# -------------------------------------------------------------- allocation --

def _call(call: Callable[[Any], Any], a: Any) -> None:
    call(a)  # its own line: what native code allocates is traced to the Python line that called it


def _traced(label: str, call: Callable[[Any], Any], args: Sequence[Any], items: int) -> dict[str, Any]:
    """tracemalloc over ``call(a)`` for each ``a`` (the first fifth untraced,
    as a warm-up), the collector off meanwhile: bytes and blocks retained per
    decision before and after a full collection, and each call's peak."""
    w = len(args) // 5
    for a in args[:w]:
        call(a)
    args = args[w:]
    n = len(args)
    peaks = np.zeros(n, dtype=np.int64)
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        get, reset = tracemalloc.get_traced_memory, tracemalloc.reset_peak
        snap0 = tracemalloc.take_snapshot()
        for i in range(n):
            a = args[i]
            before = get()[0]
            reset()
            _call(call, a)
            peaks[i] = get()[1] - before
        snap1 = tracemalloc.take_snapshot()
        unreachable = gc.collect()  # objects in reference cycles the calls left behind
        snap2 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        gc.enable()
    (by0, bl0), (by1, bl1), (by2, bl2) = _tally(snap0), _tally(snap1), _tally(snap2)
    top = [s for s in snap2.filter_traces(_IGNORE).compare_to(snap0.filter_traces(_IGNORE), "lineno") if s.size_diff > 0][:3]
    d = n * items
    return {
        "path": label, "decisions": d, "items_per_call": items,
        "net_bytes_per_decision": (by2 - by0) / d, "net_blocks_per_decision": (bl2 - bl0) / d,
        "cyclic_objects_per_decision": unreachable / d,
        "freed_by_collection_bytes_per_decision": (by1 - by2) / d,
        "freed_by_collection_blocks_per_decision": (bl1 - bl2) / d,
        "peak_bytes_per_decision_p50": float(np.median(peaks)) / items,
        "peak_bytes_per_decision_max": float(peaks.max()) / items,
        "peak_bytes_per_call_p50": float(np.median(peaks)),
        "top_retained": [f"{_short(str(s.traceback[0].filename))}:{s.traceback[0].lineno} "
                         f"+{s.size_diff:,} B in {s.count_diff:+,} blocks" for s in top],
    }


# What tracemalloc sees that is not the decisions': its own, and _traced's
# bookkeeping (loop variables, the figures it reads).
_TRACED_LINES = (_traced.__code__.co_firstlineno, max(ln for _, _, ln in _traced.__code__.co_lines() if ln))
_IGNORE = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>"),
           *(tracemalloc.Filter(False, __file__, lineno=ln) for ln in range(_TRACED_LINES[0], _TRACED_LINES[1] + 1))]


def _tally(snap: tracemalloc.Snapshot) -> tuple[int, int]:
    """Bytes and blocks of a snapshot, less what is not the decisions'."""
    stats = snap.filter_traces(_IGNORE).statistics("filename")
    return sum(s.size for s in stats), sum(s.count for s in stats)


def _rel(path: Path) -> str:
    """``path`` relative to the checkout when inside it."""
    return os.path.relpath(path, ROOT) if path.resolve().is_relative_to(ROOT) else str(path)


def _short(path: str) -> str:
    for base in (str(ROOT), sys.prefix):
        if path.startswith(base):
            return os.path.relpath(path, base)
    return path


def allocation(plan: Plan, log: Callable[[str], None], bad: Sequence[str]) -> dict[str, Any]:
    """Allocation per decision, in this process, through ``Engine.decide``
    and the server's request path (``Worker.handle`` on pre-encoded frames,
    one response buffer per request as for a read of one frame)."""
    engine = Engine.from_file(EXAMPLE_RULES, capacity=2 ** 15)  # private region; counters live outside the Python heap
    worker = Worker(ServerConfig(rules=str(EXAMPLE_RULES)), engine)
    worker.gc_pauses.close()  # the server's pause recorder: not this process's business
    src = EventSource(SEED + 1, plan.users, bad)
    n = plan.alloc_decisions
    inf = float("inf")  # received at +inf: never past the deadline

    def handle(frame: memoryview) -> None:
        worker.handle(frame, bytearray(), inf)

    def payloads(frames: list[bytes]) -> list[memoryview]:
        return [memoryview(f)[4:] for f in frames]  # without the length prefix, as FrameReader yields them

    rows = []
    try:
        rows.append(_traced("Engine.decide(event)", engine.decide, src.take(n), 1))
        rows.append(_traced("Worker.handle: decide request", handle, payloads(loadgen.decide_frames(src.take(n))), 1))
        for b in (10, 100):
            frames = payloads(loadgen.batch_frames(src.take(n), b))
            rows.append(_traced(f"Worker.handle: decide_batch of {b}", handle, frames, b))
        errors = dict(worker.error_counts)
    finally:
        engine.close()
    for r in rows:
        log(f"sweep: allocation {r['path']}: net {r['net_bytes_per_decision']:,.1f} B "
            f"({r['net_blocks_per_decision']:.2f} blocks), cyclic objects {r['cyclic_objects_per_decision']:.3f}, "
            f"freed by a full collection {r['freed_by_collection_bytes_per_decision']:,.1f} B, "
            f"peak p50 {r['peak_bytes_per_decision_p50']:,.0f} B per decision")
    return {"rows": rows, "request_errors": errors, "python": sys.version.split()[0],
            "how": "tracemalloc (1 frame), collector off while traced; net = traced bytes (snapshots, less the "
                   "harness's own) after the calls and a full collection minus before; cyclic objects = what that "
                   "collection found unreachable (garbage gc_mode=off would keep); freed by the collection = the "
                   "bytes it released (that garbage, and the interpreter's free lists, which a full collection "
                   "clears); peak = the highest traced bytes above the start during one call (median and largest "
                   "over calls); a fifth of the inputs run first untraced as a warm-up"}


# ------------------------------------------------------------- tuned file --

def tuned_doc(cfg: Mapping[str, Any], name: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"serve": {k: (list(cfg[k]) if isinstance(cfg[k], tuple) else cfg[k]) for k in SERVER_KNOBS},
            "client": {"batch": cfg["batch"], "note": "how clients send (events per request); fraudcore serve ignores it"},
            "evidence": {"recommended": name, **evidence}}


def verify_tuned(path: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Start ``fraudcore serve --tuned PATH`` and check that every worker's
    ``stats`` reports the file's settings, and that it decides."""
    doc = json.loads(path.read_text())
    serve = doc["serve"]
    state_dir = tempfile.mkdtemp(prefix="fraudcore-bench-sweep-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    proc = Proc("fraudcore serve --tuned", _serve_argv("--state", os.path.join(state_dir, "state"), "--tuned", str(path)), ROOT)
    out: dict[str, Any] = {"argv": ["fraudcore", *proc.argv[proc.argv.index("serve"):]]}
    out["argv"][out["argv"].index("--state") + 1] = "<tmp>/state"
    try:
        proc.start()
        out["banner"] = proc.banner
        want = {k: (tuple(v) if isinstance(v, list) else v) for k, v in serve.items()}
        stats = _worker_stats(proc.port, serve.get("workers", 1))
        out["workers_seen"] = len(stats)
        out["mismatches"] = _config_mismatches(want, stats)
        if len(stats) < serve.get("workers", 1):
            out["mismatches"].append(f"only {len(stats)} of {serve['workers']} workers answered stats")
        events = EventSource(SEED + 2, 1000).take(200)
        with Client("127.0.0.1", proc.port, timeout=10.0) as c:
            out["health"] = c.health()
            out["decisions"] = len(c.decide_batch(events[:100])) + len([c.decide(e) for e in events[100:]])
        out["reported"] = {pid: {k: st["server"]["config"][k] for k in serve} for pid, st in stats.items()}
        out["ok"] = not out["mismatches"] and out["health"] == "ok" and out["decisions"] == 200
    except Exception as e:  # noqa: BLE001 - reported
        out["ok"] = False
        out["failure"] = f"{type(e).__name__}: {e}; stderr: {proc.stderr_tail()}"
    finally:
        out["exit_code"] = proc.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    log(f"sweep: verified {path}: {'OK' if out['ok'] else 'FAILED'} {out.get('mismatches') or ''}{out.get('failure', '')}")
    return out


# --------------------------------------------------------------------- run --

def run(quick: bool = False, log: Callable[[str], None] = print, out: Path | None = None) -> dict[str, Any]:
    results_dir = out if out is not None else RESULTS
    plan = QUICK if quick else FULL
    t_suite = time.perf_counter()
    suffix = "-quick" if quick else ""
    variants = _variants(plan)
    batches = sorted({1, *(v.changes["batch"] for vs in variants.values() for v in vs if "batch" in v.changes)})
    ofat: list[tuple[str, dict[str, Any]]] = [("baseline", _config({}))]
    for vs in variants.values():
        ofat += [(v.name, _config(v.changes)) for v in vs]

    sweep = Sweep(plan, log, batches)
    try:
        alloc = allocation(plan, log, sweep.bench.bad)
        log(f"sweep: one factor at a time: {len(ofat)} configurations x {len(plan.rates)} rates x {plan.repeats} repeat(s)")
        sweep.phase("ofat", ofat)
        summaries = {s["config"]: s for s in aggregate(sweep.points, sweep.servers, plan) if s["phase"] == "ofat"}
        base = summaries["baseline"]
        families = []
        winners: list[Variant] = []
        for family, vs in variants.items():
            rows = [{"variant": v.name, "changes": dict(v.changes), "sustained_rate": summaries[v.name]["sustained_rate"],
                     "tie_p99_us": summaries[v.name]["tie_p99_us"], "verdict": _verdict(summaries[v.name], base, plan)}
                    for v in vs]
            better = [v for v in vs if clearly_better(summaries[v.name], base, plan)]
            pick = max(better, key=lambda v: _rank(summaries[v.name])) if better else None
            if pick is not None:
                winners.append(pick)
            families.append({"family": family, "variants": rows, "winner": pick.name if pick else None})
            log(f"sweep: family {family}: " + ", ".join(f"{r['variant']} {r['verdict']}" for r in rows)
                + f" -> {pick.name if pick else 'keep the baseline'}")

        combined_name = _name(winners)
        combined = _config({k: v for w in winners for k, v in w.changes.items()})
        confirm = None
        if winners:
            run_base = plan.confirm_with_baseline
            if run_base or len(winners) > 1:
                configs = ([("baseline", _config({}))] if run_base else []) + [(combined_name, combined)]
                log(f"sweep: confirmation: {', '.join(n for n, _ in configs)}")
                sweep.phase("confirm", configs)
                confirm = "confirm"
        all_summaries = aggregate(sweep.points, sweep.servers, plan)
        conf = {s["config"]: s for s in all_summaries if s["phase"] == "confirm"}
        if confirm and combined_name in conf:
            c_sum = conf[combined_name]
            c_base = conf.get("baseline", base)
            if clearly_better(c_base, c_sum, plan):
                best = max(winners, key=lambda v: _rank(summaries[v.name]))
                rec_name, rec_cfg, rec_phase = best.name, _config(best.changes), "ofat"
                why = (f"the combination ({combined_name}) was clearly worse than the baseline in the confirmation, "
                       f"so the best single winner is recommended")
            else:
                rec_name, rec_cfg, rec_phase = combined_name, combined, "confirm"
                why = "the combination of the families' winners held up in the confirmation (the baseline not clearly better)"
        elif winners:
            rec_name, rec_cfg, rec_phase = combined_name, combined, "ofat"
            why = "one family had a clear winner; measured in the one-factor-at-a-time phase"
        else:
            rec_name, rec_cfg, rec_phase = "baseline", _config({}), "ofat"
            why = "no variant was clearly better than the baseline"
        rec_sum = next(s for s in all_summaries if s["phase"] == rec_phase and s["config"] == rec_name)
        base_sum = next((s for s in all_summaries if s["phase"] == rec_phase and s["config"] == "baseline"), base)
        log(f"sweep: recommended {rec_name} ({why})")

        def figures(s: Mapping[str, Any]) -> dict[str, Any]:
            return {"sustained_rate": s["sustained_rate"],
                    "per_rate": {str(r): {"p50_us": a["p50"]["median"], "p99_us": a["p99"]["median"],
                                          "p99_us_range": [a["p99"]["min"], a["p99"]["max"]],
                                          "p99.9_us": a["p99.9"]["median"], "decisions_per_s": a["decisions_per_s"]["median"],
                                          "sustained": a["sustained"], "repeats": a["runs"]}
                                 for r, a in s["per_rate"].items()}}

        evidence = {
            "rule": RULE, "why": why, "phase": rec_phase, "quick": quick, "slo_p99_us": SLO_US, "tie_rate": plan.tie_rate,
            "recommended_figures": figures(rec_sum), "baseline_figures": figures(base_sum),
            "family_winners": [f["winner"] for f in families if f["winner"]],
            "machine": {"cores": os.cpu_count(), "load_average": machine.load_average(), "python": sys.version.split()[0]},
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": f"bench/results/latest-sweep{suffix}.json",
        }
        tuned_path = results_dir / f"tuned{suffix}.json"
        results_dir.mkdir(parents=True, exist_ok=True)
        doc = tuned_doc(rec_cfg, rec_name, evidence)
        tuned_path.write_text(json.dumps(doc, indent=2) + "\n")
        verification = verify_tuned(tuned_path, log)
        plots = _plots(sweep, all_summaries, rec_name, rec_phase, rec_sum, plan, suffix, log, results_dir)
    finally:
        sweep.close()
    leftovers = [d for d in sweep.state_dirs if os.path.exists(d)]

    return {
        "suite": "sweep",
        "config": {**dataclasses.asdict(plan), "quick": quick, "seed": SEED, "rules": str(EXAMPLE_RULES.relative_to(ROOT)),
                   "stream": f"ExchangeStream(seed={SEED}, users={plan.users}, bad_addresses=<the example list>)",
                   "events_per_server": sweep.frames.events, "slo_p99_us": SLO_US, "min_completion": MIN_COMPLETION,
                   "collapse_p99_us": COLLAPSE_US, "baseline": BASELINE, "knobs": KNOBS,
                   "cpu_pinning": {"client": sorted(sweep.pin[0]), "server_1_worker": sorted(sweep.pin[1]),
                                   "2_workers": "unpinned"} if sweep.pin else None,
                   "latency": "per decision, from its scheduled send time; in batches plus the wait for the batch to fill"},
        "rule": RULE,
        "grid": {"baseline": BASELINE, "families": {f: [{"name": v.name, "changes": dict(v.changes)} for v in vs]
                                                    for f, vs in variants.items()}},
        "allocation": alloc,
        "points": sweep.points,
        "discarded_attempts": sweep.discarded,
        "retry_budget_left_s": sweep.retry_left_s,
        "makeup_budget_left_s": sweep.makeup_left_s,
        "quiet_budget_left_s": sweep.quiet_left_s,
        "summaries": all_summaries,
        "families": families,
        "combined": {"name": combined_name, "config": combined, "measured": confirm is not None},
        "recommendation": {"name": rec_name, "config": rec_cfg, "phase": rec_phase, "why": why,
                           "sustained_rate": rec_sum["sustained_rate"], "tie_p99_us": rec_sum["tie_p99_us"],
                           "baseline_sustained_rate": base_sum["sustained_rate"], "baseline_tie_p99_us": base_sum["tie_p99_us"]},
        "tuned": {"path": _rel(tuned_path), "doc": doc, "verification": verification},
        "servers": sweep.servers,
        "state_dirs_left": leftovers,
        "plots": plots,
        "suite_seconds": time.perf_counter() - t_suite,
    }


def _plots(sweep: Sweep, summaries: Sequence[Mapping[str, Any]], rec_name: str, rec_phase: str, rec_sum: Mapping[str, Any],
           plan: Plan, suffix: str, log: Callable[[str], None], results_dir: Path) -> dict[str, Any]:
    try:
        from . import plots
    except ImportError as e:  # pragma: no cover - matplotlib missing
        return {"error": f"no plots: {e}"}
    try:
        series = {}
        for s in summaries:
            label = s["config"] + (" [confirmation]" if s["phase"] == "confirm" else "")
            rates = sorted(s["per_rate"])
            series[label] = {"x": [s["per_rate"][r]["decisions_per_s"]["median"] for r in rates],
                             "p50": [s["per_rate"][r]["p50"]["median"] for r in rates],
                             "p99": [s["per_rate"][r]["p99"]["median"] for r in rates],
                             "disturbed": [bool(s["per_rate"][r]["disturbed"]) for r in rates],
                             "style": "--" if s["phase"] == "confirm" else "-"}
        highlight = rec_name + (" [confirmation]" if rec_phase == "confirm" else "")
        sweep_png = plots.latency_vs_throughput(
            series, results_dir / f"sweep{suffix}.png", slo_us=SLO_US, highlight=highlight,
            title=f"fraudcore serve, open loop at {', '.join(f'{r // 1000}k' for r in plan.rates)} decisions/s, "
                  f"median of {plan.repeats} repeat(s); latency per decision from its scheduled time")
        rate = rec_sum["sustained_rate"] or plan.rates[0]
        lat = list(sweep.lat.get((rec_phase, rec_name, rate), {}).values())
        out: dict[str, Any] = {"sweep": _rel(sweep_png)}
        if lat:
            ref = list(sweep.lat.get((rec_phase, "baseline", rate), {}).values()) if rec_name != "baseline" else None
            hist = plots.latency_histogram(
                np.concatenate(lat) / 1e3, results_dir / f"sweep-winner-hist{suffix}.png", label=rec_name,
                reference=("baseline", np.concatenate(ref) / 1e3) if ref else None,
                title=f"recommended: {rec_name}, at {rate:,} decisions/s ("
                      + ("its highest sustained rate" if rec_sum["sustained_rate"] else "the lowest rate; it sustained none")
                      + f"), {len(lat)} repeat(s) pooled\nlatency per decision from its scheduled send time")
            out["winner_histogram"] = _rel(hist)
            out["winner_histogram_rate"] = rate
        log(f"sweep: plots {', '.join(v for k, v in out.items() if isinstance(v, str))}")
        return out
    except Exception as e:  # noqa: BLE001 - the measurements stand without their plots
        log(f"sweep: plotting failed: {type(e).__name__}: {e}")
        return {"error": f"{type(e).__name__}: {e}"}


# ---------------------------------------------------------------- markdown --

def _f(x: Any, nd: int = 0) -> str:
    return num(x, nd)


def _sp(s: Mapping[str, Any] | None, nd: int = 0) -> str:
    """median (min-max) of a spread; the median alone for one repeat."""
    if not s:
        return "-"
    if len(s["all"]) == 1:
        return _f(s["median"], nd)
    return f"{_f(s['median'], nd)} ({_f(s['min'], nd)}-{_f(s['max'], nd)})"


def markdown(result: dict[str, Any], machine_info: dict[str, Any]) -> str:
    cfg = result["config"]
    rec = result["recommendation"]
    out = [
        f"# bench sweep{' (quick)' if cfg['quick'] else ''}",
        "",
        machine.summary(machine_info),
        "",
        f"`fraudcore serve --rules {cfg['rules']}` with a fresh `--state` under /dev/shm for every configuration and "
        f"repeat; events {cfg['stream']}, the same {cfg['events_per_server']:,} for every server "
        f"({cfg['warm_events']:,} closed-loop warm-up, then per rate {cfg['warmup_s']:g} s at the rate left out of "
        f"the quantiles and {cfg['seconds']:g} s measured). Open loop over {cfg['conns']} pipelined connections, "
        "latency per decision from its scheduled send time (with `decide_batch`, plus the wait for its batch to "
        "fill at the offered rate). "
        + (f"One-worker servers pinned to CPU {cfg['cpu_pinning']['server_1_worker']}, the client to "
           f"{cfg['cpu_pinning']['client']}; two-worker servers and their client unpinned. " if cfg.get("cpu_pinning") else "")
        + f"{cfg['repeats']} repeat(s), configurations in a rotated order per repeat; median over repeats "
        "(min-max in brackets). µs throughout.",
        "",
        "## The grid",
        "",
        "Baseline: " + ", ".join(f"{k}={v}" for k, v in cfg["baseline"].items()) + ". One factor at a time:",
        "",
    ]
    for family, vs in result["grid"]["families"].items():
        out.append(f"- {family}: " + "; ".join(f"{v['name']} ({', '.join(f'{k}={x}' for k, x in v['changes'].items())})" for v in vs))
    out += ["", f"Load levels: {', '.join(f'{r:,}' for r in cfg['rates'])} decisions/s; a run whose request p99 passes "
            f"{cfg['collapse_p99_us']:,.0f} µs (or leaves requests unanswered) ends that server's climb.", "",
            "## The rule", "", result["rule"], ""]

    summaries = result["summaries"]

    def table(phase: str, title: str) -> None:
        rows = [s for s in summaries if s["phase"] == phase]
        if not rows:
            return
        out.extend([f"## {title}", "",
                    "| configuration | rate/s | decisions/s | p50 | p99 | p99.9 | max | server µs/decision | "
                    "server cores | other load (cores) | sender lag p99 | disturbed | errors | unanswered | sustained |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"])
        for s in rows:
            for rate in cfg["rates"]:
                a = s["per_rate"].get(rate) or s["per_rate"].get(str(rate))
                if a is None:
                    out.append(f"| {s['config']} | {rate:,} | not run (collapsed below) | | | | | | | | | | | | no |")
                    continue
                split = a.get("worker_split")
                who = s["config"] + (" [" + ", ".join(":".join(map(str, x)) for x in split if x) + "]" if split else "")
                out.append(f"| {who} | {rate:,} | {_sp(a['decisions_per_s'])} | {_sp(a['p50'], 1)} | {_sp(a['p99'], 1)} | "
                           f"{_sp(a['p99.9'])} | {_f(a['max']['max'])} | {_f(a['server_cpu_us_per_decision'], 1)} | "
                           f"{a['server_cpu_share']:.2f} | {a['other_load_cores']:.2f} | {_f(a['send_lag_us_p99'], 1)} | "
                           f"{a['disturbed']}/{a['runs']} | {a['errors']} | {a['unanswered']} | "
                           f"{'yes' if a['sustained'] else 'no'}{' (' + str(a['runs']) + ' run(s))' if a['runs'] < cfg['repeats'] else ''} |")
        out.append("")
        out.extend(["| configuration | highest sustained rate | p99 at the tie-break rate "
                    f"({cfg['tie_rate']:,}/s) | settings read back |", "|---|---:|---:|---|"])
        for s in rows:
            out.append(f"| {s['config']} | {_f(s['sustained_rate'])} | {_sp(s['tie_p99_us'], 1)} | "
                       f"{'match' if not s['config_mismatches'] else '; '.join(s['config_mismatches'])}"
                       f"{' FAILED: ' + '; '.join(s['failures']) if s['failures'] else ''} |")
        out.append("")

    table("ofat", "One factor at a time")
    out += ["## Families", "", "| family | variant | highest sustained rate | p99 at the tie-break rate | against the baseline |",
            "|---|---|---:|---:|---|"]
    base = next(s for s in summaries if s["phase"] == "ofat" and s["config"] == "baseline")
    out.append(f"| - | baseline | {_f(base['sustained_rate'])} | {_sp(base['tie_p99_us'], 1)} | - |")
    for f in result["families"]:
        for v in f["variants"]:
            mark = " **(winner)**" if f["winner"] == v["variant"] else ""
            out.append(f"| {f['family']} | {v['variant']}{mark} | {_f(v['sustained_rate'])} | {_sp(v['tie_p99_us'], 1)} | {v['verdict']} |")
    out.append("")
    comb = result["combined"]
    out.append(f"Combination of the winners: **{comb['name']}**"
               + ("" if comb["measured"] else (" (no confirmation run: " + ("the baseline itself)" if comb["name"] == "baseline"
                                                                          else "a single change, measured above)"))))
    out.append("")
    table("confirm", "Confirmation")

    out += ["## Recommendation", "",
            f"**{rec['name']}**: {rec['why']}. Highest sustained rate {_f(rec['sustained_rate'])} decisions/s "
            f"(baseline {_f(rec['baseline_sustained_rate'])}), p99 at {cfg['tie_rate']:,}/s {_sp(rec['tie_p99_us'], 1)} µs "
            f"(baseline {_sp(rec['baseline_tie_p99_us'], 1)} µs), measured in the {'confirmation' if rec['phase'] == 'confirm' else 'one-factor-at-a-time'} phase."
            + (" One repeat per point (quick): no spread to judge the noise by, so the verdicts are indicative only."
               if cfg["repeats"] == 1 else ""),
            ""]
    tuned = result["tuned"]
    v = tuned["verification"]
    out += [f"Tuned file `{tuned['path']}`: `\"serve\": {json.dumps(tuned['doc']['serve'])}`, client batch "
            f"{tuned['doc']['client']['batch']}. Started as `{' '.join(v['argv'])}`: "
            + ("settings read back through `stats` from every worker match, it answered health and 200 decisions."
               if v.get("ok") else f"**verification FAILED**: {v.get('mismatches')} {v.get('failure', '')}"), ""]

    al = result["allocation"]
    out += ["## Allocation per decision (tracemalloc, in process)", "", al["how"] + ".", "",
            "Per decision, except the peak per call.", "",
            "| path | decisions traced | net bytes | net blocks | cyclic objects | freed by a full collection, bytes | "
            "blocks | peak bytes (median) | peak bytes (largest) | peak bytes per call (median) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in al["rows"]:
        out.append(f"| {r['path']} | {r['decisions']:,} | {r['net_bytes_per_decision']:,.1f} | {r['net_blocks_per_decision']:.2f} | "
                   f"{r['cyclic_objects_per_decision']:.3f} | {r['freed_by_collection_bytes_per_decision']:,.1f} | "
                   f"{r['freed_by_collection_blocks_per_decision']:.2f} | "
                   f"{r['peak_bytes_per_decision_p50']:,.0f} | {r['peak_bytes_per_decision_max']:,.0f} | "
                   f"{r['peak_bytes_per_call_p50']:,.0f} |")
    tops = [(r["path"], t) for r in al["rows"] for t in r["top_retained"]]
    if tops:
        out += ["", "Largest retained growth: " + "; ".join(f"{p}: {t}" for p, t in tops[:6]) + "."]
    out.append("")

    out += ["## The collector during the load runs (from `stats`)", "",
            "Per server, between the `stats` after the warm-up and the `stats` after the last rate (all workers "
            "added up), median over repeats: collections and the pauses measured by the server (gc.callbacks) per "
            "generation; pause time per second of load. The server keeps lifetime figures only, so the largest "
            "pause is over the process's life, start-up collection included.", "",
            "| configuration | gc mode | thresholds | gen0 collections | gen1 | gen2 | pauses | pause total ms | "
            "pause µs per s of load | largest pause µs (lifetime; gen0/gen1/gen2) |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    by_cfg: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for s in result["servers"]:
        if "gc" in s and not s.get("replaced"):
            by_cfg.setdefault((s["phase"], s["config"]), []).append(s)
    for (phase, name), ss in by_cfg.items():
        g = ss[0]["gc"]
        med = lambda f: statistics.median(f(s) for s in ss)  # noqa: E731
        coll = [med(lambda s, i=i: s["gc"]["generations"][i]["collections"]) for i in range(3)]
        pauses = med(lambda s: sum(x["pauses"] for x in s["gc"]["generations"]))
        total = med(lambda s: sum(x["pause_total_us"] for x in s["gc"]["generations"]))
        per_s = med(lambda s: sum(x["pause_total_us"] for x in s["gc"]["generations"]) / max(s["load_s"], 1e-9))
        mx = "/".join(_f(max(s["gc"]["generations"][i]["lifetime_max_us"] for s in ss)) for i in range(3))
        out.append(f"| {name}{' [confirmation]' if phase == 'confirm' else ''} | {g['mode']} | {g['thresholds']} | "
                   f"{_f(coll[0])} | {_f(coll[1])} | {_f(coll[2])} | {_f(pauses)} | {total / 1e3:,.1f} | {_f(per_s)} | {mx} |")
    out.append("")

    plots = result.get("plots", {})
    out += ["## Plots", ""]
    if "sweep" in plots:
        out.append(f"![latency against throughput]({Path(plots['sweep']).name})")
    if "winner_histogram" in plots:
        out.append(f"![latency histogram of the recommended configuration]({Path(plots['winner_histogram']).name})")
    if "error" in plots:
        out.append(f"No plots: {plots['error']}")
    out.append("")

    pts = result["points"]
    bad = [p for p in pts if p["errors"] or p["unanswered"] or p["bad_ids"] or p["verify_bad"] or p["lost_connections"]]
    mism = [s for s in result["servers"] if s.get("config_mismatches") or s.get("failure")]
    steal = max((p["steal_cores"] for p in pts), default=0.0)
    out += ["## Checks", "",
            f"- {len(pts)} runs counted, on {sum(not s.get('replaced') for s in result['servers'])} servers; {sum(p['sampled_answers'] for p in pts):,} sampled "
            f"answers decoded whole, {sum(p['decisions_with_errors'] for p in pts)} decisions with evaluation errors. "
            + ("No errors, unanswered requests or out-of-order ids." if not bad else
               f"{len(bad)} run(s) with problems: " + "; ".join(
                   f"{p['config']} at {p['rate']:,}/s repeat {p['repeat']} (errors {p['errors']}, unanswered {p['unanswered']}, "
                   f"bad ids {p['bad_ids']}, bad samples {p['verify_bad']}{', e.g. ' + str(p['error_samples'][0]) if p.get('error_samples') else ''})"
                   for p in bad[:8])),
            "- Settings read back from every server: " + ("all match their grid point." if not mism else
                                                            "; ".join(f"{s['config']}: {s.get('config_mismatches') or s.get('failure')}" for s in mism)),
            f"- Most CPU stolen by the hypervisor during any run: {steal:.2f} cores; other load on the machine during "
            f"a run up to {max((p['other_load_cores'] for p in pts), default=0.0):.2f} cores; "
            f"{sum(p['disturbed'] for p in pts)} run(s) counted while disturbed (other load > {DISTURBED_OTHER_CORES} cores "
            f"or sender lag p99 > {DISTURBED_LAG_US:g} µs); {len(result['discarded_attempts'])} disturbed run(s) "
            f"replaced by a run once more or by a make-up server ({sum(bool(s.get('makeup')) for s in result['servers'])} "
            f"make-up server(s)); waits for a quiet machine before runs: "
            f"{sum(p['quiet_wait_s'] for p in pts):.1f} s in all.",
            f"- Server exit codes: {sorted({s.get('exit_code') for s in result['servers']}, key=str)}; state directories left "
            f"under /dev/shm: {len(result['state_dirs_left'])}.",
            "", f"Suite time {result['suite_seconds']:.0f} s.", ""]
    return "\n".join(out)
