"""Resumable sweeps of `roadsight train`: skip a job whose run directory already holds a finished
run of the same config, and continue an interrupted one from its last checkpoint.

Hydra rewrites OUT/.hydra/config.yaml before the job starts, so it cannot tell which config
produced the stored results: a finished run records its result-relevant config in run.json
(`config`, with its digest `config_sha256`), and a later run compares digests recomputed with
today's IGNORED_KEYS, so a key that joins IGNORED_KEYS later does not unfinish older runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from agents.callbacks import checkpoints
from roadsight.errors import ConfigError

log = logging.getLogger(__name__)
# keys that do not change what a run learns or how it scores: a finished run stays finished
IGNORED_KEYS = ("device", "threads", "progress_bar", "resume", "checkpoint_freq",
                "checkpoint_keep", "perception.placement", "perception.backend",
                "skip_finished")
# keys added after runs were kept, with the value those runs ran with: at that value a key
# counts as absent, so a finished run from before it stays finished
ADDED_KEYS = {"perception.detector": "model", "imitation.action_weights": None,
              "driver.overtake_gain": None, "shield.stopping_gap": False, "shield.lead_dec": 6.0,
              "shield.cut_in_braking": None}
RESUME_CHOICES = "true, false, auto"


def relevant_config(cfg: DictConfig | dict) -> dict:
    """The resolved config without IGNORED_KEYS, the `hydra` node and ADDED_KEYS at their
    earlier value: what a run's results depend on."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(data, dict)
    data = json.loads(json.dumps(data, default=str))  # a deep copy; the caller's stays whole
    for key in (*IGNORED_KEYS, "hydra", *ADDED_KEYS):
        *parents, leaf = key.split(".")
        node = data
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict) and (key not in ADDED_KEYS or node.get(leaf) == ADDED_KEYS[key]):
            node.pop(leaf, None)
    return data


def config_digest(cfg: DictConfig | dict) -> str:
    """sha256 of relevant_config(cfg)."""
    return hashlib.sha256(json.dumps(relevant_config(cfg), sort_keys=True).encode()).hexdigest()


def finished_metrics(cfg: DictConfig, out: Path, metric: str | None = None) -> dict | None:
    """The stored metrics when `out` holds a finished run of this config (run.json status ok
    with the same config digest, metrics.json holding `metric`, default cfg.optimized_metric),
    else None. The stored digest is recomputed from run.json's `config` where it has one."""
    metric = metric or cfg.optimized_metric
    try:
        run = json.loads((out / "run.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    stored = config_digest(run["config"]) if "config" in run else run.get("config_sha256")
    if run.get("status") != "ok" or stored != config_digest(cfg):
        return None
    if metric not in metrics:
        return None
    log.info("%s already holds a finished %s of this config (ended %s): not running it again",
             out, run.get("command", "run"), run.get("end"))
    return metrics


def resume_flag(value: object, out: Path) -> bool:
    """`resume` as a bool: `auto` resumes when OUT holds a checkpoint, or imitation's rounds or
    result (agents.training.DAGGER_STATE, IMITATION_FILES)."""
    from agents.training import DAGGER_STATE, IMITATION_FILES

    if isinstance(value, bool):
        return value
    if value == "auto":
        found = [c.model for c in checkpoints(out / "checkpoints")][-1:]
        found = found or [p for p in (out / DAGGER_STATE, out / IMITATION_FILES[0]) if p.is_file()]
        if found:
            log.info("resume=auto: continuing from %s", found[-1])
        return bool(found)
    raise ConfigError(f"resume={value!r}: choose from {RESUME_CHOICES}")
