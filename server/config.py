"""What `fraudcore serve` runs with: one frozen record, built by the CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fraudcore.wire import MAX_FRAME

__all__ = ["ServerConfig"]


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
    nodelay: bool = True

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
        ]
        bad = [f"{name} must be {what}, got {getattr(self, name)!r}" for name, ok, what in checks if not ok]
        if bad:
            raise ValueError("; ".join(bad))

    def replace(self, **changes: object) -> "ServerConfig":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
