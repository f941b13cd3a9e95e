"""A sweep summary's plots: bars of the final metrics per group, learning curves with seed bands
from each job's TensorBoard logs (`<job>/tb/`, SB3's `rollout/ep_rew_mean` and `eval/...`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from roadsight.sweep_summary import Job

# RL's (logged from its own step 0) and DAgger's rounds (agents.imitation.round_scalars, logged
# at the imitation's env steps, which come first)
CURVE_TAGS = ("rollout/ep_rew_mean", "eval/mean_reward", "imitation/student_agreement",
              "imitation/crash_rate")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def short_labels(groups: list[str]) -> dict[str, str]:
    """group -> its overrides less those every group shares (a legend says what differs)."""
    shared = set.intersection(*(set(g.split()) for g in groups)) if len(groups) > 1 else set()
    return {g: " ".join(w for w in g.split() if w not in shared) or "(none)" for g in groups}


def plot_bars(rows: list[dict], metrics: list[str], out: Path) -> Path | None:
    """One panel per metric, up to three a row: a horizontal bar per group (its overrides that
    differ, one per line, on the left), the mean with its bootstrap interval; a group without
    the metric is marked "n/a", not drawn as 0."""
    if not rows or not metrics:
        return None
    plt = _pyplot()
    cols = min(3, len(metrics))
    grid_rows = -(-len(metrics) // cols)
    short = short_labels([r["overrides"] for r in rows])
    labels = [short[r["overrides"]].replace(" ", "\n") for r in rows]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig, axes = plt.subplots(grid_rows, cols, sharey=True, squeeze=False,
                             figsize=(3 + 3.6 * cols, grid_rows * (0.8 + 0.16 * lines)))
    y = np.arange(len(rows))
    for ax, m in zip(axes.flat, metrics, strict=False):
        mean = np.array([r[m] for r in rows], float)
        err = np.array([[r[m] - r[f"{m}_lo"] for r in rows], [r[f"{m}_hi"] - r[m] for r in rows]])
        ax.barh(y, np.nan_to_num(mean), xerr=np.nan_to_num(err), capsize=3, color="tab:blue")
        for i in np.flatnonzero(np.isnan(mean)):
            ax.text(0, i, " n/a", va="center", fontsize=7, color="grey")
        ax.set_title(m, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    axes[0, 0].set_yticks(y, labels)  # shared: every row's first panel shows them
    axes[0, 0].invert_yaxis()  # the summary table's order, top down
    for ax in axes[:, 0]:
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("final metrics: mean over seeds, 95% bootstrap interval", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def swept_keys(rows: list[dict]) -> list[str]:
    """The override keys of the summary rows (`key=value` words of their `overrides`)."""
    return sorted({w.split("=", 1)[0] for r in rows for w in r["overrides"].split() if "=" in w})


def series_against(rows: list[dict], key: str) -> dict[str, list[tuple[float, dict]]]:
    """The summary rows that set the numeric override `key`, as lines: the other overrides ->
    [(value of key, row)] in ascending value. UserInputError naming `key` when no row sets it
    or a value is not a number."""
    from roadsight.errors import UserInputError

    lines: dict[str, list[tuple[float, dict]]] = {}
    for r in rows:
        words = r["overrides"].split()
        value = next((w.split("=", 1)[1] for w in words if w.split("=", 1)[0] == key), None)
        if value is None:
            continue
        try:
            x = float(value)
        except ValueError:
            raise UserInputError(f"x={key}: {key}={value} is not a number") from None
        rest = " ".join(w for w in words if w.split("=", 1)[0] != key)
        lines.setdefault(rest, []).append((x, r))
    if not lines:
        raise UserInputError(f"x={key}: no job of the sweep sets it; its keys: "
                             f"{', '.join(swept_keys(rows)) or '(none)'}")
    return {rest: sorted(points, key=lambda p: p[0]) for rest, points in lines.items()}


def references_against(rows: list[dict], key: str) -> dict[str, dict]:
    """The summary rows that do not set `key` (e.g. a clean evaluation kept beside a corruption
    sweep): their overrides -> row, drawn by `plot_against` as level reference lines."""
    return {r["overrides"]: r for r in rows
            if all(w.split("=", 1)[0] != key for w in r["overrides"].split())}


def plot_against(rows: list[dict], key: str, metrics: list[str], out: Path) -> Path:
    """One panel per metric against the numeric override `key` (e.g. corruption.severity): a
    line per setting of the other overrides (`series_against`), the mean over seeds with its
    bootstrap band; a job that does not set `key` (`references_against`) is a dashed level."""
    lines = series_against(rows, key)
    references = references_against(rows, key)
    plt = _pyplot()
    cols = min(3, len(metrics))
    nrows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.4 * nrows), squeeze=False)
    groups = [*lines, *references]
    short = short_labels(groups) if len(groups) > 1 else {rest: None for rest in lines}
    for ax, m in zip(axes.flat, metrics, strict=False):
        for rest, points in lines.items():
            xs = [p[0] for p in points]
            (line,) = ax.plot(xs, [p[1][m] for p in points], marker="o", label=short[rest])
            ax.fill_between(xs, [p[1][f"{m}_lo"] for p in points],
                            [p[1][f"{m}_hi"] for p in points], color=line.get_color(),
                            alpha=0.15)
        for rest, row in references.items():
            label = f"no {key}" + ("" if short[rest] == "(none)" else f": {short[rest]}")
            ax.axhline(row[m], color="black", linestyle="--", linewidth=1, label=label)
        ax.set_xlabel(key)
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    if len(groups) > 1:
        axes.flat[0].legend(fontsize=7)
    seeds = min(p[1]["n"] for points in lines.values() for p in points)
    shared = "" if len(lines) > 1 else f"{next(iter(lines))}\n"
    fig.suptitle(f"{shared}against {key}: mean over seeds (n >= {seeds}) with its 95% "
                 f"bootstrap band", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def read_scalars(tb_dir: Path, tags: tuple[str, ...] = CURVE_TAGS) -> dict[str, np.ndarray]:
    """tag -> (K, 2) [step, value] from every event file under `tb_dir` (runs concatenated)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list] = {}
    for events in sorted(tb_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in set(tags) & set(acc.Tags().get("scalars", [])):
            found.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {t: np.array(sorted(v), float) for t, v in found.items() if v}


def job_curves(job: Job, tags: tuple[str, ...] = CURVE_TAGS) -> dict[str, np.ndarray]:
    """A job's TensorBoard scalars against all the env steps it used: a run that imitated a
    teacher first (imitation.steps in its metrics) logs its RL steps from 0, so they are
    shifted by the imitation's steps, and runs with and without it share one budget axis (the
    imitation's own `imitation/*` scalars are at its steps already)."""
    if not (job.path / "tb").is_dir():
        return {}
    offset = float(job.metrics.get("imitation.steps") or 0)
    return {tag: xy + [0.0 if tag.startswith("imitation/") else offset, 0.0]
            for tag, xy in read_scalars(job.path / "tb", tags).items()}


def plot_curves(jobs: list[Job], out: Path, tags: tuple[str, ...] = CURVE_TAGS) -> Path | None:
    """Per tag, a line per group: the mean over its seeds, on the steps of its first seed (the
    others interpolated), with a band of the seeds' min..max. None if no job has TensorBoard
    logs."""
    curves: dict[str, dict[str, list[np.ndarray]]] = {}
    for job in jobs:
        for tag, xy in job_curves(job, tags).items():
            curves.setdefault(tag, {}).setdefault(job.group, []).append(xy)
    if not curves:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4), squeeze=False)
    short = short_labels(sorted({g for groups in curves.values() for g in groups}))
    for ax, (tag, groups) in zip(axes[0], sorted(curves.items()), strict=True):
        for group, seeds in groups.items():
            steps = seeds[0][:, 0]
            ys = np.stack([np.interp(steps, s[:, 0], s[:, 1]) for s in seeds])
            (line,) = ax.plot(steps, ys.mean(0), label=f"{short[group]} (n={len(seeds)})")
            if len(seeds) > 1:
                ax.fill_between(steps, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
        ax.set_title(tag)
        ax.set_xlabel("env steps (imitation's included)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
