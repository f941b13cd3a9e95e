"""The ground of a highway-env road as flat 3D polygons in painter's order, for pinhole cameras.

Built once per road (lanes do not move) in world metres (x along the road, y to the right of
travel, z up): verges, road surface from the lanes (sampled along s, so curved lanes work), lane
markings from `line_types`, crosswalk stripes, raised sidewalks with their kerb faces. A camera
then selects the polygons near the ego each frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from highway_env.road.lane import LineType, StraightLane

ROAD = (92, 92, 96)
MARKING = (225, 225, 220)
KERB = (175, 175, 170)
STRIPE_SPACING, STRIPE_LENGTH, STRIPE_WIDTH = 4.33, 3.0, 0.2  # [m] as highway-env draws them
KERB_HEIGHT = 0.12  # [m] sidewalks are raised by this much
CURVE_STEP = 2.0  # [m] lane sampling step along s for curved lanes
LAYERS = {
    "verge": 0,
    "road": 1,
    "marking": 2,
    "dash": 2,
    "far_dash": 2,
    "stripe": 3,
    "sidewalk": 4,
    "kerb": 5,
}
# Level of detail for dashed lines: far away a 3 m dash is under a pixel tall, and hundreds of
# them would cost one fill each. Cameras draw `dash` polygons only nearer than their dash range
# and a continuous `far_dash` strip in the dash/gap average colour only beyond it.
LOD = {"dash": 1, "far_dash": 2}
FAR_DASH = tuple(
    int(r + (m - r) * STRIPE_LENGTH / STRIPE_SPACING)
    for r, m in zip((92, 92, 96), (225, 225, 220), strict=True)
)


@dataclass
class GroundSet:
    """Ground polygons of one road, in draw order."""

    polys: np.ndarray  # (G, M, 3) world [m], padded by repeating the last vertex
    normals: np.ndarray  # (G, 3) world-frame unit normals (up for flat ground)
    colors: np.ndarray  # (G, 3) float RGB
    centre: np.ndarray  # (G, 2) world xy of each polygon's bounding circle
    radius: np.ndarray  # (G,) [m]
    lod: np.ndarray  # (G,) int: 0 always drawn, 1 near dash, 2 far strip of a dashed line


def _positions(lane, s: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(N, 2) world points of `lane` at longitudinal `s` and lateral `lat` (broadcast)."""
    s, lat = np.broadcast_arrays(np.asarray(s, float), np.asarray(lat, float))
    if isinstance(lane, StraightLane):
        return lane.start + s[:, None] * lane.direction + lat[:, None] * lane.direction_lateral
    pts = [lane.position(a, b) for a, b in zip(s, lat, strict=True)]
    return np.array(pts, float).reshape(-1, 2)


def _strip(lane, s: np.ndarray, lat0: float, lat1: float) -> list[np.ndarray]:
    """Quads covering lateral [lat0, lat1] of `lane` between consecutive samples `s`."""
    left, right = _positions(lane, s, lat0), _positions(lane, s, lat1)
    return [np.array([left[i], left[i + 1], right[i + 1], right[i]]) for i in range(len(s) - 1)]


def _samples(lane) -> np.ndarray:
    if isinstance(lane, StraightLane):
        return np.array([0.0, lane.length])
    n = max(int(np.ceil(lane.length / CURVE_STEP)), 1)
    return np.linspace(0.0, lane.length, n + 1)


def _lane_polys(lane) -> list[tuple[str, np.ndarray, tuple]]:
    s = _samples(lane)
    w = np.array([lane.width_at(v) for v in s[:1]])[0]
    out = [("road", q, ROAD) for q in _strip(lane, s, -w / 2, w / 2)]
    for side, kind in enumerate(lane.line_types):
        lat = (2 * side - 1) * w / 2
        lo, hi = lat - STRIPE_WIDTH / 2, lat + STRIPE_WIDTH / 2
        if kind == LineType.STRIPED:
            starts = np.arange(0.0, lane.length - STRIPE_LENGTH, STRIPE_SPACING)
            for s0 in starts:
                dash = np.array([s0, s0 + STRIPE_LENGTH])
                out += [("dash", q, MARKING) for q in _strip(lane, dash, lo, hi)]
            out += [("far_dash", q, FAR_DASH) for q in _strip(lane, s, lo, hi)]
        elif kind in (LineType.CONTINUOUS, LineType.CONTINUOUS_LINE):
            out += [("marking", q, MARKING) for q in _strip(lane, s, lo, hi)]
    return out


def _kerbs(poly: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Vertical faces (4, 3) along every edge of a raised polygon, with outward normals."""
    centre = poly.mean(0)
    faces = []
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=False):
        n = np.array([b[1] - a[1], a[0] - b[0], 0.0])
        n /= np.linalg.norm(n) + 1e-12
        if np.dot(n[:2], (a + b) / 2 - centre) < 0:
            n = -n
        quad = np.array([[*a, 0.0], [*b, 0.0], [*b, KERB_HEIGHT], [*a, KERB_HEIGHT]])
        faces.append((quad, n))
    return faces


def build_ground(road) -> GroundSet:
    """Every ground polygon of `road` (lanes, markings and `road.patches` if any)."""
    items: list[tuple] = []  # (layer, (N, 3) polygon, normal, colour, lod)
    up = np.array([0.0, 0.0, 1.0])

    def flat(layer: str, poly2: np.ndarray, color, z: float = 0.0) -> None:
        poly = np.c_[np.asarray(poly2, float), np.full(len(poly2), z)]
        items.append((LAYERS[layer], poly, up, color, LOD.get(layer, 0)))

    for lanes_to in road.network.graph.values():
        for lanes in lanes_to.values():
            for lane in lanes:
                for layer, quad, color in _lane_polys(lane):
                    flat(layer, quad, color)
    for patch in getattr(road, "patches", []):
        if patch.kind == "sidewalk":
            flat("sidewalk", patch.polygon, patch.color, KERB_HEIGHT)
            for quad, n in _kerbs(np.asarray(patch.polygon, float)):
                items.append((LAYERS["kerb"], quad, n, KERB, 0))
        elif patch.kind != "crosswalk":  # the crosswalk area itself is road; its stripes are paint
            flat("verge", patch.polygon, patch.color)
        for stripe in patch.stripes:
            flat("stripe", stripe, patch.color)
    items.sort(key=lambda it: it[0])  # stable: keeps lane order within a layer
    m = max(len(it[1]) for it in items)
    polys = np.stack(
        [np.concatenate([p, np.repeat(p[-1:], m - len(p), 0)]) for _, p, _, _, _ in items]
    )
    lo, hi = polys[:, :, :2].min(1), polys[:, :, :2].max(1)
    return GroundSet(
        polys=polys,
        normals=np.array([it[2] for it in items]),
        colors=np.array([it[3] for it in items], float),
        centre=(lo + hi) / 2,
        radius=np.linalg.norm(hi - lo, axis=1) / 2,
        lod=np.array([it[4] for it in items], int),
    )


def ground_of(road) -> GroundSet:
    """`build_ground(road)`, kept on the road (roads are rebuilt at every env reset)."""
    cached = getattr(road, "_roadsight_ground", None)
    if cached is None:
        cached = build_ground(road)
        road._roadsight_ground = cached
    return cached
