"""What every suite shares: the spread of repeated measurements, and the
error a suite raises when the paths it compares disagree."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["Mismatch", "num", "spread"]


class Mismatch(SystemExit):
    """The compared paths decided differently: nothing is timed."""


def spread(values: Sequence[float]) -> dict[str, Any]:
    v = sorted(values)
    q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0], v[0], v[0]]
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "q1": q[0], "q3": q[2], "all": list(values)}


def num(x: Any, nd: int = 1) -> str:
    """A table cell: thousands separated, ``nd`` decimals; "-" when missing."""
    if x is None or x == "":
        return "-"
    return f"{x:,.{nd}f}"
