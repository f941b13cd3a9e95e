"""What `roadsight eval` evaluates: a trained run's own config and model (or a scripted driver),
the scenario on top of it, the corruption; and the artefacts it writes.

Every check on the input runs before the first episode, so bad input leaves no artefact.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from agents.build import OBSERVATION_FILE, Perception, check_observation, observation_signature
from agents.evaluation import DriverPolicy, EvalEnv, ModelPolicy, Policy
from agents.finished import ADDED_KEYS
from roadsight.errors import ConfigError

log = logging.getLogger(__name__)
CHECKPOINTS = {"best": "best_model.zip", "last": "model.zip"}


def run_config(run: str | Path) -> tuple[DictConfig, str]:
    """A `roadsight train` directory's resolved config and its camera choice."""
    run = Path(run)
    path = run / ".hydra" / "config.yaml"
    if not run.is_dir():
        raise ConfigError(f"run={run}: no such directory; pass run=OUT of a roadsight train run")
    if not path.is_file():
        raise ConfigError(f"run={run}: {path} does not exist; pass run=OUT of a roadsight train "
                          f"run (it writes OUT/.hydra/config.yaml)")
    cfg = OmegaConf.load(path)
    hydra_yaml = run / ".hydra" / "hydra.yaml"
    camera = "bev"
    if hydra_yaml.is_file():
        camera = OmegaConf.load(hydra_yaml).hydra.runtime.choices.get("camera") or camera
    return cfg, camera


def checkpoint_path(run: str | Path, checkpoint: str) -> Path:
    """best -> RUN/best_model.zip, last -> RUN/model.zip, else a file (as given, or in RUN)."""
    run = Path(run)
    if checkpoint in CHECKPOINTS:
        path = run / CHECKPOINTS[checkpoint]
    else:
        path = Path(checkpoint) if Path(checkpoint).is_file() else run / checkpoint
    if not path.is_file():
        raise ConfigError(f"checkpoint={checkpoint}: {path} does not exist; choose best, last "
                          f"or a model .zip file ({run} holds "
                          f"{', '.join(sorted(p.name for p in run.glob('*.zip'))) or 'none'})")
    return path


def eval_config(cfg: DictConfig, camera: str = "bev") -> tuple[DictConfig, str]:
    """The config the policy runs under: the run's own (or, for a driver without run=, the eval
    config's env/camera/observation), with the scenario's env.config keys and eval's device."""
    if cfg.get("run"):
        base, camera = run_config(cfg.run)
        if cfg.get("driver") is None:
            checkpoint_path(cfg.run, str(cfg.checkpoint))  # before any env starts
    elif cfg.get("driver") is not None:
        base = cfg
    else:
        raise ConfigError("pass run=OUT (a roadsight train directory) or driver=idm|random")
    base = OmegaConf.create(OmegaConf.to_container(base, resolve=True))
    scenario = cfg.scenario
    with open_dict(base):
        for key, value in (scenario.get("env") or {}).items():
            base.env.config[key] = value
        base.device = cfg.device
        for key, value in ADDED_KEYS.items():  # a run from before the key: what it ran with
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(base, parent)
            if OmegaConf.is_dict(node) and leaf not in node:
                node[leaf] = value
    apply_run_overrides(base, cfg.get("run_overrides") or {}, cfg.get("run") or "the eval")
    return base, camera


def apply_run_overrides(base: DictConfig, overrides, owner: str) -> None:
    """`run_overrides={KEY: VALUE, ...}`: set existing dotted keys of the run's config for this
    evaluation only (a what-if on a trained policy: the tracker, the detector's thresholds, an
    env setting). A key the config does not hold is a ConfigError naming it and what the deepest
    existing part of it holds; the observation's shape stays checked against the run's
    (observation.json)."""
    if not OmegaConf.is_dict(overrides) and not isinstance(overrides, dict):
        raise ConfigError(f"run_overrides={overrides!r}: give a dict of the run's config keys, "
                          f"e.g. 'run_overrides={{observation.tracker.min_hits:1}}'")
    missing = object()
    for key, value in overrides.items():
        if OmegaConf.select(base, str(key), default=missing) is missing:
            parts = str(key).split(".")  # the deepest part of the key that exists
            depth = next(i for i in range(len(parts) - 1, -1, -1)
                         if i == 0 or OmegaConf.select(base, ".".join(parts[:i]),
                                                       default=missing) is not missing)
            parent = ".".join(parts[:depth])
            node = OmegaConf.select(base, parent) if parent else base
            keys = ", ".join(map(str, node.keys())) if OmegaConf.is_dict(node) else "no keys"
            raise ConfigError(f"run_overrides: {key}: not a key of {owner}'s config; "
                              f"{parent or 'the top level'} holds {keys}")
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        OmegaConf.update(base, str(key), value, merge=False)


def corruption_of(cfg: DictConfig):
    """`corruption=` when its severity is above 0, else the scenario's (night), else None."""
    if cfg.get("corruption") and cfg.corruption.severity > 0:
        return instantiate(cfg.corruption)
    if cfg.scenario.get("corruption"):
        return instantiate(cfg.scenario.corruption)
    return None


def policy_of(cfg: DictConfig, run_cfg: DictConfig, ev: EvalEnv, driver: str | None = None,
              perception: Perception | None = None) -> tuple[Policy, dict]:
    """The driver of `driver=` (named `driver`), else the run's model at `checkpoint=` (checked
    against the env's observation and action spaces); and what it is, for metrics.json."""
    if cfg.get("driver") is not None:
        return DriverPolicy(instantiate(cfg.driver)), {"driver": driver or cfg.driver._target_}
    path = checkpoint_path(cfg.run, str(cfg.checkpoint))
    algorithm = instantiate(run_cfg.agent).func  # `_partial_: true`: the SB3 class
    try:
        model = algorithm.load(path, device="cpu" if cfg.device == "auto" else cfg.device)
    except Exception as e:  # not a zip of this algorithm
        raise ConfigError(f"checkpoint={path}: not a {algorithm.__name__} model ({e})") from e
    run = Path(cfg.run)
    if (run / OBSERVATION_FILE).is_file():  # runs since observation.json was introduced
        check_observation(run, observation_signature(run_cfg, ev.venv.observation_space,
                                                     perception))
    for what in ("observation_space", "action_space"):
        have, want = getattr(model, what), getattr(ev.venv, what)
        if have != want:
            raise ConfigError(f"checkpoint={path}: its {what} {_space(have)} is not the run's "
                              f"{_space(want)} "
                              f"(env {run_cfg.env.id}, observation={run_cfg.observation.name}); "
                              f"pass a checkpoint of this run")
    return ModelPolicy(model, bool(cfg.deterministic)), {"run": str(cfg.run),
                                                          "checkpoint": str(path)}


def shield_of(cfg: DictConfig, run_cfg: DictConfig, driver: str | None = None):
    """The shield for this evaluation, or None: `shield=` (conf/shield/; `off`: none), else the
    one the run was trained with (a policy trained behind a shield is evaluated behind it; not
    for a scripted `driver`)."""
    from agents.shield import build_shield

    chosen = cfg.get("shield")
    if chosen is None and driver is None:
        chosen = run_cfg.get("shield")
    return build_shield(chosen, run_cfg)


def _space(space) -> str:
    """A space in one line: Box(shape, dtype) without its bounds, else its repr."""
    shape = getattr(space, "shape", None)
    if type(space).__name__ == "Box":
        return f"Box{tuple(shape)} {space.dtype}"
    return " ".join(str(space).split())


@dataclass
class Artefacts:
    metrics: Path
    episodes: Path
    report: Path
    videos: list[Path]


def write_artefacts(out: Path, metrics: dict, rows: list, videos: list[Path]) -> Artefacts:
    """DIR/metrics.json, DIR/episodes.csv, DIR/episodes.png, DIR/report.html (videos are
    already written)."""
    from agents.eval_plots import plot_episodes
    from agents.evaluation import rows_as_dicts
    from agents.metrics import write_episodes_csv
    from agents.report import write_report
    from roadsight.io import atomic_write_json

    write_episodes_csv(rows, out / "episodes.csv")
    atomic_write_json(out / "metrics.json", json.loads(json.dumps(metrics, default=_plain)))
    plot = plot_episodes(rows, out / "episodes.png")
    report = write_report(out, metrics, rows_as_dicts(rows), videos, [plot],
                          title=f"roadsight eval: {metrics.get('policy', '')}")
    return Artefacts(out / "metrics.json", out / "episodes.csv", report, videos)


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
