"""Small rasterisation helpers for the pinhole cameras: frustum tests, near-plane clipping, filling.

Camera coordinates follow OpenCV: x right, y down, z forward, metres. Pixel coordinates (u, v) put
pixel (i, j) over [i, i+1] x [j, j+1], so a box from an instance buffer is (xmin, ymin, xmax+1,
ymax+1); OpenCV's fill functions sample pixel centres, hence the half-pixel shift in `to_fixed`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SHIFT = 4  # cv2 fixed-point bits: vertices placed at 1/16 px
ONE = 1 << SHIFT


def frustum(K: np.ndarray, width: int, height: int, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Half-spaces `X @ A + b >= 0` (X (..., 3) camera coords) of the view frustum: (3, 5), (5,)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    A = np.array(
        [
            [0.0, 0.0, 1.0],  # z >= near
            [fx, 0.0, cx],  # u >= 0
            [-fx, 0.0, width - cx],  # u <= width
            [0.0, fy, cy],  # v >= 0
            [0.0, -fy, height - cy],  # v <= height
        ]
    ).T
    return A, np.array([-near, 0.0, 0.0, 0.0, 0.0])


def outside(points: np.ndarray, A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M, 3) polygons -> (N,) bool: every vertex lies outside one frustum plane (cull)."""
    return ((points @ A + b) < 0).all(axis=1).any(axis=1)


def clip_near(poly: np.ndarray, near: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a convex polygon (N, 3) in camera coords to z >= near.

    Consecutive repeated vertices (face padding) are ignored. Plain Python on lists: these
    polygons have a handful of vertices, where numpy's per-call overhead dominates.
    """
    pts = poly.tolist()
    out = []
    n = len(pts)
    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        if a == b:
            continue
        a_in, b_in = a[2] >= near, b[2] >= near
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (near - a[2]) / (b[2] - a[2])
            out.append([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), near])
    return np.array(out, float).reshape(-1, 3)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera coords (z > 0) -> (..., 2) pixel coords."""
    z = points[..., 2:3]
    return points[..., :2] / z * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]


def to_fixed(uv: np.ndarray) -> np.ndarray:
    """Pixel coords -> int32 fixed-point points for cv2 fill functions (pixel centres at i+0.5)."""
    return np.round((uv - 0.5) * ONE).astype(np.int32)


def fill(buf: np.ndarray, pts: np.ndarray, value: int) -> None:
    cv2.fillConvexPoly(buf, pts, int(value), cv2.LINE_8, SHIFT)


def silhouette_area(
    hulls: list[np.ndarray], lo: tuple[float, float], hi: tuple[float, float], max_side: int = 512
) -> float:
    """Pixel area [px] of the union of convex polygons (each (N, 2) px) inside box `lo`-`hi`.

    Rasterised on the frame's own pixel grid (so it matches the instance buffer's counts, even for
    objects a few pixels wide); huge silhouettes (a car next to the lens) are rasterised at a
    reduced scale so the cost stays bounded.
    """
    x0, y0 = math.floor(lo[0]) - 1, math.floor(lo[1]) - 1
    w, h = math.ceil(hi[0]) + 2 - x0, math.ceil(hi[1]) + 2 - y0
    scale = min(1.0, max_side / max(w, h))
    buf = np.zeros((math.ceil(h * scale) + 1, math.ceil(w * scale) + 1), np.uint8)
    offset = np.array([x0, y0], np.float32)
    for hull in hulls:
        cv2.fillConvexPoly(buf, to_fixed((hull - offset) * scale), 1, cv2.LINE_8, SHIFT)
    return float(np.count_nonzero(buf)) / scale**2
