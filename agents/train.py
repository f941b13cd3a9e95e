"""`roadsight train env=urban_crossing camera=bev observation=objects agent=ppo
total_timesteps=N n_envs=K seed=S hydra.run.dir=OUT` (conf/train.yaml documents every key)."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from roadsight.io import RunRecord, atomic_write_json, check_writable
from roadsight.paths import CONF_DIR

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def app(cfg: DictConfig) -> float:
    from agents.finished import config_digest, finished_metrics, relevant_config, resume_flag
    from agents.training import train_policy

    out = check_writable(Path(HydraConfig.get().runtime.output_dir))  # before any training
    config = relevant_config(cfg)  # as composed, before training fills it in
    if (stored := finished_metrics(cfg, out)) is not None:  # a resumed sweep: done already
        return float(stored[cfg.optimized_metric])
    run = RunRecord(out, "train", cfg.seed, cfg.device)
    with run.reporting():
        camera = HydraConfig.get().runtime.choices.get("camera") or "bev"
        cfg.resume = resume_flag(cfg.resume, out)  # auto: when OUT holds checkpoints
        metrics = train_policy(cfg, out, camera)
        if cfg.optimized_metric not in metrics:
            from roadsight.errors import ConfigError

            raise ConfigError(f"optimized_metric={cfg.optimized_metric!r} is not a metric; "
                              f"choose from {', '.join(sorted(metrics))}")
    atomic_write_json(out / "metrics.json", metrics)
    run.finish(status="ok", total_timesteps=metrics["total_timesteps"],
               return_mean=metrics["return_mean"], detector=metrics.get("detector"),
               config_sha256=config_digest(config), config=config)
    log.info("return %.2f +- %.2f, crash rate %.2f; run in %s", metrics["return_mean"],
             metrics["return_std"], metrics["crash_rate"], out)
    return float(metrics[cfg.optimized_metric])


def main() -> None:
    """Console entry point (roadsight.cli checks the overrides, one-line errors, before Hydra)."""
    app()
