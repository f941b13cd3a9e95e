"""pycocotools scoring: perfect, empty, ignored (low-visibility) and false-positive cases."""

from __future__ import annotations

import numpy as np
import pytest

from perception.coco_eval import evaluate, evaluate_by_camera, evaluate_by_range, recall_by
from perception.data import ImageRecord
from perception.decode import Detections


def record(i, boxes, cls, visible):
    return ImageRecord(i, f"im{i}.png", 200, 100, np.asarray(boxes, np.float32).reshape(-1, 4),
                       np.asarray(cls, np.int64), np.asarray(visible, np.float32))


RECORDS = [
    record(1, [[10, 10, 50, 30], [100, 40, 108, 50]], [0, 1], [1.0, 1.0]),
    record(2, [[20, 60, 60, 90], [150, 10, 160, 20]], [0, 1], [1.0, 0.1]),  # 2nd ignored
]


def dets(boxes, cls, score):
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(cls, np.int64),
                      np.asarray(score, np.float32))


def test_perfect_detections_score_one_and_keys_exist():
    d = {r.id: dets(r.boxes[r.visible >= 0.3], r.cls[r.visible >= 0.3], [0.9] *
                    int((r.visible >= 0.3).sum())) for r in RECORDS}
    m = evaluate(RECORDS, d).metrics
    assert m["mAP50"] == pytest.approx(1.0) and m["mAP50_95"] == pytest.approx(1.0)
    assert m["per_class"]["vehicle"]["AP50"] == pytest.approx(1.0)
    assert m["per_class"]["pedestrian"]["AP50_95"] == pytest.approx(1.0)
    assert m["per_class"]["obstacle"]["AP50"] is None  # no ground truth: left out of the mean
    assert m["precision"] == pytest.approx(1.0) and m["recall"] == pytest.approx(1.0)


def test_ignored_objects_are_neither_required_nor_penalised():
    base = {1: dets(RECORDS[0].boxes, RECORDS[0].cls, [0.9, 0.9]),
            2: dets(RECORDS[1].boxes[:1], [0], [0.9])}
    with_ignored_hit = dict(base)
    with_ignored_hit[2] = dets(RECORDS[1].boxes, [0, 1], [0.9, 0.95])
    assert evaluate(RECORDS, base).metrics["mAP50"] == pytest.approx(1.0)
    assert evaluate(RECORDS, with_ignored_hit).metrics["mAP50"] == pytest.approx(1.0)


def test_false_positives_and_misses_lower_the_scores():
    d = {1: dets([[10, 10, 50, 30], [120, 70, 130, 80]], [0, 1], [0.9, 0.95]), 2: dets([], [], [])}
    m = evaluate(RECORDS, d).metrics
    assert m["per_class"]["vehicle"]["AP50"] == pytest.approx(0.5, abs=0.01)
    assert m["per_class"]["pedestrian"]["AP50"] == pytest.approx(0.0)
    assert evaluate(RECORDS, {}).metrics["mAP50"] == 0.0


def test_min_height_ignores_small_boxes_only_when_asked():
    # record 1's pedestrian is 10 px high; missing it costs pedestrian AP unless min_height > 10
    d = {1: dets(RECORDS[0].boxes[:1], [0], [0.9]), 2: dets(RECORDS[1].boxes[:1], [0], [0.9])}
    assert evaluate(RECORDS, d).metrics["per_class"]["pedestrian"]["AP50"] == pytest.approx(0.0)
    m = evaluate(RECORDS, d, min_height=12).metrics
    assert m["per_class"]["pedestrian"]["n_gt"] == 0 and m["mAP50"] == pytest.approx(1.0)
    assert m["min_height"] == 12


def test_ap_by_camera_scores_each_camera_of_a_rig_on_its_own_images():
    front = record(1, [[10, 10, 50, 30]], [0], [1.0])
    rear = record(2, [[20, 60, 60, 90]], [0], [1.0])
    front.camera, rear.camera = "front", "rear"
    # the front vehicle found, the rear one boxed in the wrong place, plus a spurious rear box
    d = {1: dets(front.boxes, [0], [0.9]), 2: dets([[100, 10, 140, 30]], [0], [0.8])}
    by_camera = evaluate_by_camera([front, rear], d)
    assert set(by_camera) == {"front", "rear"}
    assert by_camera["front"]["per_class"]["vehicle"]["AP50"] == pytest.approx(1.0)
    assert by_camera["rear"]["per_class"]["vehicle"]["AP50"] == pytest.approx(0.0)
    assert by_camera["front"]["per_class"]["vehicle"]["n_gt"] == 1
    # both together: the rear miss and its false alarm count against the front's hit
    assert evaluate([front, rear], d).metrics["per_class"]["vehicle"]["AP50"] == pytest.approx(
        0.5, abs=0.01)
    # one camera (or none named) is not a rig
    assert evaluate_by_camera(RECORDS, {}) is None
    assert evaluate_by_camera([front], d) is None


def test_records_name_the_camera_of_each_image(tmp_path):
    import json

    import cv2

    from perception.data import load_coco_dir

    images = []
    for i, name in enumerate(["front", "left"]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((16, 32, 3), np.uint8))
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 32, "height": 16,
                       "camera": {"name": name, "kind": "pinhole"}})
    (tmp_path / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": [], "categories": [{"id": 1, "name": "vehicle"}]}))
    assert [r.camera for r in load_coco_dir(tmp_path)] == ["front", "left"]


def test_ap_by_distance_scores_each_band_on_its_own_objects():
    near_far = [ImageRecord(i, f"im{i}.png", 200, 100,
                            np.array([[10, 10, 50, 30], [100, 40, 108, 50]], np.float32),
                            np.array([0, 0]), np.ones(2, np.float32),
                            distance=np.array([8.0, 55.0], np.float32)) for i in (1, 2)]
    # the near car is found in both images, the far car only in image 1
    d = {1: dets(near_far[0].boxes, [0, 0], [0.9, 0.8]), 2: dets(near_far[1].boxes[:1], [0], [0.9])}
    bands = evaluate_by_range(near_far, d, [0, 20, 80, 250])
    assert list(bands) == ["0-20 m", "20-80 m", "80-250 m"]
    assert bands["0-20 m"]["per_class"]["vehicle"] == {"AP50": pytest.approx(1.0),
                                                        "AP50_95": pytest.approx(1.0),
                                                        "AP_loose": None, "n_gt": 2}
    assert bands["20-80 m"]["per_class"]["vehicle"]["AP50"] == pytest.approx(0.5, abs=0.01)
    assert bands["20-80 m"]["per_class"]["vehicle"]["n_gt"] == 2
    assert bands["80-250 m"]["per_class"]["vehicle"] == {"AP50": None, "AP50_95": None,
                                                          "AP_loose": None, "n_gt": 0}
    # records without ego_xy (distance NaN) fall in no band
    assert evaluate_by_range(RECORDS, d, [0, 1000])["0-1000 m"]["per_class"]["vehicle"]["n_gt"] == 0
    with pytest.raises(ValueError, match=r"range_bins=\[40, 20\]: need two or more increasing"):
        evaluate_by_range(near_far, d, [40, 20])


def test_loose_iou_credits_boxes_that_are_found_but_misplaced():
    # vehicle boxes shifted so that IoU is 1/3: a miss at IoU 0.5, a hit at IoU 0.1
    shifted = {1: dets([[30, 10, 70, 30]], [0], [0.9]), 2: dets([[40, 60, 80, 90]], [0], [0.9])}
    m = evaluate(RECORDS, shifted, loose_iou=0.1).metrics
    vehicle = m["per_class"]["vehicle"]
    assert vehicle["AP50"] == pytest.approx(0.0) and vehicle["AP_loose"] == pytest.approx(1.0)
    assert m["loose_iou"] == 0.1 and m["mAP_loose"] == pytest.approx(0.5)  # pedestrians missed
    # AP50_95 still averages COCO's ten thresholds only: perfect boxes stay at 1.0
    perfect = {1: dets(RECORDS[0].boxes, RECORDS[0].cls, [0.9, 0.9]),
               2: dets(RECORDS[1].boxes[:1], [0], [0.9])}
    assert evaluate(RECORDS, perfect, loose_iou=0.1).metrics["mAP50_95"] == pytest.approx(1.0)
    assert evaluate(RECORDS, shifted).metrics["per_class"]["vehicle"]["AP_loose"] is None
    by_band = evaluate_by_range(
        [ImageRecord(1, "im1.png", 200, 100, RECORDS[0].boxes[:1], np.array([0]), np.ones(1),
                     distance=np.array([5.0]))], {1: shifted[1]}, [0, 20], loose_iou=0.1)
    assert by_band["0-20 m"]["per_class"]["vehicle"]["AP_loose"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"loose_iou=0.5: choose an IoU in \(0, 0.5\)"):
        evaluate(RECORDS, shifted, loose_iou=0.5)


def test_recall_by_height_splits_found_misplaced_and_missed_objects():
    d = {1: dets([[10, 10, 50, 30], [100, 40, 108, 50]], [0, 1], [0.9, 0.2]),  # ped under 0.3
         2: dets([[40, 60, 80, 90]], [0], [0.9])}  # vehicle at IoU 1/3
    by_h = recall_by(RECORDS, d, "height", [0, 15, 100], score_thresh=0.3, loose_iou=0.1)
    assert list(by_h) == ["0-15 px", "15-100 px"]
    small, large = by_h["0-15 px"]["per_class"], by_h["15-100 px"]["per_class"]
    # the 10 px pedestrian of image 2 is 10% visible: ignored, not counted
    assert small["pedestrian"] == {"n_gt": 1, "recall50": 0.0, "recall_loose": 0.0}
    assert small["vehicle"] == {"n_gt": 0, "recall50": None, "recall_loose": None}
    assert large["vehicle"] == {"n_gt": 2, "recall50": 0.5, "recall_loose": 1.0}
    # a lower operating point finds the pedestrian; without loose_iou there is no loose recall
    low = recall_by(RECORDS, d, "height", [0, 15, 100], score_thresh=0.1)
    assert low["0-15 px"]["per_class"]["pedestrian"] == {"n_gt": 1, "recall50": 1.0,
                                                         "recall_loose": None}
    nothing = recall_by(RECORDS, {1: dets([], [], []), 2: dets([], [], [])}, "height", [0, 100])
    assert nothing["0-100 px"]["per_class"]["vehicle"] == {"n_gt": 2, "recall50": 0.0,
                                                           "recall_loose": None}
    with pytest.raises(ValueError, match=r"height_bins=\[5, 3\]: need two or more increasing"):
        recall_by(RECORDS, d, "height", [5, 3])


def test_recall_by_visible_fraction_counts_fully_visible_objects_in_the_last_band():
    occluded = [record(1, [[10, 10, 50, 30], [60, 10, 100, 30]], [0, 0], [0.4, 1.0])]
    d = {1: dets([[10, 10, 50, 30]], [0], [0.9])}  # finds the occluded one only
    by_v = recall_by(occluded, d, "visible", [0.3, 0.7, 1.0])
    assert list(by_v) == ["0.3-0.7", "0.7-1"]
    assert by_v["0.3-0.7"]["per_class"]["vehicle"]["recall50"] == 1.0
    # visible == 1.0 sits on the last edge and is counted there
    assert by_v["0.7-1"]["per_class"]["vehicle"] == {"n_gt": 1, "recall50": 0.0,
                                                     "recall_loose": None}
    with pytest.raises(ValueError, match=r"visible_bins=\[0.5\]: need two or more increasing "
                                         r"visible fractions"):
        recall_by(occluded, d, "visible", [0.5])
    with pytest.raises(ValueError, match=r"recall by 'colour': choose one of \['height', "):
        recall_by(occluded, d, "colour", [0, 1])


def test_best_f1_is_exact_over_the_ranking_and_per_class_thresholds_apply():
    # vehicles: TP at 0.9, FP at 0.8, TP at 0.7 -> F1 0.667, 0.5, 0.8: best 0.8 at score 0.7
    d = {1: dets([[10, 10, 50, 30], [120, 60, 160, 90]], [0, 0], [0.9, 0.8]),
         2: dets([[20, 60, 60, 90]], [0], [0.7])}
    m = evaluate(RECORDS, d).metrics
    assert m["per_class"]["vehicle"]["F1"] == pytest.approx(0.8)
    assert m["per_class"]["vehicle"]["F1_thresh"] == pytest.approx(0.7)
    assert m["per_class"]["pedestrian"]["F1"] == 0.0  # nothing found: no operating point
    assert m["per_class"]["pedestrian"]["F1_thresh"] is None
    # the operating point per class: vehicles at 0.75 keep the 0.9 TP and the 0.8 FP
    per_class = {"vehicle": 0.75, "pedestrian": 0.3, "obstacle": 0.3}
    m = evaluate(RECORDS, d, score_thresh=per_class).metrics
    assert m["per_class"]["vehicle"]["recall"] == pytest.approx(0.5)
    # exact: 1 of the 2 kept is right (COCO's interpolated precision at recall 0.5 says 1.0)
    assert m["per_class"]["vehicle"]["precision"] == pytest.approx(0.5)
    assert m["score_thresh"] == per_class
    by_h = recall_by(RECORDS, d, "height", [0, 100], score_thresh=per_class)
    assert by_h["0-100 px"]["per_class"]["vehicle"]["recall50"] == pytest.approx(0.5)
    by_h = recall_by(RECORDS, d, "height", [0, 100], score_thresh={**per_class, "vehicle": 0.6})
    assert by_h["0-100 px"]["per_class"]["vehicle"]["recall50"] == pytest.approx(1.0)


def test_recall_max_is_the_recall_over_every_detection_and_caps_ap50():
    # two vehicles, one found (at a low score), one not: recall_max 0.5 whatever the threshold
    d = {1: dets([[10, 10, 50, 30]], [0], [0.05]), 2: dets([], [], [])}
    pc = evaluate(RECORDS, d, score_thresh=0.3).metrics["per_class"]["vehicle"]
    assert pc["recall_max"] == pytest.approx(0.5)
    assert pc["recall"] == 0.0  # nothing at the operating point
    # COCO's 101-point AP counts the recall point 0.50 itself: AP50 = 51/101
    assert pc["AP50"] == pytest.approx(51 / 101)
    assert pc["AP50"] <= pc["recall_max"] + 1 / 101
