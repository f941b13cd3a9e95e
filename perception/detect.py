"""`roadsight detect checkpoint=FILE source=VIDEO_OR_IMAGE_DIR hydra.run.dir=OUT`.

Writes OUT/detections.mp4 (annotated, H.264) and OUT/detections.jsonl (one line per frame).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from roadsight.device import set_torch_threads
from roadsight.errors import ConfigError
from roadsight.io import RunRecord, atomic_write_json, check_writable
from roadsight.paths import CONF_DIR


def detect_source(detector, source: str | Path, out: Path, batch_size: int = 8,
                  max_frames: int | None = None, fps: float = 10.0, video: bool = True) -> dict:
    """Run `detector` over every frame of `source`; write the MP4 and JSONL; return a summary."""
    from itertools import islice

    from tqdm import tqdm

    from perception.video import FrameSource, Mp4Writer, draw_detections

    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: frames per forward pass, must be 1 or more")
    frames = FrameSource(source, fps)
    total = min(x for x in (frames.count, max_frames) if x is not None) \
        if frames.count or max_frames else None
    jsonl_tmp, jsonl = out / ".detections.jsonl.tmp", out / "detections.jsonl"
    writer = Mp4Writer(out / "detections.mp4", frames.fps) if video else None
    n, n_dets, t_model, ok = 0, 0, 0.0, False
    try:
        with open(jsonl_tmp, "w") as f, tqdm(total=total, desc="detect", unit="frame") as bar:
            it = iter(islice(frames, max_frames))
            while batch := list(islice(it, batch_size)):
                t0 = time.perf_counter()
                dets = detector(batch)
                t_model += time.perf_counter() - t0
                for image, d in zip(batch, dets, strict=True):
                    f.write(json.dumps({"frame": n, **d.to_json()}) + "\n")
                    if writer is not None:
                        writer.append(draw_detections(image, d))
                    n, n_dets = n + 1, n_dets + len(d)
                bar.update(len(batch))
        ok = True
    finally:
        if writer is not None:
            writer.close(keep=ok)
        if ok:
            os.replace(jsonl_tmp, jsonl)
        else:
            jsonl_tmp.unlink(missing_ok=True)
    return {"frames": n, "detections": n_dets, "fps_video": frames.fps, "source": str(source),
            "ms_per_frame_model": 1000 * t_model / max(n, 1)}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="detect")
def main(cfg: DictConfig) -> None:
    from perception.backends import load_detector
    from perception.checkpoint import camera_choice, resolve_checkpoint
    from perception.decode import DecodeOptions

    out = check_writable(Path(HydraConfig.get().runtime.output_dir))
    run = RunRecord(out, "detect", None, cfg.device)
    with run.reporting():
        set_torch_threads(cfg.get("threads"))
        options = DecodeOptions.from_cfg(cfg)  # a bad value fails before anything is loaded
        ckpt = resolve_checkpoint(cfg.checkpoint, camera_choice())
        detector, state = load_detector(ckpt, cfg.backend, cfg.onnx, cfg.device, options,
                                        export_dir=out)
        if cfg.get("check_camera", True):  # frames from the checkpoint's camera only
            from perception.provenance import check_chosen_camera, check_source

            check_chosen_camera(state, cfg.get("camera"), ckpt)
            check_source(state, cfg.source, ckpt)
        summary = detect_source(detector, cfg.source, out, cfg.batch_size, cfg.max_frames,
                                cfg.fps, cfg.video)
    summary.update(checkpoint=str(ckpt), backend=cfg.backend)
    atomic_write_json(out / "metrics.json", summary)
    run.finish(status="ok", frames=summary["frames"])
