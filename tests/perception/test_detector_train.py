"""The training path learns, resumes after an interruption, and refuses a foreign last.pt."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from perception.backends import Detector, TorchBackend
from perception.checkpoint import CheckpointError, build_model, load_checkpoint
from perception.coco_eval import evaluate_detector
from perception.data import load_coco_dirs
from perception.decode import DecodeOptions
from perception.synthetic import write_synthetic_coco
from perception.trainer import train_detector
from tests.configs import compose_app

torch.set_num_threads(1)
ROADSIGHT = str(Path(sys.executable).with_name("roadsight"))


def train_cfg(data, val_data=None, *overrides: str):
    cfg = compose_app("train_detector", [
        f"data={data}", "detector=tiny", "preprocess.ops.0.width=256",
        "preprocess.ops.0.height=128", "batch_size=8", "workers=0", "lr=0.01",
        "warmup_steps=10", "augment=null", "val_every=10", *overrides])
    with open_dict(cfg):
        cfg.val_data = str(val_data) if val_data else None
    return cfg


def ap50_on(checkpoint, data_dir, score_thresh=0.001):
    state = load_checkpoint(checkpoint)
    from hydra.utils import instantiate

    det = Detector(TorchBackend(build_model(state), "cpu"), instantiate(state["preprocess_cfg"]),
                   DecodeOptions(score_thresh=score_thresh))
    return evaluate_detector(det, load_coco_dirs(data_dir)).metrics


def assert_losses_fall(history: list[dict], factor: float) -> None:
    """Every loss term of every epoch is a finite number, and the total fell below `factor`
    times its first-epoch value."""
    for h in history:
        losses = {k: v for k, v in h.items() if k.startswith("loss_")}
        assert "loss_total" in losses and all(math.isfinite(v) for v in losses.values()), h
    assert history[-1]["loss_total"] < factor * history[0]["loss_total"], history


# held-out mAP50 the last weights must reach on frames drawn from another seed: the narrow
# stem fits its 8 frames (mAP50 0.88 on them) but does not generalise from so few (0.47)
@pytest.mark.parametrize("arch,min_held_out", [("out_stride=4", 0.6), ("out_stride=2", 0.6),
                                               ("out_stride=2 stem_channels=8", None)])
def test_tiny_detector_learns_synthetic_frames(tmp_path, arch, min_held_out):
    data = write_synthetic_coco(tmp_path / "ds", n_images=8, seed=1)
    cfg = train_cfg(data, data, "epochs=40", *(f"detector.{a}" for a in arch.split()))
    metrics = train_detector(cfg, tmp_path / "run")
    assert_losses_fall(metrics["history"], 0.25)
    m = ap50_on(tmp_path / "run" / "best.pt", data)
    assert m["mAP50"] > 0.8, m
    assert all(pc["AP50"] > 0.5 for pc in m["per_class"].values()), m
    assert (tmp_path / "run" / "tb").is_dir() and (tmp_path / "run" / "last.pt").is_file()
    if min_held_out is not None:  # frames the training never saw, not memorised ones
        held_out = write_synthetic_coco(tmp_path / "held_out", n_images=8, seed=101)
        m = ap50_on(tmp_path / "run" / "last.pt", held_out)
        assert m["mAP50"] > min_held_out, m


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    data = write_synthetic_coco(tmp_path / "ds", n_images=4, seed=2)
    cfg = train_cfg(data, None, "epochs=3", "batch_size=2")
    straight = train_detector(cfg, tmp_path / "straight")

    import perception.trainer as trainer

    real_save, calls = trainer.save_checkpoint, []

    def save_then_die(path, state):
        real_save(path, state)
        calls.append(Path(path).name)
        if Path(path).name == "last.pt" and state["epoch"] == 0:
            raise KeyboardInterrupt  # the run is killed right after epoch 1 is saved

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_detector(cfg, tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 0
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    resumed = train_detector(cfg, tmp_path / "resumed")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    for a, b in zip(straight["history"], resumed["history"], strict=True):
        assert a["loss_total"] == pytest.approx(b["loss_total"], rel=1e-4)
    w1 = load_checkpoint(tmp_path / "straight" / "last.pt")["state_dict"]
    w2 = load_checkpoint(tmp_path / "resumed" / "last.pt")["state_dict"]
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-4, atol=1e-5)


def test_resume_refuses_another_architecture_and_keeps_last_pt(tmp_path):
    data = write_synthetic_coco(tmp_path / "ds", n_images=2, seed=3)
    train_detector(train_cfg(data, None, "epochs=1"), tmp_path / "run")
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match=r"last.pt: cannot resume, its detector config"):
        train_detector(train_cfg(data, None, "epochs=2", "detector=small"), tmp_path / "run")
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_init_starts_a_fresh_run_from_trained_weights(tmp_path):
    data = write_synthetic_coco(tmp_path / "ds", n_images=4, seed=5)
    train_detector(train_cfg(data, data, "epochs=30"), tmp_path / "base")
    base = load_checkpoint(tmp_path / "base" / "best.pt")
    # one epoch at a tiny LR: from the base weights it scores like the base, from scratch it cannot
    short = ("epochs=1", "lr=1e-6", "val_every=1")
    tuned = train_detector(train_cfg(data, data, *short, f"init={tmp_path / 'base' / 'best.pt'}"),
                           tmp_path / "tuned")
    fresh = train_detector(train_cfg(data, data, *short), tmp_path / "fresh")
    assert base["metrics"]["mAP50"] > 0.8, base["metrics"]
    assert tuned["best_mAP50"] > base["metrics"]["mAP50"] - 0.1
    assert fresh["best_mAP50"] < 0.2
    assert tuned["init"] == str(tmp_path / "base" / "best.pt")
    # a fresh optimizer and schedule: the new run counts its own epochs
    assert load_checkpoint(tmp_path / "tuned" / "last.pt")["epoch"] == 0


def test_init_refuses_another_architecture_or_a_missing_file(tmp_path):
    data = write_synthetic_coco(tmp_path / "ds", n_images=2, seed=6)
    train_detector(train_cfg(data, None, "epochs=1"), tmp_path / "base")
    other = train_cfg(data, None, "epochs=1", "detector=small",
                      f"init={tmp_path / 'base' / 'last.pt'}")
    with pytest.raises(CheckpointError, match=r"base/last.pt: cannot start from it, its detector"):
        train_detector(other, tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"nope.pt: file not found"):
        train_detector(train_cfg(data, None, "epochs=1", f"init={tmp_path / 'nope.pt'}"),
                       tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.slow
def test_detector_learns_recorded_bev_frames(tmp_path):
    """A few real `roadsight record` frames: the small detector finds their objects."""
    rec = tmp_path / "rec"
    subprocess.run([ROADSIGHT, "record", "env=urban_crossing", "camera=bev", "episodes=1",
                    "seed=3", "max_steps=7", f"hydra.run.dir={rec}"], check=True,
                   capture_output=True, timeout=300)
    n_images = len(json.loads((rec / "annotations.json").read_text())["images"])
    assert n_images >= 4  # reset + up to 7 steps
    cfg = train_cfg(rec, rec, "epochs=40", "preprocess.ops.0.width=512",
                    "preprocess.ops.0.height=256", "precise_bn_batches=1")
    train_detector(cfg, tmp_path / "run")
    m = ap50_on(tmp_path / "run" / "best.pt", rec)
    assert m["mAP50"] > 0.5, m


@pytest.mark.parametrize("device", [
    "cpu",  # the same checks on the CPU path (amp is a no-op there), so they run everywhere
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="needs a CUDA GPU")),
])
def test_training_with_amp_gives_finite_falling_losses(tmp_path, device):
    data = write_synthetic_coco(tmp_path / "ds", n_images=4, seed=4)
    metrics = train_detector(train_cfg(data, data, "epochs=6", f"device={device}", "amp=true",
                                       "workers=1"), tmp_path / "run")
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4, 5, 6]
    assert_losses_fall(metrics["history"], 0.8)  # fp16 overflow would give inf/NaN losses
    assert metrics["last"]["mAP50"] is not None and math.isfinite(metrics["last"]["mAP50"])
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 5
