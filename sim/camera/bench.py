"""Camera cost beside the env's own step, measured in one interleaved loop (same load, same run).

`python -m sim.camera.bench [env_id] [steps]` prints, per camera config, the median env step and
render times [ms] and the steps/s ratio of env + camera to the env alone.
"""

from __future__ import annotations

import sys
import time

import gymnasium as gym
import numpy as np

from sim.camera.examples import load_camera
from sim.truth import SceneRegistry


def benchmark(env_id: str, cameras: dict[str, object], steps: int = 100, seed: int = 0) -> dict:
    """Median env-step and per-camera render times [ms] over `steps` interleaved steps."""
    import sim  # noqa: F401  (registers the roadsight envs)

    env = gym.make(env_id)
    registry = SceneRegistry(seed)
    env.reset(seed=seed)
    step_ms, render_ms = [], {name: [] for name in cameras}
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(1)
            step_ms.append((time.perf_counter() - t0) * 1e3)
            for name, camera in cameras.items():
                t0 = time.perf_counter()
                camera.frames(env, registry)
                render_ms[name].append((time.perf_counter() - t0) * 1e3)
            if terminated or truncated:
                env.reset()
                registry.reset(seed)
    finally:
        env.close()
    step = float(np.median(step_ms))
    out = {"env": env_id, "step_ms": step, "env_steps_per_s": 1e3 / step}
    for name, times in render_ms.items():
        ms = float(np.median(times))
        out[name] = {"render_ms": ms, "frames_per_s": 1e3 / ms, "fraction_of_step": ms / step,
                     "steps_per_s_ratio": step / (step + ms)}
    return out


if __name__ == "__main__":
    env_id = sys.argv[1] if len(sys.argv) > 1 else "highway-fast-v0"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    result = benchmark(env_id, {n: load_camera(n) for n in ("front", "surround")}, steps)
    print(f"{env_id}: step {result['step_ms']:.2f} ms ({result['env_steps_per_s']:.1f} steps/s)")
    for name in ("front", "surround"):
        r = result[name]
        print(f"  {name:9s} {r['render_ms']:.2f} ms/render ({r['frames_per_s']:.0f} renders/s), "
              f"{r['fraction_of_step']:.3f} of a step, env+camera at {r['steps_per_s_ratio']:.3f}x")
