"""A throwaway redis-server for the benchmark: the Debian binary on PATH, on
a free loopback port, without persistence, in a temporary directory; stopped
(and the directory removed) on exit, whatever happened.

    with RedisServer() as server:
        client = redis.Redis(port=server.port)
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServer"]

HINT = "run `make bench-deps` (bench/deps.sh installs Debian's redis-server)"
MIN_VERSION = (6, 2)    # ZADD GT and ZUNION, which the time-bucket path uses


def _free_port() -> int:
    # The kernel picks a free port; another process may take it before
    # redis-server binds it, which is why __enter__ tries up to three ports.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, start_timeout_s: float = 10.0):
        self.exe = shutil.which("redis-server")
        if self.exe is None:
            raise SystemExit(f"bench peers: redis-server is not on PATH; {HINT}")
        self.timeout = start_timeout_s
        found = re.search(r"v=(\d+)\.(\d+)", self.version())
        if found is None or tuple(map(int, found.groups())) < MIN_VERSION:
            raise SystemExit(f"bench peers: {self.exe} is {self.version()!r}; the suite needs redis-server "
                             f">= {'.'.join(map(str, MIN_VERSION))}")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._dir: tempfile.TemporaryDirectory | None = None

    def version(self) -> str:
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
        return out.strip()

    def __enter__(self) -> RedisServer:
        self._dir = tempfile.TemporaryDirectory(prefix="fraudcore-bench-redis-")
        try:
            for _attempt in range(3):
                if self._start(Path(self._dir.name)):
                    return self
            raise SystemExit(f"bench peers: redis-server did not start; its log:\n{self._log_tail()}")
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _start(self, workdir: Path) -> bool:
        """Start on a fresh port; True once it answers PING."""
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--logfile", str(workdir / "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False                 # exited: most likely the port was taken meanwhile
            if self._ping():
                return True
            time.sleep(0.02)
        self._stop()
        raise SystemExit(f"bench peers: redis-server did not answer within {self.timeout:.0f} s; "
                         f"its log:\n{self._log_tail()}")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            lines = (Path(self._dir.name) / "redis.log").read_text(errors="replace").splitlines()
        except (OSError, AttributeError):
            return "(no log)"
        return "\n".join(lines[-15:])

    def _stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __exit__(self, *exc) -> None:
        self._stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
