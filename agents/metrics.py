"""Safety metrics of evaluation episodes: one row per episode, and their summary.

An EpisodeRecorder is fed each env step's reward and info (`info["ego"]` EgoState,
`info["scene_objects"]` from agents.wrappers.SceneObjectsInfo, `info["rewards"]`,
`info["crashed"]`, `info["crashed_into"]`, `info["at_fault"]`) and gives an EpisodeRow. Geometry
is in the ego frame (x forward, y left); boxes are each object's length x width turned by its
heading, the ego's is `ego_length` x `ego_width` (highway-env's 5 x 2 m, which roadsight keeps).

- distance [m]: the ego's world path, summed between consecutive steps (reset included).
- min_ttc [s]: over the episode's steps, the time to collision with the lead object: the
  nearest object ahead (centre x > 0) whose box overlaps the ego's corridor (|y| less than the
  two half-widths, strictly) and that closes in: bumper-to-bumper gap / closing speed
  (-relative vx). inf when no step had one.
- pedestrian_near_misses: distinct pedestrians (track ids) that were ahead of the ego's centre
  with a box-to-box clearance under `near_miss_gap` (1.5 m) at a step where the ego drove faster
  than `near_miss_speed` (2 m/s), and that the ego did not hit. Sampled once per policy step.
- crosswalk_violations: separate runs of steps with a non-zero `crosswalk_violation` term
  (urban-crossing: the ego passed a crosswalk with a pedestrian on it); 0 for other envs.
- crashed_into / at_fault: from the info of the step the ego crashed (None without a crash).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from perception.bootstrap import check_bootstrap
from roadsight.io import atomic_write_bytes
from sim.types import CLASSES, ObjectTruth

EGO_LENGTH, EGO_WIDTH = 5.0, 2.0  # [m] the ego's box
NEAR_MISS_GAP = 1.5  # [m] box-to-box clearance to a pedestrian
NEAR_MISS_SPEED = 2.0  # [m/s] ego speed above which a close pass counts
LEVEL = 0.95  # bootstrap intervals' confidence (keys `<metric>_ci95`, as agents.report reads)


def flat_objects(objects: list[ObjectTruth] | dict[str, list[ObjectTruth]]) -> list[ObjectTruth]:
    """One list of objects: a camera rig's dict (name -> list) is merged, one record per id."""
    if not isinstance(objects, dict):
        return list(objects)
    seen: dict[int, ObjectTruth] = {}
    for obj in (o for objs in objects.values() for o in objs):
        if obj.track_id not in seen or obj.visible > seen[obj.track_id].visible:
            seen[obj.track_id] = obj
    return list(seen.values())


def half_extents(obj: ObjectTruth) -> tuple[float, float]:
    """[m] half of the object's box extent along ego x and ego y."""
    length, width = obj.size_lw
    c, s = abs(np.cos(obj.heading)), abs(np.sin(obj.heading))
    return (c * length + s * width) / 2, (s * length + c * width) / 2


def box_gaps(obj: ObjectTruth, ego_length: float, ego_width: float) -> tuple[float, float]:
    """[m] longitudinal and lateral gap between the ego's box and the object's (< 0: overlap)."""
    hx, hy = half_extents(obj)
    x, y = obj.ego_xy
    return abs(x) - hx - ego_length / 2, abs(y) - hy - ego_width / 2


def lead_ttc(
    objects: list[ObjectTruth], ego_length: float = EGO_LENGTH, ego_width: float = EGO_WIDTH
) -> float:
    """[s] time to collision with the nearest object ahead in the ego's corridor; inf if none
    or if it does not close in. ego_vxy of ObjectTruth is relative, so closing = -vx."""
    ahead = [
        (gx, obj)
        for obj in objects
        if obj.ego_xy[0] > 0
        for gx, gy in [box_gaps(obj, ego_length, ego_width)]
        if gy < 0
    ]
    if not ahead:
        return np.inf
    gap, lead = min(ahead, key=lambda pair: pair[0])
    closing = -float(lead.ego_vxy[0])
    return max(gap, 0.0) / closing if closing > 0 else np.inf


def clearance(obj: ObjectTruth, ego_length: float = EGO_LENGTH, ego_width: float = EGO_WIDTH):
    """[m] shortest distance between the ego's box and the object's (0 when they overlap)."""
    gx, gy = box_gaps(obj, ego_length, ego_width)
    return float(np.hypot(max(gx, 0.0), max(gy, 0.0)))


def crash_partner(objects: list[ObjectTruth], cls: str | None) -> ObjectTruth | None:
    """The object the ego crashed into: the nearest one (centre distance) of class `cls`."""
    candidates = [o for o in objects if o.cls == cls]
    return min(candidates, key=lambda o: np.hypot(*o.ego_xy)) if candidates else None


@dataclass
class EpisodeRow:
    """One evaluation episode (a row of episodes.csv); units as in the module docstring."""

    episode: int
    seed: int | None
    episode_return: float  # undiscounted sum of rewards
    length: int  # [steps] policy steps
    duration: float  # [s] length * dt
    crashed: bool
    crashed_into: str | None  # vehicle | pedestrian | obstacle
    at_fault: bool | None
    distance: float  # [m]
    mean_speed: float  # [m/s]
    min_ttc: float  # [s]
    pedestrian_near_misses: int
    crosswalk_violations: int
    crash_cause: str = ""  # agents.attribution category, set by the eval app when it has one
    shield_interventions: int | None = None  # steps whose action the shield changed (shield=)


class EpisodeRecorder:
    """Accumulates one episode's safety metrics: `start(reset_info)`, `step(reward, info)` per
    env step, `finish() -> EpisodeRow`. dt [s]: one policy step (1 / policy_frequency)."""

    def __init__(
        self,
        dt: float,
        ego_length: float = EGO_LENGTH,
        ego_width: float = EGO_WIDTH,
        near_miss_gap: float = NEAR_MISS_GAP,
        near_miss_speed: float = NEAR_MISS_SPEED,
    ):
        if dt <= 0:
            raise ValueError(f"dt={dt}: need a policy step > 0 s (1 / policy_frequency)")
        self.dt, self.ego_length, self.ego_width = float(dt), float(ego_length), float(ego_width)
        self.near_miss_gap, self.near_miss_speed = float(near_miss_gap), float(near_miss_speed)
        self.start({"ego": None})

    def start(self, info: dict, episode: int = 0, seed: int | None = None) -> None:
        """Begin an episode at the reset's info (its `ego` starts the distance)."""
        ego = info.get("ego")
        self._xy = None if ego is None else np.asarray(ego.world_xy, float)
        self.episode, self.seed = episode, seed
        self._return, self._length, self._speed_sum, self._distance = 0.0, 0, 0.0, 0.0
        self._min_ttc = np.inf
        self._near: set[int] = set()
        self._violations, self._violating = 0, False
        self._crashed, self._into, self._fault, self._hit_id = False, None, None, None

    def step(self, reward: float, info: dict) -> None:
        """Add one env step (its reward and the info it returned)."""
        if "scene_objects" not in info:
            raise KeyError("info['scene_objects'] missing: wrap the env in "
                           "agents.wrappers.SceneObjectsInfo to record safety metrics")
        ego, objects = info["ego"], flat_objects(info["scene_objects"])
        self._return += float(reward)
        self._length += 1
        self._speed_sum += float(ego.speed)
        xy = np.asarray(ego.world_xy, float)
        if self._xy is not None:
            self._distance += float(np.hypot(*(xy - self._xy)))
        self._xy = xy
        self._min_ttc = min(self._min_ttc, lead_ttc(objects, self.ego_length, self.ego_width))
        if ego.speed > self.near_miss_speed:
            self._near.update(
                o.track_id
                for o in objects
                if o.cls == "pedestrian"
                and o.ego_xy[0] > 0
                and clearance(o, self.ego_length, self.ego_width) < self.near_miss_gap
            )
        violating = info.get("rewards", {}).get("crosswalk_violation", 0.0) > 0
        self._violations += int(violating and not self._violating)
        self._violating = violating
        if info.get("crashed") and not self._crashed:
            self._crashed, self._into = True, info.get("crashed_into") or "vehicle"
            self._fault = info.get("at_fault")
            partner = crash_partner(objects, self._into)
            self._hit_id = None if partner is None else partner.track_id

    def finish(self) -> EpisodeRow:
        """The episode's row."""
        n = max(self._length, 1)
        near = self._near - {self._hit_id} if self._into == "pedestrian" else self._near
        return EpisodeRow(
            episode=self.episode,
            seed=self.seed,
            episode_return=self._return,
            length=self._length,
            duration=self._length * self.dt,
            crashed=self._crashed,
            crashed_into=self._into,
            at_fault=None if self._fault is None else bool(self._fault),
            distance=self._distance,
            mean_speed=self._speed_sum / n,
            min_ttc=float(self._min_ttc),
            pedestrian_near_misses=len(near),
            crosswalk_violations=self._violations,
        )


def bootstrap_interval(values: np.ndarray, idx: np.ndarray, level: float) -> list[float]:
    """Percentile interval of the mean of `values` over resamples `idx` (R, n)."""
    tail = (1.0 - level) / 2.0
    return [float(q) for q in np.quantile(values[idx].mean(axis=1), [tail, 1.0 - tail])]


def summarize(rows: list[EpisodeRow], n_boot: int = 2000, seed: int = 0) -> dict:
    """metrics.json's safety figures over episodes, with percentile bootstrap intervals over
    episodes (`n_boot` resamples from `seed`; 0: none) of return_mean and crash_rate
    (`return_mean_ci95`, `crash_rate_ci95`: [lo, hi]). mean_speed is over
    steps; min_ttc_mean over the episodes with a finite min_ttc (min_ttc_count of them);
    pedestrian_near_misses and crosswalk_violations are totals."""
    if not rows:
        raise ValueError("summarize: no episodes")
    check_bootstrap(n_boot, LEVEL)
    returns = np.array([r.episode_return for r in rows], float)
    crashed = np.array([r.crashed for r in rows], float)
    into = [r.crashed_into if r.crashed else None for r in rows]
    ttc = np.array([r.min_ttc for r in rows], float)
    finite = ttc[np.isfinite(ttc)]
    steps = sum(r.length for r in rows)
    out = {
        "episodes": len(rows),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "crash_rate": float(crashed.mean()),
        "pedestrian_collision_rate": float(np.mean([c == "pedestrian" for c in into])),
        # NaN when a crash has no judgement (highway-env's own envs do not judge fault)
        "at_fault_crash_rate": float("nan") if any(r.crashed and r.at_fault is None
                                                   for r in rows)
        else float(np.mean([r.crashed and r.at_fault is True for r in rows])),
        "collision_rate_by_class": {k: float(np.mean([c == k for c in into])) for k in CLASSES},
        "mean_speed": sum(r.mean_speed * r.length for r in rows) / steps if steps else 0.0,
        "distance_mean": float(np.mean([r.distance for r in rows])),
        "min_ttc_mean": float(finite.mean()) if finite.size else None,
        "min_ttc_count": int(finite.size),
        "pedestrian_near_misses": int(sum(r.pedestrian_near_misses for r in rows)),
        "crosswalk_violations": int(sum(r.crosswalk_violations for r in rows)),
        "bootstrap": {"n": n_boot, "level": LEVEL, "seed": seed},
    }
    shielded = [r.shield_interventions for r in rows if r.shield_interventions is not None]
    if shielded:  # the share of policy steps whose action the shield changed
        out["shield_intervention_rate"] = sum(shielded) / steps if steps else 0.0
    if n_boot:
        idx = np.random.default_rng(seed).integers(0, len(rows), (n_boot, len(rows)))
        out["return_mean_ci95"] = bootstrap_interval(returns, idx, LEVEL)
        out["crash_rate_ci95"] = bootstrap_interval(crashed, idx, LEVEL)
    return out


def write_episodes_csv(rows: list[EpisodeRow], path: str | Path) -> None:
    """episodes.csv, one row per episode (columns: EpisodeRow's fields), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(EpisodeRow)])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
    atomic_write_bytes(path, buffer.getvalue().encode())


_PARSE = {
    "int": int,
    "float": float,
    "str": str,
    "bool": lambda v: v == "True",
    "int | None": lambda v: int(v) if v else None,
    "str | None": lambda v: v or None,
    "bool | None": lambda v: (v == "True") if v else None,
}


def read_episodes_csv(path: str | Path) -> list[EpisodeRow]:
    """The rows of an episodes.csv written by write_episodes_csv."""
    types = {f.name: _PARSE[str(f.type)] for f in fields(EpisodeRow)}
    with open(path, newline="") as f:
        return [EpisodeRow(**{k: types[k](v) for k, v in r.items()}) for r in csv.DictReader(f)]
