"""`roadsight eval run=TRAIN_OUT [checkpoint=best|last|FILE] scenario=NAME episodes=N seed=S
hydra.run.dir=DIR`, or `driver=idm|random` (with or without run=) for the scripted reference
drivers (conf/eval.yaml documents every key; agents/evaluation.py the episodes)."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from roadsight.device import set_torch_threads
from roadsight.io import RunRecord, check_writable
from roadsight.paths import CONF_DIR

log = logging.getLogger(__name__)
SHOWN = ("episodes", "return_mean", "crash_rate", "pedestrian_collision_rate",
         "at_fault_crash_rate", "mean_speed", "distance_mean", "min_ttc_mean",
         "pedestrian_near_misses", "crosswalk_violations", "detection_AP50", "detection_recall",
         "shield_intervention_rate")


def summary_table(metrics: dict, title: str):
    """A rich table of the main figures (with 95% intervals where metrics.json has them)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("metric", "value", "95% interval"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    rows = [(k, metrics[k]) for k in SHOWN if k in metrics]
    rows += [(f"crash: {k}", v) for k, v in metrics.get("crash_attribution", {}).items()]
    for key, value in rows:
        ci = metrics.get(f"{key}_ci95")
        table.add_row(key, "-" if value is None else f"{value:.4g}",
                      "" if ci is None else f"[{ci[0]:.3g}, {ci[1]:.3g}]")
    return table


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
def app(cfg: DictConfig) -> float:
    from agents.build import NEEDS_DETECTOR, load_perception
    from agents.eval_setup import (
        corruption_of,
        eval_config,
        policy_of,
        shield_of,
        write_artefacts,
    )
    from agents.evaluation import EvalOptions, build_eval_env, run_evaluation
    from agents.finished import config_digest, finished_metrics, relevant_config
    from agents.video import FrameLayout

    out = check_writable(Path(HydraConfig.get().runtime.output_dir))
    config = relevant_config(cfg)
    if cfg.skip_finished and (stored := finished_metrics(cfg, out, "return_mean")) is not None:
        return float(stored["return_mean"])  # a sweep picked up again: this job is done
    run = RunRecord(out, "eval", cfg.seed, cfg.device)
    set_torch_threads(cfg.threads)
    with run.reporting():
        choices = HydraConfig.get().runtime.choices
        run_cfg, camera = eval_config(cfg, choices.get("camera") or "bev")
        corruption = corruption_of(cfg)
        shield = shield_of(cfg, run_cfg, choices.get("driver"))
        perception = (load_perception(run_cfg, camera, out)
                      if run_cfg.observation.name in NEEDS_DETECTOR else None)
        ev = build_eval_env(run_cfg, perception, corruption, cfg.seed)
        try:
            policy, what = policy_of(cfg, run_cfg, ev, choices.get("driver"), perception)
            if shield is not None:
                from agents.shield import ShieldedPolicy

                policy = ShieldedPolicy(policy, shield)
                what["shield"] = choices.get("shield") or "as trained"
            opts = EvalOptions(cfg.episodes, cfg.videos, cfg.record_frames, cfg.n_boot, cfg.seed,
                               FrameLayout(**cfg.video), cfg.progress_bar)
            result = run_evaluation(ev, policy, out, opts, perception and perception.score_thresh)
        finally:
            ev.close()
        metrics = {**result.metrics, "policy": what.get("driver") or what["run"], **what,
                   "scenario": choices.get("scenario"), "env": run_cfg.env.id,
                   "observation": run_cfg.observation.name, "camera": camera,
                   "corruption": None if corruption is None else
                   {"name": corruption.name, "severity": corruption.severity},
                   "run_overrides": OmegaConf.to_container(cfg.run_overrides)
                   if cfg.run_overrides is not None else None}
        files = write_artefacts(out, metrics, result.rows, result.videos)
    # config: this command's own (its digest says whether a sweep job is done); policy_config:
    # what the episodes ran under (the run's config, with the scenario and run_overrides)
    run.finish(status="ok", episodes=metrics["episodes"], return_mean=metrics["return_mean"],
               crash_rate=metrics["crash_rate"], config_sha256=config_digest(config),
               config=config, policy_config=relevant_config(run_cfg))
    from rich.console import Console

    Console().print(summary_table(metrics, f"{metrics['policy']} on {metrics['scenario']}"))
    print(f"report: {files.report}\nvideos: {', '.join(map(str, files.videos)) or 'none'}")
    return float(metrics["return_mean"])


def main() -> None:
    """Console entry point."""
    app()  # roadsight.cli checks the overrides (one-line errors) before Hydra
