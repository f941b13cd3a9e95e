"""`roadsight train-detector data=DIR val_data=DIR epochs=N hydra.run.dir=OUT`."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from roadsight.io import RunRecord, atomic_write_json, check_writable
from roadsight.paths import CONF_DIR

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_detector")
def main(cfg: DictConfig) -> float | None:
    from perception.trainer import train_detector

    out = check_writable(Path(HydraConfig.get().runtime.output_dir))
    run = RunRecord(out, "train-detector", cfg.seed, cfg.device)
    with run.reporting():
        metrics = train_detector(cfg, out)
    atomic_write_json(out / "metrics.json", metrics)
    run.finish(status="ok", best_mAP50=metrics["best_mAP50"])
    log.info("best val mAP50 %s; checkpoints in %s", metrics["best_mAP50"], out)
    return metrics[cfg.optimized_metric]
