"""`roadsight val-detector checkpoint=FILE data=DIR hydra.run.dir=OUT`: COCO mAP of a detector.

Writes OUT/metrics.json (mAP50, mAP50_95, per_class.<name>.AP50/AP50_95, precision, recall,
recall_max, by_range.<band>, by_camera.<name> for a rig, by_height.<band>, by_visible.<band>,
with bootstrap=N the AP50 intervals bootstrap.mAP50 and bootstrap.per_class.<name>.AP50),
OUT/per_class.csv, OUT/pr_curve.png, OUT/run.json, and what was scored in COCO format
(OUT/ground_truth.json, ignored objects iscrowd=1, with each object's visible fraction;
OUT/detections.json); prints tables. Refuses data from a camera other than the checkpoint's
(`perception.provenance`; check_camera=false scores it anyway). `write_thresholds=true` stores
each class's F1-best score threshold in the checkpoint (atomically), where decoding with
`score_thresh: null` (the default) finds it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from perception.checkpoint import camera_choice, update_checkpoint
from perception.provenance import check_chosen_camera, check_data
from roadsight.device import set_torch_threads
from roadsight.errors import ConfigError
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

    set_torch_threads(cfg.get("threads"))
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
    corruption = instantiate(cfg.corruption) if cfg.corruption else None
    if corruption is not None and corruption.severity == 0:
        corruption = None
    check_write_thresholds(cfg.get("write_thresholds", False), corruption)
    ckpt = resolve_checkpoint(cfg.checkpoint, camera)
    detector, state = load_detector(ckpt, cfg.backend, cfg.onnx, cfg.device, options,
                                    export_dir=out)
    data = OmegaConf.to_container(cfg.data) if OmegaConf.is_list(cfg.data) else cfg.data
    if cfg.get("check_camera", True):
        check_chosen_camera(state, cfg.get("camera"), ckpt)
        check_data(state, data, ckpt)
    # P/R operating point: score_thresh, or (null) the checkpoint's stored thresholds, else 0.3
    score_thresh = DecodeOptions(cfg.score_thresh).for_checkpoint(state).thresh
    records = load_coco_dirs(data)
    detections = predict_records(detector, records, cfg.batch_size, corruption)
    result = evaluate(records, detections, cfg.min_visible, score_thresh, cfg.min_height,
                      loose_iou=cfg.loose_iou)
    by_range = evaluate_by_range(records, detections, list(cfg.range_bins), cfg.min_visible,
                                 cfg.min_height, cfg.loose_iou) if cfg.range_bins else None
    by_camera = evaluate_by_camera(records, detections, cfg.min_visible, cfg.min_height,
                                   cfg.loose_iou)
    recalls = {attribute: recall_by(records, detections, attribute, list(cfg[spec.key]),
                                    cfg.min_visible, score_thresh, cfg.loose_iou)
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
    if cfg.get("write_thresholds", False):
        metrics["stored_score_thresh"] = write_thresholds(ckpt, result.metrics, data, cfg)
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
        console.print(recall_table(bands, f"recall at score >= {describe_thresh(score_thresh)} "
                                          f"by {RECALL_ATTRIBUTES[attribute].title}", attribute))
    if metrics["bootstrap"]:
        console.print(bootstrap_table(metrics, metrics["bootstrap"]))
    return metrics


def check_write_thresholds(write: bool, corruption) -> None:
    """`write_thresholds` must be true or false, and scores under a corruption never become a
    checkpoint's thresholds: a ConfigError names the key otherwise."""
    if not isinstance(write, bool):
        raise ConfigError(f"write_thresholds={write!r}: choose true (store the per-class F1-best "
                          f"score thresholds in the checkpoint) or false")
    if write and corruption is not None:
        raise ConfigError("write_thresholds=true: not under a corruption; thresholds come from "
                          "clean validation data (corruption=none)")


def write_thresholds(checkpoint: str | Path, metrics: dict, data, cfg: DictConfig) -> dict:
    """Store each class's F1-best score (`F1_thresh` of `metrics`) in the checkpoint, where
    decoding with `score_thresh: null` finds them; returns them."""
    per_class = metrics["per_class"]
    missing = [name for name, pc in per_class.items() if pc["F1_thresh"] is None]
    if missing:
        raise ConfigError(f"write_thresholds=true: no F1-best threshold for {missing} (no ground "
                          f"truth or no detections of that class in data={data}); "
                          f"checkpoint {checkpoint} left unchanged")
    # exact: F1_thresh is the score of the last detection kept, rounding up would drop it
    thresholds = {name: float(pc["F1_thresh"]) for name, pc in per_class.items()}
    update_checkpoint(checkpoint, score_thresh=thresholds, score_thresh_from={
        "data": data, "images": metrics["n_images"], "min_visible": cfg.min_visible,
        "min_height": cfg.min_height, "peak_iou": cfg.peak_iou, "snap_px": cfg.snap_px,
        "topk": cfg.topk, "F1": {name: pc["F1"] for name, pc in per_class.items()}})
    log.info("stored score_thresh %s in %s", thresholds, checkpoint)
    return thresholds


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="val_detector")
def main(cfg: DictConfig) -> float | None:
    out = check_writable(Path(HydraConfig.get().runtime.output_dir))
    run = RunRecord(out, "val-detector", cfg.corruption.get("seed") if cfg.corruption else None,
                    cfg.device)
    with run.reporting():
        metrics = validate(cfg, out, camera_choice())
    run.finish(status="ok", mAP50=metrics["mAP50"])
    return metrics["mAP50"]
