"""Solid 3D looks of road objects for the pinhole cameras, built from `Style` sizes.

Every object is a few convex *parts* (prisms between a bottom and a top ring), each with flat faces;
decals (wheels, lights, windows) are extra faces lying on a part's face, drawn right after it.
Meshes live in the object's own frame: x forward, y left, z up, metres; z = 0 is the ground.
Faces are padded to `MAX_VERTS` indices by repeating their last vertex (a no-op for filling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.appearance import Style

MAX_VERTS = 12
RGB = tuple[int, int, int]
TYRE = (28, 28, 30)
GLASS = (45, 58, 72)
LIGHT = (250, 240, 200)
TAIL = (190, 25, 25)
HAZARD = (255, 150, 0)
SKIN = ((235, 200, 170), (200, 150, 110), (150, 100, 70), (95, 65, 45))
WHITE = (240, 240, 240)


@dataclass
class Mesh:
    """One object's faces; `part` groups faces into convex parts drawn in `rank` order."""

    verts: np.ndarray  # (V, 3) float [m], object frame
    faces: np.ndarray  # (F, MAX_VERTS) int, padded vertex indices
    normals: np.ndarray  # (F, 3) outward unit normals
    centroids: np.ndarray  # (F, 3)
    colors: np.ndarray  # (F, 3) float base colour before shading
    part: np.ndarray  # (F,) int part index within the object
    part_rank: np.ndarray  # (P,) int: stacked parts (cabin on body) draw by rank, then far to near
    part_center: np.ndarray  # (P, 3)
    decal: np.ndarray  # (F,) bool: drawn after the part's own faces
    vert_part: np.ndarray  # (V,) int part of every vertex
    part_verts: np.ndarray  # (P, 2) [start, stop) of each part's own ring vertices (no decals)


class _Builder:
    def __init__(self):
        self.verts: list[np.ndarray] = []
        self.vpart: list[int] = []
        self.nv = 0
        self.faces: list[list[int]] = []
        self.colors: list[RGB] = []
        self.part: list[int] = []
        self.is_decal: list[bool] = []
        self.ranks: list[int] = []
        self.centers: list[np.ndarray] = []
        self.solid_center: list[np.ndarray] = []  # per face: centre of its part, to orient normals
        self.ring_range: list[tuple[int, int]] = []

    def _add_verts(self, pts: np.ndarray, part: int) -> int:
        start = self.nv
        self.vpart += [part] * len(pts)
        self.verts.append(np.asarray(pts, float))
        self.nv += len(pts)
        return start

    def prism(
        self,
        bottom: np.ndarray,
        top: np.ndarray,
        z0: float,
        z1: float,
        side: list[RGB] | RGB,
        top_color: RGB,
        rank: int,
    ) -> int:
        """A convex part between ring `bottom` at z0 and ring `top` at z1 (both (N, 2), CCW)."""
        n = len(bottom)
        ring = np.concatenate([np.c_[bottom, np.full(n, z0)], np.c_[top, np.full(n, z1)]])
        p = len(self.ranks)
        start = self._add_verts(ring, p)
        self.ring_range.append((start, start + 2 * n))
        center = ring.mean(0)
        self.ranks.append(rank)
        self.centers.append(center)
        sides = side if isinstance(side, list) else [side] * n
        for i in range(n):
            j = (i + 1) % n
            self._face([start + i, start + j, start + n + j, start + n + i], sides[i], p, center)
        self._face([start + n + i for i in range(n)], top_color, p, center)
        if z0 > 0.05:  # a part above the ground may show its underside to a low camera
            self._face([start + i for i in range(n)][::-1], sides[0], p, center)
        return p

    def decal(self, pts3: np.ndarray, color: RGB, part: int) -> None:
        start = self._add_verts(pts3, part)
        self._face(list(range(start, start + len(pts3))), color, part, self.centers[part], True)

    def _face(self, idx, color, part, center, decal=False):
        self.faces.append(idx)
        self.colors.append(color)
        self.part.append(part)
        self.is_decal.append(decal)
        self.solid_center.append(center)

    def build(self) -> Mesh:
        verts = np.concatenate(self.verts)
        faces = np.array([f + [f[-1]] * (MAX_VERTS - len(f)) for f in self.faces], np.int64)
        normals, centroids = [], []
        for f, c in zip(self.faces, self.solid_center, strict=False):
            p = verts[f]
            n = np.zeros(3)  # Newell's normal: robust for any planar polygon
            for a, b in zip(p, np.roll(p, -1, axis=0), strict=False):
                n += [
                    (a[1] - b[1]) * (a[2] + b[2]),
                    (a[2] - b[2]) * (a[0] + b[0]),
                    (a[0] - b[0]) * (a[1] + b[1]),
                ]
            n /= np.linalg.norm(n) + 1e-12
            cen = p.mean(0)
            if np.dot(n, cen - c) < 0:
                n = -n
            normals.append(n)
            centroids.append(cen)
        return Mesh(
            verts,
            faces,
            np.array(normals),
            np.array(centroids),
            np.array(self.colors, float),
            np.array(self.part),
            np.array(self.ranks),
            np.array(self.centers),
            np.array(self.is_decal),
            np.array(self.vpart),
            np.array(self.ring_range),
        )


def _rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)  # CCW seen from above


def _ngon(r: float, n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False) + np.pi / n
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _side_decal(x0, x1, z0, z1, y) -> np.ndarray:
    """A rectangle on the plane y = const (a vehicle's flank)."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]])


def _end_decal(x, y0, y1, z0, z1) -> np.ndarray:
    """A rectangle on the plane x = const (a vehicle's front or back)."""
    return np.array([[x, y0, z0], [x, y1, z0], [x, y1, z1], [x, y0, z1]])


def _shade(color: RGB, k: float) -> RGB:
    return tuple(int(np.clip(c * k, 0, 255)) for c in color)


def _wheels(b: _Builder, part: int, L: float, W: float, xs, r: float) -> None:
    eps = 0.01  # decals float 1 cm off their face so they stay inside its outline when projected
    for x in xs:
        for y in (W / 2 + eps, -W / 2 - eps):
            b.decal(_side_decal(x - r, x + r, 0.0, 2 * r * 0.9, y), TYRE, part)


def _vehicle(b: _Builder, s: Style) -> None:
    L, W, H, color = s.length, s.width, s.height, s.color
    hl, hw, eps = L / 2, W / 2, 0.01
    if s.kind == "truck":
        cab = 2.2
        chassis = _rect(-hl + 0.4, hl - cab, -hw + 0.3, hw - 0.3)
        b.prism(chassis, chassis, 0.0, 1.0, TYRE, TYRE, 0)
        cab_part = b.prism(
            _rect(hl - cab, hl, -hw, hw),
            _rect(hl - cab + 0.2, hl - 0.25, -hw + 0.1, hw - 0.1),
            0.0,
            0.85 * H,
            s.accent,
            _shade(s.accent, 1.1),
            1,
        )
        box = b.prism(
            _rect(-hl, hl - cab - 0.15, -hw, hw),
            _rect(-hl, hl - cab - 0.15, -hw, hw),
            1.0,
            H,
            color,
            _shade(color, 1.1),
            1,
        )
        b.decal(_end_decal(hl + eps, -hw + 0.2, hw - 0.2, 1.3, 0.8 * H), GLASS, cab_part)
        for y0, y1 in ((-hw + 0.2, -hw + 0.5), (hw - 0.5, hw - 0.2)):
            b.decal(_end_decal(hl + eps, y0, y1, 0.5, 0.75), LIGHT, cab_part)
            b.decal(_end_decal(-hl - eps, y0, y1, 1.05, 1.3), TAIL, box)
        _wheels(b, cab_part, L, W, (hl - 1.2,), 0.5)
        return
    lower = 0.5 * H if s.kind != "van" else 0.55 * H
    side = [color] * 4
    body = b.prism(_rect(-hl, hl, -hw, hw), _rect(-hl, hl, -hw, hw), 0.0, lower, side, color, 0)
    c0, c1 = (-0.38 * L, 0.18 * L) if s.kind != "van" else (-hl + 0.05, 0.3 * L)
    t0, t1 = (c0 + 0.08 * L, c1 - 0.15 * L) if s.kind != "van" else (c0, c1 - 0.1 * L)
    # ring order of _rect: edges y0 (right), x1 (front), y1 (left), x0 (rear)
    # greenhouse sides: right, front (windscreen), left, rear; a van's are painted, not glazed
    panel = _shade(color, 0.92)
    sides = [GLASS] * 4 if s.kind != "van" else [panel, GLASS, panel, panel]
    top_hw = hw - 0.22 if s.kind != "van" else hw - 0.08  # a van's flanks are vertical
    cabin = b.prism(
        _rect(c0, c1, -hw + 0.08, hw - 0.08),
        _rect(t0, t1, -top_hw, top_hw),
        lower,
        H,
        sides,
        _shade(color, 0.95),
        1,
    )
    if s.kind == "van":  # side windows over the front seats
        zw = (lower + 0.15, H - 0.2)
        for y in (hw - 0.08 + eps, -hw + 0.08 - eps):
            b.decal(_side_decal(c1 - 1.3, c1 - 0.35, *zw, y), GLASS, cabin)
        b.decal(_end_decal(c0 - eps, -hw + 0.35, hw - 0.35, *zw), GLASS, cabin)  # rear window
    r = min(0.36, 0.3 * H)
    _wheels(b, body, L, W, (hl - 0.22 * L, -hl + 0.22 * L), r)
    lights = HAZARD if s.kind == "stalled_car" else LIGHT
    tails = HAZARD if s.kind == "stalled_car" else TAIL
    zl = (lower - 0.25, lower - 0.08)
    for y0, y1 in ((-hw + 0.12, -hw + 0.45), (hw - 0.45, hw - 0.12)):
        b.decal(_end_decal(hl + eps, y0, y1, *zl), lights, body)
        b.decal(_end_decal(-hl - eps, y0, y1, *zl), tails, body)


def _pedestrian(b: _Builder, s: Style, tone: int) -> None:
    D, W, H = s.length, s.width, s.height  # depth, shoulder width, height
    legs = _shade(s.color, 0.55)
    hip, neck = 0.47 * H, 0.83 * H
    b.prism(
        _rect(-0.3 * D, 0.3 * D, -0.3 * W, 0.3 * W),
        _rect(-0.35 * D, 0.35 * D, -0.34 * W, 0.34 * W),
        0.0,
        hip,
        legs,
        legs,
        0,
    )
    b.prism(
        _rect(-0.42 * D, 0.42 * D, -0.38 * W, 0.38 * W),
        _rect(-0.5 * D, 0.5 * D, -0.5 * W, 0.5 * W),
        hip,
        neck,
        s.color,
        s.color,
        1,
    )
    head = _rect(-0.11, 0.11, -0.09, 0.09)
    skin = SKIN[tone % len(SKIN)]
    # faces: right, front (face), left, back (hair); top is hair
    b.prism(head, head, neck + 0.02, H, [skin, skin, skin, s.accent], s.accent, 2)


def _cone(b: _Builder, s: Style) -> None:
    r, H = s.width / 2, s.height
    rz = [r, 0.62 * r, 0.45 * r, 0.12 * r]  # radius at z = 0, 0.5H, 0.7H, H (linear taper)
    zs = [0.0, 0.5 * H, 0.7 * H, H]
    colors = [s.color, WHITE, s.color]
    b.prism(_rect(-r, r, -r, r), _rect(-r, r, -r, r), 0.0, 0.04, (30, 30, 30), (30, 30, 30), 0)
    for i in range(3):
        b.prism(
            _ngon(rz[i], 8),
            _ngon(rz[i + 1], 8),
            zs[i] + (0.04 if i == 0 else 0),
            zs[i + 1],
            colors[i],
            colors[i],
            1 + i,
        )


def _debris(b: _Builder, s: Style, outline: np.ndarray | None) -> None:
    if outline is None:
        pts = _rect(-s.length / 2, s.length / 2, -s.width / 2, s.width / 2)
    else:  # highway-env object frame has y to the right; ours has y left
        pts = np.asarray(outline, float) * np.array([1.0, -1.0])
    c = pts.mean(0)
    x, y = pts[:, 0], pts[:, 1]
    if np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) < 0:  # clockwise: make it CCW
        pts = pts[::-1]
    pts = pts[:MAX_VERTS]
    b.prism(pts, c + 0.75 * (pts - c), 0.0, s.height, s.color, _shade(s.color, 1.15), 0)


def build_mesh(style: Style, outline: np.ndarray | None = None, tone: int = 0) -> Mesh:
    """The solid look of one object of `style` (debris uses its `outline`, (N, 2) [m])."""
    b = _Builder()
    if style.cls == "pedestrian":
        _pedestrian(b, style, tone)
    elif style.kind == "cone":
        _cone(b, style)
    elif style.kind == "debris":
        _debris(b, style, outline)
    else:
        _vehicle(b, style)
    return b.build()
