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
        self._tracks: list[Track] = []  # one per filter row
        self._confirmed = np.zeros(0, bool)
        self._x = np.zeros((0, 4))  # world x, y [m], vx, vy [m/s], one row per track
        self._P = np.zeros((0, 4, 4))
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
        self._predict(dt)
        for t in self._tracks:
            t.age += 1
            t.misses += 1  # undone below when matched
        track_cls = np.array([t.cls for t in self._tracks], int)
        rows, dets = [], []
        for c in np.unique(cls):
            r, d = self._associate(np.flatnonzero(track_cls == c), np.flatnonzero(cls == c), world)
            rows.append(r)
            dets.append(d)
        rows = np.concatenate(rows or [np.zeros(0, int)])
        dets = np.concatenate(dets or [np.zeros(0, int)])
        self._correct(rows, world[dets])
        for i, d in zip(rows.tolist(), dets.tolist(), strict=True):
            t = self._tracks[i]
            t.hits += 1
            t.misses = 0
            t.score, t.box_xyxy = float(score[d]), boxes[d].copy()
        self._confirmed[rows] |= np.array([self._tracks[i].hits for i in rows.tolist()],
                                          int) >= self.min_hits
        unmatched = np.setdiff1d(np.arange(len(xy)), dets)
        self._birth(cls[unmatched], world[unmatched], score[unmatched], boxes[unmatched])
        self._prune()
        return self._output(ego, rot)

    # -- Kalman filter, every track at once ----------------------------------------------------
    def _predict(self, dt: float) -> None:
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        g = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]) * self.q  # white acceleration
        Q = np.kron(g, np.eye(2))
        self._x = self._x @ F.T
        self._P = F @ self._P @ F.T + Q

    def _correct(self, rows: np.ndarray, z: np.ndarray) -> None:
        """Update tracks `rows` with position measurements z (len(rows), 2)."""
        if not len(rows):
            return
        P = self._P[rows]
        S = P[:, :2, :2] + self.r * np.eye(2)  # H P H^T + R, H measuring the position
        K = P[:, :, :2] @ np.linalg.inv(S)  # (n, 4, 2)
        self._x[rows] += (K @ (z - self._x[rows, :2])[:, :, None])[:, :, 0]
        self._P[rows] = P - K @ P[:, :2, :]  # (I - K H) P

    # -- association, birth, death --------------------------------------------------------------
    def _associate(self, tracks: np.ndarray, det: np.ndarray, world) -> tuple[np.ndarray, ...]:
        """Match tracks (row indices, one class) with that class's detections `det`: the
        matched (rows, detections) within the gate."""
        if not len(tracks) or not len(det):
            return np.zeros(0, int), np.zeros(0, int)
        cost = np.linalg.norm(self._x[tracks, None, :2] - world[det][None], axis=2)  # (T, D) [m]
        # the largest eigenvalue of each prediction's 2x2 position covariance, + R
        a, b, d = self._P[tracks, 0, 0], self._P[tracks, 0, 1], self._P[tracks, 1, 1]
        sigma = np.sqrt((a + d) / 2 + np.hypot((a - d) / 2, b) + self.r)
        gates = np.maximum(self.gate, 3 * sigma)[:, None]
        i, j = linear_sum_assignment(np.where(cost <= gates, cost, 1e6))
        ok = cost[i, j] <= gates[i, 0]
        return tracks[i[ok]], det[j[ok]]

    def _birth(self, cls: np.ndarray, world_xy: np.ndarray, score: np.ndarray,
               boxes: np.ndarray) -> None:
        """A tentative track (one hit) per unmatched detection."""
        n = len(cls)
        if not n:
            return
        for c, s, box in zip(cls.tolist(), score.tolist(), boxes, strict=True):
            self._tracks.append(Track(self._next_id, c, box.copy(), np.zeros(2), np.zeros(2),
                                      s, 0, 1, 0))
            self._next_id += 1
        speed_var = np.asarray(self.init_speed_std)[cls] ** 2
        P = np.zeros((n, 4, 4))
        P[:, 0, 0] = P[:, 1, 1] = self.r
        P[:, 2, 2] = P[:, 3, 3] = speed_var
        self._x = np.concatenate([self._x, np.concatenate([world_xy, np.zeros((n, 2))], 1)])
        self._P = np.concatenate([self._P, P])
        self._confirmed = np.concatenate([self._confirmed, np.full(n, self.min_hits <= 1)])

    def _prune(self) -> None:
        """Tentative tracks die at their first miss; confirmed ones after max_misses."""
        misses = np.array([t.misses for t in self._tracks], int)
        alive = np.where(self._confirmed, misses <= self.max_misses, misses == 0)
        if alive.all():
            return
        self._tracks = [t for t, a in zip(self._tracks, alive.tolist(), strict=True) if a]
        self._x, self._P, self._confirmed = self._x[alive], self._P[alive], self._confirmed[alive]

    def _output(self, ego: EgoState, rot: np.ndarray) -> list[Track]:
        """The confirmed tracks, in the ego frame."""
        rows = np.flatnonzero(self._confirmed)
        xy = (self._x[rows, :2] - np.asarray(ego.world_xy, float)) @ rot.T
        vxy = self._x[rows, 2:] @ rot.T
        return [replace(self._tracks[i], ego_xy=p, ego_vxy=v,
                        box_xyxy=self._tracks[i].box_xyxy.copy())
                for i, p, v in zip(rows.tolist(), xy, vxy, strict=True)]
