"""The object-list observation: one layout for ground truth (kinematics) and perception (objects).

Rows: row 0 the ego, then up to N objects sorted by distance (nearest first); absent rows are
zeros. Columns (`FEATURES`), ego frame x forward, y left (README "Object-list layout"):
- presence: 1 for every present row (the ego's included);
- is_vehicle, is_pedestrian, is_obstacle: one-hot class; on the ego row instead (`EGO_FEATURES`):
  the speed controller's setpoint / velocity_scale (the relative meta-actions FASTER/SLOWER act
  on it), and 1 when a lane exists on the left, resp. on the right, of the ego's lane;
- x, y: position [m] / position_scale; the ego row has x = 0, y = lateral offset (left +);
- vx, vy: GROUND velocity [m/s] / velocity_scale (a parked car reads 0, 0 while the ego drives);
  the ego row has speed * (cos, sin)(heading to lane);
- confidence: 1 for ground truth and the ego, the track's score for perception.
Scaled x, y, vx, vy are clipped to [-2, 2]; objects farther than `max_range` are dropped before
the N nearest are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import gymnasium as gym
import numpy as np

from roadsight.errors import ConfigError
from sim.types import CLASSES, EgoState, ObjectTruth

FEATURES: tuple[str, ...] = (
    "presence",
    "is_vehicle",
    "is_pedestrian",
    "is_obstacle",
    "x",
    "y",
    "vx",
    "vy",
    "confidence",
)
PRESENCE, CLASS0, X, Y, VX, VY, CONFIDENCE = 0, 1, 4, 5, 6, 7, 8
# the ego row's use of the class columns (an object's class means nothing for the ego)
EGO_FEATURES: tuple[str, ...] = ("target_speed", "lane_on_left", "lane_on_right")
TARGET_SPEED, LANE_LEFT, LANE_RIGHT = 1, 2, 3
CLIP = 2.0  # scaled x, y, vx, vy are clipped to [-CLIP, CLIP]


class TrackLike(Protocol):
    """What `from_tracks` reads of a perception.track.Track."""

    cls: int  # CLASSES index
    ego_xy: np.ndarray  # (2,) [m] ego frame
    ego_vxy: np.ndarray  # (2,) [m/s] ground velocity in the ego frame
    score: float


@dataclass(frozen=True)
class ObjectListLayout:
    """Builds (max_objects + 1, len(FEATURES)) float32 object lists; see the module docstring."""

    max_objects: int = 15
    position_scale: float = 50.0  # [m]
    velocity_scale: float = 20.0  # [m/s]
    max_range: float = 60.0  # [m]

    def __post_init__(self) -> None:
        if int(self.max_objects) != self.max_objects or self.max_objects < 1:
            raise ConfigError(f"observation.max_objects={self.max_objects!r}: need an int >= 1")
        for key in ("position_scale", "velocity_scale", "max_range"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"observation.{key}={getattr(self, key)!r}: need a value > 0")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.max_objects + 1, len(FEATURES))

    @property
    def observation_space(self) -> gym.spaces.Box:
        """Box over the layout: presence, class and confidence in [0, 1], the rest in [-2, 2]."""
        low = np.full(self.shape, -CLIP, np.float32)
        high = np.full(self.shape, CLIP, np.float32)
        for col in (PRESENCE, CLASS0, CLASS0 + 1, CLASS0 + 2, CONFIDENCE):
            low[:, col], high[:, col] = 0.0, 1.0
        high[0, TARGET_SPEED] = CLIP
        return gym.spaces.Box(low, high, dtype=np.float32)

    def encode(
        self,
        cls_idx: np.ndarray,
        xy: np.ndarray,
        vxy_ground: np.ndarray,
        confidence: np.ndarray,
        ego: EgoState,
    ) -> np.ndarray:
        """The object list of M objects: the one place rows are built.

        cls_idx: (M,) CLASSES indices; xy: (M, 2) ego-frame positions [m]; vxy_ground: (M, 2)
        ground velocities in the ego frame [m/s]; confidence: (M,) in [0, 1].
        """
        cls_idx = np.asarray(cls_idx, int).reshape(-1)
        m = len(cls_idx)
        xy = np.asarray(xy, float).reshape(m, 2)
        vxy = np.asarray(vxy_ground, float).reshape(m, 2)
        conf = np.asarray(confidence, float).reshape(m)
        if m and (cls_idx.min() < 0 or cls_idx.max() >= len(CLASSES)):
            raise ValueError(f"class indices {sorted(set(cls_idx.tolist()))} outside {CLASSES}")
        out = np.zeros(self.shape, np.float32)
        h = ego.heading_to_lane
        out[0, PRESENCE] = out[0, CONFIDENCE] = 1.0
        out[0, Y] = ego.lateral_offset / self.position_scale
        out[0, VX : VY + 1] = ego.speed * np.array([np.cos(h), np.sin(h)]) / self.velocity_scale
        out[0, TARGET_SPEED] = min(max(ego.target_speed / self.velocity_scale, 0.0), CLIP)
        out[0, LANE_LEFT] = float(ego.lanes_left > 0)
        out[0, LANE_RIGHT] = float(ego.lanes_right > 0)
        dist = np.hypot(xy[:, 0], xy[:, 1])
        near = np.flatnonzero(dist <= self.max_range)
        keep = near[np.argsort(dist[near], kind="stable")][: self.max_objects]
        rows = out[1 : 1 + len(keep)]
        rows[:, PRESENCE] = 1.0
        rows[np.arange(len(keep)), CLASS0 + cls_idx[keep]] = 1.0
        rows[:, X : Y + 1] = xy[keep] / self.position_scale
        rows[:, VX : VY + 1] = vxy[keep] / self.velocity_scale
        rows[:, CONFIDENCE] = np.clip(conf[keep], 0.0, 1.0)
        np.clip(out[:, X : VY + 1], -CLIP, CLIP, out=out[:, X : VY + 1])
        return out

    def from_truth(
        self,
        objects: Sequence[ObjectTruth] | dict[str, Sequence[ObjectTruth]],
        ego: EgoState,
        min_visible: float = 0.3,
    ) -> np.ndarray:
        """The kinematics list: objects at least `min_visible` visible, confidence 1.

        A rig's dict of per-camera lists is merged by track id (the most visible record wins).
        """
        if isinstance(objects, dict):
            best: dict[int, ObjectTruth] = {}
            for o in (o for lst in objects.values() for o in lst):
                if o.track_id not in best or o.visible > best[o.track_id].visible:
                    best[o.track_id] = o
            objects = list(best.values())
        seen = [o for o in objects if o.visible >= min_visible]
        # ObjectTruth.ego_vxy is relative to the ego, whose own velocity is (speed, 0) in its frame
        vxy = np.array([o.ego_vxy for o in seen], float).reshape(-1, 2) + (ego.speed, 0.0)
        return self.encode(
            np.array([CLASSES.index(o.cls) for o in seen], int),
            np.array([o.ego_xy for o in seen], float).reshape(-1, 2),
            vxy,
            np.ones(len(seen)),
            ego,
        )

    def from_tracks(self, tracks: Sequence[TrackLike], ego: EgoState) -> np.ndarray:
        """The perceived list: confirmed tracks with their ground velocity and score."""
        return self.encode(
            np.array([t.cls for t in tracks], int),
            np.array([t.ego_xy for t in tracks], float).reshape(-1, 2),
            np.array([t.ego_vxy for t in tracks], float).reshape(-1, 2),
            np.array([t.score for t in tracks], float),
            ego,
        )
