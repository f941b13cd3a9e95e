"""Evaluation episodes of a trained policy or a scripted driver (the body of `roadsight eval`).

One env (DummyVecEnv) built through agents.build's worker and observation wrapper, so a policy
sees exactly what it saw in training; episode k is seeded `EVAL_SEED_BASE + seed + k` for every
policy and driver (agents.seeding). Per step it feeds:
- agents.metrics.EpisodeRecorder (every object in range: agents.wrappers.SceneObjectsInfo, which
  only adds to the info, never to the observation);
- for perception policies, agents.attribution.CrashAttributor (the tracker's confirmed tracks)
  and the detector's raw detections against the frame's ground truth (AP50, recall: COCO via
  perception.coco_eval, over every frame of the drive);
- one video frame (agents.video) for the first `videos` episodes, and with `record_frames` the
  frame and its ground truth into a COCO dataset (sim.coco.CocoWriter) under DIR/frames/.
A corruption (night, robustness sweeps) is applied to the frames before anyone sees them: the
detector, the video and the recorded frames all get the corrupted image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

from agents.attribution import CrashAttributor, count_categories
from agents.build import Perception, policy_dt, worker_env, wrap_observation
from agents.metrics import EpisodeRecorder, EpisodeRow, summarize
from agents.perceive import Item, ObjectsVecEnv, ObservationVecEnv, _per_camera
from agents.seeding import EVAL_SEED_BASE
from agents.video import FrameLayout, StepText, action_name, compose_frame, episode_writer

SCENE_RANGE = 80.0  # [m] objects the safety metrics see (SceneObjectsInfo), at least max_range


class Policy(Protocol):
    """Who drives: `reset(env, seed)` at each episode start, `act(obs, env) -> (1,) actions`."""

    def reset(self, env, seed: int | None) -> None: ...

    def act(self, obs: np.ndarray, env) -> np.ndarray: ...


class ModelPolicy:
    """An SB3 model on the observation wrapper's output."""

    def __init__(self, model, deterministic: bool = True):
        self.model, self.deterministic = model, deterministic

    def reset(self, env, seed: int | None) -> None:
        pass

    def act(self, obs: np.ndarray, env) -> np.ndarray:
        return self.model.predict(obs, deterministic=self.deterministic)[0]


class DriverPolicy:
    """A sim.drivers driver (IDMDriver, RandomDriver) on the env itself."""

    def __init__(self, driver):
        self.driver = driver

    def reset(self, env, seed: int | None) -> None:
        self.driver.reset(env, seed)

    def act(self, obs: np.ndarray, env) -> np.ndarray:
        return np.array([self.driver.act(env)])


class FrameTap(VecEnvWrapper):
    """Between the workers and the observation wrapper: corrupts every camera frame (when a
    corruption is given) and keeps the last step's frame (the terminal one when env 0's episode
    ended) for the video and the recorded frames."""

    def __init__(self, venv, corruption=None):
        super().__init__(venv)
        self.corruption = corruption
        self.frame: np.ndarray | None = None

    def _corrupt(self, frame: np.ndarray) -> np.ndarray:
        if self.corruption is None:
            return frame
        if frame.ndim == 4:  # a rig: (n, H, W, 3)
            return np.stack([self.corruption(f) for f in frame])
        return self.corruption(frame)

    def reset(self) -> np.ndarray:
        frames = np.stack([self._corrupt(f) for f in self.venv.reset()])
        self.reset_infos = self.venv.reset_infos
        self.frame = frames[0]
        return frames

    def step_wait(self):
        frames, rewards, dones, infos = self.venv.step_wait()
        frames = np.stack([self._corrupt(f) for f in frames])
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = self._corrupt(infos[i]["terminal_observation"])
        self.reset_infos = self.venv.reset_infos
        self.frame = infos[0]["terminal_observation"] if dones[0] else frames[0]
        return frames, rewards, dones, infos


class TrackTap:
    """A tracker that remembers what each `update` returned (cleared by the caller per step)."""

    def __init__(self, tracker):
        self.tracker, self.calls = tracker, []

    def reset(self) -> None:
        self.tracker.reset()

    def update(self, *args, **kwargs):
        tracks = self.tracker.update(*args, **kwargs)
        self.calls.append(tracks)
        return tracks


class DetectionTap:
    """A DetectionSource that remembers its last call's Detections (one per image)."""

    def __init__(self, source):
        self.source, self.last = source, []

    def __call__(self, images, objects):
        self.last = self.source(images, objects)
        return self.last


@dataclass
class EvalEnv:
    venv: ObservationVecEnv
    frames: FrameTap
    tracks: TrackTap | None
    detections: DetectionTap | None

    @property
    def env(self):
        """The one worker env (for drivers and action names)."""
        return self.frames.venv.envs[0]

    def close(self) -> None:
        self.venv.close()


def build_eval_env(cfg: DictConfig, perception: Perception | None, corruption, seed: int
                   ) -> EvalEnv:
    """One env: agents.build's worker (+ every object in range) -> FrameTap -> the observation
    wrapper of `cfg.observation`, reseeded at EVAL_SEED_BASE + seed."""
    layout = cfg.observation.get("layout")
    scene_range = max(SCENE_RANGE, float(layout.max_range if layout else 0.0))
    fn = functools.partial(worker_env, OmegaConf.to_container(cfg.env, resolve=True),
                           OmegaConf.to_container(cfg.camera, resolve=True), 1, scene_range,
                           native=cfg.observation.name == "native")
    frames = FrameTap(DummyVecEnv([fn]), corruption)
    detections = None
    if perception is not None:
        detections = DetectionTap(perception.source)
        perception = dataclasses.replace(perception, source=detections)
    try:
        venv = wrap_observation(cfg, frames, perception, EVAL_SEED_BASE + int(seed))
    except BaseException:
        frames.close()
        raise
    tracks = None
    if isinstance(venv, ObjectsVecEnv):
        venv.trackers = [TrackTap(t) for t in venv.trackers]
        tracks = venv.trackers[0]
    return EvalEnv(venv, frames, tracks, detections)


@dataclass
class EvalOptions:
    episodes: int = 10
    videos: int = 3  # the first K episodes get an MP4
    record_frames: bool = False
    n_boot: int = 2000
    seed: int = 0
    layout: FrameLayout | None = None
    progress: bool = True


@dataclass
class EvalResult:
    metrics: dict
    rows: list[EpisodeRow]
    videos: list[Path]


class DetectionScore:
    """The detector's raw detections and the frames' ground truth, scored with COCO at the end."""

    def __init__(self, score_thresh, min_visible: float = 0.3):
        self.records, self.detections = [], {}
        self.score_thresh, self.min_visible = score_thresh, min_visible

    def add(self, frame: np.ndarray, info: dict, detections: list) -> None:
        from perception.data import ImageRecord
        from sim.types import CLASSES

        images, _, truths = _per_camera(Item(0, frame, info, False))
        for image, objs, dets in zip(images, truths, detections, strict=False):
            rid = len(self.records) + 1
            self.records.append(ImageRecord(
                rid, Path(f"frame_{rid:06d}"), image.shape[1], image.shape[0],
                np.array([o.box_xyxy for o in objs], np.float32).reshape(-1, 4),
                np.array([CLASSES.index(o.cls) for o in objs], np.int64),
                np.array([o.visible for o in objs], np.float32),
                np.array([np.hypot(*o.ego_xy) for o in objs], np.float32)))
            self.detections[rid] = dets

    def metrics(self) -> dict:
        from perception.coco_eval import evaluate

        m = evaluate(self.records, self.detections, self.min_visible, self.score_thresh).metrics
        return {"detection_AP50": m["mAP50"], "detection_recall": m["recall"],
                "detection_frames": len(self.records)}


def run_evaluation(ev: EvalEnv, policy: Policy, out: Path, opts: EvalOptions,
                   score_thresh=None) -> EvalResult:
    """Play `opts.episodes` episodes with `policy`; rows, metrics and videos (under `out`)."""
    from tqdm import tqdm

    if opts.episodes < 1:
        raise ValueError(f"episodes={opts.episodes}: need at least 1")
    env, dt = ev.env, policy_dt(ev.venv)
    fps = 1.0 / dt
    recorder, attributor = EpisodeRecorder(dt), CrashAttributor(dt)
    # detections and tracks exist for observation=objects (embedding: the neck, no decoding)
    scorer = DetectionScore(score_thresh) if ev.tracks is not None else None
    coco = _coco_writer(out, env) if opts.record_frames else None
    rows, crashes, videos = [], [], []
    obs = ev.venv.reset()
    for k in tqdm(range(opts.episodes), desc="episodes", unit="ep", disable=not opts.progress):
        seed = ev.frames.reset_infos[0].get("episode_seed")
        recorder.start(ev.frames.reset_infos[0], k, seed)
        attributor.reset()
        policy.reset(env, seed)
        with contextlib.ExitStack() as stack:
            writer = stack.enter_context(episode_writer(out, k, fps)) if k < opts.videos else None
            step, done = 0, False
            while not done:
                action = policy.act(obs, env)
                name = action_name(env, action[0])
                if getattr(policy, "last_changed", False):  # agents.shield.ShieldedPolicy
                    name += " (shield)"
                if ev.tracks is not None:
                    ev.tracks.calls.clear()
                obs, rewards, dones, infos = ev.venv.step(action)
                info, done, frame = infos[0], bool(dones[0]), ev.frames.frame
                step += 1
                recorder.step(float(rewards[0]), info)
                tracks = ev.tracks.calls[0] if ev.tracks is not None else None
                note = ""
                if tracks is not None:
                    crash = attributor.step(tracks, info)
                    note = crash.category.replace("_", " ") if crash is not None else ""
                    scorer.add(frame, info, ev.detections.last)
                if writer is not None:
                    text = StepText.from_info(info, step * dt, name, float(rewards[0]), note)
                    writer.append(compose_frame(frame, text, tracks, info["objects"],
                                                layout=opts.layout))
                if coco is not None:
                    _record(coco, frame, info, k, step, step * dt, seed)
        if writer is not None:
            videos.append(writer.path)
        row = recorder.finish()
        row.shield_interventions = getattr(policy, "interventions", None)
        if attributor.result is not None:
            row.crash_cause = attributor.result.category
            crashes.append(attributor.result)
        rows.append(row)
    if coco is not None:
        coco.save()
    metrics = summarize(rows, opts.n_boot, opts.seed)
    rule_counts = getattr(policy, "rule_counts", None)
    if rule_counts is not None:  # the share of policy steps each shield rule changed
        steps = sum(r.length for r in rows)
        metrics["shield_rule_rates"] = {k: v / steps if steps else 0.0
                                        for k, v in rule_counts.items()}
    if scorer is not None:
        metrics["crash_attribution"] = count_categories(crashes)
        metrics.update(scorer.metrics())
    metrics["seeds"] = [EVAL_SEED_BASE + opts.seed, EVAL_SEED_BASE + opts.seed + opts.episodes - 1]
    return EvalResult(metrics, rows, videos)


def _coco_writer(out: Path, env):
    from sim.coco import CocoWriter, env_info

    return CocoWriter(out / "frames", "roadsight eval", info=env_info(env))


def _record(coco, frame: np.ndarray, info: dict, episode: int, step: int, t: float,
            seed: int | None) -> None:
    """The step's frame(s) and ground truth into the COCO dataset (one image per camera)."""
    from sim.types import Frame

    images, cameras, truths = _per_camera(Item(0, frame, info, False))
    for image, camera, objs in zip(images, cameras, truths, strict=True):
        coco.add(Frame(image, objs, camera, t), episode, step, seed)


def rows_as_dicts(rows: list[EpisodeRow]) -> list[dict]:
    """Episode rows for the report's table."""
    return [asdict(r) for r in rows]
