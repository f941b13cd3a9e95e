"""CenterNet targets and decoding: the one place that defines what the heads mean.

`encode_targets` turns boxes (input pixels) into heatmap/size/offset targets; `decode` turns head
outputs back into boxes by 3x3 peaks (`find_peaks`) and top-k (no NMS). Decoding the encoder's own
targets gives the boxes back (tests/perception/test_detector.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from perception.losses import box_inter_union
from perception.model import STRIDE
from roadsight.errors import ConfigError
from sim.types import CLASSES

GAUSSIAN_ALPHA = 0.54  # heatmap sigma = alpha * box side / 6 (TTFNet's elliptical Gaussian)
MIN_SIGMA = 0.5  # [cells] so that tiny objects still get a neighbourhood of soft negatives
# the default peak rule (`find_peaks`) of Detector and the configs, chosen on the front val split
# as the highest mAP50 (0.666 against the 3x3 max-pool's 0.642; 0.675 at 0.5) that keeps recall
# at precision 0.9 within 0.02 of the max-pool's (0.5 loses 0.09 on vehicles: duplicate boxes).
# On the front test split it did not: vehicle recall at precision 0.9 0.64 against 0.74 (README)
# With snap_px, re-checked on val: 0.3 misses that rule by 0.001 (noise), so it stays (README)
PEAK_IOU = 0.3

# a detection's minimum score: one for every class, or one per class name
ScoreThresh = float | Mapping[str, float]
# what `DecodeOptions(score_thresh=None)` decodes at when the checkpoint stores no thresholds
DEFAULT_SCORE_THRESH = 0.3


def class_thresholds(score_thresh: ScoreThresh, num_classes: int = len(CLASSES)) -> torch.Tensor:
    """(num_classes,) per-class score thresholds from one number, or from a mapping that names
    every class of CLASSES once; a ConfigError names `score_thresh` and the choices otherwise."""
    if isinstance(score_thresh, Mapping):
        if set(score_thresh) != set(CLASSES) or num_classes != len(CLASSES):
            raise ConfigError(f"score_thresh={dict(score_thresh)}: give one number, or one per "
                              f"class naming each of {list(CLASSES)}")
        values = [score_thresh[name] for name in CLASSES]
    else:
        values = [score_thresh] * num_classes
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0
           for v in values):
        raise ConfigError(f"score_thresh={score_thresh!r}: scores are in [0, 1]")
    return torch.tensor(values, dtype=torch.float32)


def describe_thresh(score_thresh: ScoreThresh) -> str:
    """"0.3", or "vehicle 0.3, pedestrian 0.3, obstacle 0.5" for per-class thresholds."""
    if isinstance(score_thresh, Mapping):
        return ", ".join(f"{name} {score_thresh[name]:g}" for name in CLASSES)
    return f"{score_thresh:g}"


@dataclass
class Detections:
    """Detections for one image; boxes in that image's pixels."""

    boxes: np.ndarray  # (N, 4) float32 xyxy
    cls: np.ndarray  # (N,) int64 index into CLASSES
    score: np.ndarray  # (N,) float32 in [0, 1]

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def to_json(self) -> dict:
        return {
            "boxes": np.round(self.boxes.astype(float), 2).tolist(),
            "classes": [CLASSES[c] for c in self.cls.tolist()],
            "cls": self.cls.tolist(),
            "scores": np.round(self.score.astype(float), 4).tolist(),
        }


def encode_targets(
    boxes: np.ndarray,
    cls: np.ndarray,
    input_hw: tuple[int, int],
    num_classes: int = len(CLASSES),
    max_objects: int = 128,
    ignore_boxes: np.ndarray | None = None,
    ignore_cls: np.ndarray | None = None,
    stride: int = STRIDE,
    neighbour_weight: float = 0.0,
) -> dict[str, np.ndarray]:
    """Targets for one image.

    Args:
        boxes: (N, 4) xyxy in input (network) pixels; cls: (N,) class indices.
        input_hw: network input (H, W); outputs are (H/stride, W/stride).
        stride: the detector's output stride (`CenterNet.stride`).
        ignore_boxes/ignore_cls: objects neither required nor penalised (e.g. mostly occluded):
            their box area is excluded from the heatmap's negative loss for their class.
        neighbour_weight: > 0 also regresses each box at the 8 cells around its centre, with
            this weight and the offset from that cell, so that a peak one cell off still decodes
            the right box. Cells that are a centre, or a neighbour of two objects, are skipped.
    Returns arrays: heatmap (C, h, w), ignore (C, h, w), size/offset (K, 2), index (K,) flat cell
    index y * w + x, mask (K,) the weight of each entry: 1 for an object's centre, then
    `neighbour_weight` for neighbour entries (K = max_objects, times 9 with neighbours).
    """
    h, w = input_hw[0] // stride, input_hw[1] // stride
    heatmap = np.zeros((num_classes, h, w), np.float32)
    ignore = np.zeros((num_classes, h, w), np.float32)
    entries = max_objects * (9 if neighbour_weight > 0 else 1)
    size = np.zeros((entries, 2), np.float32)
    offset = np.zeros((entries, 2), np.float32)
    index = np.zeros(entries, np.int64)
    mask = np.zeros(entries, np.float32)
    if ignore_boxes is not None:
        for (x1, y1, x2, y2), c in zip(np.asarray(ignore_boxes).reshape(-1, 4), ignore_cls,
                                       strict=True):
            ignore[int(c), max(int(y1 // stride), 0):int(np.ceil(y2 / stride)),
                   max(int(x1 // stride), 0):int(np.ceil(x2 / stride))] = 1.0
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, input_hw[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, input_hw[0])
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (bw >= 1.0) & (bh >= 1.0)
    # large boxes first, so that where two centres share a cell the smaller object keeps it
    order = [i for i in np.argsort(-(bw * bh), kind="stable") if keep[i]][-max_objects:]
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    for k, i in enumerate(order):
        c = int(cls[i])
        cx = (boxes[i, 0] + boxes[i, 2]) / 2 / stride  # [cells]
        cy = (boxes[i, 1] + boxes[i, 3]) / 2 / stride
        ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
        sx = max(GAUSSIAN_ALPHA * bw[i] / stride / 6, MIN_SIGMA)
        sy = max(GAUSSIAN_ALPHA * bh[i] / stride / 6, MIN_SIGMA)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx**2) - ((ys - iy) ** 2) / (2 * sy**2))
        np.maximum(heatmap[c], g.astype(np.float32), out=heatmap[c])
        heatmap[c, iy, ix] = 1.0
        size[k] = np.log([bw[i] / stride, bh[i] / stride])
        offset[k] = (cx - ix, cy - iy)
        index[k] = iy * w + ix
        mask[k] = 1.0
    if neighbour_weight > 0:
        _add_neighbours(size, offset, index, mask, len(order), max_objects, (h, w),
                        neighbour_weight)
    ignore *= heatmap < 1e-3  # never ignore where a real object's Gaussian lies
    return {"heatmap": heatmap, "ignore": ignore, "size": size, "offset": offset,
            "index": index, "mask": mask}


def cell_boxes(size: torch.Tensor, offset: torch.Tensor, stride: int, b: torch.Tensor,
               y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(..., 4) xyxy input px decoded at cells (b, y, x) (index tensors of one shape) from the
    (B, 2, h, w) log sizes and offsets [cells]."""
    xc = (x.to(size.dtype) + offset[b, 0, y, x]) * stride
    yc = (y.to(size.dtype) + offset[b, 1, y, x]) * stride
    half_w, half_h = size[b, 0, y, x].exp() * stride / 2, size[b, 1, y, x].exp() * stride / 2
    return torch.stack([xc - half_w, yc - half_h, xc + half_w, yc + half_h], dim=-1)


def check_peak_iou(peak_iou: float | None) -> float | None:
    """`peak_iou` must be null or a number in [0, 1): a ConfigError names the key otherwise."""
    if peak_iou is None:
        return None
    if isinstance(peak_iou, bool) or not isinstance(peak_iou, int | float) \
            or not 0.0 <= peak_iou < 1.0:
        raise ConfigError(f"peak_iou={peak_iou!r}: choose null (3x3 max-pool peaks) or an IoU "
                          f"in [0, 1) above which a higher neighbour suppresses a cell")
    return float(peak_iou)


def check_snap_px(snap_px: bool) -> bool:
    """`snap_px` must be true or false: a ConfigError names the key otherwise."""
    if not isinstance(snap_px, bool):
        raise ConfigError(f"snap_px={snap_px!r}: choose true (box edges rounded to whole image "
                          f"pixels) or false (boxes as regressed)")
    return snap_px


def check_topk(topk: int) -> int:
    """`topk` must be a whole number >= 1: a ConfigError names the key otherwise."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ConfigError(f"topk={topk!r}: choose a whole number >= 1 (detections kept per image)")
    return topk


@dataclass(frozen=True)
class DecodeOptions:
    """How head outputs become detections: `decode` (score_thresh, topk, peak_iou), then
    `to_image_detections` (snap_px). Checked when made, so that a bad config value fails,
    naming its key, before a checkpoint is loaded or a frame is read."""

    # one number, or per class name (`class_thresholds`); None: the checkpoint's F1-best
    # thresholds when it stores them (`for_checkpoint`), else DEFAULT_SCORE_THRESH
    score_thresh: ScoreThresh | None = None
    topk: int = 100  # detections kept per image
    peak_iou: float | None = PEAK_IOU  # the peak rule (`find_peaks`); None: 3x3 max-pool
    snap_px: bool = True  # box edges on the image's pixel grid (`snap_to_pixels`)

    def __post_init__(self):
        if self.score_thresh is not None:
            class_thresholds(self.score_thresh)
        check_topk(self.topk)
        object.__setattr__(self, "peak_iou", check_peak_iou(self.peak_iou))
        check_snap_px(self.snap_px)

    @classmethod
    def from_cfg(cls, cfg: Mapping, **overrides) -> DecodeOptions:
        """From a config holding the four keys (detect, val-detector, train-detector's `eval`)."""
        options = cls(cfg["score_thresh"], cfg["topk"], cfg["peak_iou"], cfg["snap_px"])
        return replace(options, **overrides)

    def for_checkpoint(self, state: Mapping) -> DecodeOptions:
        """These options with `score_thresh` None resolved: the checkpoint's stored per-class
        thresholds (`val-detector write_thresholds=true`), else DEFAULT_SCORE_THRESH."""
        if self.score_thresh is not None:
            return self
        return replace(self, score_thresh=state.get("score_thresh") or DEFAULT_SCORE_THRESH)

    @property
    def thresh(self) -> ScoreThresh:
        """The score threshold decoding applies (DEFAULT_SCORE_THRESH for None)."""
        return DEFAULT_SCORE_THRESH if self.score_thresh is None else self.score_thresh

    def decode(self, heatmap: torch.Tensor, size: torch.Tensor, offset: torch.Tensor,
               stride: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """`decode` of a batch's head outputs with these options (boxes in input pixels;
        `snap_px` applies later, in `to_image_detections`)."""
        return decode(heatmap, size, offset, topk=self.topk, score_thresh=self.thresh,
                      stride=stride, peak_iou=self.peak_iou)


# (dy, dx) of a cell's 8 neighbours
NEIGHBOURS = torch.tensor([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])


def find_peaks(heatmap: torch.Tensor, size: torch.Tensor, offset: torch.Tensor, stride: int,
               peak_iou: float | None, floor: float | None = None
               ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """The peaks of (B, C, h, w) heatmap probabilities: their cells (b, c, y, x) in the
    heatmap's (class-major) order, scores (n,) and decoded boxes (n, 4) xyxy input px.

    peak_iou=None: CenterNet's rule, a cell no lower than any cell of its 3x3 neighbourhood.
    peak_iou=t: a higher 3x3 neighbour suppresses a cell only when their decoded boxes overlap
    with IoU > t, so that two small objects in adjacent cells both stay peaks, while the cells
    around a large object's centre (whose boxes nearly coincide) are still suppressed.
    `floor`: only cells with heatmap >= floor are judged (None: every cell). Boxes are decoded
    at the judged cells and their neighbours only: the cost of a frame is a few tensor ops,
    whatever its size, when few cells reach the score threshold.
    """
    judged = heatmap >= floor if floor is not None else torch.ones_like(heatmap, dtype=torch.bool)
    bi, ci, yi, xi = judged.nonzero(as_tuple=True)
    value = heatmap[bi, ci, yi, xi]
    own = cell_boxes(size, offset, stride, bi, yi, xi)  # (n, 4)
    # the 8 neighbours of every judged cell at once, (n, 8); outside the map: never higher
    h, w = heatmap.shape[-2:]
    dy, dx = NEIGHBOURS.to(yi.device).unbind(1)
    ny, nx = yi[:, None] + dy, xi[:, None] + dx
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    ny, nx = ny.clamp(0, h - 1), nx.clamp(0, w - 1)
    b8 = bi[:, None].expand_as(ny)
    higher = inside & (heatmap[b8, ci[:, None].expand_as(ny), ny, nx] > value[:, None])
    if peak_iou is not None:
        around = cell_boxes(size, offset, stride, b8, ny, nx)  # (n, 8, 4)
        inter, union = box_inter_union(own[:, None, :], around)
        higher &= inter / union.clamp(min=1e-9) > peak_iou
    peak = ~higher.any(1)
    return (bi[peak], ci[peak], yi[peak], xi[peak]), value[peak], own[peak]


def _add_neighbours(size, offset, index, mask, n: int, first: int, hw: tuple[int, int],
                    weight: float) -> None:
    """Fill entries `first`.. with the 8 neighbour cells of the n centre entries (in place)."""
    h, w = hw
    centres = set(index[:n].tolist())
    claims: dict[int, list[tuple[int, int, int]]] = {}
    for k in range(n):
        iy, ix = divmod(int(index[k]), w)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = iy + dy, ix + dx
                if (dy or dx) and 0 <= ny < h and 0 <= nx < w and ny * w + nx not in centres:
                    claims.setdefault(ny * w + nx, []).append((k, dx, dy))
    j = first
    for cell, owners in claims.items():
        if len(owners) != 1:  # between two objects: which box it should decode is ambiguous
            continue
        k, dx, dy = owners[0]
        size[j], offset[j] = size[k], offset[k] - (dx, dy)
        index[j], mask[j] = cell, weight
        j += 1


@torch.no_grad()
def decode(
    heatmap: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    topk: int = 100,
    score_thresh: ScoreThresh = DEFAULT_SCORE_THRESH,
    stride: int = STRIDE,
    peak_iou: float | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Peaks of (B, C, h, w) heatmap *probabilities* -> per image (boxes xyxy input px, cls, score).

    `stride` is the detector's output stride: input pixels per heatmap cell. `peak_iou` picks the
    peak rule (`find_peaks`): None is the 3x3 max-pool. The top-k peaks over all classes with
    score >= score_thresh (one number, or per class name: `class_thresholds`) become boxes.
    No NMS.
    """
    thresh = class_thresholds(score_thresh, heatmap.shape[1]).to(heatmap.device)
    heatmap, size, offset = heatmap.float(), size.float(), offset.float()
    # cells under every class's threshold never come out: judge only the others
    (bi, ci, _, _), score, boxes = find_peaks(heatmap, size, offset, stride, peak_iou,
                                              floor=float(thresh.min()))
    out = []
    for i in range(heatmap.shape[0]):
        mine = bi == i
        top, order = score[mine].sort(descending=True, stable=True)
        top, order = top[:topk], order[:topk]
        cls = ci[mine][order]
        keep = top >= thresh[cls]
        out.append((boxes[mine][order][keep], cls[keep], top[keep]))
    return out


def snap_to_pixels(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(N, 4) xyxy boxes with their edges rounded to whole pixels of a (W, H) image.

    A rendered object covers whole pixels, so its true box (sim/'s ground truth: the extent of
    its pixels) has integer edges; a box edge predicted within half a pixel of the truth lands on
    it. A box that rounds to no width (or height) becomes the 1 px column (row) under its centre.
    """
    b = np.round(boxes)
    for lo, hi, extent in ((0, 2, image_size[0]), (1, 3, image_size[1])):
        empty = b[:, hi] <= b[:, lo]
        centre = (boxes[empty, lo] + boxes[empty, hi]) / 2
        b[empty, lo] = np.clip(np.floor(centre), 0, max(extent - 1, 0))
        b[empty, hi] = b[empty, lo] + 1
    return b


def to_image_detections(
    boxes: torch.Tensor, cls: torch.Tensor, score: torch.Tensor, letterbox, snap_px: bool = False
) -> Detections:
    """Map decoded boxes from network input pixels back to the original image (clipped); with
    `snap_px`, onto its pixel grid (`snap_to_pixels`)."""
    b = letterbox.to_image(boxes.cpu().numpy().astype(np.float32).reshape(-1, 4))
    if snap_px:
        b = snap_to_pixels(b, letterbox.image_size)
    return Detections(b.astype(np.float32), cls.cpu().numpy().astype(np.int64),
                      score.cpu().numpy().astype(np.float32))
