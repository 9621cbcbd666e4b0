"""The load suite: the real `fraudcore serve` over TCP, beside the protocol's floor.

What is measured
- servers: ``fraudcore serve --rules examples/rules.yaml --port 0 --state
  /dev/shm/<fresh dir>/state --capacity <cfg>`` as a subprocess, 1 worker
  (and, in the full run, 2 workers on the same port); and a bare uvloop echo
  server (bench/echo_server.py) that reads the same frames, decodes each
  request into a msgspec Struct and answers ``{id, ok: true}`` at once, one
  write per read: the floor of the protocol on this machine.
- events: ``ExchangeStream(seed=7, users=<cfg>)`` in stream order, without the
  label; every measured run on fraudcore gets fresh events (the echo server
  gets the same frames as the fraudcore run before it). All frames of a run
  are encoded before it starts (bench/loadgen.py).
- the client: this process, uvloop, asyncio.Protocol connections; per answer
  the length prefix, ``id`` and ``ok`` are read at fixed offsets (msgspec as
  fallback), every ``ok: false`` is counted, every id checked against the
  connection's order, and a sample of answers decoded whole after timing.
  GC off while timing. Latency samples are all kept: quantiles are exact.
- scenarios
  (a) rtt: one connection, one request at a time; rounds alternate echo,
      fraudcore decide, fraudcore health (no event: the server's own floor).
  (b) closed: 16 connections, each sending its next request when its answer
      arrives.
  (c) pipeline: 1-4 connections, each with a window of 64-256 requests in flight.
  (d) batch: ``decide_batch`` of 100 and 1,000 events, a window of 2 batches.
  (e) open: fixed rates; latency from the scheduled send time (wrk2 style);
      requests round-robin over a few pipelined connections.
- CPU: the server's user+system seconds (/proc, 10 ms ticks) and this
  process's, per run, so the cost per decision on each side is visible.
- Targets (from the issue) are reported as pass/fail, never asserted.

The client shares the machine with the server: on 2 cores, the 2-worker
runs have three busy processes on two cores.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import uvloop  # noqa: E402

from fraudcore.client import Client  # noqa: E402
from fraudcore.rules.load import load_rules  # noqa: E402

from . import loadgen  # noqa: E402
from .common import spread  # noqa: E402
from .loadgen import EventSource, Proc  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_RULES = ROOT / "examples" / "rules.yaml"
SEED = 7

# Scenario parameters: (connections, window, requests) for pipeline;
# (batch size, connections, window, batches) for batch.
FULL = {
    "users": 100_000, "capacity": 2 ** 18, "warmup_events": 20_000,
    "rtt_rounds": 5, "rtt_requests": 10_000,
    "closed_conns": 16, "closed_requests": 100_000,
    "pipeline": [(1, 64, 200_000), (1, 256, 200_000), (4, 64, 200_000)],
    "batch": [(100, 1, 2, 3_000), (1000, 1, 2, 300)],
    "open_rates": [5_000, 10_000, 20_000, 30_000], "open_seconds": 8.0, "open_conns": 4,
    "echo_open_rates": [5_000, 10_000, 20_000, 30_000],
    "workers2": {"closed_requests": 100_000, "pipeline": [(4, 64, 200_000)], "batch": [(1000, 2, 2, 300)],
                 "open_rates": [20_000, 30_000, 40_000]},
}
QUICK = {
    "users": 100_000, "capacity": 2 ** 18, "warmup_events": 5_000,
    "rtt_rounds": 3, "rtt_requests": 2_000,
    "closed_conns": 16, "closed_requests": 20_000,
    "pipeline": [(1, 64, 50_000), (1, 256, 50_000)],
    "batch": [(100, 1, 2, 300), (1000, 1, 2, 30)],
    "open_rates": [5_000, 10_000, 20_000], "open_seconds": 2.0, "open_conns": 4,
    "echo_open_rates": [20_000],
    "workers2": None,
}

TARGETS = {"open_p99_us_max": 1000.0, "open_rate": 20_000, "throughput_min": 100_000.0, "rtt_over_echo_max": 1.5}


class Bench:
    """The servers and the event stream of one suite run, and its records."""

    def __init__(self, cfg: dict[str, Any], log: Callable[[str], None]):
        self.cfg = cfg
        self.log = log
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bad = load_rules(EXAMPLE_RULES).lists["bad_addresses"].values
        self.runs: list[dict[str, Any]] = []

    def measure(self, target: str, proc: Proc, frames: list[bytes], *, kind: str, items: int = 1,
                label: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """One run against ``proc``, summarized, verified, recorded."""
        n = len(frames)
        kw.setdefault("sample_every", max(1, n // 2000))
        run, times = self.loop.run_until_complete(
            loadgen.measure("127.0.0.1", proc.port, frames, probe=proc.cpu, **kw))
        s = loadgen.summarize(run, times, items)
        s["verify"] = loadgen.verify(run, kind, items)
        before, after = times["probe_before"] or {}, times["probe_after"] or {}
        per_pid = {str(pid): after[pid] - before.get(pid, 0.0) for pid in after}
        cpu = sum(per_pid.values())
        s["server_cpu_s"] = cpu
        s["server_cpu_s_per_process"] = per_pid
        s["server_cpu_share"] = cpu / times["wall_s"]  # 1.0 = one core busy
        answered_items = s["answered"] * items
        if answered_items:
            s["server_cpu_us_per_item"] = cpu / answered_items * 1e6
            s["client_cpu_us_per_item"] = times["client_cpu_s"] / answered_items * 1e6
        rec = {"server": target, "kind": kind, **label, **s}
        self.runs.append(rec)
        self.log(_line(rec))
        return rec

    # -- scenarios
    def warm(self, target: str, proc: Proc, src: EventSource | None, frames: list[bytes] | None = None) -> None:
        frames = frames if frames is not None else loadgen.decide_frames(src.take(self.cfg["warmup_events"]))
        self.loop.run_until_complete(loadgen.measure("127.0.0.1", proc.port, frames, conns=2, window=32))
        self.loop.run_until_complete(loadgen.measure("127.0.0.1", proc.port, frames[:2000], conns=1, window=1))

    def rtt(self, fc: Proc, echo: Proc, src: EventSource) -> dict[str, Any]:
        cfg = self.cfg
        rounds: dict[str, list[dict[str, Any]]] = {"echo": [], "decide": [], "health": []}
        for r in range(cfg["rtt_rounds"]):
            frames = loadgen.decide_frames(src.take(cfg["rtt_requests"]))
            label = {"scenario": "rtt", "round": r, "conns": 1, "window": 1}
            rounds["echo"].append(self.measure("echo", echo, frames, kind="echo", label=label))
            rounds["decide"].append(self.measure("fraudcore-1w", fc, frames, kind="decide", label=label))
            rounds["health"].append(self.measure("fraudcore-1w", fc, loadgen.health_frames(cfg["rtt_requests"]),
                                                 kind="health", label=label))
        out: dict[str, Any] = {}
        for name, recs in rounds.items():
            out[name] = {k: spread([rec["latency_us"][k] for rec in recs]) for k in ("p50", "p99", "p99.9", "mean")}
            out[name]["requests_per_s"] = spread([rec["requests_per_s"] for rec in recs])
        paired = [d["latency_us"]["p50"] / e["latency_us"]["p50"] for d, e in zip(rounds["decide"], rounds["echo"])]
        out["decide_over_echo_p50"] = out["decide"]["p50"]["median"] / out["echo"]["p50"]["median"]
        out["decide_over_echo_p50_per_round"] = paired
        out["health_over_echo_p50"] = out["health"]["p50"]["median"] / out["echo"]["p50"]["median"]
        return out

    def closed(self, target: str, fc: Proc, echo: Proc | None, src: EventSource, n: int) -> None:
        c = self.cfg["closed_conns"]
        frames = loadgen.decide_frames(src.take(n))
        label = {"scenario": "closed", "conns": c, "window": 1}
        self.measure(target, fc, frames, kind="decide", label=label, conns=c, window=1)
        if echo is not None:
            self.measure("echo", echo, frames, kind="echo", label=label, conns=c, window=1)

    def pipeline(self, target: str, fc: Proc, echo: Proc | None, src: EventSource, plan: list[tuple[int, int, int]]) -> None:
        for conns, window, n in plan:
            frames = loadgen.decide_frames(src.take(n))
            label = {"scenario": "pipeline", "conns": conns, "window": window}
            self.measure(target, fc, frames, kind="decide", label=label, conns=conns, window=window)
            if echo is not None:
                self.measure("echo", echo, frames, kind="echo", label=label, conns=conns, window=window)

    def batch(self, target: str, fc: Proc, echo: Proc | None, src: EventSource,
              plan: list[tuple[int, int, int, int]]) -> None:
        for size, conns, window, batches in plan:
            frames = loadgen.batch_frames(src.take(size * batches), size)
            label = {"scenario": "batch", "batch": size, "conns": conns, "window": window}
            every = max(1, batches // 100)
            self.measure(target, fc, frames, kind="batch", items=size, label=label, conns=conns, window=window,
                         sample_every=every)
            if echo is not None:
                self.measure("echo", echo, frames, kind="echo", items=size, label=label, conns=conns, window=window,
                             sample_every=every)

    def open_loop(self, target: str, proc: Proc, src: EventSource | None, rates: list[int],
                  frames_from: dict[int, list[bytes]] | None = None) -> dict[int, list[bytes]]:
        """Open-loop runs at each rate; returns the frames used (the echo
        server's runs reuse fraudcore's)."""
        cfg = self.cfg
        used = {}
        for rate in rates:
            n = int(rate * cfg["open_seconds"])
            if frames_from is not None and rate in frames_from:
                frames = frames_from[rate]
            else:
                frames = loadgen.decide_frames(src.take(n))
            used[rate] = frames
            label = {"scenario": "open", "rate": rate, "seconds": cfg["open_seconds"], "conns": cfg["open_conns"]}
            kind = "echo" if target == "echo" else "decide"
            self.measure(target, proc, frames, kind=kind, label=label, conns=cfg["open_conns"], rate=rate,
                         timeout=cfg["open_seconds"] + 60.0)
        return used


def _line(rec: dict[str, Any]) -> str:
    lat = rec.get("latency_us", {})
    extra = ""
    if "open_loop" in rec:
        extra = f" sent at {rec['open_loop']['achieved_send_rate']:,.0f}/s"
    return (f"load: {rec['server']:<13} {rec['scenario']:<8} {rec['kind']:<6} "
            f"{', '.join(f'{k}={rec[k]}' for k in ('conns', 'window', 'batch', 'rate', 'round') if k in rec)}: "
            f"{rec.get('items_per_s', 0):,.0f} items/s, p50 {lat.get('p50', float('nan')):,.1f} µs, "
            f"p99 {lat.get('p99', float('nan')):,.1f} µs, max {lat.get('max', float('nan')):,.0f} µs, "
            f"server CPU {rec['server_cpu_share']:.2f} cores ({rec.get('server_cpu_us_per_item', 0):.1f} µs/item), "
            f"errors {rec['errors']}, unanswered {rec['unanswered']}{extra}")


def _fraudcore(workers: int, state_dir: str, cfg: dict[str, Any]) -> Proc:
    exe = Path(sys.executable).with_name("fraudcore")
    argv = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "fraudcore.cli"]),
            "serve", "--rules", str(EXAMPLE_RULES), "--port", "0", "--workers", str(workers),
            "--state", os.path.join(state_dir, "state"), "--capacity", str(cfg["capacity"])]
    return Proc(f"fraudcore serve ({workers} worker{'s' * (workers > 1)})", argv, ROOT)


def _server_info(proc: Proc) -> dict[str, Any]:
    """The server's own stats at the end (from whichever worker answers)."""
    try:
        with Client("127.0.0.1", proc.port, timeout=10.0) as c:
            st = c.stats()
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        return {"stats_error": repr(e)}
    srv = st.get("server", {})
    return {"keys": st.get("keys"), "evictions": st.get("evictions"), "memory_bytes": st.get("memory_bytes"),
            "requests": srv.get("requests"), "connections": srv.get("connections"), "errors": srv.get("errors"),
            "pid": srv.get("pid")}


def _serve_fraudcore(b: Bench, workers: int, body: Callable[[Proc], None]) -> dict[str, Any]:
    """Start fraudcore with a fresh state under /dev/shm, run ``body``, stop it
    (always), delete the state."""
    state_dir = tempfile.mkdtemp(prefix="fraudcore-bench-load-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    proc = _fraudcore(workers, state_dir, b.cfg)
    info: dict[str, Any] = {"workers": workers, "argv": [a if a != state_dir else "<tmp>" for a in proc.argv[1:]]}
    try:
        t0 = time.perf_counter()
        proc.start()
        info["start_s"] = time.perf_counter() - t0
        info["banner"] = proc.banner
        info["processes"] = len(proc.pids())
        b.log(f"load: {proc.banner} (started in {info['start_s']:.1f} s)")
        body(proc)
        info["final"] = _server_info(proc)
    finally:
        info["exit_code"] = proc.stop()
        tail = proc.stderr_tail()
        if tail.strip():
            info["stderr_tail"] = tail
        shutil.rmtree(state_dir, ignore_errors=True)
    return info


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    cfg = QUICK if quick else FULL
    t_suite = time.perf_counter()
    b = Bench(cfg, log)
    echo = Proc("bench echo", [sys.executable, "-m", "bench.echo_server", "--port", "0"], ROOT)
    servers: dict[str, Any] = {}
    rtt: dict[str, Any] = {}
    try:
        echo.start()
        log(f"load: {echo.banner}")
        src = EventSource(SEED, cfg["users"], b.bad)

        def one_worker(fc: Proc) -> None:
            log("load: warm-up")
            b.warm("fraudcore-1w", fc, src)
            b.warm("echo", echo, None, loadgen.decide_frames(src.take(cfg["warmup_events"])))
            log("load: (a) round trips, one connection")
            rtt.update(b.rtt(fc, echo, src))
            log(f"load: (b) closed loop, {cfg['closed_conns']} connections")
            b.closed("fraudcore-1w", fc, echo, src, cfg["closed_requests"])
            log("load: (c) pipelining")
            b.pipeline("fraudcore-1w", fc, echo, src, cfg["pipeline"])
            log("load: (d) decide_batch")
            b.batch("fraudcore-1w", fc, echo, src, cfg["batch"])
            log("load: (e) open loop")
            used = b.open_loop("fraudcore-1w", fc, src, cfg["open_rates"])
            b.open_loop("echo", echo, src, cfg["echo_open_rates"], frames_from=used)

        servers["fraudcore-1w"] = _serve_fraudcore(b, 1, one_worker)
        servers["fraudcore-1w"]["events_taken"] = src.taken

        w2 = cfg["workers2"]
        if w2:
            src2 = EventSource(SEED, cfg["users"], b.bad)

            def two_workers(fc: Proc) -> None:
                log("load: 2 workers: warm-up")
                b.warm("fraudcore-2w", fc, src2)
                b.closed("fraudcore-2w", fc, None, src2, w2["closed_requests"])
                b.pipeline("fraudcore-2w", fc, None, src2, w2["pipeline"])
                b.batch("fraudcore-2w", fc, None, src2, w2["batch"])
                b.open_loop("fraudcore-2w", fc, src2, w2["open_rates"])

            servers["fraudcore-2w"] = _serve_fraudcore(b, 2, two_workers)
            servers["fraudcore-2w"]["events_taken"] = src2.taken
    finally:
        servers["echo"] = {"banner": echo.banner, "exit_code": echo.stop()}
        tail = echo.stderr_tail()
        if tail.strip():
            servers["echo"]["stderr_tail"] = tail
        b.loop.close()
        asyncio.set_event_loop(None)

    result = {
        "suite": "load",
        "config": {**cfg, "quick": quick, "seed": SEED, "rules": str(EXAMPLE_RULES.relative_to(ROOT)),
                   "stream": f"ExchangeStream(seed={SEED}, users={cfg['users']}, bad_addresses=<the example list>)",
                   "host": "127.0.0.1",
                   "client": "this process: uvloop, asyncio.Protocol, frames pre-encoded, GC off while timing",
                   "timer": "time.perf_counter_ns; completion = the read that completed the answer",
                   "open_loop": "latency from the scheduled send time; sender spins once per loop iteration",
                   "server_cpu": "/proc/<pid>/stat utime+stime of the server and its descendants (10 ms ticks)"},
        "servers": servers,
        "rtt": rtt,
        "runs": b.runs,
        "targets": _targets(b.runs, rtt),
        "suite_seconds": time.perf_counter() - t_suite,
    }
    return result


def _targets(runs: list[dict[str, Any]], rtt: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    rate = TARGETS["open_rate"]
    for target in ("fraudcore-1w", "fraudcore-2w"):
        o = [r for r in runs if r["server"] == target and r["scenario"] == "open" and r["rate"] == rate]
        if o and o[0].get("latency_us"):
            p99 = o[0]["latency_us"]["p99"]
            ok = p99 <= TARGETS["open_p99_us_max"] and not o[0]["errors"] and not o[0]["unanswered"]
            out.append({"name": f"open loop at {rate:,} decisions/s, p99 from the scheduled time (µs), {target}",
                        "target": f"<= {TARGETS['open_p99_us_max']:,.0f}", "measured": p99, "pass": ok})
    fc = [r for r in runs if r["server"].startswith("fraudcore") and r["scenario"] in ("pipeline", "batch")
          and r["kind"] != "health" and not r["errors"] and not r["unanswered"]]
    if fc:
        best = max(fc, key=lambda r: r["items_per_s"])
        how = (f"{best['server']}, {best['scenario']}, {best['conns']} conn(s), window {best['window']}"
               + (f", batch {best['batch']}" if "batch" in best else ""))
        out.append({"name": f"decisions/s with pipelining or batches (best: {how})",
                    "target": f">= {TARGETS['throughput_min']:,.0f}", "measured": best["items_per_s"],
                    "pass": best["items_per_s"] >= TARGETS["throughput_min"]})
        for scen in ("pipeline", "batch"):
            s = [r for r in fc if r["scenario"] == scen and r["server"] == "fraudcore-1w"]
            if s:
                bs = max(s, key=lambda r: r["items_per_s"])
                out.append({"name": f"decisions/s, best {scen} run, 1 worker", "target": f">= {TARGETS['throughput_min']:,.0f}",
                            "measured": bs["items_per_s"], "pass": bs["items_per_s"] >= TARGETS["throughput_min"]})
    if rtt:
        ratio = rtt["decide_over_echo_p50"]
        out.append({"name": "single round trip, fraudcore decide p50 / echo floor p50 (same run, median of rounds)",
                    "target": f"<= {TARGETS['rtt_over_echo_max']}", "measured": ratio,
                    "pass": ratio <= TARGETS["rtt_over_echo_max"]})
    return out


# ---------------------------------------------------------------- markdown --

def _f(x: Any, nd: int = 1) -> str:
    if x is None or x == "":
        return "-"
    return f"{x:,.{nd}f}"


def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    cfg = result["config"]
    cpu = machine.get("cpu", {})
    runs = result["runs"]
    out = [
        f"# bench load{' (quick)' if cfg['quick'] else ''}",
        "",
        f"{machine['date']} · {cpu.get('model', '?')} · {machine['cores']} cores · "
        f"{(machine['memory_bytes'] or 0) / 2**30:.1f} GiB · load {machine['load_average']} → "
        f"{machine.get('load_average_after')} · {machine['python']} · fraudcore {machine['packages'].get('fraudcore')} · "
        f"commit {str(machine.get('git_commit'))[:12]}{' (dirty)' if machine.get('git_dirty') else ''}",
        "",
        f"`fraudcore serve --rules {cfg['rules']} --capacity {cfg['capacity']:,}` with a fresh `--state` under /dev/shm, "
        f"vs a bare uvloop echo server (bench/echo_server.py: msgspec decode into a Struct, tiny fixed answer). "
        f"Events: {cfg['stream']}, fresh for every fraudcore run. Client: this process (uvloop, asyncio.Protocol, "
        f"pre-encoded frames) on the same {machine['cores']} cores. Latencies in µs, exact quantiles over every request. "
        f"Server CPU: user+system of the server process(es) over the run, in cores (1.00 = one core busy) and µs per decision.",
        "",
    ]
    rtt = result.get("rtt")
    if rtt:
        out += [f"## (a) Round trip, one connection, one request at a time "
                f"({cfg['rtt_rounds']} alternating rounds x {cfg['rtt_requests']:,} requests; median of rounds, min-max in brackets)",
                "", "| server | p50 µs | p99 µs | p99.9 µs | mean µs | requests/s |", "|---|---:|---:|---:|---:|---:|"]
        names = {"echo": "echo floor (decode event into a Struct, tiny answer)", "decide": "fraudcore-1w decide",
                 "health": "fraudcore-1w health (no event)"}
        for k, label in names.items():
            s = rtt[k]
            out.append(f"| {label} | {_f(s['p50']['median'])} ({_f(s['p50']['min'])}-{_f(s['p50']['max'])}) | "
                       f"{_f(s['p99']['median'])} | {_f(s['p99.9']['median'])} | {_f(s['mean']['median'])} | "
                       f"{_f(s['requests_per_s']['median'], 0)} |")
        pr = rtt["decide_over_echo_p50_per_round"]
        out += ["", f"decide / echo on p50: {rtt['decide_over_echo_p50']:.2f}x (per round {min(pr):.2f}-{max(pr):.2f}); "
                f"health / echo: {rtt['health_over_echo_p50']:.2f}x.", ""]

    def table(title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
        if not rows:
            return
        out.extend([f"## {title}", "",
                    "| server | " + " | ".join(cols) + " | decisions/s | p50 | p90 | p99 | p99.9 | max | server CPU (cores) | server µs/decision | client µs/decision | errors | unanswered |",
                    "|---|" + "---:|" * (len(cols) + 12)])
        for r in rows:
            lat = r.get("latency_us", {})
            out.append(f"| {r['server']} | " + " | ".join(f"{r.get(c, '-'):,}" if isinstance(r.get(c), int) else str(r.get(c, '-')) for c in cols)
                       + f" | {_f(r.get('items_per_s'), 0)} | {_f(lat.get('p50'))} | {_f(lat.get('p90'))} | "
                       f"{_f(lat.get('p99'))} | {_f(lat.get('p99.9'))} | {_f(lat.get('max'), 0)} | "
                       f"{r['server_cpu_share']:.2f} | {_f(r.get('server_cpu_us_per_item'))} | "
                       f"{_f(r.get('client_cpu_us_per_item'))} | {r['errors']} | {r['unanswered']} |")
        out.append("")

    table(f"(b) Closed loop, {cfg['closed_conns']} connections, one request in flight on each "
          "(latency from the write)", [r for r in runs if r["scenario"] == "closed"], ["requests"])
    table("(c) Pipelining (latency from the write, so it includes the wait behind the window)",
          [r for r in runs if r["scenario"] == "pipeline"], ["conns", "window", "requests"])
    table("(d) decide_batch (latency per batch, from the write)",
          [r for r in runs if r["scenario"] == "batch"], ["batch", "conns", "window", "requests"])
    opens = [r for r in runs if r["scenario"] == "open"]
    if opens:
        out += [f"## (e) Open loop, {cfg['open_seconds']:g} s per rate, {cfg['open_conns']} pipelined connections, "
                "latency from the scheduled send time",
                "", "| server | rate/s | sent/s | completed/s | p50 | p90 | p99 | p99.9 | max | sender lag p99 | "
                "server CPU (cores) | server µs/decision | errors | unanswered |",
                "|---|" + "---:|" * 13]
        for r in opens:
            lat = r.get("latency_us", {})
            ol = r.get("open_loop", {})
            out.append(f"| {r['server']} | {r['rate']:,} | {_f(ol.get('achieved_send_rate'), 0)} | "
                       f"{_f(ol.get('completion_rate'), 0)} | {_f(lat.get('p50'))} | {_f(lat.get('p90'))} | "
                       f"{_f(lat.get('p99'))} | {_f(lat.get('p99.9'))} | {_f(lat.get('max'), 0)} | "
                       f"{_f(ol.get('send_lag_us', {}).get('p99'))} | {r['server_cpu_share']:.2f} | "
                       f"{_f(r.get('server_cpu_us_per_item'))} | {r['errors']} | {r['unanswered']} |")
        out.append("")
    bad = [r for r in runs if r["errors"] or r["unanswered"] or r["bad_ids"] or r["verify"]["bad"] or r["lost_connections"]]
    checked = sum(r["verify"]["sampled_answers"] for r in runs)
    derr = sum(r["verify"]["decisions_with_errors"] for r in runs)
    out += ["## Checks", "",
            f"Every answer's `ok` and id checked ({sum(r['answered'] for r in runs):,} answers); "
            f"{checked:,} sampled answers decoded whole after timing, "
            f"{sum(r['verify']['decisions'] for r in runs):,} decisions in them, {derr} with evaluation errors. "
            + ("No errors, no unanswered requests, no out-of-order ids." if not bad else
               f"{len(bad)} run(s) with problems: "
               + "; ".join(f"{r['server']} {r['scenario']} (errors {r['errors']}, unanswered {r['unanswered']}, "
                           f"bad ids {r['bad_ids']}, bad samples {r['verify']['bad']}, lost {len(r['lost_connections'])}"
                           f"{', e.g. ' + str(r['error_samples'][0]) if r['error_samples'] else ''})" for r in bad)),
            ""]
    for name, s in result["servers"].items():
        fin = s.get("final", {})
        if fin:
            out.append(f"- {name}: started in {s['start_s']:.1f} s, {s['events_taken']:,} events sent; at the end "
                       f"{fin.get('keys') or 0:,} counter keys, {fin.get('evictions')} evictions, server errors "
                       f"{fin.get('errors') or {}}; exit code {s['exit_code']}.")
        else:
            out.append(f"- {name}: exit code {s.get('exit_code')}.")
    out += ["", "## Targets (from the issue; reported, not asserted)", "", "| target | goal | measured | |", "|---|---|---:|---|"]
    for t in result["targets"]:
        out.append(f"| {t['name']} | {t['target']} | {t['measured']:,.2f} | {'PASS' if t['pass'] else 'FAIL'} |")
    out += ["", f"Suite time {result['suite_seconds']:.0f} s.", ""]
    return "\n".join(out)
