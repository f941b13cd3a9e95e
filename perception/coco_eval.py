"""COCO mAP with pycocotools for our records and detections.

Objects with visible < min_visible go into the ground truth as iscrowd=1: a detection on them is
ignored (neither a true nor a false positive) and missing them costs nothing. The same mechanism
scores subsets: boxes under `min_height` pixels, or objects outside a band of ego distance
(`evaluate_by_range`), are iscrowd too.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params

from perception.data import ImageRecord
from perception.decode import Detections, ScoreThresh, class_thresholds
from roadsight.errors import ConfigError
from sim.types import CLASSES

IOU_50 = 0  # index of IoU=0.50 in COCOeval's iouThrs (0.50:0.05:0.95)
N_COCO_IOUS = 10  # COCOeval's 0.50:0.05:0.95; a loose threshold is appended after them


@dataclass
class EvalResult:
    """Overall and per-class figures plus PR curves (IoU 0.5) for plotting."""

    metrics: dict  # mAP50, mAP50_95, precision, recall, per_class -> name -> {...}
    recall_grid: np.ndarray = field(default_factory=lambda: np.linspace(0, 1, 101))
    pr_curves: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (101,) precision


def _nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def coco_ground_truth(records: list[ImageRecord], min_visible: float,
                      min_height: float = 0.0,
                      distance_range: tuple[float, float] | None = None) -> dict:
    """A COCO dict for `records`; objects left out of the score marked iscrowd=1 (ignored).

    Left out: visible fraction under `min_visible`; box height under `min_height` [px]
    (KITTI-style difficulty cut for far objects; 0 keeps every size); with `distance_range`
    (lo, hi) [m], an ego distance outside lo <= d < hi (or unknown).
    """
    images, anns = [], []
    for r in records:
        images.append({"id": r.id, "width": r.width, "height": r.height,
                       "file_name": str(r.path)})
        for box, c, v, d in zip(r.boxes, r.cls, r.visible, r.distance, strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            # NaN (no ego_xy) is outside every band
            in_range = distance_range is None or distance_range[0] <= d < distance_range[1]
            anns.append({"id": len(anns) + 1, "image_id": r.id, "category_id": int(c) + 1,
                         "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h,
                         "iscrowd": int(v < min_visible or h < min_height or not in_range),
                         "visible": float(v)})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    return {"images": images, "annotations": anns, "categories": cats}


def indexed(dataset: dict) -> COCO:
    """A pycocotools COCO object over a ground-truth dict, indexed quietly."""
    gt = COCO()
    gt.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def run_cocoeval(gt: COCO, dets: list[dict], records: list[ImageRecord],
                 iou_thrs: np.ndarray | None = None, max_dets: int | None = None,
                 accumulate: bool = False) -> COCOeval:
    """A quiet bbox COCOeval of COCO-format `dets` against `gt` over `records`' images, with
    each image's detections matched (`evaluate`, and `accumulate` if asked).

    iou_thrs: the IoU thresholds (None: COCO's 0.50:0.05:0.95). max_dets: only the "all" area
    range, with this many detections per image (None: COCO's areas and maxDets).
    """
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.params.imgIds = [r.id for r in records]
        if iou_thrs is not None:
            ev.params.iouThrs = np.asarray(iou_thrs, float)
        if max_dets is not None:
            ev.params.areaRng, ev.params.areaRngLbl = [[0.0, 1e10]], ["all"]
            ev.params.maxDets = [max_dets]
        ev.evaluate()
        if accumulate:
            ev.accumulate()
    return ev


def coco_results(detections: dict[int, Detections]) -> list[dict]:
    """Detections in the COCO results format (xywh boxes, 1-based category ids)."""
    return [
        {"image_id": img_id, "category_id": int(c) + 1, "score": float(s),
         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
        for img_id, d in detections.items()
        for b, c, s in zip(d.boxes, d.cls, d.score, strict=True)
    ]


def check_loose_iou(loose_iou: float | None) -> None:
    """ConfigError naming `loose_iou` unless it is None or an IoU in (0, 0.5)."""
    if loose_iou is not None and not 0.0 < loose_iou < 0.5:
        raise ConfigError(f"loose_iou={loose_iou}: choose an IoU in (0, 0.5), or null")


def ranking(ev: COCOeval, category_id: int) -> tuple[np.ndarray, np.ndarray]:
    """One class's detections at IoU 0.5 from an evaluated COCOeval (all areas, its maxDets),
    best first, ignored ones left out: (scores, matched) arrays."""
    scores, hits = [], []
    for e in ev.evalImgs:
        if e is None or e["category_id"] != category_id or e["aRng"] != ev.params.areaRng[0]:
            continue
        counted = ~e["dtIgnore"][IOU_50].astype(bool)
        scores += np.asarray(e["dtScores"])[counted].tolist()
        hits += (e["dtMatches"][IOU_50][counted] > 0).tolist()
    order = np.argsort(-np.asarray(scores), kind="stable")
    return np.asarray(scores, float)[order], np.asarray(hits, bool)[order]


def operating_point(scores: np.ndarray, hits: np.ndarray, n_gt: int,
                    thresh: float) -> tuple[float, float]:
    """Exact (precision, recall) of the detections with score >= `thresh` (a `ranking`);
    precision 0 when none is kept."""
    kept = int(np.count_nonzero(scores >= thresh))
    tp = int(np.count_nonzero(hits[:kept]))
    return (tp / kept if kept else 0.0), (tp / n_gt if n_gt else 0.0)


def best_f1(scores: np.ndarray, hits: np.ndarray, n_gt: int) -> tuple[float, float | None]:
    """The F1-best operating point of a `ranking`: (F1, score threshold); keeping the
    detections with score >= the threshold gives that F1. (0.0, None) if none is right."""
    tp = np.cumsum(hits)
    if n_gt == 0 or not len(tp) or tp[-1] == 0:
        return 0.0, None
    last = np.r_[np.diff(scores) != 0, True]  # a threshold keeps every equal score
    precision, recall = tp / np.arange(1, len(tp) + 1), tp / n_gt
    f1 = np.where(last, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    j = int(np.argmax(f1))
    return float(f1[j]), float(scores[j])


def evaluate(
    records: list[ImageRecord],
    detections: dict[int, Detections],
    min_visible: float = 0.3,
    score_thresh: ScoreThresh = 0.3,
    min_height: float = 0.0,
    distance_range: tuple[float, float] | None = None,
    loose_iou: float | None = None,
) -> EvalResult:
    """mAP@0.5, mAP@0.5:0.95 overall and per class; precision/recall of the detections with
    score >= `score_thresh` at IoU 0.5 (exact, not COCO's interpolated precision);
    `recall_max`, the recall at IoU 0.5 over every detection given: AP50 cannot exceed it (by
    more than the 101-point grid's 1/101); `F1` and `F1_thresh`, the best F1 at IoU 0.5 and the
    score threshold that gives it (`best_f1`), a per-class operating point for `score_thresh`.

    `detections` maps record id -> Detections in that image's pixels. Classes without any
    (non-ignored) ground truth get None and are left out of the means. With `loose_iou` (e.g.
    0.1), also AP at that IoU ("AP_loose", "mAP_loose"): the gap to AP50 is what localisation
    costs, the rest is missed or spurious objects.
    """
    check_loose_iou(loose_iou)
    thresholds = class_thresholds(score_thresh).tolist()
    gt = indexed(coco_ground_truth(records, min_visible, min_height, distance_range))
    dets = coco_results(detections)
    n_gt = {name: 0 for name in CLASSES}
    for a in gt.dataset["annotations"]:
        if not a["iscrowd"]:
            n_gt[CLASSES[a["category_id"] - 1]] += 1
    result = EvalResult(metrics={})
    per_class = {n: {"AP50": None, "AP50_95": None, "AP_loose": None, "precision": None,
                     "recall": None, "recall_max": None, "F1": None, "F1_thresh": None,
                     "n_gt": n_gt[n]} for n in CLASSES}
    if dets:
        # thresholds are matched independently: a loose one is appended to COCO's
        ev = run_cocoeval(gt, dets, records, accumulate=True, iou_thrs=None if loose_iou is None
                          else np.append(Params(iouType="bbox").iouThrs, loose_iou))
        prec = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) area=all, maxDets=100
        for k, name in enumerate(CLASSES):
            if n_gt[name] == 0:
                continue
            p50 = prec[IOU_50, :, k]
            p_all = prec[:N_COCO_IOUS, :, k]
            per_class[name]["AP50"] = float(np.mean(np.maximum(p50, 0)))
            per_class[name]["AP50_95"] = float(np.mean(np.maximum(p_all, 0)))
            if loose_iou is not None:
                per_class[name]["AP_loose"] = float(np.mean(np.maximum(prec[-1, :, k], 0)))
            result.pr_curves[name] = np.maximum(p50, 0)
            ranked = ranking(ev, k + 1)
            per_class[name]["precision"], per_class[name]["recall"] = operating_point(
                *ranked, n_gt[name], thresholds[k])
            # AP50's ceiling: the recall of every detection given
            per_class[name]["recall_max"] = operating_point(*ranked, n_gt[name], -math.inf)[1]
            per_class[name]["F1"], per_class[name]["F1_thresh"] = best_f1(*ranked, n_gt[name])
    else:
        for name in CLASSES:
            if n_gt[name]:
                per_class[name].update(AP50=0.0, AP50_95=0.0, precision=0.0, recall=0.0,
                                       recall_max=0.0, F1=0.0,
                                       AP_loose=None if loose_iou is None else 0.0)

    def mean(key: str) -> float | None:
        vals = [v[key] for v in per_class.values() if v[key] is not None]
        return _nan_to_none(float(np.mean(vals))) if vals else None

    result.metrics = {"mAP50": mean("AP50"), "mAP50_95": mean("AP50_95"),
                      "mAP_loose": mean("AP_loose"), "loose_iou": loose_iou,
                      "precision": mean("precision"), "recall": mean("recall"),
                      "recall_max": mean("recall_max"), "F1": mean("F1"),
                      "per_class": per_class, "n_images": len(records),
                      "n_detections": len(dets), "min_visible": min_visible,
                      "min_height": min_height, "distance_range": distance_range,
                      "score_thresh": dict(score_thresh) if isinstance(score_thresh, Mapping)
                      else score_thresh}
    return result


def range_bands(bins: list[float], key: str = "range_bins",
                what: str = "distances [m]") -> list[tuple[float, float]]:
    """[0, 20, 40] -> [(0, 20), (20, 40)]; ConfigError naming `key` unless increasing."""
    edges = [float(b) for b in bins]
    bands = list(itertools.pairwise(edges))
    if not bands or any(lo >= hi for lo, hi in bands):
        raise ConfigError(f"{key}={list(bins)}: need two or more increasing {what}")
    return bands


class RecallAttribute(NamedTuple):
    """An object attribute that `recall_by` can split objects by."""

    key: str  # config key of its bins
    what: str  # what the bins are, for errors
    unit: str  # band label suffix
    title: str  # for table titles
    value: Callable[[dict], float]  # of a COCO ground-truth annotation


RECALL_ATTRIBUTES = {
    "height": RecallAttribute("height_bins", "box heights [px]", " px", "box height",
                              lambda ann: ann["bbox"][3]),
    "visible": RecallAttribute("visible_bins", "visible fractions", "", "visible fraction",
                               lambda ann: ann["visible"]),
}


def attribute_bands(attribute: str, bins: list[float]) -> list[tuple[float, float]]:
    """Bands of a `RECALL_ATTRIBUTES` attribute; ConfigError naming its key unless increasing."""
    if attribute not in RECALL_ATTRIBUTES:
        raise ValueError(f"recall by {attribute!r}: choose one of {list(RECALL_ATTRIBUTES)}")
    spec = RECALL_ATTRIBUTES[attribute]
    return range_bands(bins, spec.key, spec.what)


def recall_by(
    records: list[ImageRecord],
    detections: dict[int, Detections],
    attribute: str,
    bins: list[float],
    min_visible: float = 0.3,
    score_thresh: ScoreThresh = 0.3,
    loose_iou: float | None = None,
) -> dict[str, dict]:
    """Recall at the operating point (`score_thresh`: one number or per class) per band of an
    object attribute, "height" (box height [px]) or "visible" (visible fraction): "lo-hi px" ->
    {per_class: {n_gt, recall50, recall_loose}} (lo <= value < hi, the last band includes hi;
    recall_loose None without `loose_iou`).

    An object counts as found when a detection of its class with score >= `score_thresh` is
    matched to it by COCOeval (greedy by score, IoU >= 0.5, or >= `loose_iou`). recall_loose -
    recall50 is the share found but boxed too loosely; 1 - recall_loose is the share missed.
    """
    check_loose_iou(loose_iou)
    bands = attribute_bands(attribute, bins)
    value = RECALL_ATTRIBUTES[attribute].value
    gt = indexed(coco_ground_truth(records, min_visible))
    thresholds = class_thresholds(score_thresh).tolist()
    dets = [d for d in coco_results(detections) if d["score"] >= thresholds[d["category_id"] - 1]]
    ious = [0.5] if loose_iou is None else [0.5, loose_iou]
    found: list[tuple[int, float, np.ndarray]] = []  # (class index, value, matched per IoU)
    if dets:
        ev = run_cocoeval(gt, dets, records, iou_thrs=np.array(ious),
                          max_dets=max(len(d.score) for d in detections.values()))
        for e in ev.evalImgs:
            if e is not None:
                found += [(e["category_id"] - 1, value(gt.anns[g]), m > 0)
                          for g, m, ign in zip(e["gtIds"], e["gtMatches"].T, e["gtIgnore"],
                                               strict=True) if not ign]
    else:  # nothing detected: every object is missed
        found = [(a["category_id"] - 1, value(a), np.zeros(len(ious), bool))
                 for a in gt.dataset["annotations"] if not a["iscrowd"]]
    unit = RECALL_ATTRIBUTES[attribute].unit
    out = {}
    for i, (lo, hi) in enumerate(bands):
        last = i == len(bands) - 1
        per_class = {}
        for k, name in enumerate(CLASSES):
            hits = [m for c, v, m in found if c == k and lo <= v and (v < hi or last and v == hi)]
            rec = np.mean(hits, axis=0) if hits else [None] * len(ious)
            per_class[name] = {"n_gt": len(hits), "recall50": _nan_to_none(rec[0]),
                               "recall_loose": _nan_to_none(rec[1]) if loose_iou else None}
        out[f"{lo:g}-{hi:g}{unit}"] = {"per_class": per_class}
    return out


def evaluate_by_range(
    records: list[ImageRecord],
    detections: dict[int, Detections],
    bins: list[float],
    min_visible: float = 0.3,
    min_height: float = 0.0,
    loose_iou: float | None = None,
) -> dict[str, dict]:
    """AP per band of ego distance: "lo-hi m" -> `ap_summary` of the band (AP_loose None
    without `loose_iou`).

    In each band, objects outside it are ignored (iscrowd): detecting them neither helps nor
    costs, missing them costs nothing. A detection that matches no object at all is a false
    positive in every band, as in KITTI's difficulty levels.
    """
    return {f"{lo:g}-{hi:g} m": ap_summary(evaluate(
                records, detections, min_visible, min_height=min_height,
                distance_range=(lo, hi), loose_iou=loose_iou).metrics)
            for lo, hi in range_bands(bins)}


def evaluate_by_camera(
    records: list[ImageRecord],
    detections: dict[int, Detections],
    min_visible: float = 0.3,
    min_height: float = 0.0,
    loose_iou: float | None = None,
) -> dict[str, dict] | None:
    """AP per camera of a rig (e.g. surround's front, left, right, rear): camera name ->
    `ap_summary` of its images alone; None unless the records name two or more cameras."""
    by_camera: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_camera.setdefault(r.camera, []).append(r)
    if len(by_camera) < 2:
        return None
    return {str(name): ap_summary(evaluate(
                subset, {r.id: detections[r.id] for r in subset if r.id in detections},
                min_visible, min_height=min_height, loose_iou=loose_iou).metrics)
            for name, subset in by_camera.items()}


def ap_summary(metrics: dict) -> dict:
    """The AP figures of an `evaluate` result: {mAP50, mAP50_95, mAP_loose,
    per_class: {AP50, AP50_95, AP_loose, n_gt}}."""
    return {"mAP50": metrics["mAP50"], "mAP50_95": metrics["mAP50_95"],
            "mAP_loose": metrics["mAP_loose"],
            "per_class": {n: {k: pc[k] for k in ("AP50", "AP50_95", "AP_loose", "n_gt")}
                          for n, pc in metrics["per_class"].items()}}


def predict_records(detector, records: list[ImageRecord], batch_size: int = 16,
                    corruption=None) -> dict[int, Detections]:
    """Run a `Detector` over records (optionally corrupted, seeded per image) -> id -> Detections.

    corruption: a `perception.corruptions.Corruption`; each image draws from its own generator
        seeded by (corruption.seed, record id), so results do not depend on order or batch size.
    """
    from perception.corruptions import corrupt
    from perception.data import prepare_image, read_image_rgb

    out: dict[int, Detections] = {}
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        xs, lbs = [], []
        for r in chunk:
            image = read_image_rgb(r.path)
            if corruption is not None:
                rng = np.random.default_rng([corruption.seed, r.id])
                image = corrupt(image, corruption.name, corruption.severity, rng)
            x, lb = prepare_image(image, detector.preprocessor)
            xs.append(x)
            lbs.append(lb)
        for r, d in zip(chunk, detector.detect_batch(torch.stack(xs), lbs), strict=True):
            out[r.id] = d
    return out


def evaluate_detector(detector, records: list[ImageRecord], min_visible: float = 0.3,
                      batch_size: int = 16, corruption=None,
                      score_thresh: ScoreThresh = 0.3, min_height: float = 0.0) -> EvalResult:
    """Predict over `records` and score with `evaluate`."""
    dets = predict_records(detector, records, batch_size, corruption)
    return evaluate(records, dets, min_visible, score_thresh, min_height)
