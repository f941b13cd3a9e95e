"""Crash attribution: did perception have the object the ego crashed into, and since when?

A CrashAttributor is fed, every env step, the tracker's confirmed tracks (perception.track) and
the ground truth (`info["objects"]`, camera ObjectTruth with simulator track ids). Per ground-truth
object it keeps, per step, whether a track matched it: same class, ego-frame centre distance within
`gate + gate_fraction * range` [m] (default 2 m + 10 % of the object's range), one track per object
(Hungarian assignment on distance). At the crash step, the object hit is the nearest object of the
crashed-into class (agents.metrics.crash_partner, over `info["scene_objects"]` when present) and
the crash is counted as:

- `perception_miss`: no track matched it in the last `window` s (2 s), crash step included (also
  when the object hit is in no ground truth: no camera saw it);
- `late_detection`: matched in the window, but only less than `react_time` (1 s) before impact:
  too late for a driver to react (a typical perception-reaction time);
- `policy_error`: matched at least `react_time` before impact within the window: it was tracked
  in time and the policy still hit it.

Track ids of the ground truth must come from the CameraObservation's registry (SceneObjectsInfo
above it shares them). Only meaningful for policies that see through perception.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from agents.metrics import crash_partner, flat_objects
from perception.track import Track
from sim.types import CLASSES, ObjectTruth

WINDOW = 2.0  # [s] before impact in which the tracking history is judged
REACT_TIME = 1.0  # [s] a detection later than this before impact is too late
GATE, GATE_FRACTION = 2.0, 0.1  # [m], [-] of the object's range: track-to-truth match distance
CATEGORIES = ("perception_miss", "late_detection", "policy_error")


@dataclass
class CrashAttribution:
    """What perception knew of the object the ego crashed into."""

    object_id: int  # ground-truth track id (-1: in no ground truth)
    cls: str
    category: str  # one of CATEGORIES
    crash_step: int  # env steps since reset, 1 = the first step
    first_detection_distance: float | None  # [m] range when a track first matched it
    first_detection_s: float | None  # [s] before impact of that first match (whole episode)
    last_detection_s: float | None  # [s] before impact of the latest match (0: at impact)
    track_id: int | None  # the track matched last in the window
    track_age: int | None  # [tracker updates] that track's age at its last match
    window_steps: int  # steps in the window (crash step included)
    missed_steps: int  # of them, steps without a matching track (detection gaps)


def match_tracks(
    tracks: list[Track],
    objects: list[ObjectTruth],
    gate: float = GATE,
    gate_fraction: float = GATE_FRACTION,
) -> dict[int, Track]:
    """ground-truth track id -> the track matched to it (per class, Hungarian on distance)."""
    matched: dict[int, Track] = {}
    for k, name in enumerate(CLASSES):
        objs = [o for o in objects if o.cls == name]
        trks = [t for t in tracks if t.cls == k]
        if not objs or not trks:
            continue
        truth = np.array([o.ego_xy for o in objs], float)  # (M, 2)
        dist = np.linalg.norm(truth[:, None] - np.array([t.ego_xy for t in trks])[None], axis=2)
        limit = gate + gate_fraction * np.linalg.norm(truth, axis=1)  # (M,)
        rows, cols = linear_sum_assignment(np.where(dist <= limit[:, None], dist, 1e9))
        for i, j in zip(rows, cols, strict=True):
            if dist[i, j] <= limit[i]:
                matched[objs[i].track_id] = trks[j]
    return matched


class CrashAttributor:
    """Per-object tracking history of one episode, and the attribution of its crash.

    dt [s]: one env (policy) step; window, react_time [s], gate [m], gate_fraction: see module.
    """

    def __init__(
        self,
        dt: float,
        window: float = WINDOW,
        react_time: float = REACT_TIME,
        gate: float = GATE,
        gate_fraction: float = GATE_FRACTION,
    ):
        if dt <= 0 or window < 0 or react_time < 0:
            raise ValueError(f"attribution: dt {dt} (> 0 s), window {window}, react_time "
                             f"{react_time} (>= 0 s)")
        self.dt, self.window, self.react_time = float(dt), float(window), float(react_time)
        self.gate, self.gate_fraction = float(gate), float(gate_fraction)
        self.reset()

    def reset(self) -> None:
        """Start an episode."""
        self.steps = 0
        # ground-truth id -> {step: (range [m], matched track id, its age)}
        self.history: dict[int, dict[int, tuple[float, int, int]]] = {}
        self.result: CrashAttribution | None = None

    def observe(self, tracks: list[Track], objects: list[ObjectTruth]) -> None:
        """Record one env step: which ground-truth objects a track matched."""
        self.steps += 1
        by_id = {o.track_id: o for o in objects}
        for obj_id, track in match_tracks(tracks, objects, self.gate, self.gate_fraction).items():
            self.history.setdefault(obj_id, {})[self.steps] = (
                float(np.hypot(*by_id[obj_id].ego_xy)), int(track.track_id), int(track.age))

    def attribute(self, object_id: int, cls: str) -> CrashAttribution:
        """Attribute a crash into ground-truth object `object_id` at the last observed step."""
        crash, seen = self.steps, self.history.get(object_id, {})
        reach = int(np.floor(self.window / self.dt + 1e-9))
        window = range(max(crash - reach, 1), crash + 1)
        hits = [s for s in window if s in seen]

        def before(step: int) -> float:
            return (crash - step) * self.dt

        if not hits:
            category = "perception_miss"
        elif before(hits[0]) >= self.react_time - 1e-9:
            category = "policy_error"
        else:
            category = "late_detection"
        first = min(seen) if seen else None
        last = hits[-1] if hits else None
        return CrashAttribution(
            object_id=object_id,
            cls=cls,
            category=category,
            crash_step=crash,
            first_detection_distance=None if first is None else seen[first][0],
            first_detection_s=None if first is None else before(first),
            last_detection_s=None if last is None else before(last),
            track_id=None if last is None else seen[last][1],
            track_age=None if last is None else seen[last][2],
            window_steps=len(window),
            missed_steps=len(window) - len(hits),
        )

    def step(self, tracks: list[Track], info: dict) -> CrashAttribution | None:
        """Observe one env step's tracks and `info["objects"]`; on the episode's first crashed
        step, attribute the crash (also kept in `self.result`)."""
        self.observe(tracks, flat_objects(info["objects"]))
        if not info.get("crashed") or self.result is not None:
            return None
        cls = info.get("crashed_into") or "vehicle"
        partner = crash_partner(flat_objects(info.get("scene_objects", info["objects"])), cls)
        self.result = self.attribute(-1 if partner is None else partner.track_id, cls)
        return self.result


def count_categories(attributions: list[CrashAttribution]) -> dict[str, int]:
    """metrics.json's crash attribution: {"crashes": n, category: count for each category}."""
    counts = Counter(a.category for a in attributions)
    return {"crashes": len(attributions), **{c: counts.get(c, 0) for c in CATEGORIES}}
