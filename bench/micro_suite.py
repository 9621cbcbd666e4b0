"""The micro suite: each piece of the decision path on its own, with sound
statistics: compile, the VM, the counters, ``Engine.decide`` and
``decide_many``.

The cases (per operation: one compile, evaluation, counter update or read, event)
- compile: ``load_policy`` (read, parse, check, compile) of examples/rules.yaml
  and bench/rules20.yaml, warm: the first, cold compile is in the cel suite.
- vm: one CEL program (``PROGRAM``) on the native VM; the 20 stateless rules of
  bench/rules20.yaml through the native rule set, three ways: on slots already
  loaded (``time_rules``), from the event dict without building a Decision
  (``run``), and ``Policy.decide`` (dict -> Decision).
- counters: a ``CounterStore`` of count, sum and distinct counters (1 h
  window, 60 buckets, prefaulted), ``KEYS`` keys per counter; update and
  read, in C loops (``bench_update`` / ``bench_read``: every key once per
  call) and from Python (``update_key`` / ``read_key`` over random str keys
  of another ``KEYS``, so the table is half full).
- decide: ``Engine.from_file("examples/rules.yaml", capacity=2**18,
  prefault=True)`` (26 rules, 12 counters), its store populated with
  ``POPULATE`` events of ``ExchangeStream(seed=7, users=100_000)``; then
  ``Engine.decide`` per event, ``decide_many`` on a list of dicts and on numpy
  columns, a batch of ``BATCH`` events a round. Deciding counts the events,
  so a batch is decided once: each round gets the next ``BATCH`` events of the
  stream, built (columns, then dicts) by pytest-benchmark's per-round
  ``setup``, outside the timed call. Its ``pedantic`` mode, which runs such a
  setup, takes the number of rounds from us rather than calibrating: one
  round is one batch (milliseconds, far above the timer's resolution, so
  calibration would choose one iteration too), and the rounds are as many as
  fit in ``max_time``, as in calibrated mode.
- floor: a loop calling an empty Python function once per event, the least
  any per-event Python loop costs.
Each case's callable does a batch of operations over varied inputs (events,
keys); per-operation figures are per call divided by the batch size, which also
spreads the harness's own call over the batch. The stateless cases (compile,
vm, counters, floor) run the same batch every round.

Why pytest-benchmark, driven programmatically (its ``BenchmarkFixture``, as the
pytest plugin drives it per test), rather than pyperf: it is a test dependency
already, and it runs in this process, so the expensive set-ups (a prefaulted
store of 2^18 keys per counter, populated) are built once for all rounds.
pyperf's ``Runner`` owns ``sys.argv`` and measures in fresh worker processes
it spawns by re-running the main script, each of which would rebuild every
set-up; it cannot be called from ``run(quick, log)``. What pytest-benchmark
gives per case: a calibrated number of iterations per round (each round at
least ``min_time``), warm-up rounds, then rounds up to ``max_time`` (at least
``min_rounds``), the cyclic GC off in each round; from the per-round times,
min / max / mean / stddev / median / IQR and outliers (beyond 1.5 IQR of the
quartiles, and beyond one stddev of the mean). ``ops_per_s`` is its OPS:
operations per second at the mean.

What it does not give: rounds of one case run back to back, not interleaved
with the other cases (the cel and engine suites interleave), so a burst of
load from another process lands on whichever case runs then; the median and
IQR resist such bursts, the outlier counts show them, and the load average
before and after is in the machine description.
"""

from __future__ import annotations

import gc
import inspect
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from pathlib import Path
from typing import Any

import numpy as np
from pytest_benchmark.fixture import BenchmarkFixture
from pytest_benchmark.timers import default_timer
from pytest_benchmark.utils import NameWrapper

import fraudcore.cel
from fraudcore import Engine
from fraudcore._native.counters import CounterStore
from fraudcore.rules.load import load_rules
from fraudcore.rules.policy import load_policy
from fraudcore.synth import ExchangeStream

from .machine import summary as machine_summary
from . import cel_suite, engine_suite
from .common import Mismatch
from .progress import step

ROOT = cel_suite.ROOT
EXAMPLE_RULES, RULES20 = cel_suite.EXAMPLE_RULES, cel_suite.RULES20
SEED = 7
USERS, POPULATE, CAPACITY = 100_000, 200_000, 2 ** 18
KEYS = 65_536          # per counter, for the C loops and again for the Python calls
BATCH = 1_000          # events (evaluations, Python counter calls) per call of a case
SLOTS_SAMPLE, SLOTS_ITERATIONS = 100, 100   # time_rules: events x runs per event
PROGRAM = ('(amount > (kyc_level >= 2 ? 50000.0 : 5000.0) || country in ["KP", "IR", "SY"]) '
           '&& !user_agent.startsWith("curl/")')
PROGRAM_DECLS = {"amount": "double", "kyc_level": "int", "country": "string", "user_agent": "string"}


@dataclass(frozen=True)
class Timing:
    """pytest-benchmark's knobs (its --benchmark-* options), plus warm-up time per case."""

    min_rounds: int
    min_time: float      # s: a round is at least this long (iterations are calibrated to it)
    max_time: float      # s: rounds run until this much time is spent (min_rounds at least)
    warmup_s: float      # s: warm-up before calibrating and before the rounds


FULL = Timing(min_rounds=20, min_time=0.002, max_time=3.0, warmup_s=0.3)
QUICK = Timing(min_rounds=5, min_time=0.002, max_time=0.5, warmup_s=0.05)

UNITS = {"ns": 1e9, "µs": 1e6, "ms": 1e3}


@dataclass(frozen=True)
class Case:
    name: str
    what: str                  # one line for the table
    fn: Callable[..., object]  # does `ops` operations (on what `setup` returns, if given)
    ops: int
    per: str                   # what one operation is
    unit: str = "ns"
    setup: Callable[[], tuple[Any, ...]] | None = None   # fresh arguments for each round, untimed

    @property
    def group(self) -> str:
        return self.name.split(".")[0]


# ------------------------------------------------------------ measurement --

class _Quiet:
    """pytest-benchmark's logger interface, silent: the progress line reports."""

    def debug(self, *args: Any, **kwargs: Any) -> None:
        pass

    info = warning = debug


_FIXTURE_ARGS = inspect.signature(BenchmarkFixture).parameters


def _fixture(case: Case, timing: Timing, warmup_iterations: int) -> BenchmarkFixture:
    """One BenchmarkFixture, configured as the pytest plugin configures it from
    its options. Written against pytest-benchmark 5.3; the arguments an older
    version does not take (precision, confidence, cprofile_loops, cprofile_dump
    came in 5.x) are left out, for pyproject's floor of 4.0."""
    options = {
        "node": SimpleNamespace(name=case.name, nodeid=f"bench/micro_suite.py::{case.name}"),
        "disable_gc": True, "timer": NameWrapper(default_timer),
        "min_rounds": timing.min_rounds, "min_time": timing.min_time, "max_time": timing.max_time,
        "precision": None, "confidence": None,
        "warmup": True, "warmup_iterations": warmup_iterations, "calibration_precision": 10,
        "add_stats": lambda stats: None, "logger": _Quiet(), "warner": None, "disabled": False,
        "cprofile": False, "cprofile_loops": None, "cprofile_dump": None, "group": case.group,
    }
    return BenchmarkFixture(**{k: v for k, v in options.items() if k in _FIXTURE_ARGS})


def _fastest_call(case: Case, seconds: float) -> float:
    """Call ``case`` for ``seconds``, at least 3 times, untimed by the harness;
    the fastest call (s). One call alone would mislead: the first is often
    slow (a cold cache, a page fault, another process on the core)."""
    best, spent, calls = math.inf, 0.0, 0
    while calls < 3 or spent < seconds:
        args = case.setup() if case.setup else ()
        t0 = time.perf_counter()
        case.fn(*args)
        dt = time.perf_counter() - t0
        best, spent, calls = min(best, dt), spent + dt, calls + 1
    return max(best, 1e-9)


def measure(case: Case, timing: Timing) -> dict[str, Any]:
    """Run ``case`` under pytest-benchmark; its statistics per operation, in ``case.unit``.

    Calibrated mode warms up as pytest-benchmark does, for as many iterations
    as fill ``warmup_s``. Pedantic mode has only a count of warm-up rounds, so
    the warm-up is ours, and its fastest call sizes the rounds, as the fastest
    calibration run sizes them in calibrated mode."""
    if case.setup is None:
        fixture = _fixture(case, timing, math.ceil(timing.warmup_s / _fastest_call(case, 0.0)))
        fixture(case.fn)
    else:
        once, setup = _fastest_call(case, timing.warmup_s), case.setup
        fixture = _fixture(case, timing, 0)
        fixture.pedantic(case.fn, setup=lambda: (setup(), {}), warmup_rounds=0, iterations=1,
                         rounds=max(timing.min_rounds, math.ceil(timing.max_time / once)))
    s = fixture.stats.stats                        # seconds per call
    scale = UNITS[case.unit] / case.ops
    return {
        "name": case.name, "group": case.group, "what": case.what, "per": case.per, "unit": case.unit,
        "ops_per_call": case.ops,
        **{k: getattr(s, k) * scale for k in ("median", "mean", "stddev", "iqr", "q1", "q3", "min", "max")},
        "rounds": s.rounds, "iterations": fixture.stats.iterations,
        "mode": "calibrated" if case.setup is None else "pedantic, setup per round",
        "ops_per_s": case.ops / s.mean,
        "outliers": {"iqr": s.iqr_outliers, "stddev": s.stddev_outliers},
        "timed_s": s.total,              # the rounds alone, without warm-up and calibration
    }


# ------------------------------------------------------------------ cases --

def compile_cases() -> list[Case]:
    return [Case(f"compile.{p.stem}", f"load_policy({p.relative_to(ROOT)}): read, parse, check, compile",
                 lambda p=p: load_policy(p), 1, "compile", "ms")
            for p in (EXAMPLE_RULES, RULES20)]


def vm_cases() -> list[Case]:
    events = cel_suite.bench_events(BATCH)
    prog = fraudcore.cel.compile(PROGRAM, PROGRAM_DECLS)
    policy = load_policy(RULES20)
    if prog._native is None or policy._native is None or not all(r.native for r in policy.rules):
        raise SystemExit("bench micro: the native VM is not available (run `make setup`; is FRAUDCORE_NO_EXTENSIONS set?)")
    evaluate, native = prog._native.evaluate, policy._native
    failed = sum(not evaluate(e)[0] for e in events) + sum(bool(policy.decide(e).errors) for e in events)
    if failed:
        raise Mismatch(f"bench micro: {failed} of the VM cases' evaluations fail: an error path is not what to time")
    sample = events[:: BATCH // SLOTS_SAMPLE][:SLOTS_SAMPLE]
    decide, run_rules, time_rules = policy.decide, native.run, native.time_rules

    def program() -> None:
        for e in events:
            evaluate(e)

    def slots() -> None:
        for e in sample:
            time_rules(e, SLOTS_ITERATIONS)

    def run() -> None:
        for e in events:
            run_rules(e)

    def stateless_decide() -> None:
        for e in events:
            decide(e)

    return [
        Case("vm.program", f"one CEL program, native VM: {PROGRAM}", program, BATCH, "evaluation"),
        Case("vm.rules20_on_slots", "20 stateless rules on slots already loaded (time_rules)", slots,
             SLOTS_SAMPLE * SLOTS_ITERATIONS, "event"),
        Case("vm.rules20_run", "20 rules from the event dict, no Decision (native run)", run, BATCH, "event"),
        Case("vm.rules20_decide", "Policy.decide, 20 stateless rules: dict -> Decision", stateless_decide, BATCH, "event"),
    ]


def counter_cases() -> tuple[list[Case], CounterStore]:
    specs = engine_suite.COUNTER_SPECS
    store = CounterStore(specs, capacity=CAPACITY, sketches=16, max_future_ms=None, prefault=True)
    ts0 = 1_700_000_000_000
    at = ts0 + KEYS                  # the C loops stamp update i at ts0 + i
    rng = np.random.default_rng([SEED, 0xC0])
    str_keys = [f"u{i:07d}" for i in range(KEYS)]
    keys = [str_keys[i] for i in rng.integers(0, KEYS, BATCH).tolist()]
    items = [f"dv{i:x}" for i in rng.integers(0, 6, BATCH).tolist()]
    for c, (name, *_) in enumerate(specs):      # every key in every table before anything is timed
        store.bench_update(c, KEYS, KEYS, ts0)
        for k in str_keys:
            store.update_key(c, k, ts0, 1.0, k if name == "distinct" else None)
    update, read = store.update_key, store.read_key

    def c_update(c: int) -> Callable[[], object]:
        return lambda: store.bench_update(c, KEYS, KEYS, ts0 + 1)

    def c_read(c: int) -> Callable[[], object]:
        return lambda: store.bench_read(c, KEYS, KEYS, at)

    def py_update(c: int, distinct: bool) -> Callable[[], object]:
        def one_batch() -> None:
            if distinct:
                for k, it in zip(keys, items):
                    update(c, k, at, 0.0, it)
            else:
                for k in keys:
                    update(c, k, at, 1.5)
        return one_batch

    def py_read(c: int) -> Callable[[], object]:
        def one_batch() -> None:
            for k in keys:
                read(c, k, at)
        return one_batch

    cases = []
    for c, (name, *_) in enumerate(specs):
        cases += [
            Case(f"counters.{name}_update_c", f"{name}: update, C loop over {KEYS:,} keys", c_update(c), KEYS, "update"),
            Case(f"counters.{name}_read_c", f"{name}: read, C loop over {KEYS:,} keys", c_read(c), KEYS, "read"),
            Case(f"counters.{name}_update_key", f"{name}: update_key from Python, random str keys",
                 py_update(c, name == "distinct"), BATCH, "update"),
            Case(f"counters.{name}_read_key", f"{name}: read_key from Python, random str keys", py_read(c), BATCH, "read"),
        ]
    return cases, store


class Feed:
    """The stream after the populating events, a batch at a time, as columns
    or as dicts; each event is handed out once, in stream order."""

    def __init__(self, stream: ExchangeStream):
        # The stream without end, block by block (``columns(n)`` would start
        # over from its first event at every call).
        self._blocks = stream._blocks()
        self._cols: dict[str, np.ndarray] = {}
        self._pos = 0
        self.taken = 0

    def columns(self, n: int = BATCH) -> dict[str, np.ndarray]:
        while not self._cols or self._pos + n > len(self._cols["ts"]):
            block = next(self._blocks)
            rest = {k: v[self._pos:] for k, v in self._cols.items()}
            self._cols = {k: np.concatenate([rest[k], v]) if rest else v for k, v in block.items() if k != "label"}
            self._pos = 0
        out = {k: v[self._pos:self._pos + n] for k, v in self._cols.items()}
        self._pos += n
        self.taken += n
        return out

    def rows(self, n: int = BATCH) -> list[dict[str, Any]]:
        return engine_suite.rows(self.columns(n), 0, n)


def decide_cases(log: Callable[[str], None]) -> tuple[list[Case], Engine, Feed]:
    bad = load_rules(EXAMPLE_RULES).lists["bad_addresses"].values
    feed = Feed(ExchangeStream(seed=SEED, users=USERS, bad_addresses=bad))
    log(f"micro: Engine.from_file(examples/rules.yaml, capacity={CAPACITY:,}, prefault=True); "
        f"ingesting {POPULATE:,} events")
    engine = Engine.from_file(EXAMPLE_RULES, capacity=CAPACITY, prefault=True)
    ingest = engine.ingest
    for _ in range(0, POPULATE, 50_000):
        for e in feed.rows(50_000):
            ingest(e)
    decide, many = engine.decide, engine.decide_many
    first = many(feed.columns()) + [decide(e) for e in feed.rows()]
    if any(d.errors for d in first):
        raise Mismatch(f"bench micro: decisions with errors, e.g. {next(d.errors for d in first if d.errors)}")

    def per_event(events: list[dict[str, Any]]) -> None:
        for e in events:
            decide(e)

    cases = [
        Case("decide.engine", "Engine.decide: dict -> Decision, counters updated (26 rules, 12 counters)",
             per_event, BATCH, "event", setup=lambda: (feed.rows(),)),
        Case("decide_many.list", f"Engine.decide_many on a list of {BATCH:,} dicts",
             many, BATCH, "event", setup=lambda: (feed.rows(),)),
        Case("decide_many.columns", f"Engine.decide_many on numpy columns of {BATCH:,} events",
             many, BATCH, "event", setup=lambda: (feed.columns(),)),
    ]
    return cases, engine, feed


def floor_case() -> Case:
    events = list(range(BATCH))

    def nothing(e: object) -> None:
        return None

    def loop() -> None:
        for e in events:
            nothing(e)

    return Case("floor.python_call", "a loop calling an empty Python function: the least a per-event loop costs",
                loop, BATCH, "call")


# -------------------------------------------------------------------- run --

def run(quick: bool = False, log: Callable[[str], None] = print, out: Path | None = None) -> dict[str, Any]:
    timing = QUICK if quick else FULL
    t_suite = time.perf_counter()
    log("micro: building the cases (events, a counter store, a populated engine)")
    counters, store = counter_cases()
    decides, engine, feed = decide_cases(log)
    cases = [*compile_cases(), *vm_cases(), *counters, *decides, floor_case()]
    setup_s = time.perf_counter() - t_suite
    # The events, keys and rules built above stay alive throughout: frozen,
    # no collection between cases walks them (the rounds run with the GC off).
    gc.collect()
    gc.freeze()
    results = []
    try:
        for i, case in enumerate(cases, 1):
            step(log, i, len(cases), case.name)
            results.append(measure(case, timing))
    finally:
        gc.unfreeze()
        st = engine.stats()
        engine.close()
        store.close()
    return {
        "suite": "micro",
        "config": {"quick": quick, "seed": SEED, "users": USERS, "populate": POPULATE, "capacity": CAPACITY,
                   "counter_keys": KEYS, "batch": BATCH, "program": PROGRAM,
                   "time_rules": {"events": SLOTS_SAMPLE, "iterations": SLOTS_ITERATIONS},
                   "timing": {**asdict(timing), "timer": str(NameWrapper(default_timer)), "disable_gc": True,
                              "calibration_precision": 10},
                   "harness": "pytest-benchmark BenchmarkFixture, in process (see the module docstring)",
                   "ops_per_s": "operations per second at the mean (pytest-benchmark's OPS)"},
        "benchmarks": results,
        "engine_store": {"events_counted": feed.taken, "keys": st["keys"], "evictions": st["evictions"],
                         "memory_bytes": st["memory_bytes"]},
        "setup_seconds": setup_s,
        "suite_seconds": time.perf_counter() - t_suite,
    }


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}" if x >= 1 else f"{x:.3f}"


def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    cfg = result["config"]
    t = cfg["timing"]
    out = [
        f"# bench micro{' (quick)' if cfg['quick'] else ''}",
        "",
        machine_summary(machine),
        "",
        f"pytest-benchmark in process: rounds of at least {t['min_time'] * 1e3:g} ms (calibrated iterations), "
        f"up to {t['max_time']:g} s a case (at least {t['min_rounds']} rounds), warm-up first, GC off. "
        f"Per operation; IQR = Q3 - Q1; outliers: beyond 1.5 IQR / beyond 1 stddev.",
        "",
        "| benchmark | per | median | IQR | mean ± stddev | min | max | ops/s | rounds × iterations | outliers |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in result["benchmarks"]:
        u = b["unit"]
        out.append(f"| {b['name']} | {b['per']} | {_num(b['median'])} {u} | {_num(b['iqr'])} | "
                   f"{_num(b['mean'])} ± {_num(b['stddev'])} | {_num(b['min'])} | {_num(b['max'])} | "
                   f"{b['ops_per_s']:,.0f} | {b['rounds']} × {b['iterations']} | "
                   f"{b['outliers']['iqr']} / {b['outliers']['stddev']} |")
    out += ["", "| benchmark | what | rounds |", "|---|---|---|"]
    out += [f"| {b['name']} | {b['what']} | {b['mode']} |" for b in result["benchmarks"]]
    st = result["engine_store"]
    out += ["", f"decide and decide_many: {cfg['populate']:,} events ingested first, then each round a fresh batch "
            f"of {cfg['batch']:,} from the stream; {st['events_counted']:,} events counted in all, "
            f"{st['keys']:,} counter keys and {st['evictions']} evictions after the run. "
            f"Set-up {result['setup_seconds']:.1f} s, suite {result['suite_seconds']:.1f} s.", ""]
    return "\n".join(out)
