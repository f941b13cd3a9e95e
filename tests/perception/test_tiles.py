"""perception.tiles: the shipped bev detector over a bev twice as wide (92 m ahead)."""

from __future__ import annotations

import numpy as np
import pytest

from perception.backends import load_detector
from perception.tiles import TiledDetector, tile_starts
from roadsight.errors import ConfigError
from roadsight.paths import MODELS_DIR
from sim.camera.bev import BevCamera
from sim.make import make_env
from sim.types import CLASSES


def test_tiles_cover_the_frame_with_the_overlap():
    assert tile_starts(512, 512, 128) == [0]
    assert tile_starts(1024, 512, 128) == [0, 256, 512]
    for length in (600, 1000, 1536, 2000):
        starts = tile_starts(length, 512, 128)
        assert starts[0] == 0 and starts[-1] + 512 == length
        assert all(b - a <= 512 - 128 for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(ConfigError, match="tile_overlap=512"):
        tile_starts(1024, 512, 512)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_wide_bev_objects_found_once_far_ahead_and_across_the_cuts():
    camera = BevCamera(width=1024, height=256, scaling=10.0, centering=(0.1, 0.5))
    env = make_env("roadsight/highway-hazards-v0", {"vehicles_count": 30}, camera=camera)
    detector, _ = load_detector(MODELS_DIR / "detector_bev.pt", "torch", device="cpu")
    tiled = TiledDetector(detector, (256, 512), overlap=128)
    frames, truths = [], []
    frame, info = env.reset(seed=4)
    for _ in range(6):
        frames.append(frame)
        truths.append([o for o in info["objects"] if o.visible >= 0.5])
        frame, _, terminated, truncated, info = env.step(1)
        if terminated or truncated:
            break
    env.close()
    found = tiled(frames)  # one call for every tile of every frame
    matched, total, far, cut = 0, 0, 0, 0
    for det, truth in zip(found, truths, strict=True):
        for i in range(len(det)):  # no object twice: same-class detections never overlap much
            for j in range(i + 1, len(det)):
                assert det.cls[i] != det.cls[j] or iou(det.boxes[i], det.boxes[j]) < 0.5
        for o in truth:
            box = np.array(o.box_xyxy, float)
            total += 1
            hit = any(iou(box, det.boxes[k]) >= 0.5 and det.cls[k] == CLASSES.index(o.cls)
                      for k in range(len(det)))
            matched += hit
            far += hit and box[0] > 512  # beyond the first tile: more than 41 m ahead
            cut += hit and box[0] < 384 < box[2]  # across the first cut's core boundary
    assert total >= 24 and matched / total >= 0.9, (matched, total)
    assert far >= 3 and cut >= 1, (far, cut)
