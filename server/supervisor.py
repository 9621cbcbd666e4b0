"""`fraudcore serve`: one worker in this process, or N worker processes on
one port (SO_REUSEPORT) sharing one state region, counters and rules alike.

The supervisor publishes the rules file into the region, starts the
workers (each opens the region and follows the rules published there, so a
`reload` sent to any worker moves them all, and a restarted worker keeps
the reloaded rules), restarts a worker that dies, and on SIGTERM or SIGINT
has every worker drain, then exits.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from fraudcore.engine import Engine

from .config import ServerConfig
from .hugepages import huge_page_hint
from .worker import bind_socket, run_worker

__all__ = ["serve"]


def _announce(config: ServerConfig, port: int, workers: int) -> None:
    # The first line on stdout; scripts and tests read the port from it.
    print(f"fraudcore serve: listening on {config.host}:{port} ({workers} worker{'s' * (workers != 1)}, pid {os.getpid()})", flush=True)


def _hint_pages(state: str | None) -> None:
    hint = huge_page_hint(state) if state else None
    if hint:
        print(hint, file=sys.stderr, flush=True)


def serve(config: ServerConfig) -> int:
    if config.workers == 1:
        _hint_pages(config.state)
        return run_worker(config, follow=False, reuse_port=False, ready=lambda port: _announce(config, port, 1))
    return Supervisor(config).run()


def _worker_main(config: ServerConfig, index: int, ready: "mp.connection.Connection", supervisor: int) -> None:
    def tell(port: int) -> None:
        ready.send(port)
        ready.close()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; workers stop on its SIGTERM
    _drain_when_orphaned(supervisor)
    sys.exit(run_worker(config, follow=True, reuse_port=True, ready=tell))


def _drain_when_orphaned(supervisor: int) -> None:
    """A supervisor killed outright (SIGKILL) cannot stop its workers: have
    the kernel send each a SIGTERM when it dies (Linux prctl
    PR_SET_PDEATHSIG), so they drain and exit instead of holding the port."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the supervisor's own shutdown is the only way
    if os.getppid() != supervisor:  # it died before the prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    START_TIMEOUT = 60.0

    def __init__(self, config: ServerConfig):
        self.config = config
        self.temp_state: str | None = None
        self.ctx = mp.get_context("spawn")
        self.procs: list[mp.process.BaseProcess | None] = [None] * config.workers
        self.stopping = False

    def run(self) -> int:
        config = self.config
        if config.state is None:
            fd, self.temp_state = tempfile.mkstemp(prefix="fraudcore-state-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
            os.close(fd)
            os.unlink(self.temp_state)  # the store creates it
            config = config.replace(state=self.temp_state)
        _hint_pages(config.state)
        # Create the region and publish the rules file as the rules of every worker.
        Engine.from_file(config.rules, state=config.state, capacity=config.capacity, sketches=config.sketches).close()
        # Hold the port (bound, not listening) so that port 0 resolves once
        # and every worker binds the same one.
        holder = bind_socket(config.host, config.port, reuse_port=True)
        self.config = config = config.replace(port=holder.getsockname()[1])
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for i in range(config.workers):
                self._start(i)
            holder.close()
            _announce(config, config.port, config.workers)
            while not self.stopping:
                for i, p in enumerate(self.procs):
                    if p is not None and not p.is_alive() and not self.stopping:
                        print(f"fraudcore serve: worker {i} (pid {p.pid}) exited with {p.exitcode}; restarting", file=sys.stderr, flush=True)
                        self._start(i)
                time.sleep(0.1)
            return self._shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.temp_state is not None and os.path.exists(self.temp_state):
                os.unlink(self.temp_state)

    def _start(self, i: int) -> None:
        parent, child = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(target=_worker_main, args=(self.config, i, child, os.getpid()), name=f"fraudcore-worker-{i}",
                             daemon=False)
        p.start()
        child.close()
        try:
            if not parent.poll(self.START_TIMEOUT):
                raise EOFError
            parent.recv()
        except EOFError:
            p.kill()
            p.join()
            raise RuntimeError(f"worker {i} did not start (exit code {p.exitcode}); its error is above") from None
        self.procs[i] = p

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _shutdown(self) -> int:
        alive = [p for p in self.procs if p is not None and p.is_alive()]
        for p in alive:
            os.kill(p.pid, signal.SIGTERM)
        end = time.monotonic() + self.config.drain_timeout + 5.0
        for p in alive:
            p.join(max(0.0, end - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        return 0

