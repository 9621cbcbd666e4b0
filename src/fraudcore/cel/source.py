"""Expression source text: turns character offsets into line, column and the
source line, so every stage reports errors the same way."""

from __future__ import annotations

from bisect import bisect_right

from ..errors import Diagnostic

__all__ = ["Source"]


class Source:
    __slots__ = ("text", "_starts")

    def __init__(self, text: str):
        self.text = text
        self._starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def location(self, offset: int) -> tuple[int, int, str]:
        """1-based (line, column) of ``offset`` (in code points) and its line."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self._starts, offset)
        start = self._starts[line - 1]
        end = self.text.find("\n", start)
        return line, offset - start + 1, self.text[start : end if end >= 0 else len(self.text)]

    def diagnostic(self, offset: int, message: str) -> Diagnostic:
        line, column, source_line = self.location(offset)
        return Diagnostic(message, line, column, source_line, offset=offset)
