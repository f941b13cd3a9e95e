"""How sure an AP50 is: a percentile bootstrap over the scored data.

A test split is a sample of scenes; resampling it with replacement and re-scoring each resample
gives the spread of AP50 that another split of the same size would show. The frames of one
episode are alike (the same road and traffic a few steps apart; a rig's views of one instant),
so by default whole episodes are resampled, within each dataset directory (a split's urban and
highway parts keep their number of episodes): resampling single frames would treat them as
independent and give too narrow an interval. `by="image"` resamples single images (data without
episodes).

Each image's detections are matched to its objects once (pycocotools' `COCOeval.evaluate` at IoU
0.5, as `coco_eval.evaluate` does); a resample then concatenates its images' matches and takes
COCO's 101-point interpolated AP, so a resample costs a sort, not a COCOeval run. The identity
resample (every image once, in order) gives exactly `coco_eval.evaluate`'s AP50.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from perception.coco_eval import coco_ground_truth, coco_results, indexed, run_cocoeval
from perception.data import ImageRecord
from perception.decode import Detections
from roadsight.errors import ConfigError
from sim.types import CLASSES

RECALL_GRID = np.linspace(0.0, 1.0, 101)  # COCOeval's recThrs


@dataclass
class ImageMatches:
    """One class's matches in one image at IoU 0.5: the counted detections' scores and
    whether each matched an object, and the number of objects that count (not ignored)."""

    scores: np.ndarray  # (D,) float
    matched: np.ndarray  # (D,) bool
    n_gt: int


RESAMPLE_UNITS = ("episode", "image")


def check_bootstrap(n: int, level: float, by: str = "episode") -> None:
    """ConfigError naming `bootstrap`, `bootstrap_level` or `bootstrap_by` unless n >= 0,
    0 < level < 1 and `by` is one of RESAMPLE_UNITS."""
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"bootstrap={n}: choose a number of resamples >= 0 (0: none)")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"bootstrap_level={level}: choose a confidence level in (0, 1)")
    if by not in RESAMPLE_UNITS:
        raise ConfigError(f"bootstrap_by={by!r}: choose one of {list(RESAMPLE_UNITS)}")


def resampling_units(records: list[ImageRecord], by: str = "episode") -> list[list[list[int]]]:
    """The record indices to resample, as strata -> units -> indices: by "image", one stratum
    of single images; by "episode", a stratum per dataset directory, a unit per episode in it.
    ConfigError naming `bootstrap_by` if an image names no episode."""
    if by == "image":
        return [[[i] for i in range(len(records))]]
    strata: dict[str | None, dict[int, list[int]]] = {}
    for i, r in enumerate(records):
        if r.episode is None:
            raise ConfigError(f"bootstrap_by=episode: image {r.path} names no episode (data not "
                              f"written by `roadsight record`); choose bootstrap_by=image")
        strata.setdefault(r.dataset, {}).setdefault(r.episode, []).append(i)
    return [list(units.values()) for units in strata.values()]


def match_images(records: list[ImageRecord], detections: dict[int, Detections],
                 min_visible: float = 0.3, min_height: float = 0.0,
                 ) -> dict[str, list[ImageMatches]]:
    """Per class, one `ImageMatches` per record (in order), from one COCOeval run at IoU 0.5."""
    truth = coco_ground_truth(records, min_visible, min_height)
    n_gt = Counter((a["category_id"], a["image_id"]) for a in truth["annotations"]
                   if not a["iscrowd"])
    evaluated = {}
    dets = coco_results(detections)
    if dets:
        ev = run_cocoeval(indexed(truth), dets, records, iou_thrs=np.array([0.5]))
        evaluated = {(e["category_id"], e["image_id"]): e for e in ev.evalImgs
                     if e is not None and e["aRng"] == ev.params.areaRng[0]}
    matches = {}
    for k, name in enumerate(CLASSES, start=1):
        matches[name] = []
        for r in records:
            e = evaluated.get((k, r.id))
            counted = ~e["dtIgnore"][0].astype(bool) if e else slice(0)
            matches[name].append(ImageMatches(
                np.asarray(e["dtScores"] if e else [], float)[counted],
                (e["dtMatches"][0] if e else np.zeros(0))[counted] > 0, n_gt[(k, r.id)]))
    return matches


def ap50(images: list[ImageMatches]) -> float | None:
    """COCO's 101-point interpolated AP of these images' matches (None: no object counts)."""
    n_gt = sum(m.n_gt for m in images)
    if n_gt == 0:
        return None
    scores = np.concatenate([m.scores for m in images])
    if not len(scores):
        return 0.0
    order = np.argsort(-scores, kind="mergesort")  # as COCOeval.accumulate
    matched = np.concatenate([m.matched for m in images])[order]
    tp = np.cumsum(matched)
    recall = tp / n_gt
    precision = tp / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope from the right
    at = np.searchsorted(recall, RECALL_GRID, side="left")
    return float(np.where(at < len(precision), precision[np.minimum(at, len(tp) - 1)], 0.0)
                 .mean())


def bootstrap_ap50(records: list[ImageRecord], detections: dict[int, Detections], n: int,
                   seed: int = 0, level: float = 0.95, min_visible: float = 0.3,
                   min_height: float = 0.0, by: str = "episode") -> dict:
    """Percentile intervals of mAP50 and each class's AP50 over `n` resamples (`by` episode or
    image, see the module): {"n", "level", "seed", "by", "units", "mAP50": [lo, hi],
    "per_class": {name: {"AP50": [lo, hi]}}} ("units": how many were resampled; a resample
    without an object of a class is left out of that class's interval, and out of mAP50's mean
    as in `coco_eval.evaluate`; an interval is None for a class with no object at all)."""
    check_bootstrap(n, level, by)
    strata = resampling_units(records, by)
    matches = match_images(records, detections, min_visible, min_height)
    rng = np.random.default_rng(seed)
    samples = {name: [] for name in CLASSES}
    means = []
    for _ in range(n):
        pick = [i for units in strata for u in rng.integers(0, len(units), len(units))
                for i in units[u]]
        aps = {name: ap50([m[i] for i in pick]) for name, m in matches.items()}
        for name, ap in aps.items():
            samples[name].append(ap)
        scored = [ap for ap in aps.values() if ap is not None]
        means.append(float(np.mean(scored)) if scored else None)
    tail = (1.0 - level) / 2.0

    def interval(values: list[float | None]) -> list[float] | None:
        kept = [v for v in values if v is not None]
        return [float(q) for q in np.quantile(kept, [tail, 1.0 - tail])] if kept else None

    return {"n": n, "level": level, "seed": seed, "by": by,
            "units": sum(len(units) for units in strata), "mAP50": interval(means),
            "per_class": {name: {"AP50": interval(s)} for name, s in samples.items()}}
