"""Suite `detector`: detector latency per frame (torch, onnxruntime; batch 1 and 32) per camera
input size, beside one highway-fast-v0 step measured in the same run.

Weights do not change the time of a conv net, so the architecture comes from the detector config
(the shipped checkpoints use the same one).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from perception.backends import OnnxBackend, TorchBackend, export_onnx, measure_latency
from roadsight.bench.camera_cost import camera_cost


def run_detector_suite(
    model: dict, inputs: dict, batches: list[int], repeats: int, env_steps: int, seed: int
) -> dict:
    """Latency rows per (camera input, backend, batch), with the ratio to one env step."""
    torch.manual_seed(seed)
    net = instantiate(model).eval()
    backends = {"torch": lambda: TorchBackend(net, "cpu")}
    if torch.cuda.is_available():
        backends["torch-cuda"] = lambda: TorchBackend(net, "cuda")
    rows, step_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for camera, (h, w) in inputs.items():
            onnx = export_onnx(net, Path(tmp) / f"{camera}.onnx", (h, w))
            engines = {name: make() for name, make in backends.items()}
            engines["onnxruntime"] = OnnxBackend(onnx)
            # the cameras suite's interleaved loop with no camera: median ms of one env step
            step_ms.append(camera_cost("highway-fast-v0", {}, env_steps, seed)[0]["ms"])
            for name, engine in engines.items():
                for batch in batches:
                    r = measure_latency(engine, (h, w), batch=batch, repeats=repeats)
                    rows.append(
                        {
                            "case": f"{camera} {w}x{h} {name} b{batch}",
                            "ms_per_call": r["ms_per_call"],
                            "ms_per_frame": r["ms_per_frame"],
                            "frames_per_s": 1000 / r["ms_per_frame"],
                        }
                    )
    step = float(np.median(step_ms))
    for row in rows:
        row["vs_highway_fast_step"] = row["ms_per_frame"] / step
    rows.append(
        {
            "case": "highway-fast-v0 env step",
            "ms_per_call": step,
            "ms_per_frame": step,
            "frames_per_s": 1000 / step,
            "vs_highway_fast_step": 1.0,
        }
    )
    params = sum(p.numel() for p in net.parameters())
    return {
        "suite": "detector",
        "unit": f"ms, {params} parameters, {torch.get_num_threads()} torch threads",
        "rows": rows,
    }
