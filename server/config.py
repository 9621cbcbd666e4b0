"""What `fraudcore serve` runs with: one frozen record, built by the CLI."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fraudcore.wire import MAX_FRAME

__all__ = ["GC_MODES", "ServerConfig", "load_tuned"]


@dataclass(frozen=True)
class ServerConfig:
    rules: str
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 7878
    workers: int = 1
    state: str | None = None  # the shared region; with workers > 1 and none, a temporary one
    token: str | None = None  # required by the admin ops (stats, reload) when set
    max_frame: int = MAX_FRAME  # bytes of one frame's payload
    max_connections: int = 1024  # per worker process
    idle_timeout: float = 300.0  # s without a byte from the client: closed
    frame_timeout: float = 10.0  # s to complete a frame once it started: error, closed
    deadline_ms: float = 1000.0  # a request that waited longer in the server is answered deadline_exceeded
    drain_timeout: float = 10.0  # s SIGTERM waits for connections to finish
    write_high_water: int = 1 << 20  # buffered response bytes above which a connection stops being read
    capacity: int = 65536  # keys per counter table
    sketches: int = 16
    prefault: bool = False
    loop: str = "uvloop"  # or "asyncio"
    backlog: int = 1024
    nodelay: bool = True  # TCP_NODELAY on every connection
    sndbuf: int = 0  # SO_SNDBUF / SO_RCVBUF of each connection, bytes; 0: the kernel's (autotuned)
    rcvbuf: int = 0
    # The collector: "freeze" moves everything alive after start-up out of
    # its generations (gc.freeze), so collections only scan what requests
    # allocate; "off" also disables it (reference counting frees requests'
    # garbage; cycles are left); "default" leaves it alone.
    gc_mode: str = "freeze"
    gc_thresholds: tuple[int, int, int] | None = None  # gc.set_threshold, when given

    def __post_init__(self) -> None:
        checks = [
            ("workers", self.workers >= 1, "at least 1"),
            ("port", 0 <= self.port <= 65535, "in 0..65535"),
            ("max_frame", 16 <= self.max_frame <= (1 << 32) - 1, "in 16..2^32-1 bytes"),
            ("max_connections", self.max_connections >= 1, "at least 1"),
            ("idle_timeout", self.idle_timeout > 0, "positive"),
            ("frame_timeout", self.frame_timeout > 0, "positive"),
            ("deadline_ms", self.deadline_ms > 0, "positive"),
            ("drain_timeout", self.drain_timeout >= 0, "zero or positive"),
            ("loop", self.loop in ("uvloop", "asyncio"), "uvloop or asyncio"),
            ("gc_mode", self.gc_mode in GC_MODES, " or ".join(GC_MODES)),
            ("sndbuf", self.sndbuf >= 0, "zero or positive"),
            ("rcvbuf", self.rcvbuf >= 0, "zero or positive"),
            ("gc_thresholds", self.gc_thresholds is None or (len(self.gc_thresholds) == 3 and min(self.gc_thresholds) >= 0),
             "three non-negative ints"),
        ]
        bad = [f"{name} must be {what}, got {getattr(self, name)!r}" for name, ok, what in checks if not ok]
        if bad:
            raise ValueError("; ".join(bad))

    def replace(self, **changes: object) -> "ServerConfig":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


GC_MODES = ("freeze", "off", "default")
TUNABLE = frozenset(f.name for f in fields(ServerConfig)) - {"rules", "host", "port", "state", "token"}


def load_tuned(path: str | Path) -> dict[str, Any]:
    """The settings a sweep recommends (`fraudcore bench sweep` writes the
    file; `fraudcore serve --tuned FILE` starts with them): the JSON object
    under "serve", each key a ServerConfig field. Where the server listens,
    its rules, state and token are never taken from such a file."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--tuned {path}: {e}") from None
    serve = doc.get("serve") if isinstance(doc, dict) else None
    if not isinstance(serve, dict):
        raise ValueError(f"--tuned {path}: expected a JSON object with a \"serve\" object of settings")
    unknown = sorted(set(serve) - TUNABLE)
    if unknown:
        raise ValueError(f"--tuned {path}: not tunable here: {', '.join(unknown)} (tunable: {', '.join(sorted(TUNABLE))})")
    if isinstance(serve.get("gc_thresholds"), list):
        serve["gc_thresholds"] = tuple(serve["gc_thresholds"])
    return serve
