"""Building envs by id, with an optional camera: the `env` config group's target."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from roadsight.errors import ConfigError
from sim.envs import ENV_IDS, register_envs

# highway-env scenes usable through the same config group (no pedestrians, no obstacles)
HIGHWAY_ENV_IDS = ("highway-fast-v0", "highway-v0", "merge-v0", "roundabout-v0", "intersection-v0")


def make_env(
    id: str,
    config: dict[str, Any] | None = None,
    camera=None,
    extras: tuple[str, ...] = (),
    render_mode: str | None = None,
) -> gym.Env:
    """`gym.make(id, config=config)`, wrapped in a CameraObservation when `camera` is given."""
    register_envs()
    known = (*ENV_IDS, *HIGHWAY_ENV_IDS)
    if id not in known:
        raise ConfigError(f"env.id: unknown env {id!r}; valid ids: {', '.join(known)}")
    env = gym.make(id, config=dict(config or {}), render_mode=render_mode)
    if camera is not None:
        from sim.wrappers import CameraObservation

        env = CameraObservation(env, camera, extras=tuple(extras))
    return env
