"""Evaluation artefacts: a rich table, a per-class CSV and a PR-curve plot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from perception.coco_eval import EvalResult
from roadsight.io import atomic_write_bytes

COLUMNS = ("AP50", "AP50_95", "precision", "recall", "n_gt")


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
    n_gt = sum(pc["n_gt"] for pc in m["per_class"].values())
    table.add_row("all (mean)", _fmt(m["mAP50"]), _fmt(m["mAP50_95"]), _fmt(m["precision"]),
                  _fmt(m["recall"]), str(n_gt), style="bold")
    return table


def range_table(by_range: dict[str, dict], title: str):
    """A rich Table of AP50 per distance band (rows) and class (columns, with object counts)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("distance")
    names = list(next(iter(by_range.values()))["per_class"])
    for name in names:
        table.add_column(f"{name} AP50 (n)", justify="right")
    table.add_column("mAP50", justify="right")
    for band, m in by_range.items():
        cells = [f"{_fmt(m['per_class'][n]['AP50'])} ({m['per_class'][n]['n_gt']})"
                 for n in names]
        table.add_row(band, *cells, _fmt(m["mAP50"]))
    return table


def write_csv(result: EvalResult, path: str | Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["class", *COLUMNS])
    for name, pc in result.metrics["per_class"].items():
        w.writerow([name, *("" if pc[c] is None else pc[c] for c in COLUMNS)])
    m = result.metrics
    w.writerow(["all", m["mAP50"], m["mAP50_95"], m["precision"], m["recall"],
                sum(pc["n_gt"] for pc in m["per_class"].values())])
    atomic_write_bytes(path, buf.getvalue().encode())


def _save_png(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_training(runs: dict[str, str | Path], path: str | Path) -> None:
    """Loss and val mAP50 per epoch for train-detector runs (name -> run dir with metrics.json)."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=100)
    for name, run_dir in runs.items():
        history = json.loads((Path(run_dir) / "metrics.json").read_text())["history"]
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h["loss_total"] for h in history], label=name)
        ax_map.plot(epochs, [h["val_mAP50"] for h in history], label=name)
    ax_loss.set(xlabel="epoch", ylabel="train loss", yscale="log", title="training loss")
    ax_map.set(xlabel="epoch", ylabel="val mAP50", ylim=(0, 1), title="validation mAP50")
    for ax in (ax_loss, ax_map):
        ax.grid(alpha=0.3)
        ax.legend()
    _save_png(fig, path)


def plot_pr_curves(result: EvalResult, path: str | Path, title: str = "PR at IoU 0.5") -> None:
    """Precision-recall curves per class (COCO's interpolated precision) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        raise ValueError(f"video {video}: has no frame {missing[0]} (frames={frames})")
    tiles = [cv2.resize(stills[i], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
             for i in frames]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)]
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    atomic_write_bytes(path, png.tobytes())
