"""Multi-object tracker for one env: ego-frame detections in, confirmed tracks out.

Detections (ego frame, from perception.geometry) are moved into highway-env's world frame with
the ego's odometry (`EgoState.world_xy`, `world_heading`), so a parked car stays put while the ego
drives and turns. Each track is a constant-velocity Kalman filter on (x, y, vx, vy) in that
frame; detections are assigned per class (Hungarian, `scipy.optimize.linear_sum_assignment`) on
distance to the tracks' predictions, within a gate. A track is born after `min_hits` consecutive
hits (a tentative track dies at its first miss, so a one-frame false positive never shows) and
dies after more than `max_misses` consecutive misses (it coasts on its prediction meanwhile).
Outputs are back in the ego frame; velocities are GROUND velocities (not relative to the ego).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from perception.geometry import world_to_ego
from sim.types import CLASSES, EgoState

INIT_SPEED_STD = (15.0, 2.0, 0.5)  # [m/s] per class (CLASSES order): a newborn's unknown speed


@dataclass
class Track:
    """One tracked object, in the ego frame of the last update."""

    track_id: int  # stable while the track lives; never reused within an episode
    cls: int  # CLASSES index
    box_xyxy: np.ndarray  # (4,) pixels of the last matched detection
    ego_xy: np.ndarray  # (2,) [m] x forward, y left
    ego_vxy: np.ndarray  # (2,) [m/s] GROUND velocity expressed in the ego frame
    score: float  # the last matched detection's score
    age: int  # frames since birth
    hits: int  # matched frames
    misses: int  # consecutive unmatched frames


@dataclass
class _Filter:
    """A track's Kalman state in the world frame."""

    track: Track
    x: np.ndarray  # (4,) world x, y [m], vx, vy [m/s]
    P: np.ndarray  # (4, 4)
    confirmed: bool = False


class MultiObjectTracker:
    """Per-class Hungarian association + constant-velocity Kalman filters in the world frame.

    min_hits: consecutive hits before a track is output; max_misses: consecutive misses a track
    survives (a 3-frame occlusion keeps its id with the default); gate [m]: the farthest a
    detection may be from a track's prediction (widened to 3 sigma of the prediction for young
    tracks whose speed is still unknown); process_noise [m/s^2]: white-acceleration std;
    measurement_noise [m]: detection position std; init_speed_std [m/s]: per class.
    """

    def __init__(
        self,
        min_hits: int = 2,
        max_misses: int = 3,
        gate: float = 4.0,
        process_noise: float = 2.0,
        measurement_noise: float = 0.5,
        init_speed_std: tuple[float, ...] = INIT_SPEED_STD,
    ):
        if min_hits < 1 or max_misses < 0 or gate <= 0:
            raise ValueError(
                f"tracker: min_hits {min_hits} (>= 1), max_misses {max_misses} (>= 0), "
                f"gate {gate} (> 0 m)"
            )
        if len(init_speed_std) != len(CLASSES):
            raise ValueError(f"tracker.init_speed_std: one value per class {CLASSES}")
        self.min_hits, self.max_misses, self.gate = int(min_hits), int(max_misses), float(gate)
        self.q, self.r = float(process_noise) ** 2, float(measurement_noise) ** 2
        self.init_speed_std = tuple(float(v) for v in init_speed_std)
        self.reset()

    def reset(self) -> None:
        """Forget every track (call at each episode start)."""
        self._filters: list[_Filter] = []
        self._next_id = 1

    def update(self, xy, cls, score, boxes, ego: EgoState, dt: float) -> list[Track]:
        """One frame of detections (N, 2) ego-frame [m], (N,) CLASSES indices, (N,) scores,
        (N, 4) boxes; `dt` [s] since the last update. Returns the confirmed tracks."""
        xy = np.asarray(xy, float).reshape(-1, 2)
        cls = np.asarray(cls, int).reshape(-1)
        score = np.asarray(score, float).reshape(-1)
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        if not len(xy) == len(cls) == len(score) == len(boxes):
            raise ValueError(
                f"tracker.update: {len(xy)} positions, {len(cls)} classes, {len(score)} scores, "
                f"{len(boxes)} boxes; they must match"
            )
        keep = np.isfinite(xy).all(1)  # rays that missed the ground (perception.geometry)
        xy, cls, score, boxes = xy[keep], cls[keep], score[keep], boxes[keep]
        rot = world_to_ego(ego.world_heading)  # symmetric and its own inverse
        world = np.asarray(ego.world_xy, float) + xy @ rot
        for f in self._filters:
            self._predict(f, dt)
        matched: set[int] = set()
        for c in np.unique(np.concatenate([cls, [f.track.cls for f in self._filters]])):
            matched |= self._associate(int(c), np.flatnonzero(cls == c), world, score, boxes)
        for j in np.flatnonzero(~np.isin(np.arange(len(xy)), list(matched))):
            self._birth(int(cls[j]), world[j], float(score[j]), boxes[j])
        self._filters = [f for f in self._filters if self._alive(f)]
        return [self._output(f, ego, rot) for f in self._filters if f.confirmed]

    # -- Kalman filter --------------------------------------------------------------------------
    def _predict(self, f: _Filter, dt: float) -> None:
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        g = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]) * self.q  # white acceleration
        Q = np.kron(g, np.eye(2))
        f.x = F @ f.x
        f.P = F @ f.P @ F.T + Q
        f.track.age += 1

    def _correct(self, f: _Filter, z: np.ndarray) -> None:
        H = np.eye(2, 4)  # we measure the position
        K = f.P @ H.T @ np.linalg.inv(H @ f.P @ H.T + self.r * np.eye(2))
        f.x = f.x + K @ (z - H @ f.x)
        f.P = (np.eye(4) - K @ H) @ f.P

    # -- association, birth, death --------------------------------------------------------------
    def _associate(self, c: int, det: np.ndarray, world, score, boxes) -> set[int]:
        """Match class-c tracks with detections `det`; update them; return the matched indices."""
        filters = [f for f in self._filters if f.track.cls == c]
        for f in filters:
            f.track.misses += 1  # undone below when matched
        if not filters or not len(det):
            return set()
        pred = np.array([f.x[:2] for f in filters])
        cost = np.linalg.norm(pred[:, None] - world[det][None], axis=2)  # (T, D) [m]
        sigma = np.sqrt([np.linalg.eigvalsh(f.P[:2, :2])[-1] + self.r for f in filters])
        gates = np.maximum(self.gate, 3 * sigma)[:, None]
        rows, cols = linear_sum_assignment(np.where(cost <= gates, cost, 1e6))
        matched = set()
        for i, j in zip(rows, cols, strict=True):
            if cost[i, j] > gates[i, 0]:
                continue
            f, d = filters[i], int(det[j])
            self._correct(f, world[d])
            f.track.hits += 1
            f.track.misses = 0
            f.track.score, f.track.box_xyxy = float(score[d]), boxes[d].copy()
            f.confirmed |= f.track.hits >= self.min_hits
            matched.add(d)
        return matched

    def _birth(self, c: int, world_xy: np.ndarray, score: float, box: np.ndarray) -> None:
        track = Track(self._next_id, c, box.copy(), np.zeros(2), np.zeros(2), score, 0, 1, 0)
        self._next_id += 1
        P = np.diag([self.r, self.r, *[self.init_speed_std[c] ** 2] * 2])
        x = np.array([*world_xy, 0.0, 0.0])
        self._filters.append(_Filter(track, x, P, confirmed=self.min_hits <= 1))

    def _alive(self, f: _Filter) -> bool:
        if not f.confirmed:
            return f.track.misses == 0  # tentative tracks need consecutive hits
        return f.track.misses <= self.max_misses

    def _output(self, f: _Filter, ego: EgoState, rot: np.ndarray) -> Track:
        xy = rot @ (f.x[:2] - np.asarray(ego.world_xy, float))
        return replace(f.track, ego_xy=xy, ego_vxy=rot @ f.x[2:], box_xyxy=f.track.box_xyxy.copy())
