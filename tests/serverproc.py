"""A real `fraudcore serve` process for the server tests: started on a free
port, its port read from its first line of output, stopped by a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

RULES = Path(__file__).resolve().parent.parent / "examples" / "rules.yaml"


class ServerProc:
    def __init__(self, *args: str, rules: Path | str = RULES, start_timeout: float = 60.0):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self._errors = ""
        self._socks: list[socket.socket] = []
        cmd = [sys.executable, "-m", "fraudcore.cli", "serve", "--rules", str(rules), "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = _readline(self.proc, start_timeout)
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}\n{self.errors()}")
        self.port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        self.pid = self.proc.pid

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socks.append(sock)  # closed when the server stops
        return sock

    def errors(self) -> str:
        """What the server wrote to stderr (kept after it stopped)."""
        if not self.stderr.closed:
            self.stderr.seek(0)
            self._errors = self.stderr.read()
        return self._errors

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server, wait for it and return its exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()  # type: ignore[union-attr]
            self.errors()
            self.stderr.close()
            for sock in self._socks:
                sock.close()

    def __enter__(self) -> "ServerProc":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(signal.SIGKILL if exc[0] is not None else signal.SIGTERM)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()  # type: ignore[union-attr]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (and nothing else), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")
