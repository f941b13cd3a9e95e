"""The vec env, its perception and the SB3 algorithm, from the `train` config (shared by train
and eval, so that an evaluated policy sees exactly what it saw in training).

Seeds: agents.seeding (training and evaluation episode seeds never overlap).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from agents.perceive import (
    DetectionSource,
    DetectorSource,
    KinematicsVecEnv,
    ObjectsVecEnv,
    ObservationVecEnv,
)
from agents.seeding import EpisodeSeeds
from roadsight.errors import ConfigError

log = logging.getLogger(__name__)
OBSERVATIONS = ("kinematics", "objects")


def worker_env(env_cfg: dict, camera_cfg: dict, stride: int, scene_range: float | None) -> gym.Env:
    """A worker env: highway-env + camera (+ every object in range) + seeds + Monitor."""
    env = instantiate(env_cfg, camera=instantiate(camera_cfg))
    if scene_range is not None:
        from agents.wrappers import SceneObjectsInfo

        env = SceneObjectsInfo(env, scene_range)
    return Monitor(EpisodeSeeds(env, stride))


def make_vec_env(cfg: DictConfig, n_envs: int) -> VecEnv:
    """n_envs workers that step and render (SubprocVecEnv when n_envs > 1)."""
    obs = cfg.observation
    scene_range = obs.layout.max_range if obs.get("scope", "camera") == "all" else None
    fn = functools.partial(worker_env, OmegaConf.to_container(cfg.env, resolve=True),
                           OmegaConf.to_container(cfg.camera, resolve=True), n_envs, scene_range)
    return SubprocVecEnv([fn] * n_envs) if n_envs > 1 else DummyVecEnv([fn])


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Perception:
    """The detector the `objects` observation runs, and where it came from."""

    source: DetectionSource
    checkpoint: str
    sha256: str
    score_thresh: object  # the thresholds decoding applies (one number or per class name)
    backend: str

    def to_json(self) -> dict:
        thresh = self.score_thresh
        return {"checkpoint": self.checkpoint, "sha256": self.sha256, "backend": self.backend,
                "score_thresh": dict(thresh) if isinstance(thresh, dict) else thresh}


def detector_checkpoint(cfg: DictConfig, camera: str) -> Path:
    """`perception.checkpoint`, or the shipped models/detector_<camera>.pt; ConfigError naming
    the option when the file does not exist."""
    from roadsight.paths import MODELS_DIR

    given = cfg.perception.checkpoint
    path = Path(given) if given else MODELS_DIR / f"detector_{camera}.pt"
    if not path.is_file():
        what = f"perception.checkpoint={given}" if given else \
            f"perception.checkpoint is not set and the default for camera={camera}, {path},"
        raise ConfigError(f"{what} does not exist; observation={cfg.observation.name} needs a "
                          f"detector checkpoint for camera={camera}: set "
                          f"perception.checkpoint=PATH (a best.pt of roadsight train-detector)")
    return path


def load_perception(cfg: DictConfig, camera: str, out_dir: str | Path) -> Perception:
    """The detector for `observation=objects`: checkpoint, backend, device, per-class thresholds."""
    from perception.backends import load_detector
    from perception.checkpoint import load_checkpoint
    from perception.decode import DecodeOptions
    from perception.provenance import check_camera_choice

    path = detector_checkpoint(cfg, camera)
    state = load_checkpoint(path)
    cam = instantiate(cfg.camera)
    check_camera_choice(state, cam.names, tuple(cam.image_shape[:2]), path, camera)
    p = cfg.perception
    thresh = p.score_thresh  # null: the checkpoint's per-class F1-best thresholds, else 0.3
    options = DecodeOptions(OmegaConf.to_object(thresh) if OmegaConf.is_config(thresh)
                            else thresh, p.topk, p.peak_iou, p.snap_px).for_checkpoint(state)
    detector, _ = load_detector(path, p.backend, p.get("onnx"), cfg.device, options,
                                export_dir=p.get("export_dir") or out_dir)
    return Perception(DetectorSource(detector), str(path), sha256(path), options.thresh,
                      p.backend)


def policy_dt(venv: VecEnv) -> float:
    """[s] between two policy steps (1 / the env's policy_frequency)."""
    return 1.0 / float(venv.get_attr("config", [0])[0]["policy_frequency"])


def wrap_observation(cfg: DictConfig, venv: VecEnv, perception: Perception | None = None,
                     reseed: int | None = None) -> ObservationVecEnv:
    """The main-process wrapper of `cfg.observation.name` around the workers' venv."""
    obs = cfg.observation
    layout = instantiate(obs.layout)
    if obs.name == "kinematics":
        source = "scene_objects" if obs.get("scope", "camera") == "all" else "objects"
        if obs.get("scope", "camera") not in ("camera", "all"):
            raise ConfigError(f"observation.scope={obs.scope!r}; choose camera or all")
        return KinematicsVecEnv(venv, layout, obs.min_visible, source, reseed)
    if obs.name == "objects":
        if perception is None:
            raise ValueError("observation=objects needs a Perception (load_perception)")
        return ObjectsVecEnv(venv, layout, perception.source, instantiate(obs.tracker),
                             policy_dt(venv), reseed)
    raise ConfigError(f"observation.name={obs.name!r}; choose from {', '.join(OBSERVATIONS)}")


def build_env(cfg: DictConfig, n_envs: int, perception: Perception | None = None,
              reseed: int | None = None) -> ObservationVecEnv:
    """Workers + the observation wrapper. `reseed`: see ObservationVecEnv (evaluation)."""
    venv = make_vec_env(cfg, n_envs)
    try:
        return wrap_observation(cfg, venv, perception, reseed)
    except BaseException:
        venv.close()
        raise


def rollout_chunk(model: BaseAlgorithm) -> int:
    """Env steps SB3 collects between two updates: `learn` stops only at a multiple of it."""
    if isinstance(model, OnPolicyAlgorithm):
        return model.n_steps * model.n_envs
    freq = model.train_freq
    if freq.unit.value != "step":
        raise ConfigError("agent.train_freq: counted in episodes, a run cannot stop at an exact "
                          "total_timesteps; give train_freq in steps")
    return freq.frequency * model.n_envs


def build_agent(cfg: DictConfig, venv: VecEnv, tensorboard_log: str | None = None
                ) -> BaseAlgorithm:
    """The SB3 algorithm of `cfg.agent` on `venv`, with the run's seed, device and TB dir.

    Also checks that total_timesteps is a whole number of rollouts (SB3 never stops mid-rollout,
    so a run, resumed or not, would otherwise overshoot it).
    """
    from roadsight.device import resolve_device_name

    algorithm = instantiate(cfg.agent)  # `_partial_: true`: the class with its config bound
    model = algorithm(env=venv, seed=cfg.seed, tensorboard_log=tensorboard_log,
                      device=resolve_device_name(cfg.device))
    chunk = rollout_chunk(model)
    if cfg.total_timesteps % chunk:
        up = -(-cfg.total_timesteps // chunk) * chunk
        raise ConfigError(f"total_timesteps={cfg.total_timesteps} is not a multiple of the "
                          f"{chunk} steps {type(model).__name__} collects per update "
                          f"(n_envs={cfg.n_envs}); SB3 would stop at {up}: choose "
                          f"total_timesteps={up}")
    return model
