"""Suite `detector`: latency per frame of each camera's default checkpoint (torch, onnxruntime;
batch 1 and 32) at its own input size, beside one highway-fast-v0 step measured in the same run.
The "torch+decode" rows add the peak decoding with the default `DecodeOptions` (what `detect`
runs) to the torch forward pass: what `detect` spends per frame after preprocessing.

The architecture and input size come from the checkpoint (`models/detector_<camera>.pt` unless
`checkpoints` names another file), so the figures are those of the model `detect` would run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from perception.backends import OnnxBackend, TorchBackend, export_onnx, input_hw, measure_latency
from perception.checkpoint import build_model, load_checkpoint, resolve_checkpoint
from perception.decode import DecodeOptions
from perception.model import count_parameters
from roadsight.bench.camera_cost import camera_cost


def run_detector_suite(
    cameras: list[str], checkpoints: dict, batches: list[int], repeats: int, env_steps: int,
    seed: int
) -> dict:
    """Latency rows per (camera's checkpoint, backend, batch), with the ratio to one env step."""
    torch.manual_seed(seed)
    rows, step_ms, params = [], [], {}
    options = DecodeOptions()  # the decoding `detect` runs by default
    with tempfile.TemporaryDirectory() as tmp:
        for camera in cameras:
            path = resolve_checkpoint(checkpoints.get(camera), camera)
            state = load_checkpoint(path)
            net = build_model(state, path).eval()
            h, w = input_hw(instantiate(state["preprocess_cfg"]))
            params[camera] = count_parameters(net)
            engines = {"torch": TorchBackend(net, "cpu")}
            engines["torch+decode"] = lambda x, forward=engines["torch"], s=net.stride: (
                options.decode(*forward(x), stride=s))
            if torch.cuda.is_available():
                engines["torch-cuda"] = TorchBackend(net, "cuda")
            onnx = export_onnx(net, Path(tmp) / f"{camera}.onnx", (h, w))
            engines["onnxruntime"] = OnnxBackend(onnx)
            # the cameras suite's interleaved loop with no camera: median ms of one env step
            step_ms.append(camera_cost("highway-fast-v0", {}, env_steps, seed)[0]["ms"])
            for name, engine in engines.items():
                for batch in batches:
                    r = measure_latency(engine, (h, w), batch=batch, repeats=repeats)
                    rows.append(
                        {
                            "case": f"{camera} {w}x{h} stride {net.stride} {name} b{batch}",
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
    sizes = ", ".join(f"{camera} {n} parameters" for camera, n in params.items())
    return {
        "suite": "detector",
        "unit": f"ms; {sizes}; {torch.get_num_threads()} torch threads",
        "rows": rows,
    }
