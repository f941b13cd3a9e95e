"""The evaluation's picture: per-episode return, distance and min TTC, crashes marked."""

from __future__ import annotations

import io
from pathlib import Path

from agents.metrics import EpisodeRow
from roadsight.io import atomic_write_bytes

TTC_CAP = 10.0  # [s] a min TTC above this (or none: inf) is drawn at the cap


def plot_episodes(rows: list[EpisodeRow], path: Path) -> Path:
    """DIR/episodes.png: one bar per episode in three panels (return, distance [m], min TTC
    [s]); a crashed episode's bars are red and labelled with what it hit. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(len(rows)))
    colors = ["tab:red" if r.crashed else "tab:blue" for r in rows]
    panels = (("return", [r.episode_return for r in rows]),
              ("distance [m]", [r.distance for r in rows]),
              (f"min TTC [s] (capped at {TTC_CAP:g})", [min(r.min_ttc, TTC_CAP) for r in rows]))
    fig, axes = plt.subplots(3, 1, figsize=(max(6.0, 0.5 * len(rows)), 7), sharex=True)
    for ax, (label, values) in zip(axes, panels, strict=True):
        ax.bar(x, values, color=colors)
        ax.set_ylabel(label)
    axes[2].set_ylim(0, TTC_CAP)  # a crash's TTC is 0: no autoscaled 1e-15 axis
    for i, r in enumerate(rows):
        if r.crashed:
            axes[0].annotate(r.crashed_into or "crash", (i, rows[i].episode_return),
                             ha="center", va="bottom", fontsize=7, color="tab:red")
    axes[-1].set_xticks(x, [str(r.seed) for r in rows], rotation=45, fontsize=7)
    axes[-1].set_xlabel("episode seed (red: crashed)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
