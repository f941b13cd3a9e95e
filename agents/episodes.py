"""Evaluation episodes of a policy on a VecEnv, and the metrics every run reports."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from stable_baselines3.common.vec_env import VecEnv


def run_episodes(act: Callable[[np.ndarray], np.ndarray], venv: VecEnv, episodes: int) -> dict:
    """Play `episodes` episodes with `act(obs) -> actions` and summarise them.

    return_mean/return_std: undiscounted episode return; crash_rate: fraction of episodes that
    ended in a crash; pedestrian_collision_rate: those whose crash was into a pedestrian
    (`info["crashed_into"]`); mean_speed [m/s]: the ego's speed over every step of every episode.
    With one env and `ObservationVecEnv(reseed=...)`, episode k is the same for every policy.
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: need at least 1")
    returns, crashes, into, speeds = [], [], [], []
    running = np.zeros(venv.num_envs)
    obs = venv.reset()
    while len(returns) < episodes:
        obs, rewards, dones, infos = venv.step(act(obs))
        running += rewards
        for i, info in enumerate(infos):
            ego = info.get("ego")
            speeds.append(float(ego.speed) if ego is not None else float(info.get("speed", 0.0)))
            if dones[i] and len(returns) < episodes:
                returns.append(float(running[i]))
                crashes.append(bool(info.get("crashed", False)))
                into.append(info.get("crashed_into") if crashes[-1] else None)
            if dones[i]:
                running[i] = 0.0
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "crash_rate": float(np.mean(crashes)),
        "pedestrian_collision_rate": float(np.mean([c == "pedestrian" for c in into])),
        "mean_speed": float(np.mean(speeds)),
        "episodes": len(returns),
    }


def policy_actions(model) -> Callable[[np.ndarray], np.ndarray]:
    """An SB3 model's deterministic actions."""
    return lambda obs: model.predict(obs, deterministic=True)[0]
