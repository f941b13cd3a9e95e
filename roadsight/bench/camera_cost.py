"""Suite `cameras`: what one render costs beside the env's own step, interleaved in one loop.

Per env, each step is timed, then each camera renders the same state and is timed: the same load
hits both. Reported: median ms, frames/s, the render's fraction of a step, and the steps/s ratio
env + camera / env alone (= step / (step + render)).
"""

from __future__ import annotations

import time

import numpy as np
from hydra.utils import instantiate
from tqdm import tqdm

from sim.make import make_env
from sim.truth import SceneRegistry


def camera_cost(env_id: str, cameras: dict[str, object], steps: int, seed: int) -> list[dict]:
    env = make_env(env_id)
    registry = SceneRegistry(seed)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    step_ms, render_ms = [], {name: [] for name in cameras}
    try:
        for _ in tqdm(range(steps), desc=f"cameras on {env_id}", unit="step"):
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            step_ms.append((time.perf_counter() - t0) * 1e3)
            for name, camera in cameras.items():
                t0 = time.perf_counter()
                camera.frames(env, registry)
                render_ms[name].append((time.perf_counter() - t0) * 1e3)
            if terminated or truncated:
                env.reset()
    finally:
        env.close()
    step = float(np.median(step_ms))
    rows = [
        {
            "case": f"{env_id} step",
            "ms": step,
            "per_s": 1e3 / step,
            "fraction_of_step": 1.0,
            "env_plus_camera_vs_env": 1.0,
        }
    ]
    for name, times in render_ms.items():
        ms = float(np.median(times))
        rows.append(
            {
                "case": f"{env_id} + {name} render",
                "ms": ms,
                "per_s": 1e3 / ms,
                "fraction_of_step": ms / step,
                "env_plus_camera_vs_env": step / (step + ms),
            }
        )
    return rows


def run_camera_suite(envs: list[str], cameras: dict, steps: int, seed: int) -> dict:
    """Render cost of each camera config in `cameras` on each env in `envs`."""
    built = {name: instantiate(cfg) for name, cfg in cameras.items()}
    rows = [row for env_id in envs for row in camera_cost(env_id, built, steps, seed)]
    return {"suite": "cameras", "unit": "median ms per step or render", "rows": rows}
