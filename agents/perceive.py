"""VecEnv wrappers that turn the workers' camera frames (+ info) into the policy's observation.

Workers (SubprocVecEnv or DummyVecEnv) only step and render: observation = uint8 frame(s),
`info["objects"]`, `info["camera"]`, `info["ego"]`. In the main process one wrapper per
observation mode builds the object list (agents.observations.ObjectListLayout):
- `KinematicsVecEnv`: from the frame's ground truth (no detector);
- `ObjectsVecEnv`: ONE detector call for every frame of the vector step (all envs, plus the
  terminal frames of envs whose episode just ended), or the detections the workers made of
  their own frames (`perception.placement=workers`), back-projection to the ego frame, a tracker
  per env (reset when its episode starts), then the same layout.
A finished env's `info["terminal_observation"]` (a frame) is converted with that step's info;
the new episode's first observation with `venv.reset_infos`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from agents.observations import ObjectListLayout
from agents.perception_metrics import PerceptionCounters
from perception.decode import Detections
from perception.geometry import boxes_to_ego
from sim.types import CLASSES, ObjectTruth


@dataclass
class Item:
    """One frame to observe: env index, image(s), its info, and whether an episode starts."""

    env: int
    frame: np.ndarray  # (H, W, 3) uint8, or (n, H, W, 3) for an n-camera rig
    info: dict
    start: bool


class ObservationVecEnv(VecEnvWrapper):
    """Base: subclasses map a list of `Item`s to (len(items), *observation_space.shape).

    `reseed`: seed the wrapped envs with it before every `reset()` (evaluation: each evaluation
    replays the same episodes; see agents.seeding).
    """

    def __init__(self, venv: VecEnv, observation_space: spaces.Space, reseed: int | None = None):
        super().__init__(venv, observation_space=observation_space)
        self.reseed = reseed

    def observe(self, items: Sequence[Item]) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> np.ndarray:
        if self.reseed is not None:
            self.venv.seed(self.reseed)
        frames = self.venv.reset()
        infos = self.venv.reset_infos
        return self.observe([Item(i, frames[i], infos[i], True) for i in range(self.num_envs)])

    def step_wait(self):
        frames, rewards, dones, infos = self.venv.step_wait()
        done = [i for i in range(self.num_envs) if dones[i]]
        # a finished env's terminal frame comes first: its tracker sees it before the reset
        items = [Item(i, infos[i]["terminal_observation"], infos[i], False) for i in done]
        items += [Item(i, frames[i], self.venv.reset_infos[i] if dones[i] else infos[i],
                       bool(dones[i])) for i in range(self.num_envs)]
        obs = self.observe(items)
        for k, i in enumerate(done):
            infos[i]["terminal_observation"] = obs[k]
        return obs[len(done):], rewards, dones, infos


class KinematicsVecEnv(ObservationVecEnv):
    """The privileged object list from ground truth: `info[source]` (`objects`: what the camera
    sees, at least `min_visible`; `scene_objects`: everything within range, agents.wrappers)."""

    def __init__(self, venv: VecEnv, layout: ObjectListLayout, min_visible: float = 0.3,
                 source: str = "objects", reseed: int | None = None):
        super().__init__(venv, layout.observation_space, reseed)
        self.layout, self.min_visible, self.source = layout, min_visible, source

    def observe(self, items: Sequence[Item]) -> np.ndarray:
        return np.stack([self.layout.from_truth(it.info[self.source], it.info["ego"],
                                                self.min_visible) for it in items])


class NativeVecEnv(ObservationVecEnv):
    """highway-env's own observation (`env.config.observation`, e.g. its Kinematics: the
    nearest vehicles read from the simulator), which the workers put into
    `info["highway_observation"]`: the baseline of highway-env's documented SB3 recipes. The
    camera still renders (videos, ground truth and the safety metrics stay as for every mode)."""

    def __init__(self, venv: VecEnv, reseed: int | None = None):
        space = venv.get_attr("highway_observation_space", [0])[0]
        super().__init__(venv, space, reseed)

    def observe(self, items: Sequence[Item]) -> np.ndarray:
        return np.stack([np.asarray(it.info["highway_observation"], self.observation_space.dtype)
                         for it in items])


# images (one per camera frame) and their ground truth -> Detections per image
DetectionSource = Callable[[list[np.ndarray], list[list[ObjectTruth]]], list[Detections]]


class TruthDetections:
    """A perfect detector: the ground-truth boxes of objects at least `min_visible` visible,
    score 1 (`perception.detector=truth`, and tests: perception then differs from kinematics
    only by back-projection and tracking)."""

    def __init__(self, min_visible: float = 0.3):
        self.min_visible = min_visible

    def __call__(self, images: list[np.ndarray],
                 objects: list[list[ObjectTruth]]) -> list[Detections]:
        out = []
        for objs in objects:
            seen = [o for o in objs if o.visible >= self.min_visible]
            out.append(Detections(np.array([o.box_xyxy for o in seen], np.float32).reshape(-1, 4),
                                  np.array([CLASSES.index(o.cls) for o in seen], np.int64),
                                  np.ones(len(seen), np.float32)))
        return out


class DetectorSource:
    """A perception.backends.Detector over the batch: one preprocessing pass and ONE forward."""

    def __init__(self, detector):
        self.detector = detector

    def __call__(self, images: list[np.ndarray],
                 objects: list[list[ObjectTruth]]) -> list[Detections]:
        return self.detector(images) if images else []


def _per_camera(item: Item) -> tuple[list[np.ndarray], list, list[list[ObjectTruth]]]:
    """An item's images, CameraInfos and truth lists, one entry per camera (rigs: several)."""
    cams = item.info["camera"]
    if isinstance(cams, dict):  # a rig: frames stacked in the order of its cameras
        names = list(cams)
        return list(item.frame), [cams[n] for n in names], [item.info["objects"][n] for n in names]
    return [item.frame], [cams], [item.info["objects"]]


class ObjectsVecEnv(ObservationVecEnv):
    """The perceived object list: detector -> back-projection -> tracker per env -> layout.

    `source` None: the frames' detections come in `info["detections"]` (the workers ran the
    detector, agents.wrappers.FrameDetections). `make_tracker()` builds one
    perception.track tracker per env; `dt` [s] is the time between
    two policy steps (1 / policy_frequency). `counters` (agents.perception_metrics) count
    detection recall / precision and track id switches against the ground truth.
    """

    def __init__(self, venv: VecEnv, layout: ObjectListLayout, source: DetectionSource | None,
                 make_tracker: Callable[[], object], dt: float, reseed: int | None = None):
        super().__init__(venv, layout.observation_space, reseed)
        self.layout, self.source, self.dt = layout, source, float(dt)
        self.trackers = [make_tracker() for _ in range(self.num_envs)]
        self.counters = PerceptionCounters()

    def observe(self, items: Sequence[Item]) -> np.ndarray:
        per_item = [_per_camera(it) for it in items]
        images = [im for imgs, _, _ in per_item for im in imgs]
        truth = [objs for _, _, lists in per_item for objs in lists]
        if self.source is None:  # the workers detected their own frames (FrameDetections)
            dets = iter([d for it in items for d in it.info["detections"]])
        else:  # one batched call for the whole vector step
            dets = iter(self.source(images, truth))
        out = []
        for it, (_, cameras, truths) in zip(items, per_item, strict=True):
            xy, cls, score, boxes = [], [], [], []
            for camera, objs in zip(cameras, truths, strict=True):
                d = next(dets)
                xy.append(boxes_to_ego(d.boxes, camera, d.cls))
                self.counters.add_detections(xy[-1], d.cls, objs)
                cls.append(d.cls)
                score.append(d.score)
                boxes.append(d.boxes)
            tracker = self.trackers[it.env]
            if it.start:
                tracker.reset()
            xy_all = np.concatenate(xy).reshape(-1, 2)
            ok = np.isfinite(xy_all).all(axis=1)  # pinhole rays above the horizon: no ground
            tracks = tracker.update(xy_all[ok], np.concatenate(cls)[ok],
                                    np.concatenate(score)[ok],
                                    np.concatenate(boxes).reshape(-1, 4)[ok],
                                    it.info["ego"], self.dt)
            seen = {o.track_id: o for objs in truths for o in objs}  # a rig: once per object
            self.counters.add_tracks(it.env, it.start, tracks, list(seen.values()))
            out.append(self.layout.from_tracks(tracks, it.info["ego"]))
        return np.stack(out)
