"""Pictures: training curves from train-detector's metrics.json, stills from a detect video."""

from __future__ import annotations

import json

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest

from perception.checkpoint import FORMAT, CheckpointError, save_checkpoint
from perception.report import (
    ap_table,
    band_start,
    chain_histories,
    plot_range,
    plot_training,
    recall_table,
    training_history,
    video_stills,
)
from sim.types import CLASSES


@pytest.fixture
def plotted(monkeypatch):
    """What each saved figure drew: per axes (by title), its lines as (label, x, y, style)."""
    import perception.report as report

    figures, real_save = [], report._save_png

    def record_then_save(fig, path):
        figures.append({ax.get_title(): [(line.get_label(), list(line.get_xdata()),
                                          list(line.get_ydata()), line.get_linestyle())
                                         for line in ax.get_lines()] for ax in fig.axes})
        real_save(fig, path)

    monkeypatch.setattr(report, "_save_png", record_then_save)
    return figures


def test_training_plot_is_a_real_png_of_the_history(tmp_path, plotted):
    run = tmp_path / "run"
    run.mkdir()
    history = [{"epoch": e, "loss_total": 3.0 / e, "val_mAP50": 0.1 * e} for e in range(1, 6)]
    (run / "metrics.json").write_text(json.dumps({"history": history}))
    plot_training({"bev": run}, tmp_path / "curves.png")
    image = cv2.imread(str(tmp_path / "curves.png"))
    assert image is not None and image.shape[1] > image.shape[0] > 200 and image.std() > 10
    (fig,) = plotted
    assert fig["training loss"] == [("bev", [1, 2, 3, 4, 5], [3.0, 1.5, 1.0, 0.75, 0.6], "-")]
    (label, x, y, _), = fig["validation mAP50"]
    assert (label, x) == ("bev", [1, 2, 3, 4, 5])
    assert y == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_a_fine_tuning_run_continues_the_epochs_of_the_run_it_started_from(tmp_path, plotted):
    for name, maps in {"base": [0.2, 0.4, 0.5], "ft": [0.55, 0.6]}.items():
        (tmp_path / name).mkdir()
        history = [{"epoch": e, "loss_total": 1.0, "val_mAP50": m}
                   for e, m in enumerate(maps, start=1)]
        (tmp_path / name / "metrics.json").write_text(json.dumps({"history": history}))
    chained = chain_histories([tmp_path / "base", tmp_path / "ft"])
    assert [h["epoch"] for h in chained] == [1, 2, 3, 4, 5]
    assert [h["val_mAP50"] for h in chained] == [0.2, 0.4, 0.5, 0.55, 0.6]
    assert [h["stage"] for h in chained] == [0, 0, 0, 1, 1]
    plot_training({"front": [tmp_path / "base", tmp_path / "ft"], "bev": tmp_path / "base"},
                  tmp_path / "curves.png")
    assert cv2.imread(str(tmp_path / "curves.png")) is not None
    # front: both stages on one line, then a dotted stage marker between epochs 3 and 4
    front, stage_mark, bev = plotted[0]["validation mAP50"]
    assert front[:3] == ("front", [1, 2, 3, 4, 5], [0.2, 0.4, 0.5, 0.55, 0.6])
    assert stage_mark[1:] == ([3.5, 3.5], [0, 1], ":")
    assert bev[:3] == ("bev", [1, 2, 3], [0.2, 0.4, 0.5])


def _checkpoint_with(path, **extra):
    state = {"format": FORMAT, "model_cfg": {}, "state_dict": {}, "classes": list(CLASSES),
             "preprocess_cfg": {}, **extra}
    save_checkpoint(path, state)
    return path


def test_a_checkpoint_file_gives_the_history_it_was_saved_with(tmp_path):
    history = [{"epoch": e, "loss_total": 2.0 / e, "val_mAP50": 0.2 * e} for e in (1, 2, 3)]
    base = _checkpoint_with(tmp_path / "base.pt", history=history)
    assert training_history(base) == history
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "metrics.json").write_text(json.dumps({"history": history[:1]}))
    # a shipped checkpoint and a fine-tuning run dir chain like two run dirs
    assert [h["epoch"] for h in chain_histories([base, tmp_path / "ft"])] == [1, 2, 3, 4]
    plot_training({"front": base}, tmp_path / "curves.png")
    assert cv2.imread(str(tmp_path / "curves.png")) is not None


def test_a_checkpoint_without_history_or_corrupt_is_named(tmp_path):
    bare = _checkpoint_with(tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match=r"bare\.pt: no training history"):
        training_history(bare)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"broken\.pt: not a readable torch file"):
        plot_training({"x": broken}, tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_training_plot_names_a_run_without_history(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(KeyError, match="history"):
        plot_training({"x": tmp_path}, tmp_path / "curves.png")


def test_video_stills_tiles_the_chosen_frames_of_a_real_mp4(tmp_path):
    video = tmp_path / "clip.mp4"
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    with imageio.get_writer(str(video), fps=5, codec="libx264", macro_block_size=16) as w:
        for c in colours:
            w.append_data(np.full((32, 48, 3), c, np.uint8))
    video_stills(video, [2, 0], tmp_path / "stills.png", cols=2, scale=2)
    stills = cv2.cvtColor(cv2.imread(str(tmp_path / "stills.png")), cv2.COLOR_BGR2RGB)
    assert stills.shape == (64, 192, 3)
    # left tile is frame 2 (blue), right tile frame 0 (red); H.264 shifts colours a little
    assert np.abs(stills[32, 48].astype(int) - colours[2]).max() < 40
    assert np.abs(stills[32, 144].astype(int) - colours[0]).max() < 40
    with pytest.raises(ValueError, match="clip.mp4: has no frame 7"):
        video_stills(video, [0, 7], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_range_plot_draws_each_camera_and_names_a_run_without_bands(tmp_path, plotted):
    def band(ap):
        return {"per_class": {c: {"AP50": ap, "AP_loose": None if ap is None else ap + 0.1,
                                  "n_gt": 3} for c in ("vehicle", "pedestrian")}}

    for name, aps in {"bev": [0.9, 0.8], "front": [0.7, None]}.items():
        (tmp_path / name).mkdir()
        m = {"loose_iou": 0.1, "by_range": {"0-20 m": band(aps[0]), "20-40 m": band(aps[1])}}
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
    plot_range({"bev": tmp_path / "bev", "front": tmp_path / "front"}, tmp_path / "range.png")
    image = cv2.imread(str(tmp_path / "range.png"))
    # one panel per class side by side: twice as wide as high, give or take the margins
    assert image is not None and image.shape[1] > 1.8 * image.shape[0] and image.std() > 10
    # per class: each camera's AP50 (solid) and loose AP (dashed) over the bands, near to far;
    # a band without objects (None) is a gap
    for cls in ("vehicle", "pedestrian"):
        lines = {label: (x, y, style) for label, x, y, style in plotted[0][cls]}
        nan = pytest.approx(float("nan"), nan_ok=True)
        assert lines == {"bev AP50": ([0, 1], pytest.approx([0.9, 0.8]), "-"),
                         "bev AP@0.1": ([0, 1], pytest.approx([1.0, 0.9]), "--"),
                         "front AP50": ([0, 1], [0.7, nan], "-"),
                         "front AP@0.1": ([0, 1], [pytest.approx(0.8), nan], "--")}
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "metrics.json").write_text(json.dumps({"by_range": None}))
    with pytest.raises(ValueError, match="none/metrics.json: no by_range"):
        plot_range({"x": tmp_path / "none"}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_ap_table_shows_the_loose_ap_when_any_band_has_it():
    from rich.console import Console

    def band(ap50, ap_loose, n):
        pc = {"AP50": ap50, "AP_loose": ap_loose, "n_gt": n}
        return {"mAP50": ap50, "mAP_loose": ap_loose, "per_class": {"vehicle": pc}}

    def render(by_range) -> str:
        console = Console(width=200, record=True)
        console.print(ap_table(by_range, "t"))
        return console.export_text()

    # the first band is empty (no AP at all); the second carries AP50 and the loose AP
    text = render({"0-20 m": band(None, None, 0), "20-40 m": band(0.7, 0.8, 3)})
    assert "vehicle AP50 / AP_loose (n)" in text and "0.700 / 0.800 (3)" in text
    assert "- / - (0)" in text
    text = render({"0-20 m": band(0.7, None, 3)})  # run without loose_iou
    assert "0.700 (3)" in text and "AP_loose" not in text


def test_bands_are_ordered_by_value_and_the_recall_table_shows_both_recalls():
    from rich.console import Console

    assert sorted(["10-20 m", "5-10 m", "0-5 m"], key=band_start) == ["0-5 m", "5-10 m", "10-20 m"]
    by_height = {"0-3 px": {"per_class": {"pedestrian": {"n_gt": 18, "recall50": 0.0,
                                                         "recall_loose": 0.667}}},
                 "3-1000 px": {"per_class": {"pedestrian": {"n_gt": 5, "recall50": None,
                                                            "recall_loose": None}}}}
    console = Console(width=200, record=True)
    console.print(recall_table(by_height, "t"))
    text = console.export_text()
    assert "0.000 / 0.667 (18)" in text and "- / - (5)" in text
    assert "recall@0.5 / loose" in text
