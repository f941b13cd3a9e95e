"""TensorBoard `perception/` metrics along the training drive, from counters the perception
wrapper keeps (cheap: the ground truth already rides in `info["objects"]`).

Per observed frame and camera, the frame's ground-truth objects at least `min_visible` visible are
matched to the back-projected detections (same class, ego-frame distance within `gate` + 10 % of
the object's range, one detection per object: agents.attribution.match_tracks), and to the
tracker's confirmed tracks:
- recall = matched objects / objects; precision = matched detections / detections (a detection
  with no ground point, a pinhole ray above the horizon, counts as unmatched);
- id switches: a ground-truth object matched to another track id than at its previous match in
  the same episode (CLEAR-MOT's IDSW).
`PerceptionMetrics` (a BaseCallback) records them at the end of a rollout once `window` frames
have accumulated, then starts a new window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from agents.attribution import GATE, match_tracks
from sim.types import ObjectTruth


class _Point(NamedTuple):
    """A detection as match_tracks reads a track."""

    cls: int
    ego_xy: np.ndarray
    track_id: int = -1


@dataclass
class PerceptionCounters:
    """Detection and tracking counts over a window of frames (see the module docstring)."""

    min_visible: float = 0.3
    gate: float = GATE  # [m] (+ 10 % of the object's range)
    frames: int = 0
    objects: int = 0
    detections: int = 0
    matched_objects: int = 0
    matched_detections: int = 0
    id_switches: int = 0
    last_track: dict[tuple[int, int], int] = field(default_factory=dict)  # (env, truth id) -> id

    def add_detections(self, xy: np.ndarray, cls: np.ndarray,
                       objects: list[ObjectTruth]) -> None:
        """One camera's detections, (N, 2) ego-frame xy (NaN: no ground point) and (N,) classes."""
        truth = [o for o in objects if o.visible >= self.min_visible]
        ok = np.isfinite(xy).all(axis=1)
        points = [_Point(int(c), p) for p, c in zip(xy[ok], cls[ok], strict=True)]
        matched = match_tracks(points, truth, self.gate)
        self.objects += len(truth)
        self.detections += len(xy)
        self.matched_objects += len(matched)
        self.matched_detections += len(matched)

    def add_tracks(self, env: int, start: bool, tracks: list, objects: list[ObjectTruth]) -> None:
        """One frame's confirmed tracks of env `env` (`start`: its episode starts here)."""
        self.frames += 1
        if start:
            self.last_track = {k: v for k, v in self.last_track.items() if k[0] != env}
        truth = [o for o in objects if o.visible >= self.min_visible]
        for truth_id, track in match_tracks(tracks, truth, self.gate).items():
            before = self.last_track.get((env, truth_id))
            self.id_switches += before is not None and before != track.track_id
            self.last_track[(env, truth_id)] = track.track_id

    def summary(self) -> dict[str, float]:
        """recall, precision (NaN without objects / detections), id_switches, frames."""
        return {
            "recall": self.matched_objects / self.objects if self.objects else float("nan"),
            "precision": (self.matched_detections / self.detections if self.detections
                          else float("nan")),
            "id_switches": float(self.id_switches),
            "frames": float(self.frames),
        }

    def clear(self) -> None:
        """Start a new window (track ids are remembered across windows)."""
        self.frames = self.objects = self.detections = 0
        self.matched_objects = self.matched_detections = self.id_switches = 0


def find_counters(venv: VecEnv) -> PerceptionCounters | None:
    """The counters of the perception wrapper under `venv` (through VecEnv wrappers), if any."""
    while venv is not None:
        if isinstance(getattr(venv, "counters", None), PerceptionCounters):
            return venv.counters
        venv = getattr(venv, "venv", None)
    return None


class PerceptionMetrics(BaseCallback):
    """Records `perception/recall`, `perception/precision`, `perception/id_switches` (in the
    window) and `perception/frames` from the training env's counters at the end of a rollout
    once at least `window` frames have been counted."""

    def __init__(self, window: int = 256):
        super().__init__()
        self.window = int(window)

    def _on_rollout_end(self) -> None:
        counters = find_counters(self.training_env)
        if counters is None or counters.frames < self.window:
            return
        for key, value in counters.summary().items():
            self.logger.record(f"perception/{key}", value)
        counters.clear()

    def _on_step(self) -> bool:
        return True
