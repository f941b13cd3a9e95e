"""Suite `gpu`: the detector's throughput on the GPU at large batches, and PPO training
env-steps/s with the policy and the detector on the GPU against the CPU, measured in one run.

Skipped, and recorded as such, where there is no CUDA device. `device` names the accelerator
(`cuda`, `cuda:N`); `device=cpu` runs the same code on the CPU (tests).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from hydra.utils import instantiate

from perception.backends import Outputs, TorchBackend, input_hw, measure_latency
from perception.checkpoint import build_model, load_checkpoint, resolve_checkpoint
from roadsight.bench.train_speed import training_rates
from roadsight.device import resolve_device_name

SKIPPED = "no CUDA device"


def synchronised(engine: TorchBackend) -> Callable[[torch.Tensor], Outputs]:
    """`engine` whose calls return only once the device has finished (CUDA runs async)."""
    if engine.device.type != "cuda":
        return engine

    def call(x: torch.Tensor):
        out = engine(x)
        torch.cuda.synchronize(engine.device)
        return out

    return call


def detector_rows(camera: str, device: str, batches: list[int], repeats: int) -> list[dict]:
    """Frames/s of models/detector_<camera>.pt (torch, BatchNorm fused) on `device` per batch,
    host-to-device copy and outputs back to the CPU included (what training pays)."""
    path = resolve_checkpoint(None, camera)
    state = load_checkpoint(path)
    hw = input_hw(instantiate(state["preprocess_cfg"]))
    engine = synchronised(TorchBackend(build_model(state, path).eval(), device))
    rows = []
    for batch in batches:
        r = measure_latency(engine, hw, batch=batch, repeats=repeats)
        rows.append({"case": f"detector {camera} {hw[1]}x{hw[0]} {device} b{batch}",
                     "device": device, "ms_per_call": r["ms_per_call"],
                     "per_s": 1000 / r["ms_per_frame"], "vs_cpu": None})
    return rows


def run_gpu_suite(device: str, camera: str, batches: list[int], repeats: int, cases: dict,
                  steps: int, rounds: int, args: list[str], seed: int) -> dict:
    """Detector rows per batch, then each training case (name -> `train` overrides after
    `args`) on `device` and on the CPU, interleaved, with the device/CPU ratio."""
    if device != "cpu" and not torch.cuda.is_available():
        return {"suite": "gpu", "skipped": SKIPPED}
    device = resolve_device_name(device)
    torch.manual_seed(seed)
    rows = detector_rows(camera, device, batches, repeats)
    devices = list(dict.fromkeys((device, "cpu")))
    runs = {f"{name} {dev}": [*args, *ov, f"device={dev}", f"seed={seed}"]
            for name, ov in cases.items() for dev in devices}
    rates = training_rates(runs, steps, rounds, "gpu.cases", "gpu suite")
    for name in cases:
        cpu = rates[f"{name} cpu"]["rate"]
        rows += [{"case": f"train {name} {dev}", "device": dev, "ms_per_call": None,
                  "per_s": rates[f"{name} {dev}"]["rate"],
                  "vs_cpu": rates[f"{name} {dev}"]["rate"] / cpu} for dev in devices]
    unit = (f"per_s: detector frames/s ({repeats} repeats, median); train rows: PPO env "
            f"steps/s, {steps} steps x {rounds} round(s)")
    return {"suite": "gpu", "unit": unit, "rows": rows}
