"""Suite `sim`: env steps/s with and without cameras, against highway-fast-v0 in the same run."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
from hydra.utils import instantiate

from roadsight.bench.timing import interleaved_rates
from sim.make import make_env

BASELINE = "highway-fast-v0 (kinematics)"


def _stepper(env: gym.Env, steps: int, seed: int) -> Callable[[], int]:
    """A case: `steps` random-action env steps, resetting when an episode ends."""
    env.reset(seed=seed)
    env.action_space.seed(seed)

    def run() -> int:
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return steps

    return run


def run_sim_suite(cameras: dict, steps: int, rounds: int, seed: int) -> dict:
    """Steps/s of each env alone and with each camera in `cameras` (name -> camera config)."""
    envs = {BASELINE: make_env("highway-fast-v0")}
    for env_id in ("roadsight/urban-crossing-v0", "roadsight/highway-hazards-v0"):
        short = env_id.split("/")[1]
        envs[f"{short} (kinematics)"] = make_env(env_id)
        for cam_name, cam_cfg in cameras.items():
            envs[f"{short} + {cam_name}"] = make_env(env_id, camera=instantiate(cam_cfg))
    envs["highway-fast-v0 + bev"] = make_env("highway-fast-v0", camera=instantiate(cameras["bev"]))
    cases = {name: _stepper(env, steps, seed) for name, env in envs.items()}
    results = interleaved_rates(cases, rounds, desc="sim suite")
    for env in envs.values():
        env.close()
    base = results[BASELINE]["rate"]
    rows = []
    for name, r in results.items():
        plain = name.split(" + ")[0] + " (kinematics)"
        vs_plain = (
            r["rate"] / results[plain]["rate"] if " + " in name and plain in results else None
        )
        if name.startswith("highway-fast-v0 + "):
            vs_plain = r["rate"] / base
        rows.append(
            {
                "case": name,
                "steps_per_s": r["rate"],
                "min": r["min"],
                "max": r["max"],
                "vs_highway_fast": r["rate"] / base,
                "vs_same_env_without_camera": vs_plain,
            }
        )
    return {"suite": "sim", "unit": "env steps/s", "rows": rows}
