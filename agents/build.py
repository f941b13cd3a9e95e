"""The vec env, its perception and the SB3 algorithm, from the `train` config (shared by train
and eval, so that an evaluated policy sees exactly what it saw in training).

Seeds: agents.seeding (training and evaluation episode seeds never overlap).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecTransposeImage,
)

from agents.finished import ADDED_KEYS
from agents.perceive import (
    DetectionSource,
    DetectorSource,
    KinematicsVecEnv,
    ObjectsVecEnv,
    TruthDetections,
)
from agents.seeding import EpisodeSeeds
from perception.decode import DecodeOptions
from perception.tiles import TiledDetector
from roadsight.errors import ConfigError, not_a_setting, settings_of

log = logging.getLogger(__name__)
OBSERVATIONS = ("kinematics", "objects", "embedding", "pixels", "native")
OBJECT_LISTS = ("kinematics", "objects")  # one layout: a policy may be evaluated on either
NEEDS_DETECTOR = ("objects", "embedding")
OBSERVATION_FILE = "observation.json"  # the observation a run's policy was trained on


TEACHERS = {"idm": "sim.drivers.IDMDriver"}  # imitation.teacher: the privileged drivers


def teacher_config(cfg: DictConfig) -> dict | None:
    """The `imitation.teacher` driver's config (null: none); ConfigError naming the choices."""
    imitation = cfg.get("imitation")
    name = imitation.get("teacher") if imitation is not None else None
    if name is None:
        return None
    if name not in TEACHERS:
        raise ConfigError(f"imitation.teacher={name!r}; choose from null, {', '.join(TEACHERS)}")
    kwargs = OmegaConf.to_container(imitation.teacher_kwargs)
    # checked here, as instantiate's own error would be (roadsight.errors): the teacher is
    # made in the env workers, whence a SubprocVecEnv's error comes back garbled
    settings = settings_of(inspect.signature(get_class(TEACHERS[name])).parameters)
    for key in kwargs:
        if key not in settings:
            raise not_a_setting(f"imitation.teacher_kwargs.{key}", TEACHERS[name], settings)
    return {"_target_": TEACHERS[name], **kwargs}


def worker_env(env_cfg: dict, camera_cfg: dict, stride: int, scene_range: float | None,
               teacher_cfg: dict | None = None, detector: DetectorSpec | None = None,
               threads: int = 1, native: bool = False) -> gym.Env:
    """A worker env: highway-env + camera (+ its detections) (+ every object in range) (+ the
    teacher's labels) + seeds + Monitor; `native`: highway-env's own observation rides in
    `info["highway_observation"]` (observation=native)."""
    env = instantiate(env_cfg, camera=instantiate(camera_cfg), highway_observation=native)
    if detector is not None:
        from agents.wrappers import FrameDetections

        env = FrameDetections(env, detector, threads)
    if teacher_cfg is not None:
        from agents.imitation import TeacherLabels

        env = TeacherLabels(env, instantiate(teacher_cfg))
    if scene_range is not None:
        from agents.wrappers import SceneObjectsInfo

        env = SceneObjectsInfo(env, scene_range)
    return Monitor(EpisodeSeeds(env, stride))


def make_vec_env(cfg: DictConfig, n_envs: int, teacher: dict | None = None,
                 detector: DetectorSpec | None = None) -> VecEnv:
    """n_envs workers that step and render (SubprocVecEnv when n_envs > 1); `teacher`: a
    driver config whose actions label every state (agents.imitation.TeacherLabels);
    `detector`: each worker detects its own frames (FrameDetections), with this process's
    torch threads shared among the workers."""
    import torch

    obs = cfg.observation
    scene_range = obs.layout.max_range if obs.get("scope", "camera") == "all" else None
    instantiate(cfg.camera)  # a bad camera setting fails here, naming its key, not in a worker
    fn = functools.partial(worker_env, OmegaConf.to_container(cfg.env, resolve=True),
                           OmegaConf.to_container(cfg.camera, resolve=True), n_envs, scene_range,
                           teacher, detector, max(1, torch.get_num_threads() // n_envs),
                           obs.name == "native")
    return SubprocVecEnv([fn] * n_envs) if n_envs > 1 else DummyVecEnv([fn])


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class DetectorSpec:
    """How to make the detection source again (picklable: a worker builds it from this)."""

    checkpoint: str
    backend: str
    onnx: str | None
    options: DecodeOptions
    tile_hw: tuple[int, int] | None = None  # tiles of this size (perception/tiles.py), or None
    tile_overlap: int = 128

    def build(self, device: str = "cpu", export_dir: str | Path | None = None):
        """Images -> Detections: the detector, over tiles when `tile_hw` is set."""
        from perception.backends import load_detector

        detector, _ = load_detector(self.checkpoint, self.backend, self.onnx, device,
                                    self.options, export_dir=export_dir)
        if self.tile_hw is None:
            return detector
        return TiledDetector(detector, self.tile_hw, self.tile_overlap)

    def __call__(self):
        return self.build()


PLACEMENTS = ("auto", "main", "workers")


@dataclass
class Perception:
    """The detector the `objects` observation runs, and where it came from."""

    source: DetectionSource
    checkpoint: str
    sha256: str
    score_thresh: object  # the thresholds decoding applies (one number or per class name)
    backend: str
    detector: object = None  # the perception.backends.Detector (embedding's feature map)
    spec: DetectorSpec | None = None  # how the env workers make it (placement=workers)
    placement: str = "main"  # where a multi-worker env detects: main | workers

    def to_json(self) -> dict:
        thresh = self.score_thresh
        return {"checkpoint": self.checkpoint, "sha256": self.sha256, "backend": self.backend,
                "score_thresh": dict(thresh) if isinstance(thresh, dict) else thresh,
                "placement": self.placement}


def detector_checkpoint(cfg: DictConfig, camera: str) -> Path:
    """`perception.checkpoint`, or the shipped models/detector_<camera>.pt; ConfigError naming
    the option when the file does not exist. A relative path that is not there from the working
    directory but is from the repository's root (models/detector_bev_tiny.pt) is the repo's."""
    from perception.checkpoint import repo_file
    from roadsight.paths import MODELS_DIR

    given = cfg.perception.checkpoint
    path = repo_file(given) if given else MODELS_DIR / f"detector_{camera}.pt"
    if not path.is_file():
        what = f"perception.checkpoint={given}" if given else \
            f"perception.checkpoint is not set and the default for camera={camera}, {path},"
        raise ConfigError(f"{what} does not exist; observation={cfg.observation.name} needs a "
                          f"detector checkpoint for camera={camera}: set "
                          f"perception.checkpoint=PATH (a best.pt of roadsight train-detector)")
    return path


DETECTORS = ("model", "truth")


def detector_choice(cfg: DictConfig) -> str:
    """`perception.detector`: model (the checkpoint's detections) or truth (the ground-truth
    boxes of what the camera sees: a perfect detector, for `observation=objects` only, whose
    policy then differs from kinematics by back-projection, tracking and nothing else). A run
    made before the key existed ran the model."""
    choice = str(cfg.perception.get("detector", ADDED_KEYS["perception.detector"]))
    if choice not in DETECTORS:
        raise ConfigError(f"perception.detector={choice!r}; choose from {', '.join(DETECTORS)}")
    if choice == "truth" and cfg.observation.name != "objects":
        raise ConfigError(f"perception.detector=truth gives boxes for observation=objects; "
                          f"observation={cfg.observation.name} reads the detector's feature map")
    return choice


def load_perception(cfg: DictConfig, camera: str, out_dir: str | Path) -> Perception:
    """The detector for `observation=objects|embedding`: checkpoint, backend, device, per-class
    thresholds; embedding needs the torch backend (the feature map). `perception.detector=truth`:
    the ground-truth boxes instead (no checkpoint), detected in this process."""
    from perception.checkpoint import load_checkpoint
    from perception.provenance import check_rendered_camera

    if detector_choice(cfg) == "truth":
        return Perception(TruthDetections(), "ground truth (perception.detector=truth)", "",
                          0.0, "truth")  # every box scores 1: no threshold applies
    path = detector_checkpoint(cfg, camera)
    state = load_checkpoint(path)
    cam = instantiate(cfg.camera)
    p = cfg.perception
    tile_hw = tiling(p, state, tuple(cam.image_shape[:2]))
    if tile_hw is not None and cfg.observation.name == "embedding":
        raise ConfigError(f"observation=embedding reads one feature map per frame: a "
                          f"{cam.image_shape[1]}x{cam.image_shape[0]} px camera would need tiles; "
                          f"use the checkpoint's {tile_hw[1]}x{tile_hw[0]} px camera")
    check_rendered_camera(state, cam, path, camera, cfg.env.id, tiled=tile_hw is not None)
    backend = backend_choice(cfg)
    thresh = p.score_thresh  # null: the checkpoint's per-class F1-best thresholds, else 0.3
    options = DecodeOptions(OmegaConf.to_object(thresh) if OmegaConf.is_config(thresh)
                            else thresh, p.topk, p.peak_iou, p.snap_px).for_checkpoint(state)
    spec = DetectorSpec(str(path), backend, p.get("onnx"), options, tile_hw, p.tile_overlap)
    # backend=onnx without `onnx`: exported into export_dir (the run dir) first
    source = spec.build(cfg.device, p.get("export_dir") or out_dir)
    detector = source.detector if isinstance(source, TiledDetector) else source
    if backend == "onnx":  # the workers load the file this process loaded
        spec = dataclasses.replace(spec, onnx=str(detector.backend.path))
    return Perception(DetectorSource(source), str(path), sha256(path), options.thresh,
                      backend, detector, spec, placement(cfg))


BACKENDS = ("auto", "torch", "onnx")


def on_cpu(cfg: DictConfig) -> bool:
    """Does `device=` put the detector on the CPU?"""
    from roadsight.device import resolve_device_name

    return resolve_device_name(cfg.device) == "cpu"


def backend_choice(cfg: DictConfig) -> str:
    """`perception.backend`; auto: onnxruntime for `objects` on the CPU (its convs take about
    0.6x torch's time on one core, measured), torch on a GPU and for `embedding` (which reads the
    feature map: onnx has none)."""
    choice = str(cfg.perception.backend)
    if choice not in BACKENDS:
        raise ConfigError(f"perception.backend={choice!r}; choose from {', '.join(BACKENDS)}")
    if cfg.observation.name == "embedding" and choice == "onnx":
        raise ConfigError(f"perception.backend={choice}: observation=embedding needs the "
                          f"detector's feature map; choose perception.backend=torch or auto")
    if choice != "auto":
        return choice
    return "onnx" if on_cpu(cfg) and cfg.observation.name == "objects" else "torch"


def placement(cfg: DictConfig) -> str:
    """`perception.placement`: where a multi-worker training env runs the detector. auto: in
    the workers (one detector each, on its share of the cores) when it runs on the CPU and the
    observation is `objects`; else in this process (one batched forward, a GPU's strength)."""
    choice = str(cfg.perception.get("placement", "auto"))
    if choice not in PLACEMENTS:
        raise ConfigError(f"perception.placement={choice!r}; choose from {', '.join(PLACEMENTS)}")
    if choice == "workers" and cfg.observation.name != "objects":
        raise ConfigError(f"perception.placement=workers: observation={cfg.observation.name} "
                          f"reads the detector's feature map in this process; choose "
                          f"perception.placement=main or auto")
    if choice == "auto":
        return "workers" if on_cpu(cfg) and cfg.observation.name == "objects" else "main"
    return choice


TILES = ("auto", "false")


def tiling(p: DictConfig, state: dict, image_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The tile size (H, W) when frames larger than the checkpoint's camera are cut into tiles
    (`perception.tiles=auto`), else None."""
    choice = str(p.get("tiles", "auto")).lower()
    if choice not in TILES:
        raise ConfigError(f"perception.tiles={p.tiles!r}; choose from {', '.join(TILES)}")
    trained = state.get("camera")
    if choice == "false" or trained is None:
        return None
    hw = (int(trained["height"]), int(trained["width"]))
    larger = image_hw[0] >= hw[0] and image_hw[1] >= hw[1] and image_hw != hw
    return hw if larger else None


def policy_dt(venv: VecEnv) -> float:
    """[s] between two policy steps (1 / the env's policy_frequency)."""
    return 1.0 / float(venv.get_attr("config", [0])[0]["policy_frequency"])


def wrap_observation(cfg: DictConfig, venv: VecEnv, perception: Perception | None = None,
                     reseed: int | None = None, detected: bool = False) -> VecEnv:
    """The main-process wrapper of `cfg.observation.name` around the workers' venv;
    `detected`: the workers put their frames' detections into `info` (FrameDetections)."""
    obs = cfg.observation
    if obs.name not in OBSERVATIONS:
        raise ConfigError(f"observation.name={obs.name!r}; choose from {', '.join(OBSERVATIONS)}")
    if obs.name == "pixels":
        from agents.image_obs import PixelsVecEnv

        pixels = PixelsVecEnv(venv, obs.width, obs.height, obs.grey, reseed)
        return VecTransposeImage(VecFrameStack(pixels, obs.n_stack))
    if obs.name in NEEDS_DETECTOR and perception is None:
        raise ValueError(f"observation={obs.name} needs a Perception (load_perception)")
    if obs.name == "embedding":
        from agents.image_obs import DetectorFramesVecEnv, EmbeddingVecEnv

        if obs.finetune:
            return DetectorFramesVecEnv(venv, perception.detector.preprocessor, reseed)
        return EmbeddingVecEnv(venv, perception.detector, obs.pool, reseed)
    if obs.name == "native":
        from agents.perceive import NativeVecEnv

        return NativeVecEnv(venv, reseed)
    layout = instantiate(obs.layout)
    if obs.name == "kinematics":
        source = "scene_objects" if obs.get("scope", "camera") == "all" else "objects"
        if obs.get("scope", "camera") not in ("camera", "all"):
            raise ConfigError(f"observation.scope={obs.scope!r}; choose camera or all")
        return KinematicsVecEnv(venv, layout, obs.min_visible, source, reseed)
    return ObjectsVecEnv(venv, layout, None if detected else perception.source,
                         instantiate(obs.tracker), policy_dt(venv), reseed)


def build_env(cfg: DictConfig, n_envs: int, perception: Perception | None = None,
              reseed: int | None = None, teacher: dict | None = None) -> VecEnv:
    """Workers + the observation wrapper(s). `reseed`: see ObservationVecEnv (evaluation);
    `teacher`: see make_vec_env."""
    detected = (n_envs > 1 and perception is not None
                and getattr(perception, "placement", "main") == "workers")
    venv = make_vec_env(cfg, n_envs, teacher, perception.spec if detected else None)
    try:
        return wrap_observation(cfg, venv, perception, reseed, detected)
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


def policy_kwargs(cfg: DictConfig, base: dict, perception: Perception | None) -> dict:
    """The agent's policy_kwargs for `cfg.observation`: embedding and pixels need their
    extractor (ConfigError naming it); finetune puts the detector into the extractor."""
    obs, kwargs = cfg.observation, dict(base)
    need = obs.get("extractor")
    if need is not None and cfg.extractor.path != need.path:
        raise ConfigError(f"observation={obs.name} needs extractor={need.name} (got extractor "
                          f"{cfg.extractor.path})")
    if obs.name == "embedding" and obs.finetune:
        from agents.detector_extractor import DetectorFeatures

        kwargs["features_extractor_class"] = DetectorFeatures
        kwargs["features_extractor_kwargs"] = {**kwargs.get("features_extractor_kwargs", {}),
                                               "checkpoint": perception.checkpoint,
                                               "pool": obs.pool}
        kwargs["normalize_images"] = False  # DetectorFeatures applies the detector's Normalize
    return kwargs


def build_agent(cfg: DictConfig, venv: VecEnv, tensorboard_log: str | None = None,
                perception: Perception | None = None) -> BaseAlgorithm:
    """The SB3 algorithm of `cfg.agent` on `venv`, with the run's seed, device and TB dir.

    Also checks that total_timesteps is a whole number of rollouts (SB3 never stops mid-rollout,
    so a run, resumed or not, would otherwise overshoot it).
    """
    from roadsight.device import resolve_device_name

    algorithm = instantiate(cfg.agent)  # `_partial_: true`: the class with its config bound
    kwargs = policy_kwargs(cfg, algorithm.keywords.get("policy_kwargs") or {}, perception)
    model = algorithm(env=venv, seed=cfg.seed, tensorboard_log=tensorboard_log,
                      device=resolve_device_name(cfg.device), policy_kwargs=kwargs)
    chunk = rollout_chunk(model)
    if cfg.total_timesteps % chunk:
        up = -(-cfg.total_timesteps // chunk) * chunk
        raise ConfigError(f"total_timesteps={cfg.total_timesteps} is not a multiple of the "
                          f"{chunk} steps {type(model).__name__} collects per update "
                          f"(n_envs={cfg.n_envs}); SB3 would stop at {up}: choose "
                          f"total_timesteps={up}")
    return model


LAYOUT_KEYS = ("layout", "pool", "finetune", "width", "height", "grey", "n_stack")
# agents.observations' column meanings; 2: the ego row's class columns hold its cruise setpoint
# and the lanes beside it (1: zeros). A policy trained on another version is refused.
LAYOUT_VERSION = 2


def observation_signature(cfg: DictConfig, space: gym.Space,
                          perception: Perception | None = None) -> dict:
    """What a policy's input is: the observation mode, its space and layout parameters (and,
    for embedding, the detector whose features it reads)."""
    obs = OmegaConf.to_container(cfg.observation, resolve=True)
    sig = {"observation": obs["name"], "shape": list(space.shape), "dtype": str(space.dtype)}
    if obs["name"] in OBJECT_LISTS:  # what the columns mean, beyond the shape
        sig["layout_version"] = LAYOUT_VERSION
    sig.update({k: obs[k] for k in LAYOUT_KEYS if k in obs})
    if obs["name"] == "embedding" and perception is not None:
        sig["detector_sha256"] = perception.sha256
    return sig


def check_observation(run_dir: str | Path, signature: dict) -> None:
    """ConfigError with the reason when the policy of `run_dir` (its observation.json) was
    trained on another observation layout than `signature` (observation_signature). The object
    lists of kinematics and objects share one layout: a policy may be run on either."""
    path = Path(run_dir) / OBSERVATION_FILE
    try:
        trained = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the observation the policy was trained on ({e}); "
                          f"is {run_dir} a `roadsight train` run directory?") from e
    a, b = trained.get("observation"), signature["observation"]
    if a != b and not (a in OBJECT_LISTS and b in OBJECT_LISTS):
        raise ConfigError(f"{path}: the policy was trained on observation={a}, not "
                          f"observation={b}; set observation={a}")
    for key in sorted(set(trained) | set(signature)):
        if key != "observation" and trained.get(key) != signature.get(key):
            raise ConfigError(f"{path}: the policy was trained on observation={a} with "
                              f"{key}={trained.get(key)}, this one has {key}={signature.get(key)}; "
                              f"use the run's observation settings")
