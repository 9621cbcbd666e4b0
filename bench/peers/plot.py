"""The peers suite's bar chart: µs per event of every path, on a log scale
(the paths span four orders of magnitude), one panel for the stateless rules
and one for the velocity counters, each bar labelled with its time and its
ratio to fraudcore."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bar_chart"]


def bar_chart(panels: list[tuple[str, list[tuple[str, float, float]]]], title: str, path: Path) -> Path:
    """``panels``: (panel title, [(label, µs per event, ratio to fraudcore)]),
    drawn top to bottom in the given order; written as a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, whatever the environment says
    import matplotlib.pyplot as plt

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
