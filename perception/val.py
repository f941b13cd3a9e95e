"""`roadsight val-detector checkpoint=FILE data=DIR hydra.run.dir=OUT`: COCO mAP of a detector.

Writes OUT/metrics.json (mAP50, mAP50_95, per_class.<name>.AP50/AP50_95, precision, recall,
recall_max, by_range.<band>, by_camera.<name> for a rig, by_height.<band>, by_visible.<band>,
with bootstrap=N the AP50 intervals bootstrap.mAP50 and bootstrap.per_class.<name>.AP50),
OUT/per_class.csv, OUT/pr_curve.png, OUT/run.json, and what was scored in COCO format
(OUT/ground_truth.json, ignored objects iscrowd=1, with each object's visible fraction;
OUT/detections.json); prints tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from perception.checkpoint import camera_choice
from roadsight.io import RunRecord, atomic_write_json, check_writable
from roadsight.paths import CONF_DIR

log = logging.getLogger(__name__)


def validate(cfg: DictConfig, out: Path, camera: str = "bev") -> dict:
    """Load the detector and data, score them, write the artefacts; return metrics."""
    from rich.console import Console

    from perception.backends import load_detector
    from perception.bootstrap import bootstrap_ap50, check_bootstrap
    from perception.checkpoint import resolve_checkpoint
    from perception.coco_eval import (
        RECALL_ATTRIBUTES,
        attribute_bands,
        check_loose_iou,
        coco_ground_truth,
        coco_results,
        evaluate,
        evaluate_by_camera,
        evaluate_by_range,
        predict_records,
        range_bands,
        recall_by,
    )
    from perception.data import load_coco_dirs
    from perception.decode import DecodeOptions, describe_thresh
    from perception.report import (
        ap_table,
        bootstrap_table,
        plot_pr_curves,
        recall_table,
        rich_table,
        write_csv,
    )

    if cfg.get("threads"):
        import torch

        torch.set_num_threads(cfg.threads)
    if cfg.range_bins:
        range_bands(list(cfg.range_bins))  # a bad value fails before any inference
    for attribute, spec in RECALL_ATTRIBUTES.items():
        if cfg[spec.key]:
            attribute_bands(attribute, list(cfg[spec.key]))
    check_loose_iou(cfg.loose_iou)
    check_bootstrap(cfg.bootstrap, cfg.bootstrap_level, cfg.bootstrap_by)
    # decoded at a low threshold so that COCO sees the whole ranking; P/R are read at
    # cfg.score_thresh, which from_cfg checks with the other options, before anything is loaded
    options = DecodeOptions.from_cfg(cfg, score_thresh=0.001)
    ckpt = resolve_checkpoint(cfg.checkpoint, camera)
    detector, _ = load_detector(ckpt, cfg.backend, cfg.onnx, cfg.device, options, export_dir=out)
    data = OmegaConf.to_container(cfg.data) if OmegaConf.is_list(cfg.data) else cfg.data
    records = load_coco_dirs(data)
    corruption = instantiate(cfg.corruption) if cfg.corruption else None
    if corruption is not None and corruption.severity == 0:
        corruption = None
    detections = predict_records(detector, records, cfg.batch_size, corruption)
    result = evaluate(records, detections, cfg.min_visible, cfg.score_thresh, cfg.min_height,
                      loose_iou=cfg.loose_iou)
    by_range = evaluate_by_range(records, detections, list(cfg.range_bins), cfg.min_visible,
                                 cfg.min_height, cfg.loose_iou) if cfg.range_bins else None
    by_camera = evaluate_by_camera(records, detections, cfg.min_visible, cfg.min_height,
                                   cfg.loose_iou)
    recalls = {attribute: recall_by(records, detections, attribute, list(cfg[spec.key]),
                                    cfg.min_visible, cfg.score_thresh, cfg.loose_iou)
               for attribute, spec in RECALL_ATTRIBUTES.items() if cfg[spec.key]}
    cond = "clean" if corruption is None else f"{corruption.name} severity {corruption.severity}"
    metrics = {**result.metrics, "checkpoint": str(ckpt), "backend": cfg.backend,
               "peak_iou": cfg.peak_iou, "snap_px": cfg.snap_px,
               "corruption": None if corruption is None else
               {"name": corruption.name, "severity": corruption.severity},
               "data": data, "by_range": by_range, "by_camera": by_camera,
               "by_height": recalls.get("height"),
               "by_visible": recalls.get("visible"),
               "bootstrap": bootstrap_ap50(records, detections, cfg.bootstrap, cfg.bootstrap_seed,
                                           cfg.bootstrap_level, cfg.min_visible, cfg.min_height,
                                           cfg.bootstrap_by) if cfg.bootstrap else None}
    atomic_write_json(out / "metrics.json", metrics)
    # what was scored, for analysis with any COCO tool: COCO(ground_truth).loadRes(detections)
    atomic_write_json(out / "ground_truth.json",
                      coco_ground_truth(records, cfg.min_visible, cfg.min_height))
    atomic_write_json(out / "detections.json", coco_results(detections))
    write_csv(result, out / "per_class.csv")
    plot_pr_curves(result, out / "pr_curve.png", f"PR at IoU 0.5 ({cond})")
    console = Console()
    console.print(rich_table(result, f"{ckpt.name} on {len(records)} images ({cond})"))
    if by_range:
        console.print(ap_table(by_range, "AP50 by distance from the ego"))
    if by_camera:
        console.print(ap_table(by_camera, "AP50 by camera of the rig", "camera"))
    for attribute, bands in recalls.items():
        console.print(recall_table(bands, f"recall at score >= {describe_thresh(cfg.score_thresh)} "
                                          f"by {RECALL_ATTRIBUTES[attribute].title}", attribute))
    if metrics["bootstrap"]:
        console.print(bootstrap_table(metrics, metrics["bootstrap"]))
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="val_detector")
def main(cfg: DictConfig) -> float | None:
    out = check_writable(Path(HydraConfig.get().runtime.output_dir))
    run = RunRecord(out, "val-detector", cfg.corruption.get("seed") if cfg.corruption else None,
                    cfg.device)
    with run.reporting():
        metrics = validate(cfg, out, camera_choice())
    run.finish(status="ok", mAP50=metrics["mAP50"])
    return metrics["mAP50"]
