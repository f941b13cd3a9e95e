"""Top-down looks of road objects: a silhouette (for ground truth) and paint layers (for pixels).

Shapes are given in the object's own frame (x forward, y to its right, metres, as highway-env's
polygons are) and moved into the world with the object's pose. A camera maps them to pixels.
Every paint layer lies inside the silhouette, so the silhouette is exactly the drawn extent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.appearance import Style

RGB = tuple[int, int, int]
HAZARD = (255, 150, 0)
GLASS = (40, 50, 60)
LIGHT = (250, 240, 200)


@dataclass
class TopDownShape:
    silhouette: np.ndarray  # (N, 2) world [m]
    layers: list[tuple[np.ndarray, RGB]]  # (M, 2) world polygons painted in order
    outline: RGB | None = None  # 1-px edge drawn on the silhouette


def _rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def _ellipse(rx: float, ry: float, cx: float = 0.0, cy: float = 0.0, n: int = 16) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _shade(color: RGB, k: float) -> RGB:
    return tuple(int(np.clip(c * k, 0, 255)) for c in color)


def _to_world(obj, pts: np.ndarray) -> np.ndarray:
    c, s = np.cos(obj.heading), np.sin(obj.heading)
    return pts @ np.array([[c, s], [-s, c]]) + np.asarray(obj.position, float)


def _vehicle_layers(style: Style, ego: bool) -> list[tuple[np.ndarray, RGB]]:
    L, W, color = style.length, style.width, style.color
    hl, hw = L / 2, W / 2
    layers = [(_rect(-hl, hl, -hw, hw), color)]
    if style.kind == "truck":
        cab = 2.2
        layers += [
            (_rect(hl - cab, hl - 0.1, -hw + 0.1, hw - 0.1), style.accent),
            (_rect(-hl + 0.1, hl - cab - 0.3, -hw + 0.15, hw - 0.15), _shade(color, 1.12)),
            (_rect(hl - 0.9, hl - 0.3, -hw + 0.25, hw - 0.25), GLASS),
        ]
    else:
        roof = (-0.35 * L, 0.15 * L) if style.kind == "car" else (-0.45 * L, 0.25 * L)
        layers += [
            (_rect(roof[1], roof[1] + 0.16 * L, -hw + 0.2, hw - 0.2), GLASS),  # windscreen
            (_rect(roof[0] - 0.08 * L, roof[0], -hw + 0.25, hw - 0.25), GLASS),  # rear window
            (_rect(roof[0], roof[1], -hw + 0.22, hw - 0.22), _shade(color, 0.8)),
        ]
    layers += [
        (_rect(hl - 0.35, hl, -hw + 0.15, -hw + 0.55), LIGHT),
        (_rect(hl - 0.35, hl, hw - 0.55, hw - 0.15), LIGHT),
    ]
    if ego:  # a white chevron on the roof marks the ego
        layers.append(
            (np.array([[0.9, 0.0], [-0.5, -0.6], [-0.1, 0.0], [-0.5, 0.6]]), style.accent)
        )
    if style.kind == "stalled_car":
        for x in (hl - 0.3, -hl + 0.3):
            for y in (-hw + 0.3, hw - 0.3):
                layers.append((_rect(x - 0.25, x + 0.25, y - 0.25, y + 0.25), HAZARD))
    return layers


def top_down_shape(obj, style: Style, outline_pts: np.ndarray | None = None) -> TopDownShape:
    """The silhouette and paint layers of `obj` in world metres, by its class and kind."""
    if style.cls == "pedestrian":
        body = _ellipse(style.length / 2, style.width / 2)
        head = _ellipse(0.12, 0.12, cx=0.03)
        layers = [(body, style.color), (head, style.accent)]
        shape = TopDownShape(body, layers)
    elif style.kind == "cone":
        r = style.width / 2
        base = _ellipse(r, r, n=20)
        layers = [
            (base, style.color),
            (_ellipse(0.6 * r, 0.6 * r), (240, 240, 240)),
            (_ellipse(0.35 * r, 0.35 * r), style.color),
            (_ellipse(0.1, 0.1), (30, 30, 30)),
        ]
        shape = TopDownShape(base, layers)
    elif style.kind == "debris":
        pts = (
            outline_pts
            if outline_pts is not None
            else _rect(-style.length / 2, style.length / 2, -style.width / 2, style.width / 2)
        )
        layers = [(pts, style.color), (0.55 * pts, _shade(style.color, 0.7))]
        shape = TopDownShape(pts, layers, outline=_shade(style.color, 0.5))
    else:  # vehicles, the ego and stalled cars
        sil = _rect(-style.length / 2, style.length / 2, -style.width / 2, style.width / 2)
        shape = TopDownShape(sil, _vehicle_layers(style, style.cls == "ego"), outline=(25, 25, 25))
    shape.silhouette = _to_world(obj, shape.silhouette)
    shape.layers = [(_to_world(obj, p), c) for p, c in shape.layers]
    return shape
