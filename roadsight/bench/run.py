"""`roadsight bench`: run benchmark suites side by side and print measured ratios."""

from __future__ import annotations

import platform
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from roadsight.bench.report import print_suite
from roadsight.errors import ConfigError
from roadsight.io import RunRecord, atomic_write_json
from roadsight.paths import CONF_DIR

SUITES = {
    "sim": "roadsight.bench.sim_speed:run_sim_suite",
    "cameras": "roadsight.bench.camera_cost:run_camera_suite",
    "detector": "roadsight.bench.detector_latency:run_detector_suite",
    "fairness": "roadsight.bench.fairness:run_fairness_suite",
    "sweep": "roadsight.bench.sweep:run_sweep_suite",
    "train": "roadsight.bench.train_speed:run_train_suite",
    "gpu": "roadsight.bench.gpu:run_gpu_suite",
}


def _suite(name: str):
    if name not in SUITES:
        raise ConfigError(f"suites: unknown suite {name!r}; valid: {', '.join(SUITES)}")
    import importlib

    module, func = SUITES[name].split(":")
    return getattr(importlib.import_module(module), func)


def machine() -> dict:
    import os

    import torch

    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="bench")
def main(cfg: DictConfig) -> None:
    out_dir = HydraConfig.get().runtime.output_dir
    run = RunRecord(out_dir, "bench", cfg.seed)
    with run.reporting():
        funcs = {name: _suite(name) for name in cfg.suites}  # a bad name fails before any work
        results = {"machine": machine(), "suites": {}}
        print(results["machine"])
        for name, func in funcs.items():
            kwargs = OmegaConf.to_container(cfg[name], resolve=True)
            results["suites"][name] = func(**kwargs, seed=cfg.seed)
            print_suite(results["suites"][name])
    atomic_write_json(f"{out_dir}/metrics.json", results)
    run.finish("ok")
