"""Train a policy from the `train` config into a run directory (the body of `roadsight train`).

OUT/model.zip (final), best_model.zip (best evaluation), checkpoints/, tb/; returns the final
evaluation's metrics (`roadsight eval`'s, agents.evaluation) with the detector's provenance.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.vec_env import VecEnv

from agents.build import (
    NEEDS_DETECTOR,
    OBSERVATION_FILE,
    Perception,
    build_agent,
    build_env,
    check_observation,
    load_perception,
    observation_signature,
    teacher_config,
)
from agents.callbacks import (
    AtomicCheckpoint,
    SaveBest,
    ShieldMetrics,
    TrainClock,
    checkpoints,
    save_model,
)
from agents.perception_metrics import PerceptionMetrics
from agents.seeding import EVAL_SEED_BASE, train_seed_base
from agents.shield import GapShield, ShieldVecEnv, build_shield
from roadsight.device import set_torch_threads
from roadsight.errors import ConfigError
from roadsight.io import atomic_write_json

log = logging.getLogger(__name__)


def check_budget(cfg: DictConfig) -> None:
    """ConfigError naming the key for counts that must be positive (total_timesteps may be 0
    after a teacher: the DAgger student alone is the run's policy)."""
    for key in ("total_timesteps", "n_envs", "eval_episodes"):
        value = cfg[key]
        least = 0 if key == "total_timesteps" and teacher_config(cfg) is not None else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{key}={value!r}: need a whole number >= {least}"
                              + (" (0 only with imitation.teacher: the student alone)"
                                 if key == "total_timesteps" and value == 0 else ""))
    for key in ("eval_freq", "checkpoint_freq", "checkpoint_keep"):
        if not isinstance(cfg[key], int) or cfg[key] < 0:
            raise ConfigError(f"{key}={cfg[key]!r}: need a whole number >= 0 (0: never)")


def final_evaluation(cfg: DictConfig, model, perception: Perception | None,
                     episodes_csv: Path) -> dict:
    """`model`'s deterministic policy on the eval seeds through `roadsight eval`'s code
    (agents.evaluation, no videos), behind the run's shield if it has one: the same safety,
    attribution and detection metrics as an eval run's metrics.json; one row per episode into
    `episodes_csv`."""
    from agents.evaluation import EvalOptions, ModelPolicy, build_eval_env, run_evaluation
    from agents.metrics import write_episodes_csv
    from agents.shield import ShieldedPolicy

    policy, shield = ModelPolicy(model), build_shield(cfg.get("shield"), cfg)
    if shield is not None:
        policy = ShieldedPolicy(policy, shield)
    ev = build_eval_env(cfg, perception, None, 0)
    try:
        result = run_evaluation(ev, policy, episodes_csv.parent,
                                EvalOptions(episodes=cfg.eval_episodes, videos=0,
                                            progress=False),
                                perception.score_thresh if perception is not None else None)
    finally:
        ev.close()
    write_episodes_csv(result.rows, episodes_csv)
    return result.metrics


DAGGER_STATE = "checkpoints/dagger.pt"  # in OUT: the rounds of imitation done so far
IMITATION_FILES = ("imitation_model.zip", "imitation.json")  # in OUT: imitation finished


def imitate(cfg: DictConfig, model, venv, perception: Perception | None, out: Path):
    """DAgger from the teacher (agents.imitation) before RL; returns the imitating model.

    OUT/imitation_model.zip + imitation.json: the student before any RL and its evaluation.
    With `cfg.resume`, a finished imitation is loaded instead of repeated, and an interrupted
    one continues after its last round (OUT/checkpoints/dagger.pt)."""
    from agents.imitation import DaggerOptions, dagger

    if cfg.resume and all((out / name).is_file() for name in IMITATION_FILES):
        log.info("resuming after imitation: %s", out / IMITATION_FILES[0])
        return type(model).load(out / IMITATION_FILES[0], env=venv, device=model.device,
                                tensorboard_log=str(out / "tb"))
    state = out / DAGGER_STATE
    if not cfg.resume:
        state.unlink(missing_ok=True)  # a fresh run does not continue an old run's rounds
    options = DaggerOptions(**{k: v for k, v in cfg.imitation.items()
                               if k not in ("teacher", "teacher_kwargs")})
    stats = dagger(model, venv, options, cfg.seed, cfg.progress_bar, state=state,
                   reseed=lambda steps: venv.seed(train_seed_base(cfg.seed, steps, cfg.n_envs)),
                   tb_log=out / "tb")
    imitation = {"teacher": cfg.imitation.teacher, "steps": options.steps, **stats}
    save_model(model, out / IMITATION_FILES[0])  # the student before any RL
    imitation["eval"] = final_evaluation(cfg, model, perception, out / "imitation_episodes.csv")
    log.info("imitation alone: return %.2f, crash rate %.2f on the eval seeds",
             imitation["eval"]["return_mean"], imitation["eval"]["crash_rate"])
    atomic_write_json(out / IMITATION_FILES[1], imitation)
    state.unlink(missing_ok=True)  # imitation_model.zip holds its result now
    return model


def shielded(venv: VecEnv, shield: GapShield | None) -> VecEnv:
    """`venv` behind `shield` (ShieldVecEnv), or `venv` itself without one."""
    return venv if shield is None else ShieldVecEnv(venv, shield)


def train_policy(cfg: DictConfig, out: Path, camera: str = "bev") -> dict:
    """Train (or with `cfg.resume`, continue) a policy into `out`; return the final metrics."""
    check_budget(cfg)
    set_torch_threads(cfg.get("threads"))
    perception: Perception | None = None
    if cfg.observation.name in NEEDS_DETECTOR:
        perception = load_perception(cfg, camera, out)
    last = checkpoints(out / "checkpoints")[-1:] if cfg.resume else []
    teacher = teacher_config(cfg)
    imitated = teacher is not None and any(
        (out / name).is_file() for name in (DAGGER_STATE, IMITATION_FILES[0]))
    if cfg.resume and not last and not imitated:
        log.warning("resume=true but %s holds no checkpoint: starting afresh", out / "checkpoints")
    shield = build_shield(cfg.get("shield"), cfg)  # before any worker starts
    venv = shielded(build_env(cfg, cfg.n_envs, perception, teacher=teacher), shield)
    eval_env = None  # EvalCallback's env, only when it evaluates during training
    try:
        model = build_agent(cfg, venv, str(out / "tb"), perception)
        signature = observation_signature(cfg, model.observation_space, perception)
        if last:  # the checkpoint's policy must read what this config builds
            check_observation(out, signature)
        atomic_write_json(out / OBSERVATION_FILE, signature)
        if last:
            model = type(model).load(last[0].model, env=venv, device=model.device,
                                     tensorboard_log=str(out / "tb"))
            if last[0].replay_buffer is not None:
                model.load_replay_buffer(last[0].replay_buffer)
            log.info("resuming from %s at step %d", last[0].model, model.num_timesteps)
        done = model.num_timesteps if last else 0
        # imitation's env steps came first: a resumed run's episodes start after them
        before = int(cfg.imitation.steps) if teacher is not None else 0
        venv.seed(train_seed_base(cfg.seed, before + done if last else 0, cfg.n_envs))
        if teacher is not None and not last:  # a resumed run's policy has imitated already
            model = imitate(cfg, model, venv, perception, out)
        clock = TrainClock(out / "train_time.json", resumed=bool(last))
        callbacks = [AtomicCheckpoint(out / "checkpoints", cfg.checkpoint_freq,
                                     cfg.get("checkpoint_keep", 0)),
                     PerceptionMetrics(), clock]
        if shield is not None:
            callbacks.append(ShieldMetrics())
        evaluator = None
        if cfg.eval_freq:
            eval_env = shielded(build_env(cfg, 1, perception, reseed=EVAL_SEED_BASE), shield)
            evaluator = EvalCallback(eval_env, n_eval_episodes=cfg.eval_episodes,
                                     eval_freq=max(cfg.eval_freq // cfg.n_envs, 1),
                                     callback_on_new_best=SaveBest(out / "best_model.zip"),
                                     best_model_save_path=None, verbose=0)
            callbacks.append(evaluator)
        if cfg.total_timesteps > done:
            model.learn(cfg.total_timesteps - done, callback=callbacks,
                        reset_num_timesteps=not last, progress_bar=cfg.progress_bar,
                        tb_log_name="run")
        save_model(model, out / "model.zip")
        if cfg.total_timesteps == 0:  # no RL: the student is the policy, evaluated already
            metrics = json.loads((out / IMITATION_FILES[1]).read_text())["eval"]
            shutil.copyfile(out / "imitation_episodes.csv", out / ".episodes.csv.tmp")
            (out / ".episodes.csv.tmp").replace(out / "episodes.csv")
        else:
            metrics = final_evaluation(cfg, model, perception, out / "episodes.csv")
        if (out / "train_time.json").is_file():  # wall time in learn, over every sitting
            seconds = json.loads((out / "train_time.json").read_text())["seconds"]
            metrics["train_seconds"] = seconds
            metrics["train_steps_per_second"] = model.num_timesteps / max(seconds, 1e-9)
        best = evaluator.best_mean_reward if evaluator is not None else -float("inf")
        if not (out / "best_model.zip").is_file() or metrics["return_mean"] > best:
            shutil.copyfile(out / "model.zip", out / ".best_model.zip.tmp")
            (out / ".best_model.zip.tmp").replace(out / "best_model.zip")
    finally:
        venv.close()
        if eval_env is not None:
            eval_env.close()
    metrics["total_timesteps"] = int(model.num_timesteps)
    if perception is not None:
        metrics["detector"] = perception.to_json()
    if (out / "imitation.json").is_file():  # env steps the teacher's labels took, besides RL's
        metrics["imitation"] = json.loads((out / "imitation.json").read_text())
    return metrics
