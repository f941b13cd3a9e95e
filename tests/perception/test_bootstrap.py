"""Bootstrap intervals of AP50: exact on the identity resample, honest about spread."""

from __future__ import annotations

import numpy as np
import pytest

from perception.bootstrap import ap50, bootstrap_ap50, match_images, resampling_units
from perception.coco_eval import evaluate
from perception.data import ImageRecord
from perception.decode import Detections
from roadsight.errors import ConfigError


def noisy_split(n_images=60, seed=0, frames_per_episode=5):
    """Records with 1-4 objects each and detections that miss some, misplace some (IoU < 0.5),
    add false alarms and tie scores, so that AP50 is well inside (0, 1); the frames are
    independent, in episodes of `frames_per_episode` over two dataset directories."""
    rng = np.random.default_rng(seed)
    records, dets = [], {}
    for i in range(1, n_images + 1):
        k = int(rng.integers(1, 5))
        xy = rng.uniform(0, 150, (k, 2))
        wh = rng.uniform(4, 40, (k, 2))
        boxes = np.hstack([xy, xy + wh]).astype(np.float32)
        cls = rng.integers(0, 3, k)
        visible = np.where(rng.random(k) < 0.15, 0.1, 1.0).astype(np.float32)  # some ignored
        episode = (i - 1) // frames_per_episode
        records.append(ImageRecord(i, f"im{i}.png", 200, 200, boxes, cls, visible,
                                   dataset=f"part{episode % 2}", episode=episode))
        keep = rng.random(k) > 0.2
        shift = np.where(rng.random((k, 1)) < 0.2, wh[:, :1] * 0.8, 0.0)  # misplaced: IoU < 0.5
        d_boxes = (boxes + shift)[keep]
        d_cls = cls[keep]
        n_fp = int(rng.integers(0, 3))
        fp_xy = rng.uniform(0, 150, (n_fp, 2))
        d_boxes = np.vstack([d_boxes, np.hstack([fp_xy, fp_xy + 10])]).astype(np.float32)
        d_cls = np.concatenate([d_cls, rng.integers(0, 3, n_fp)])
        score = np.round(rng.uniform(0.05, 1.0, len(d_cls)), 1)  # ties across images
        dets[i] = Detections(d_boxes, d_cls.astype(np.int64), score.astype(np.float32))
    return records, dets


def test_identity_resample_gives_cocoevals_ap50_exactly():
    records, dets = noisy_split()
    per_class = evaluate(records, dets).metrics["per_class"]
    for name, images in match_images(records, dets).items():
        assert 0.1 < per_class[name]["AP50"] < 0.95
        assert ap50(images) == pytest.approx(per_class[name]["AP50"], abs=1e-12)


def test_interval_brackets_the_estimate_is_seeded_and_narrows_with_more_images():
    records, dets = noisy_split()
    m = evaluate(records, dets).metrics
    boot = bootstrap_ap50(records, dets, n=200, seed=3)
    assert (boot["n"], boot["level"], boot["by"], boot["units"]) == (200, 0.95, "episode", 12)
    lo, hi = boot["mAP50"]
    assert lo < m["mAP50"] < hi and hi - lo > 0.02
    for name, ci in boot["per_class"].items():
        assert ci["AP50"][0] < m["per_class"][name]["AP50"] < ci["AP50"][1]
    assert bootstrap_ap50(records, dets, n=200, seed=3) == boot
    assert bootstrap_ap50(records, dets, n=200, seed=4) != boot
    big_records, big_dets = noisy_split(n_images=600, seed=1)
    big = bootstrap_ap50(big_records, big_dets, n=200, seed=3)
    assert big["mAP50"][1] - big["mAP50"][0] < 0.6 * (hi - lo)  # about 1/sqrt(10) of it


def test_episodes_are_resampled_whole_within_their_dataset_directory():
    records, _ = noisy_split(n_images=23, frames_per_episode=5)  # episodes 0-4, the last of 3
    strata = resampling_units(records)
    assert [[len(u) for u in units] for units in strata] == [[5, 5, 3], [5, 5]]
    assert sorted(i for units in strata for u in units for i in u) == list(range(23))
    assert {records[i].dataset for i in strata[1][0]} == {"part1"}
    assert resampling_units(records, "image") == [[[i] for i in range(23)]]


def test_alike_frames_widen_the_episode_interval_not_the_image_one():
    # every episode is 10 copies of one frame: 30 episodes carry what 30 frames would, and
    # only resampling episodes sees that (about sqrt(10) wider than resampling images)
    records, dets = noisy_split(n_images=30, seed=2, frames_per_episode=1)
    copies, copy_dets = [], {}
    for r in records:
        for _ in range(10):
            new_id = len(copies) + 1
            copies.append(ImageRecord(new_id, r.path, r.width, r.height, r.boxes, r.cls,
                                      r.visible, dataset="part0", episode=r.id))
            copy_dets[new_id] = dets[r.id]
    width = {by: np.diff(bootstrap_ap50(copies, copy_dets, n=300, by=by)["mAP50"])[0]
             for by in ("episode", "image")}
    assert width["episode"] > 2 * width["image"]


def test_perfect_and_empty_detections_have_no_spread():
    records, _ = noisy_split(n_images=20)
    perfect = {r.id: Detections(r.boxes, r.cls, np.full(len(r.cls), 0.9, np.float32))
               for r in records}
    assert bootstrap_ap50(records, perfect, n=50)["mAP50"] == [1.0, 1.0]
    assert bootstrap_ap50(records, {}, n=50)["per_class"]["vehicle"]["AP50"] == [0.0, 0.0]


def test_a_class_without_objects_has_no_interval():
    records, dets = noisy_split(n_images=30)
    only_vehicles = [ImageRecord(r.id, r.path, r.width, r.height, r.boxes[r.cls == 0],
                                 r.cls[r.cls == 0], r.visible[r.cls == 0], dataset=r.dataset,
                                 episode=r.episode) for r in records]
    boot = bootstrap_ap50(only_vehicles, dets, n=20)
    assert boot["per_class"]["obstacle"]["AP50"] is None
    assert boot["per_class"]["vehicle"]["AP50"] is not None


@pytest.mark.parametrize("n,level,by,message", [
    (-1, 0.95, "episode", "bootstrap=-1"), (10, 1.0, "episode", "bootstrap_level=1.0"),
    (10, 0.0, "episode", "bootstrap_level=0.0"),
    (10, 0.95, "frame", r"bootstrap_by='frame': choose one of \['episode', 'image'\]")])
def test_bad_settings_name_the_key(n, level, by, message):
    records, dets = noisy_split(n_images=5)
    with pytest.raises(ConfigError, match=message):
        bootstrap_ap50(records, dets, n=n, level=level, by=by)


def test_data_without_episodes_needs_image_resampling():
    records, dets = noisy_split(n_images=10)
    bare = [ImageRecord(r.id, r.path, r.width, r.height, r.boxes, r.cls, r.visible)
            for r in records]
    with pytest.raises(ConfigError, match="im1.png names no episode.*bootstrap_by=image"):
        bootstrap_ap50(bare, dets, n=10)
    assert bootstrap_ap50(bare, dets, n=10, by="image")["units"] == 10
