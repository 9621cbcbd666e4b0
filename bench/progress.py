"""The progress line of ``fraudcore bench``, on stderr.

A suite reports through the ``log`` callback its ``run`` is given:
``log(msg)`` prints a message, as every suite always has, and
``step(log, i, n, label)`` moves the bar to step ``i`` of ``n``. Both work
with any callable as ``log`` (a suite run from Python with ``log=print``
gets plain lines), so a suite needs nothing from this module but ``step``.

On a terminal the bar is one line, ``bench micro (1/2) 0:37 [####....] 7/22
vm.rules20_run``, redrawn in place (the elapsed time first, so a long label
cut at the terminal's width never hides it); messages scroll above it. Anywhere
else (a pipe, a CI log, a test capturing stderr) every message and step is
a plain line stamped with the elapsed time, so the log stays readable.

No thread redraws the line, so the clock moves only at a message or a step: a
ticker thread in the process being measured would take the GIL, and CPU
time, in the middle of timed loops.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "step"]

_BAR = 20  # cells of the bar


def step(log: Callable[[str], None], i: int, n: int, label: str) -> None:
    """Step ``i`` of ``n`` (1-based, ``label`` says what runs now), through whatever ``log`` is."""
    advance = getattr(log, "step", None)
    if advance is not None:
        advance(i, n, label)
    else:
        log(f"[{i}/{n}] {label}")


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class Progress:
    """The ``log`` handed to each suite: messages, plus a bar while a suite runs."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.suite: str | None = None
        self.of = ""
        self.t0 = 0.0
        self.bar = ""             # "[####....] 7/22 " once the suite reports steps
        self.label = ""           # the latest step label or message
        self.drawn = False

    def start(self, suite: str, k: int = 1, of: int = 1) -> None:
        """Suite ``suite`` (the ``k``-th of ``of``) begins."""
        self.suite, self.of, self.t0 = suite, f" ({k}/{of})" if of > 1 else "", self.clock()
        self.bar, self.label = "", "starting"
        self._draw()

    def finish(self) -> None:
        """The suite ended: the bar goes, later messages are plain lines."""
        if self.suite is not None and not self.tty:
            self._line(f"{self.suite} done")
        self._erase()
        self.suite = None

    def __call__(self, msg: str) -> None:
        self._erase()
        self._line(msg)
        self.label = msg
        self._draw()

    def step(self, i: int, n: int, label: str) -> None:
        filled = _BAR * (i - 1) // n if n else 0  # steps done before this one
        self.bar, self.label = f"[{'#' * filled}{'.' * (_BAR - filled)}] {i}/{n} ", label
        if self.tty:
            self._draw()
        else:
            self._line(f"{self.suite}: {i}/{n} {label}")

    def _line(self, text: str) -> None:
        stamp = f"[{_clock(self.clock() - self.t0)}] " if self.suite is not None and not self.tty else ""
        self.stream.write(f"{stamp}{text}\n")
        self.stream.flush()

    def _draw(self) -> None:
        if not self.tty or self.suite is None:
            return
        text = f"bench {self.suite}{self.of} {_clock(self.clock() - self.t0)} {self.bar}{self.label}"
        width = shutil.get_terminal_size().columns - 1  # a full-width line would wrap: no more in-place redraws
        if len(text) > width:
            text = text[: max(width - 1, 0)] + "…"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self.drawn = True

    def _erase(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False
