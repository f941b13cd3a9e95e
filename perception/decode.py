"""CenterNet targets and decoding: the one place that defines what the heads mean.

`encode_targets` turns boxes (input pixels) into heatmap/size/offset targets; `decode` turns head
outputs back into boxes by 3x3 max-pool peaks and top-k (no NMS). Decoding the encoder's own targets
gives the boxes back (tests/perception/test_detector.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from perception.model import STRIDE
from sim.types import CLASSES

GAUSSIAN_ALPHA = 0.54  # heatmap sigma = alpha * box side / 6 (TTFNet's elliptical Gaussian)
MIN_SIGMA = 0.5  # [cells] so that tiny objects still get a neighbourhood of soft negatives


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
) -> dict[str, np.ndarray]:
    """Targets for one image.

    Args:
        boxes: (N, 4) xyxy in input (network) pixels; cls: (N,) class indices.
        input_hw: network input (H, W); outputs are (H/stride, W/stride).
        stride: the detector's output stride (`CenterNet.stride`).
        ignore_boxes/ignore_cls: objects neither required nor penalised (e.g. mostly occluded):
            their box area is excluded from the heatmap's negative loss for their class.
    Returns arrays: heatmap (C, h, w), ignore (C, h, w), size/offset (K, 2), index (K,) flat cell
    index y * w + x, mask (K,) 1 for real objects.
    """
    h, w = input_hw[0] // stride, input_hw[1] // stride
    heatmap = np.zeros((num_classes, h, w), np.float32)
    ignore = np.zeros((num_classes, h, w), np.float32)
    size = np.zeros((max_objects, 2), np.float32)
    offset = np.zeros((max_objects, 2), np.float32)
    index = np.zeros(max_objects, np.int64)
    mask = np.zeros(max_objects, np.float32)
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
    ignore *= heatmap < 1e-3  # never ignore where a real object's Gaussian lies
    return {"heatmap": heatmap, "ignore": ignore, "size": size, "offset": offset,
            "index": index, "mask": mask}


@torch.no_grad()
def decode(
    heatmap: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    topk: int = 100,
    score_thresh: float = 0.3,
    stride: int = STRIDE,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Peaks of (B, C, h, w) heatmap *probabilities* -> per image (boxes xyxy input px, cls, score).

    `stride` is the detector's output stride: input pixels per heatmap cell.

    A peak is a cell equal to the max of its 3x3 neighbourhood; the top-k peaks over all classes
    with score >= score_thresh become boxes. No NMS.
    """
    b, c, h, w = heatmap.shape
    heatmap, size, offset = heatmap.float(), size.float(), offset.float()
    peaks = heatmap * (F.max_pool2d(heatmap, 3, stride=1, padding=1) == heatmap)
    k = min(topk, c * h * w)
    scores, flat = peaks.view(b, -1).topk(k)  # (B, k) over class-major flat index
    cls = torch.div(flat, h * w, rounding_mode="floor")
    cell = flat % (h * w)
    cy, cx = torch.div(cell, w, rounding_mode="floor").float(), (cell % w).float()
    size_k = size.view(b, 2, -1).gather(2, cell[:, None, :].expand(b, 2, k))  # (B, 2, k)
    off_k = offset.view(b, 2, -1).gather(2, cell[:, None, :].expand(b, 2, k))
    xc, yc = (cx + off_k[:, 0]) * stride, (cy + off_k[:, 1]) * stride
    half_w, half_h = size_k[:, 0].exp() * stride / 2, size_k[:, 1].exp() * stride / 2
    boxes = torch.stack([xc - half_w, yc - half_h, xc + half_w, yc + half_h], dim=-1)
    out = []
    for i in range(b):
        keep = scores[i] >= score_thresh
        out.append((boxes[i][keep], cls[i][keep], scores[i][keep]))
    return out


def to_image_detections(
    boxes: torch.Tensor, cls: torch.Tensor, score: torch.Tensor, letterbox
) -> Detections:
    """Map decoded boxes from network input pixels back to the original image (clipped)."""
    b = letterbox.to_image(boxes.cpu().numpy().astype(np.float32).reshape(-1, 4))
    return Detections(b.astype(np.float32), cls.cpu().numpy().astype(np.int64),
                      score.cpu().numpy().astype(np.float32))
