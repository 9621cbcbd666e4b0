"""One server process: an event loop, its connections, and an Engine on the
shared state region.

Every request is answered inside the ``data_received`` call that completed
its frame: decode (msgspec, into the tagged union of ``fraudcore.wire``),
decide, encode into one output buffer, and one ``write`` per read. So
responses on a connection come in request order, pipelining costs no extra
system calls, and a burst of frames is one write.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hmac
import logging
import os
import signal
import socket
import time
import traceback
from typing import Any, Callable

import msgspec

from fraudcore.engine import Engine
from fraudcore.errors import FraudcoreError, RuleError
from fraudcore.wire import (
    OPS,
    AnyRequest,
    Code,
    Decide,
    DecideBatch,
    Evaluate,
    FrameReader,
    Health,
    Ingest,
    Reload,
    Stats,
    append_frame,
    error_response,
)

from .config import ServerConfig

__all__ = ["Worker", "bind_socket", "run_worker"]

log = logging.getLogger("fraudcore.server")


class RequestError(Exception):
    """A request answered with an error response; the connection goes on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def run_event(call: Callable[[Any], Any], arg: Any) -> Any:
    """An engine call on an event (or events). What the engine raises for an
    event it refuses as a whole is the client's error; a rule failing on a
    field is reported in the decision instead."""
    try:
        return call(arg)
    except (FraudcoreError, TypeError, ValueError, OverflowError) as e:
        raise RequestError(Code.BAD_EVENT, f"{type(e).__name__}: {e}") from None


class Worker:
    """Serves the protocol on one listening socket with one Engine."""

    def __init__(self, config: ServerConfig, engine: Engine):
        self.config = config
        self.engine = engine
        self.connections: set[Connection] = set()
        self.draining = False
        self.started = time.time()
        self.counts: dict[str, int] = {"connections": 0, "requests": 0, "rejected_connections": 0}
        self.error_counts: dict[str, int] = {}
        self._decoder = msgspec.msgpack.Decoder(AnyRequest)
        self._raw = msgspec.msgpack.Decoder()
        self.encoder = msgspec.msgpack.Encoder()
        self._deadline = config.deadline_ms / 1000.0
        self._ops: dict[type, Callable[[Any], dict[str, Any]]] = {
            Decide: self._decide,
            Evaluate: self._evaluate,
            Ingest: self._ingest,
            DecideBatch: self._decide_batch,
            Health: self._health,
            Stats: self._stats,
            Reload: self._reload,
        }
        self.gc_pauses = GcPauses()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = asyncio.Event()

    # -- requests
    def handle(self, frame: memoryview, out: bytearray, received: float) -> None:
        """Answer one frame into ``out``."""
        self.counts["requests"] += 1
        rid = 0
        started = time.perf_counter()  # its wait ends here; decoding it is not waiting
        try:
            try:
                req = self._decoder.decode(frame)
            except (msgspec.ValidationError, msgspec.DecodeError) as e:
                rid, code, message = self._diagnose(frame, e)
                raise RequestError(code, message) from None
            rid = req.id
            if started - received > self._deadline:
                raise RequestError(
                    Code.DEADLINE_EXCEEDED,
                    f"waited {1000 * (started - received):.3f} ms in the server, "
                    f"over the deadline of {self.config.deadline_ms:g} ms; not executed",
                )
            resp = self._ops[type(req)](req)
        except RequestError as e:
            resp = self._error(rid, e.code, str(e))
        except Exception as e:  # a bug: answer, log, go on serving
            log.error("internal error on request %d: %s", rid, traceback.format_exc())
            resp = self._error(rid, Code.INTERNAL, f"{type(e).__name__}: {e}")
        append_frame(out, self.encoder, resp)

    def _error(self, rid: int, code: str, message: str) -> dict[str, Any]:
        self.error_counts[code] = self.error_counts.get(code, 0) + 1
        return error_response(rid, code, message)

    def _diagnose(self, frame: memoryview, exc: Exception) -> tuple[int, str, str]:
        """Why a frame is not a request, with the id when one can be read."""
        try:
            raw = self._raw.decode(frame)
        except msgspec.DecodeError as e:
            return 0, Code.BAD_FRAME, f"the frame is not one MessagePack value: {e}"
        if not isinstance(raw, dict):
            return 0, Code.BAD_REQUEST, f"a request is a map, got a MessagePack {type(raw).__name__}"
        rid = raw.get("id")
        rid = rid if type(rid) is int and 0 <= rid < 1 << 64 else 0
        op = raw.get("op")
        if isinstance(op, str) and op not in OPS:
            return rid, Code.UNKNOWN_OP, f"unknown op {op!r}; the ops are {', '.join(OPS)}"
        return rid, Code.BAD_REQUEST, str(exc).replace("$", "request", 1)

    def _decide(self, req: Decide) -> dict[str, Any]:
        return {"id": req.id, "ok": True, "decision": run_event(self.engine.decide, req.event).to_dict()}

    def _evaluate(self, req: Evaluate) -> dict[str, Any]:
        return {"id": req.id, "ok": True, "decision": run_event(self.engine.evaluate, req.event).to_dict()}

    def _ingest(self, req: Ingest) -> dict[str, Any]:
        run_event(self.engine.ingest, req.event)
        return {"id": req.id, "ok": True}

    def _decide_batch(self, req: DecideBatch) -> dict[str, Any]:
        decisions = run_event(self.engine.decide_many, req.events)
        return {"id": req.id, "ok": True, "decisions": [d.to_dict() for d in decisions]}

    def _health(self, req: Health) -> dict[str, Any]:
        self.engine.sync()
        return {"id": req.id, "ok": True, "status": "draining" if self.draining else "ok", "version": self.engine.version}

    def _admin(self, token: str | None) -> None:
        if self.config.token is not None and not (
            isinstance(token, str) and hmac.compare_digest(token.encode(), self.config.token.encode())
        ):
            raise RequestError(Code.UNAUTHORIZED, "this op needs the server's admin token (field `token`)")

    def _stats(self, req: Stats) -> dict[str, Any]:
        self._admin(req.token)
        self.engine.sync()
        stats = self.engine.stats()
        stats["server"] = {
            "pid": os.getpid(),
            "config": {k: v for k, v in dataclasses.asdict(self.config).items() if k != "token"},
            "gc": {"mode": self.config.gc_mode, "enabled": gc.isenabled(), "thresholds": gc.get_threshold(),
                   "collections": [g["collections"] for g in gc.get_stats()], "frozen": gc.get_freeze_count(),
                   "pauses": self.gc_pauses.summary()},
            "uptime_s": round(time.time() - self.started, 3),
            "open_connections": len(self.connections),
            **self.counts,
            "errors": dict(self.error_counts),
        }
        return {"id": req.id, "ok": True, "stats": stats}

    def _reload(self, req: Reload) -> dict[str, Any]:
        self._admin(req.token)
        try:
            if req.rules is None:
                version = self.engine.reload(self.config.rules)
            else:
                version = self.engine.reload(text=req.rules)
        except RuleError as e:
            raise RequestError(Code.BAD_RULES, str(e)) from None
        except (FraudcoreError, OSError) as e:
            raise RequestError(Code.RELOAD_FAILED, str(e)) from None
        log.info("reloaded rules: version %s", version)
        return {"id": req.id, "ok": True, "version": version}

    # -- lifecycle
    async def serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), sock=sock, backlog=self.config.backlog)
        self._tick()

    def _tick(self) -> None:
        """Enforce the frame and idle timeouts (one timer for all connections)."""
        now = time.perf_counter()
        cfg = self.config
        for conn in list(self.connections):
            conn.sweep(now, cfg)
        period = 0.01 if self.draining else min(1.0, cfg.frame_timeout / 4, cfg.idle_timeout / 4)
        self._sweeper = asyncio.get_running_loop().call_later(period, self._tick)

    async def drain(self) -> None:
        """Stop accepting; let every connection finish what it sent (each
        closes once quiet and flushed), up to drain_timeout; then close."""
        if self.draining:
            return
        self.draining = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._tick()  # now every 10 ms: close connections as they go quiet
        loop = asyncio.get_running_loop()
        end = loop.time() + self.config.drain_timeout
        try:
            while self.connections and loop.time() < end:
                await asyncio.sleep(0.01)
            for conn in list(self.connections):
                conn.transport.abort()
            if self._sweeper is not None:
                self._sweeper.cancel()
            self.engine.flush()
        finally:
            self.closed.set()  # whatever failed above, the process exits


class Connection(asyncio.Protocol):
    __slots__ = ("worker", "transport", "reader", "last_active", "partial_since", "paused")

    QUIET = 0.05  # s without input after which a draining connection closes

    def __init__(self, worker: Worker):
        self.worker = worker
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.reader = FrameReader(worker.config.max_frame)
        self.last_active = time.perf_counter()  # one clock for everything (CLOCK_MONOTONIC)
        self.partial_since = 0.0
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        w = self.worker
        if len(w.connections) >= w.config.max_connections:
            w.counts["rejected_connections"] += 1
            self._fail(Code.TOO_MANY_CONNECTIONS, f"the server holds its limit of {w.config.max_connections} connections")
            return
        w.connections.add(self)
        w.counts["connections"] += 1
        sock = transport.get_extra_info("socket")
        if sock is not None:
            cfg = w.config
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if cfg.nodelay else 0)
            if cfg.sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, cfg.sndbuf)
            if cfg.rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.rcvbuf)
        self.transport.set_write_buffer_limits(high=w.config.write_high_water)

    def data_received(self, data: bytes) -> None:
        self.last_active = received = time.perf_counter()
        reader = self.reader
        frames = reader.feed(data)
        if frames:
            out = bytearray()
            handle = self.worker.handle
            for frame in frames:
                handle(frame, out, received)
            self.transport.write(out)
        if reader.error is not None:  # answered what came before it; the stream cannot go on
            self._fail(Code.FRAME_TOO_LARGE, str(reader.error))
            return
        # The frame timeout runs from the first byte of an incomplete frame.
        if not reader.pending:
            self.partial_since = 0.0
        elif frames or not self.partial_since:
            self.partial_since = self.last_active

    def _fail(self, code: str, message: str) -> None:
        """Answer with an error (id 0: no request was read) and close."""
        out = bytearray()
        append_frame(out, self.worker.encoder, self.worker._error(0, code, message))
        self.transport.write(out)
        self.transport.close()

    def sweep(self, now: float, cfg: ServerConfig) -> None:
        if self.transport.is_closing():
            return
        if self.partial_since and now - self.partial_since > cfg.frame_timeout:
            self._fail(Code.FRAME_TIMEOUT, f"a frame was not completed within {cfg.frame_timeout:g} s")
        elif now - self.last_active > cfg.idle_timeout:
            self.transport.abort() if self.paused else self.transport.close()
        elif self.worker.draining and not self.reader.pending and now - self.last_active > self.QUIET:
            self.transport.close()  # flushes the responses first

    def pause_writing(self) -> None:
        # Backpressure: the client is not reading its responses, so stop
        # reading its requests; its sends then block in its kernel.
        self.paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.connections.discard(self)


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening TCP socket; with ``reuse_port`` several processes bind the
    same port and the kernel spreads connections among them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


class GcPauses:
    """Durations of the collector's runs in this process (gc.callbacks), for
    stats: how long the event loop stood still, per generation."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses_us: list[list[float]] = [[], [], []]
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            pauses = self.pauses_us[info["generation"]]
            if len(pauses) < 100_000:
                pauses.append((time.perf_counter() - self.started) * 1e6)

    def close(self) -> None:
        gc.callbacks.remove(self._on)

    def summary(self) -> list[dict[str, float]]:
        out = []
        for gen, p in enumerate(self.pauses_us):
            s = sorted(p)
            out.append({"generation": gen, "count": len(s), "total_us": round(sum(s), 1),
                        "max_us": round(s[-1], 1) if s else 0.0, "p50_us": round(s[len(s) // 2], 1) if s else 0.0})
        return out


def tune_gc(config: ServerConfig) -> None:
    if config.gc_thresholds is not None:
        gc.set_threshold(*config.gc_thresholds)
    if config.gc_mode in ("freeze", "off"):
        # Everything allocated so far lives as long as the process: keep it
        # out of the collector's generations, so collections stay short.
        gc.collect()
        gc.freeze()
    if config.gc_mode == "off":
        gc.disable()


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_worker(config: ServerConfig, *, follow: bool, reuse_port: bool, ready: Callable[[int], None]) -> int:
    """Serve until SIGTERM or SIGINT, then drain. ``follow``: decide with the
    rules published in the state region (a reload survives a worker restart)
    rather than publishing ``config.rules``. ``ready(port)`` is called once
    listening."""
    engine = Engine.from_file(
        config.rules,
        state=config.state,
        capacity=config.capacity,
        sketches=config.sketches,
        prefault=config.prefault,
        follow=follow,
    )
    sock = bind_socket(config.host, config.port, reuse_port=reuse_port)
    sock.listen(config.backlog)
    loop = new_loop(config.loop)
    asyncio.set_event_loop(loop)
    worker = Worker(config, engine)

    async def main() -> None:
        await worker.serve(sock)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.drain()))
        tune_gc(config)
        ready(sock.getsockname()[1])
        await worker.closed.wait()

    try:
        loop.run_until_complete(main())
    finally:
        worker.gc_pauses.close()
        engine.close()
        loop.close()
    return 0
