"""The shipped checkpoints still detect objects in freshly recorded, unseen frames."""

from __future__ import annotations

import gymnasium as gym
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from perception.backends import load_detector
from perception.coco_eval import evaluate_detector
from perception.data import load_coco_dirs
from perception.decode import DecodeOptions
from roadsight.paths import CONF_DIR, MODELS_DIR
from sim.drivers import IDMDriver
from sim.record import record_dataset


@pytest.mark.parametrize("camera,min_map50", [("bev", 0.85), ("front", 0.75), ("surround", 0.62)])
def test_shipped_checkpoint_detects_unseen_frames(tmp_path, camera, min_map50):
    # this sample (2 short episodes) scores bev 0.887, front 0.816 with the default decoding
    # (the shipped front model; its 4-epoch stage 1 0.829, the three-part medium front model
    # 0.810, the two-part one 0.723, the small one 0.681; on the test splits, README: 0.838
    # against 0.823, 0.787, 0.778 and 0.757: the sample is too small to rank models); a broken
    # model scores near 0.
    # Surround (the rig's 4 views, 56 images): 0.675, the previous surround checkpoint 0.714;
    # on the same images the three-part front checkpoint it was fine-tuned from scores 0.770
    # (this urban sample has few rear objects; on the surround test split the fine-tune scores
    # 0.760 against 0.742 for the previous one and 0.610 for the two-part front one), and the
    # small front checkpoint 0.561. The front threshold (0.75) fails a fall back to the two-part
    # medium or the small front checkpoint
    env = gym.make("roadsight/urban-crossing-v0")
    cam = instantiate(OmegaConf.load(CONF_DIR / "camera" / f"{camera}.yaml"))
    record_dataset(env, cam, IDMDriver(), tmp_path, episodes=2, seed=5000, max_steps=12,
                   every=2, progress=False)
    detector, state = load_detector(MODELS_DIR / f"detector_{camera}.pt",
                                     options=DecodeOptions(score_thresh=0.001))
    result = evaluate_detector(detector, load_coco_dirs(tmp_path), min_visible=0.3)
    assert result.metrics["mAP50"] > min_map50
    assert list(state["classes"]) == ["vehicle", "pedestrian", "obstacle"]
