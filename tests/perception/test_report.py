"""Training curves plot from train-detector's metrics.json."""

from __future__ import annotations

import json

import cv2
import pytest

from perception.report import plot_training


def test_training_plot_is_a_real_png(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    history = [{"epoch": e, "loss_total": 3.0 / e, "val_mAP50": 0.1 * e} for e in range(1, 6)]
    (run / "metrics.json").write_text(json.dumps({"history": history}))
    plot_training({"bev": run}, tmp_path / "curves.png")
    image = cv2.imread(str(tmp_path / "curves.png"))
    assert image is not None and image.shape[1] > image.shape[0] > 200 and image.std() > 10


def test_training_plot_names_a_run_without_history(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(KeyError, match="history"):
        plot_training({"x": tmp_path}, tmp_path / "curves.png")
