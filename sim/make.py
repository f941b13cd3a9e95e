"""Building envs by id, with an optional camera: the `env` config group's target."""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any

import gymnasium as gym

from roadsight.errors import ConfigError
from sim.envs import ENV_IDS, default_config, register_envs

# highway-env scenes usable through the same config group (no pedestrians, no obstacles)
HIGHWAY_ENV_IDS = ("highway-fast-v0", "highway-v0", "merge-v0", "roundabout-v0", "intersection-v0")


def make_env(
    id: str,
    config: dict[str, Any] | None = None,
    camera=None,
    extras: tuple[str, ...] = (),
    render_mode: str | None = None,
    highway_observation: bool = False,
) -> gym.Env:
    """`gym.make(id, config=config)`, wrapped in a CameraObservation when `camera` is given.

    A config key that the env's default_config() lacks raises ConfigError (highway-env would
    keep it and never read it); nested dicts (`observation`, `action`) are the env's to check.
    """
    register_envs()
    known = (*ENV_IDS, *HIGHWAY_ENV_IDS)
    if id not in known:
        raise ConfigError(f"env.id: unknown env {id!r}; valid ids: {', '.join(known)}")
    config = dict(config or {})
    check_config_keys(id, config)
    env = gym.make(id, config=config, render_mode=render_mode)
    if camera is not None:
        from sim.wrappers import CameraObservation

        env = CameraObservation(env, camera, extras=tuple(extras),
                                highway_observation=highway_observation)
    return env


def check_config_keys(id: str, config: dict[str, Any]) -> None:
    """Raise ConfigError for a key that `id`'s default_config() does not have (a typo would
    otherwise be silently ignored), naming the nearest valid keys."""
    valid = default_config(id)
    unknown = [key for key in config if key not in valid]
    if unknown:
        key = unknown[0]
        near = get_close_matches(str(key), list(valid), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(near)}?" if near else f"valid keys: {', '.join(valid)}"
        raise ConfigError(f"env.config.{key}: {id} has no such key; {hint}")
