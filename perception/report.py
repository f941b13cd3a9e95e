"""Evaluation artefacts: rich tables, a CSV, PR-curve, training and range plots, video stills."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

from perception.coco_eval import EvalResult
from roadsight.errors import ConfigError
from roadsight.io import atomic_write_bytes
from sim.types import CLASSES

COLUMNS = ("AP50", "AP50_95", "AP_loose", "precision", "recall", "recall_max", "F1", "F1_thresh",
           "n_gt")


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def rich_table(result: EvalResult, title: str = "detector"):
    """A rich Table of per-class and overall figures."""
    from rich.table import Table

    m = result.metrics
    table = Table(title=title)
    table.add_column("class")
    for c in COLUMNS:
        table.add_column(c, justify="right")
    for name, pc in m["per_class"].items():
        table.add_row(name, *(_fmt(pc[c]) for c in COLUMNS))
    overall = _overall(m)
    table.add_row("all (mean)", *(_fmt(overall[c]) for c in COLUMNS), style="bold")
    return table


def _overall(metrics: dict) -> dict:
    """The "all" row: class means under the per-class column names, and the total n_gt."""
    return {"AP50": metrics["mAP50"], "AP50_95": metrics["mAP50_95"],
            "AP_loose": metrics["mAP_loose"], "precision": metrics["precision"],
            "recall": metrics["recall"], "recall_max": metrics["recall_max"],
            "F1": metrics["F1"], "F1_thresh": None,
            "n_gt": sum(pc["n_gt"] for pc in metrics["per_class"].values())}


def ap_table(rows: dict[str, dict], title: str, label: str = "distance"):
    """A rich Table of `ap_summary` rows (row label -> summary: distance bands, or the cameras of
    a rig with `label="camera"`): AP50 per class (columns, with object counts); "AP50 / AP_loose
    (n)" when the rows carry AP at a loose IoU."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(label)
    names = list(next(iter(rows.values()))["per_class"])
    # a row without objects has no AP at all: look for the loose AP in any row
    loose = any(m.get("mAP_loose") is not None for m in rows.values())

    def cell(ap50, ap_loose) -> str:
        return f"{_fmt(ap50)} / {_fmt(ap_loose)}" if loose else _fmt(ap50)

    head = "AP50 / AP_loose" if loose else "AP50"
    for name in names:
        table.add_column(f"{name} {head} (n)", justify="right")
    table.add_column(f"m{head}", justify="right")
    for row, m in rows.items():
        pcs = [m["per_class"][n] for n in names]
        cells = [f"{cell(pc['AP50'], pc.get('AP_loose'))} ({pc['n_gt']})" for pc in pcs]
        table.add_row(row, *cells, cell(m["mAP50"], m.get("mAP_loose")))
    return table


def bootstrap_table(metrics: dict, boot: dict):
    """A rich Table of AP50 and its bootstrap interval (`bootstrap.bootstrap_ap50`), per class
    and overall."""
    from rich.table import Table

    def interval(ci) -> str:
        return "-" if ci is None else f"{ci[0]:.3f} - {ci[1]:.3f}"

    table = Table(title=f"AP50, {boot['level']:.0%} bootstrap interval over {boot['n']} "
                        f"resamples of the {boot['units']} {boot['by']}s")
    for column in ("class", "AP50", "interval"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, ci in boot["per_class"].items():
        table.add_row(name, _fmt(metrics["per_class"][name]["AP50"]), interval(ci["AP50"]))
    table.add_row("mAP50", _fmt(metrics["mAP50"]), interval(boot["mAP50"]))
    return table


def band_start(label: str) -> float:
    """"40-80 m" -> 40.0: orders band labels by value ("5-10" before "10-20")."""
    return float(label.split("-", 1)[0])


def recall_table(bands: dict[str, dict], title: str, attribute: str = "height"):
    """A rich Table of recall per band (rows) of `attribute` and class: "recall50 / recall_loose
    (n)" when the bands carry recall at a loose IoU."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(attribute)
    names = list(next(iter(bands.values()))["per_class"])
    loose = any(pc["recall_loose"] is not None for m in bands.values()
                for pc in m["per_class"].values())
    for name in names:
        table.add_column(f"{name} recall@0.5{' / loose' if loose else ''} (n)", justify="right")
    for band, m in bands.items():
        pcs = [m["per_class"][n] for n in names]
        table.add_row(band, *(f"{_fmt(pc['recall50'])}"
                              f"{' / ' + _fmt(pc['recall_loose']) if loose else ''} ({pc['n_gt']})"
                              for pc in pcs))
    return table


def write_csv(result: EvalResult, path: str | Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["class", *COLUMNS])
    rows = [*result.metrics["per_class"].items(), ("all", _overall(result.metrics))]
    for name, values in rows:
        w.writerow([name, *("" if values[c] is None else values[c] for c in COLUMNS)])
    atomic_write_bytes(path, buf.getvalue().encode())


def _pyplot():
    """matplotlib.pyplot on the headless Agg backend (imported only when a plot is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def training_history(source: str | Path) -> list[dict]:
    """The per-epoch history (epoch, losses, val_mAP50) of a train-detector run: its run dir
    (metrics.json, every epoch), or a checkpoint file (the epochs up to the one it was saved at,
    so a shipped best.pt shows how it was trained without its run dir)."""
    source = Path(source)
    if source.is_file():
        from perception.checkpoint import CheckpointError, load_checkpoint

        state = load_checkpoint(source)
        if "history" not in state:
            raise CheckpointError(f"checkpoint {source}: no training history in it")
        return state["history"]
    return json.loads((source / "metrics.json").read_text())["history"]


def chain_histories(run_dirs: Sequence[str | Path]) -> list[dict]:
    """The per-epoch histories of runs trained one after the other (`init=` the previous
    best.pt), epochs numbered on across the runs, each entry tagged with its run's index."""
    chained: list[dict] = []
    for stage, run_dir in enumerate(run_dirs):
        offset = chained[-1]["epoch"] if chained else 0
        history = training_history(run_dir)
        chained += [{**h, "epoch": h["epoch"] + offset, "stage": stage} for h in history]
    return chained


def plot_training(runs: Mapping[str, str | Path | Sequence[str | Path]], path: str | Path) -> None:
    """Loss and val mAP50 per epoch for train-detector runs (name -> run dir with metrics.json
    or checkpoint file, or a list of them trained one after the other; a dotted line marks each
    new stage)."""
    plt = _pyplot()

    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=100)
    for i, (name, run_dirs) in enumerate(runs.items()):
        stages = [run_dirs] if isinstance(run_dirs, str | Path) else list(run_dirs)
        history = chain_histories(stages)
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h["loss_total"] for h in history], color=f"C{i}", label=name)
        ax_map.plot(epochs, [h["val_mAP50"] for h in history], color=f"C{i}", label=name)
        for prev, h in pairwise(history):
            if h["stage"] != prev["stage"]:
                for ax in (ax_loss, ax_map):
                    ax.axvline(prev["epoch"] + 0.5, color=f"C{i}", ls=":", alpha=0.6)
    ax_loss.set(xlabel="epoch", ylabel="train loss", yscale="log", title="training loss")
    ax_map.set(xlabel="epoch", ylabel="val mAP50", ylim=(0, 1), title="validation mAP50")
    for ax in (ax_loss, ax_map):
        ax.grid(alpha=0.3)
        ax.legend()
    _save_png(fig, path)


def plot_range(runs: dict[str, str | Path], path: str | Path) -> None:
    """AP per distance band, one panel per class, for val-detector runs (name -> run dir with
    metrics.json): AP50 solid, AP at the loose IoU dashed when the run has it."""
    plt = _pyplot()

    scored = {name: json.loads((Path(d) / "metrics.json").read_text()) for name, d in runs.items()}
    for name, m in scored.items():
        if not m.get("by_range"):
            raise ValueError(f"{runs[name]}/metrics.json: no by_range (run with range_bins set)")
    first_band = next(iter(next(iter(scored.values()))["by_range"].values()))
    classes = [c for c in CLASSES if c in first_band["per_class"]]  # vehicle, pedestrian, ...
    fig, axes = plt.subplots(1, len(classes), figsize=(4 * len(classes), 3.5), dpi=100,
                             sharey=True)
    for ax, cls in zip(axes, classes, strict=True):
        for i, (name, m) in enumerate(scored.items()):
            bands = sorted(m["by_range"], key=band_start)  # metrics.json sorts keys as text
            x = range(len(bands))
            pcs = [m["by_range"][b]["per_class"][cls] for b in bands]
            line, = ax.plot(x, [_nan(pc["AP50"]) for pc in pcs], "o-", color=f"C{i}",
                            label=f"{name} AP50")
            if m.get("loose_iou") is not None:
                ax.plot(x, [_nan(pc.get("AP_loose")) for pc in pcs], "o--", color=line.get_color(),
                        alpha=0.6, label=f"{name} AP@{m['loose_iou']:g}")
            ax.set_xticks(list(x), bands, fontsize=8)
        ax.set(title=cls, xlabel="distance from the ego", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("AP")
    axes[-1].legend(fontsize=8, loc="lower left")
    _save_png(fig, path)


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


def plot_pr_curves(result: EvalResult, path: str | Path, title: str = "PR at IoU 0.5") -> None:
    """Precision-recall curves per class (COCO's interpolated precision) as a PNG."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for name, prec in result.pr_curves.items():
        ap = result.metrics["per_class"][name]["AP50"]
        ax.plot(result.recall_grid, prec, label=f"{name} (AP50 {ap:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    _save_png(fig, path)


def video_stills(video: str | Path, frames: list[int], path: str | Path, cols: int = 2,
                 scale: int = 2) -> None:
    """Frames `frames` of an annotated video (e.g. `detect`'s detections.mp4), tiled `cols` per
    row and enlarged `scale` times (nearest neighbour), as one PNG."""
    import cv2
    import imageio.v2 as imageio
    import numpy as np

    wanted, stills = set(frames), {}
    with imageio.get_reader(str(video)) as reader:
        for i, image in enumerate(reader):
            if i in wanted:
                stills[i] = image
            if len(stills) == len(wanted):
                break
    missing = sorted(wanted - set(stills))
    if missing:
        raise ConfigError(f"video {video}: has no frame {missing[0]} (frames={frames})")
    tiles = [cv2.resize(stills[i], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
             for i in frames]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)]
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    atomic_write_bytes(path, png.tobytes())
