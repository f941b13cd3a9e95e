"""Resumable sweeps of `roadsight train`: skip a job whose run directory already holds a finished
run of the same config, and continue an interrupted one from its last checkpoint.

Hydra rewrites OUT/.hydra/config.yaml before the job starts, so it cannot tell which config
produced the stored results: a finished run records a digest of its result-relevant config in
run.json (`config_sha256`) instead, and a later run compares against that.
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
                "checkpoint_keep", "perception.placement", "perception.backend")
RESUME_CHOICES = "true, false, auto"


def config_digest(cfg: DictConfig) -> str:
    """sha256 of the resolved config without IGNORED_KEYS (the `hydra` node is never in it)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    for key in (*IGNORED_KEYS, "hydra"):
        *parents, leaf = key.split(".")
        node = data
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def finished_metrics(cfg: DictConfig, out: Path) -> dict | None:
    """The stored metrics when `out` holds a finished run of this config (run.json status ok
    with the same config digest, metrics.json holding cfg.optimized_metric), else None."""
    try:
        run = json.loads((out / "run.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if run.get("status") != "ok" or run.get("config_sha256") != config_digest(cfg):
        return None
    if cfg.optimized_metric not in metrics:
        return None
    log.info("%s already holds a finished run of this config (ended %s): not training again",
             out, run.get("end"))
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
