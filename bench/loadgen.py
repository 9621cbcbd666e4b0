"""The load generator of ``python -m bench load``: request frames encoded
before timing, server subprocesses, and a uvloop client that drives one
measured run over one or more connections.

A run sends ``n`` pre-encoded frames (request ``id`` = index) over ``conns``
connections, connection ``c`` carrying ids ``c, c + conns, c + 2 conns...``
in order. Two ways to send:

- window ``w`` (closed loop): each connection starts with ``w`` requests in
  flight and sends the next ``k`` frames (one write) when ``k`` answers
  arrive. ``w = 1`` is one request at a time; the latency of a request is
  from just before its write to the read that completed its answer.
- rate ``r`` (open loop, as wrk2): request ``i`` is *scheduled* at
  ``t0 + i / r``; a sender that runs every event-loop iteration (it spins:
  libuv timers have millisecond resolution) writes every request that is due,
  pipelined on the wire whatever is in flight. Latency is from the scheduled
  time, so a stall of the server, or of the sender, counts against every
  request it delays (no coordinated omission). The sender's own lag (actual
  write minus schedule) is reported beside it.

Per answer the client reads the length prefix, the ``id`` and the ``ok``
flag at fixed offsets of the MessagePack map (``{id, ok, ...}``, as both
servers encode it), with a msgspec decode as the fallback when the layout
differs, and records the completion time (one clock read per ``read``) in a
preallocated list. Every answer with ``ok`` false is counted and kept; every
id is checked against the connection's order; a sample of answers is kept
whole and decoded after the run (``verify``). Latencies are kept as every
sample (int64 ns), so quantiles are exact.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import re
import resource
import shutil
import selectors
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
import numpy as np

from fraudcore.synth import ExchangeStream
from fraudcore.wire import Response

__all__ = [
    "EventSource",
    "Proc",
    "Run",
    "batch_frames",
    "decide_frames",
    "health_frames",
    "machine_cores",
    "machine_ticks",
    "measure",
    "hdr_histogram",
    "percentiles",
    "summarize",
    "verify",
]

_now = time.perf_counter_ns
_u16 = struct.Struct(">H").unpack_from
_u32 = struct.Struct(">I").unpack_from
_ID_KEY = b"\xa2id"  # fixstr "id", right after the map header
_OK_TRUE = b"\xa2ok\xc3"  # fixstr "ok", then true

# ------------------------------------------------------------------ frames --

_encode = msgspec.msgpack.Encoder().encode


def _frame(msg: Any) -> bytes:
    payload = _encode(msg)
    return len(payload).to_bytes(4, "big") + payload


def decide_frames(events: Sequence[dict[str, Any]]) -> list[bytes]:
    return [_frame({"id": i, "op": "decide", "event": e}) for i, e in enumerate(events)]


def batch_frames(events: Sequence[dict[str, Any]], size: int) -> list[bytes]:
    return [_frame({"id": i, "op": "decide_batch", "events": events[lo : lo + size]})
            for i, lo in enumerate(range(0, len(events) - size + 1, size))]


def health_frames(n: int) -> list[bytes]:
    return [_frame({"id": i, "op": "health"}) for i in range(n)]


class EventSource:
    """Fresh events of one ``ExchangeStream``, in stream order, without the
    ``label`` (what a gateway sends): each ``take`` continues the stream."""

    def __init__(self, seed: int, users: int, bad_addresses: Iterable[str] = ()):
        self.stream = ExchangeStream(seed=seed, users=users, bad_addresses=tuple(bad_addresses))
        self._it = self.stream.iter_events()
        self.taken = 0

    def take(self, n: int) -> list[dict[str, Any]]:
        out = list(itertools.islice(self._it, n))
        for e in out:
            del e["label"]
        self.taken += len(out)
        return out


# --------------------------------------------------------------- processes --

def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def sched_seconds(pid: int | str = "self") -> tuple[float, float]:
    """(on-CPU, runnable-but-waiting) seconds of all threads of ``pid``."""
    run = wait = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                a, b, _ = f.read().split()
        except (OSError, ValueError):
            continue
        run += int(a)
        wait += int(b)
    return run / 1e9, wait / 1e9


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                children.setdefault(int(st[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


class Proc:
    """A server subprocess in its own session (process group): started, its
    port read from the first stdout line; stopped with SIGTERM, and the group
    killed if anything of it is left after ``timeout``."""

    PORT = re.compile(rb"listening on \S+:(\d+) ")

    def __init__(self, name: str, argv: Sequence[str], cwd: str | os.PathLike[str], cpus: set[int] | None = None):
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.cpus = cpus  # CPU affinity, inherited by the workers it starts
        self.p: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.banner = ""
        self._stderr = tempfile.TemporaryFile()

    def start(self, timeout: float = 120.0) -> int:
        self.p = subprocess.Popen(self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self._stderr, start_new_session=True)
        if self.cpus:
            os.sched_setaffinity(self.p.pid, self.cpus)  # before it has started anything
        assert self.p.stdout is not None
        line = b""
        end = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.p.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = end - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    break
                if sel.select(min(left, 0.5)):
                    chunk = os.read(self.p.stdout.fileno(), 1)
                    if not chunk:
                        break
                    line += chunk
        m = self.PORT.search(line)
        if m is None:
            self.stop()
            raise RuntimeError(f"{self.name}: no 'listening on' line within {timeout:g} s (got {line!r}); "
                               f"stderr: {self.stderr_tail()}")
        self.banner = line.decode().strip()
        self.port = int(m.group(1))
        return self.port

    def pids(self) -> list[int]:
        return _descendants(self.p.pid) if self.p is not None and self.p.poll() is None else []

    def usage(self) -> dict[int, tuple[float, float, int]]:
        """Per process (this one and each descendant): seconds on a CPU and
        seconds runnable but waiting for one (ns clocks of
        /proc/PID/task/*/schedstat), and minor page faults, so far."""
        out = {}
        for pid in self.pids():
            st = _stat(pid)
            if st is not None:
                run, wait = sched_seconds(pid)
                out[pid] = (run, wait, int(st[7]))
        return out

    def stop(self, timeout: float = 30.0) -> int | None:
        p = self.p
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, 0)  # something of the group left (a worker)?
        except (ProcessLookupError, PermissionError):
            pass
        else:
            os.killpg(p.pid, signal.SIGKILL)
        if p.poll() is None:
            p.wait()
        if p.stdout is not None:
            p.stdout.close()
        return p.returncode

    def stderr_tail(self, limit: int = 2000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-limit:]

    def finish(self, info: dict, state_dir: str) -> None:
        """Stop the server, record its exit code and the end of its stderr
        in ``info``, and remove its state directory."""
        info["exit_code"] = self.stop()
        tail = self.stderr_tail()
        if tail.strip():
            info["stderr_tail"] = tail
        shutil.rmtree(state_dir, ignore_errors=True)


def machine_ticks() -> list[int]:
    """The machine's CPU ticks (/proc/stat ``cpu`` line: user nice system
    idle iowait irq softirq steal ...)."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def machine_cores(before: list[int], after: list[int], cores: int) -> dict[str, float]:
    """Cores busy (all but idle and iowait) and stolen by the hypervisor
    between two ``machine_ticks``."""
    d = [b - a for a, b in zip(before, after)]
    total = sum(d) or 1
    return {"busy_cores": (total - d[3] - d[4]) / total * cores, "steal_cores": d[7] / total * cores}


# ------------------------------------------------------------------ client --

_Head = msgspec.defstruct("_Head", [("id", int, -1), ("ok", bool, False)])
_decode_head = msgspec.msgpack.Decoder(_Head).decode


def _slow_head(data: bytes | bytearray, p: int, stop: int) -> tuple[int, bool]:
    try:
        h = _decode_head(memoryview(data)[p:stop])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return -1, False
    return h.id, h.ok


class Run:
    """One measured run: per request id, when it was sent and when its answer
    was read (perf_counter ns; 0 = not yet)."""

    def __init__(self, n: int, conns: int, sample_every: int):
        self.n = n
        self.sent = [0] * n
        self.done = [0] * n
        self.errors = 0  # answers with ok false (or unreadable)
        self.error_payloads: list[bytes] = []
        self.bad_ids = 0  # answers whose id is not the next one sent on that connection
        self.lost: list[str] = []  # connections closed before all answers
        self.samples: list[tuple[int, bytes]] = []
        self.sample_every = sample_every
        self.open_conns = conns
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.t0 = 0  # open loop: request i is scheduled at t0 + i * period
        self.period_ns = 0.0

    def error(self, payload: bytes) -> None:
        self.errors += 1
        if len(self.error_payloads) < 20:
            self.error_payloads.append(payload)

    def conn_done(self) -> None:
        self.open_conns -= 1
        if self.open_conns == 0 and not self.finished.done():
            self.finished.set_result(None)


class _Conn(asyncio.Protocol):
    def __init__(self, run: Run, ids: range, frames: list[bytes], window: int):
        self.run = run
        self.ids = ids
        self.frames = frames  # this connection's frames, in send order
        self.count = len(ids)
        self.window = window  # 0: open loop, the sender writes
        self.nsend = 0
        self.nrecv = 0
        self.partial: bytearray | None = None
        self.need = 0
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, k: int) -> None:
        a = self.nsend
        b = min(a + k, self.count)
        if b <= a:
            return
        sent, ids = self.run.sent, self.ids
        t = _now()
        for j in range(a, b):
            sent[ids[j]] = t
        self.nsend = b
        self.transport.write(self.frames[a] if b == a + 1 else b"".join(self.frames[a:b]))

    def data_received(self, data: bytes | bytearray) -> None:  # type: ignore[override]
        now = _now()
        if self.partial is not None:
            buf = self.partial
            buf += data
            if len(buf) < self.need:
                return  # a large answer arriving in pieces: no re-parse
            data = buf
            self.partial = None
        run = self.run
        done, ids, every = run.done, self.ids, run.sample_every
        r = self.nrecv
        pos, end, stop = 0, len(data), 0
        k = 0
        while end - pos >= 4:
            stop = pos + 4 + _u32(data, pos)[0]
            if stop > end:
                break
            p = pos + 4
            rid, ok = -1, False
            if stop - p > 9 and data.startswith(_ID_KEY, p + 1):
                t = data[p + 4]
                if t < 0x80:
                    rid, q = t, p + 5
                elif t == 0xCD:
                    rid, q = _u16(data, p + 5)[0], p + 7
                elif t == 0xCE:
                    rid, q = _u32(data, p + 5)[0], p + 9
                elif t == 0xCC:
                    rid, q = data[p + 5], p + 6
                else:
                    q = p
                ok = rid >= 0 and data.startswith(_OK_TRUE, q)
            if not ok:
                rid, ok = _slow_head(data, p, stop)
                if not ok:
                    run.error(bytes(data[p:stop]))
            if r < self.count:
                want = ids[r]
                if rid != want:
                    run.bad_ids += 1
                done[want] = now
                if want % every == 0:
                    run.samples.append((want, bytes(data[p:stop])))
            else:
                run.bad_ids += 1  # an answer more than was asked
            r += 1
            k += 1
            pos = stop
        if pos < end:
            self.partial = bytearray(data[pos:])
            self.need = stop - pos if end - pos >= 4 else 4
        self.nrecv = r
        if k:
            if self.window:
                self.send(k)
            if r >= self.count and not self.finished:
                self.finished = True
                run.conn_done()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished:
            self.finished = True
            self.run.lost.append(f"connection closed after {self.nrecv}/{self.count} answers: {exc!r}")
            self.run.conn_done()


class _Sender:
    """Open loop: writes every request that is due, every loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop, run: Run, conns: list[_Conn], frames: list[bytes], rate: float):
        self.loop = loop
        self.run = run
        self.conns = conns
        self.frames = frames
        self.rate = rate
        self.i = 0

    def start(self) -> None:
        self.run.t0 = _now() + 1_000_000  # 1 ms from now
        self.run.period_ns = 1e9 / self.rate
        self.loop.call_soon(self.tick)

    def tick(self) -> None:
        run = self.run
        now = _now()
        n = run.n
        due = min(n, int((now - run.t0) * self.rate / 1e9) + 1) if now >= run.t0 else 0
        a = self.i
        if due > a:
            frames, conns = self.frames, self.conns
            c_n = len(conns)
            for c in range(c_n):
                first = a + (c - a) % c_n
                if first < due:
                    conns[c].transport.write(frames[first] if first + c_n >= due else b"".join(frames[first:due:c_n]))
            sent = run.sent
            for j in range(a, due):
                sent[j] = now
            self.i = due
        if self.i < n and not run.finished.done():
            self.loop.call_soon(self.tick)


async def measure(host: str, port: int, frames: list[bytes], *, conns: int = 1, window: int = 1,
                  rate: float | None = None, timeout: float = 120.0, sample_every: int = 97, spin: bool = False,
                  probe: Callable[[], Any] | None = None) -> tuple[Run, dict[str, Any]]:
    """Send ``frames`` (closed loop with ``window``, or open loop at ``rate``
    requests/s) and wait for every answer, up to ``timeout`` s. Returns the
    run and its wall and CPU times (``probe()`` before and after: the server's
    CPU). ``spin``: keep the event loop polling (a no-op callback every
    iteration) instead of sleeping in epoll, so this process's wake-ups do not
    go through the CPU's idle state: the client's share of a round trip is
    then the same for every server compared (the open loop always spins)."""
    loop = asyncio.get_running_loop()
    n = len(frames)
    run = Run(n, conns, sample_every)
    protos: list[_Conn] = []
    for c in range(conns):
        ids = range(c, n, conns)
        _, proto = await loop.create_connection(
            lambda ids=ids, c=c: _Conn(run, ids, frames[c::conns], 0 if rate else window), host, port)
        protos.append(proto)
    gc.collect()
    gc.disable()
    p0 = probe() if probe else None
    m0 = machine_ticks()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    s0 = sched_seconds()
    w0 = _now()
    timed_out = False
    try:
        if rate:
            _Sender(loop, run, protos, frames, rate).start()
        elif spin:
            def poll() -> None:
                if not run.finished.done():
                    loop.call_soon(poll)
            loop.call_soon(poll)
        if not rate:
            for proto in protos:
                proto.send(window)
        try:
            await asyncio.wait_for(asyncio.shield(run.finished), timeout)
        except asyncio.TimeoutError:
            timed_out = True
    finally:
        w1 = _now()
        s1 = sched_seconds()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        m1 = machine_ticks()
        p1 = probe() if probe else None
        gc.enable()
        for proto in protos:
            if proto.transport is not None:
                proto.transport.close()
        if not run.finished.done():
            run.finished.cancel()
    times = {"wall_s": (w1 - w0) / 1e9, "client_cpu_s": s1[0] - s0[0], "client_wait_s": s1[1] - s0[1],
             "timed_out": timed_out,
             "client_involuntary_switches": r1.ru_nivcsw - r0.ru_nivcsw,
             "machine": machine_cores(m0, m1, os.cpu_count() or 1), "probe_before": p0, "probe_after": p1}
    await asyncio.sleep(0)  # let the closes go out
    return run, times


# ----------------------------------------------------------------- results --

PCTS = (50.0, 90.0, 99.0, 99.9, 99.99)


def percentiles(lat_ns: np.ndarray) -> dict[str, float]:
    """Exact quantiles (µs) of the latency samples, with mean and max."""
    if len(lat_ns) == 0:
        return {}
    q = np.percentile(lat_ns, PCTS)
    out = {f"p{p:g}": float(v) / 1e3 for p, v in zip(PCTS, q)}
    out["mean"] = float(lat_ns.mean()) / 1e3
    out["max"] = float(lat_ns.max()) / 1e3
    out["min"] = float(lat_ns.min()) / 1e3
    return out


def hdr_histogram(lat_ns: np.ndarray, digits: int = 3) -> dict[str, Any]:
    """The latency distribution as an HDR histogram: every sample counted in
    the bucket of its value rounded down to ``digits`` significant digits
    (relative error below 10^(1 - digits)), so any quantile can be read back
    later, and runs merged by adding counts. Only non-empty buckets are kept."""
    v = np.maximum(lat_ns.astype(np.int64), 1)
    scale = 10 ** np.maximum(np.floor(np.log10(v)).astype(np.int64) - (digits - 1), 0)
    lower, counts = np.unique(v // scale * scale, return_counts=True)
    return {"unit": "ns", "significant_digits": digits, "buckets": [[int(a), int(b)] for a, b in zip(lower, counts)]}


def summarize(run: Run, times: dict[str, Any], items_per_frame: int = 1, skip: int = 0) -> dict[str, Any]:
    """Counts, rates and latency quantiles of a finished run. ``skip``: the
    first requests are a warm-up, left out of the latency quantiles (open
    loop, as wrk2's calibration; counts and errors include them)."""
    sent = np.asarray(run.sent, dtype=np.int64)
    done = np.asarray(run.done, dtype=np.int64)
    answered = done > 0
    n_ok = int(answered.sum())
    out: dict[str, Any] = {
        "requests": run.n, "answered": n_ok, "unanswered": run.n - n_ok, "errors": run.errors,
        "bad_ids": run.bad_ids, "lost_connections": run.lost, "timed_out": times["timed_out"],
        "items_per_request": items_per_frame,
        "error_samples": [_describe(p) for p in run.error_payloads[:5]],
        "wall_s": times["wall_s"], "client_cpu_s": times["client_cpu_s"], "client_wait_s": times["client_wait_s"],
        "client_involuntary_switches": times["client_involuntary_switches"], "machine": times["machine"],
        "latency_excludes_first": skip,
    }
    if not n_ok:
        return out
    if run.t0:  # open loop
        sched = run.t0 + (np.arange(run.n, dtype=np.float64) * run.period_ns).astype(np.int64)
        start = sched
        lag = (sent - sched)[sent > 0]
        last_sent = int(sent.max())
        out["open_loop"] = {
            "target_rate": 1e9 / run.period_ns,
            "achieved_send_rate": (run.n - 1) / max(last_sent - run.t0, 1) * 1e9,
            "completion_rate": n_ok / max(int(done.max()) - run.t0, 1) * 1e9,
            "send_lag_us": percentiles(lag),
        }
    else:
        start = sent
    counted = answered.copy()
    counted[:skip] = False
    lat = (done - start)[counted]
    span = int(done[answered].max()) - int(start[answered].min())
    out["duration_s"] = span / 1e9
    out["requests_per_s"] = n_ok / span * 1e9
    out["items_per_s"] = n_ok * items_per_frame / span * 1e9
    out["latency_us"] = percentiles(lat)  # exact, from every sample
    out["latency_histogram"] = hdr_histogram(lat)
    out["_lat_ns"] = lat  # for pooling across repeats; not in the results file
    return out


def _describe(payload: bytes) -> Any:
    try:
        return msgspec.to_builtins(msgspec.msgpack.decode(payload))
    except Exception:  # noqa: BLE001 - whatever it is, show it
        return repr(payload[:200])


_decode_response = msgspec.msgpack.Decoder(Response).decode


def verify(run: Run, kind: str, items_per_frame: int = 1) -> dict[str, Any]:
    """Decode the sampled answers whole (after timing): right id, ok, and the
    content ``kind`` (decide, batch, health, echo) calls for."""
    bad: list[str] = []
    actions: dict[str, int] = {}
    decisions = 0
    decision_errors = 0
    for rid, payload in run.samples:
        try:
            r = _decode_response(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            bad.append(f"id {rid}: undecodable answer: {e}")
            continue
        if r.id != rid or not r.ok:
            bad.append(f"id {rid}: answer id {r.id} ok {r.ok} error {r.error}")
            continue
        if kind == "decide":
            ds = [r.decision] if r.decision is not None else []
        elif kind == "batch":
            ds = r.decisions or []
            if len(ds) != items_per_frame:
                bad.append(f"id {rid}: {len(ds)} decisions for a batch of {items_per_frame}")
        else:
            ds = []
            if kind == "health" and r.status != "ok":
                bad.append(f"id {rid}: health status {r.status!r}")
        if kind in ("decide", "batch") and not ds:
            bad.append(f"id {rid}: no decision in the answer")
        for d in ds:
            decisions += 1
            actions[d.action] = actions.get(d.action, 0) + 1
            decision_errors += bool(d.errors)
    return {"sampled_answers": len(run.samples), "bad": len(bad), "bad_examples": bad[:5],
            "decisions": decisions, "decisions_with_errors": decision_errors, "actions": dict(sorted(actions.items()))}
