"""`roadsight export checkpoint=FILE format=onnx hydra.run.dir=OUT` -> OUT/detector.onnx.

OUT/metrics.json also carries the checkpoint's camera, preprocessing and score thresholds, which
a consumer of the ONNX file needs; an explicit `camera=` other than the checkpoint's is refused.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from roadsight.errors import ConfigError
from roadsight.io import RunRecord, atomic_write_json, check_writable
from roadsight.paths import CONF_DIR

FORMATS = ("onnx",)


def export_checkpoint(checkpoint: str | Path, out: Path, fmt: str = "onnx",
                      opset: int = 17) -> dict:
    """Export a checkpoint and check onnxruntime agrees with torch on a random input."""
    import numpy as np
    import torch
    from hydra.utils import instantiate

    from perception.backends import OnnxBackend, TorchBackend, export_onnx, input_hw
    from perception.checkpoint import build_model, load_checkpoint

    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not supported; choose from {FORMATS}")
    state = load_checkpoint(checkpoint)
    model = build_model(state, checkpoint).eval()
    hw = input_hw(instantiate(state["preprocess_cfg"]))
    path = export_onnx(model, out / "detector.onnx", hw, opset)
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0))
    ref, got = TorchBackend(model, "cpu")(x), OnnxBackend(path)(x)
    diff = max(float((a - b).abs().max()) for a, b in zip(ref, got, strict=True))
    # what the ONNX file alone does not say: the camera, preprocessing and thresholds it needs
    return {"onnx": str(path), "input_hw": list(hw), "opset": opset,
            "max_abs_diff_vs_torch": diff, "bytes": path.stat().st_size,
            "checkpoint": str(checkpoint), "ok": bool(np.isfinite(diff) and diff < 1e-3),
            "camera": state.get("camera"), "preprocess_cfg": state["preprocess_cfg"],
            "score_thresh": state.get("score_thresh")}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    from perception.checkpoint import camera_choice, load_checkpoint, resolve_checkpoint
    from perception.provenance import check_chosen_camera

    out = check_writable(Path(HydraConfig.get().runtime.output_dir))
    run = RunRecord(out, "export", None, "cpu")
    with run.reporting():
        ckpt = resolve_checkpoint(cfg.checkpoint, camera_choice())
        # an explicit camera= must be the checkpoint's (perception.provenance)
        check_chosen_camera(load_checkpoint(ckpt), cfg.get("camera"), ckpt)
        summary = export_checkpoint(ckpt, out, cfg.format, cfg.opset)
    atomic_write_json(out / "metrics.json", summary)
    run.finish(status="ok", max_abs_diff_vs_torch=summary["max_abs_diff_vs_torch"])
    print(f"wrote {summary['onnx']} (max |onnx - torch| = {summary['max_abs_diff_vs_torch']:.2e})")
