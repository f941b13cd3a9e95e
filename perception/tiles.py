"""Sliced inference: a detector trained on W x H frames run on wider (or taller) frames of the
same scale, so that a bev camera can see farther ahead without a new detector.

Each frame is cut into tiles of the detector's input size, overlapping by at least `overlap`
pixels and evenly spread; every tile of every frame goes through ONE batched detector call. A
detection is kept by the tile whose core holds its box centre, the cores splitting each overlap
in its middle: an object whose half-extent along the cut is at most overlap / 2 lies whole in the
tile that keeps it, so nothing is counted twice or cut in half (bev at 10 px/m, overlap 128 px:
objects up to 12.8 m long).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from perception.decode import Detections
from roadsight.errors import ConfigError


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` px covering [0, length) with overlaps >= `overlap`."""
    if length <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ConfigError(f"perception.tile_overlap={overlap}: need 0 <= overlap < {tile} px "
                          f"(the detector's input)")
    n = -(-(length - overlap) // (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _cores(starts: list[int], tile: int, length: int) -> list[tuple[float, float]]:
    """[lo, hi) of each tile's core: the overlaps split in their middles."""
    bounds = [0.0] + [(starts[i] + tile + starts[i + 1]) / 2 for i in range(len(starts) - 1)]
    return list(zip(bounds, bounds[1:] + [float(length)], strict=True))


class TiledDetector:
    """`detector` (images of `tile_hw` -> Detections) over larger images; see the module doc."""

    def __init__(self, detector: Callable[[list[np.ndarray]], list[Detections]],
                 tile_hw: tuple[int, int], overlap: int = 128):
        self.detector, self.tile_hw, self.overlap = detector, tuple(tile_hw), int(overlap)

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        th, tw = self.tile_hw
        tiles, where = [], []
        for k, image in enumerate(images):
            h, w = image.shape[:2]
            if h < th or w < tw:
                raise ConfigError(f"a {w}x{h} px frame is smaller than the detector's {tw}x{th} "
                                  f"px input: tiling only covers larger frames")
            ys, xs = tile_starts(h, th, self.overlap), tile_starts(w, tw, self.overlap)
            cy, cx = _cores(ys, th, h), _cores(xs, tw, w)
            for i, y in enumerate(ys):
                for j, x in enumerate(xs):
                    tiles.append(np.ascontiguousarray(image[y:y + th, x:x + tw]))
                    where.append((k, x, y, cx[j], cy[i]))
        found = self.detector(tiles)  # one batched call
        boxes: list[list[np.ndarray]] = [[] for _ in images]
        cls: list[list[np.ndarray]] = [[] for _ in images]
        score: list[list[np.ndarray]] = [[] for _ in images]
        for det, (k, x, y, (x0, x1), (y0, y1)) in zip(found, where, strict=True):
            b = det.boxes + np.array([x, y, x, y], np.float32)
            centre_x, centre_y = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            keep = (centre_x >= x0) & (centre_x < x1) & (centre_y >= y0) & (centre_y < y1)
            boxes[k].append(b[keep])
            cls[k].append(det.cls[keep])
            score[k].append(det.score[keep])
        return [Detections(np.concatenate(b).reshape(-1, 4).astype(np.float32),
                           np.concatenate(c).astype(np.int64),
                           np.concatenate(s).astype(np.float32))
                for b, c, s in zip(boxes, cls, score, strict=True)]
