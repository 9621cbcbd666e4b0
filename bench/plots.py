"""PNG plots of the benchmark suites (matplotlib, Agg backend: no display).

matplotlib is a benchmark-only dependency: it is imported when a plot is
drawn, and a suite that cannot import it reports that instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["bar_chart", "latency_histogram", "latency_vs_throughput"]


def _pyplot():  # noqa: ANN202 - matplotlib's module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_vs_throughput(series: Mapping[str, Mapping[str, Sequence[float]]], path: Path, *, title: str,
                          slo_us: float | None = None, highlight: str | None = None) -> Path:
    """One panel per latency quantile (p50, p99), latency (µs, log) against
    achieved throughput (decisions/s), one line per configuration.
    ``series[name]`` holds equal-length lists ``x`` (throughput) and ``p50``,
    ``p99`` (µs), and optionally ``style`` ("-" or "--") and ``disturbed``
    (per point: whether a run of it was disturbed, marked with a red x)."""
    plt = _pyplot()
    rows = -(-(len(series) + 2) // 3)  # legend rows, three entries a row (the target and "disturbed" too)
    height = 6.0 + 0.28 * rows
    fig, axes = plt.subplots(1, 2, figsize=(15, height), sharey=True)
    cmap = plt.get_cmap("tab20")
    for ax, q in zip(axes, ("p50", "p99")):
        for i, (name, s) in enumerate(series.items()):
            bold = name == highlight
            ax.plot(s["x"], s[q], s.get("style", "-"), marker="o", markersize=3.5 if not bold else 6,
                    linewidth=1.1 if not bold else 2.6, color="black" if bold else cmap(i % 20),
                    label=name + (" (recommended)" if bold else ""), zorder=3 if bold else 2)
            bad = [(x, y) for x, y, d in zip(s["x"], s[q], s.get("disturbed", ())) if d]
            if bad:
                ax.scatter(*zip(*bad), marker="x", s=60, color="red", linewidths=1.2, zorder=4,
                           label=None if ax.collections else "disturbed run(s) at that point")
        if slo_us is not None and q == "p99":
            ax.axhline(slo_us, color="red", linestyle=":", linewidth=1.2, label=f"p99 target {slo_us:,.0f} µs")
        ax.set_yscale("log")
        ax.set_xlabel("achieved decisions/s (median of repeats)")
        ax.set_title(f"{q} latency from the scheduled send time")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("µs (median of repeats, log scale)")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, (0.28 * rows + 0.15) / height, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_histogram(samples_us: np.ndarray, path: Path, *, title: str,
                      reference: tuple[str, np.ndarray] | None = None, label: str = "recommended") -> Path:
    """A histogram of latency samples (µs) on log-spaced bins, with p50, p99
    and p99.9 marked; ``reference`` (name, samples) is drawn as an outline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5.5))
    arrays = [samples_us] + ([reference[1]] if reference is not None else [])
    lo = max(1.0, min(float(a.min()) for a in arrays if len(a)))
    hi = max(float(a.max()) for a in arrays if len(a))
    bins = np.geomspace(lo, hi * 1.01, 120)
    ax.hist(samples_us, bins=bins, color="tab:blue", alpha=0.75, label=f"{label} ({len(samples_us):,} decisions)")
    if reference is not None:
        ax.hist(reference[1], bins=bins, histtype="step", color="tab:gray", linewidth=1.3,
                label=f"{reference[0]} ({len(reference[1]):,} decisions)")
    for q, style in ((50, "-"), (99, "--"), (99.9, ":")):
        v = float(np.percentile(samples_us, q))
        ax.axvline(v, color="tab:red", linestyle=style, linewidth=1.2, label=f"p{q:g} = {v:,.0f} µs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency from the scheduled send time, µs (log)")
    ax.set_ylabel("decisions per bin (log)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bar_chart(panels: list[tuple[str, list[tuple[str, float, float]]]], title: str, path: Path) -> Path:
    """The peers suite's chart: µs per event of every path, on a log scale
    (the paths span four orders of magnitude), one panel per part (stateless
    rules, velocity counters). ``panels``: (panel title, [(label, µs per
    event, ratio to fraudcore)]), top to bottom; written as a PNG to ``path``."""
    plt = _pyplot()
    heights = [len(rows) for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.0 + 0.45 * sum(heights) + 0.8 * len(panels)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (name, rows) in zip(axes[:, 0], panels):
        labels = [r[0] for r in rows]
        us = [r[1] for r in rows]
        colors = ["#1f77b4" if label.startswith("fraudcore") else "#999999" for label in labels]
        y = range(len(rows))
        ax.barh(y, us, color=colors)
        ax.set_yticks(list(y), labels)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(min(us) / 2, max(us) * 25)     # room for the labels right of the bars
        ax.set_xlabel("µs per event (median; log scale)")
        ax.set_title(name, loc="left", fontsize=10)
        for yi, (_, v, ratio) in zip(y, rows):
            ax.text(v * 1.1, yi, f"{v:,.1f} µs  ({ratio:,.1f}x)", va="center", fontsize=8)
        ax.grid(axis="x", which="major", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
