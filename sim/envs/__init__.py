"""roadsight's gymnasium envs, registered under the `roadsight/` namespace."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

ENV_IDS = {
    "roadsight/urban-crossing-v0": "sim.envs.urban_crossing:UrbanCrossingEnv",
    "roadsight/highway-hazards-v0": "sim.envs.highway_hazards:HighwayHazardsEnv",
}


def register_envs() -> None:
    """Register roadsight's envs, and highway-env's own, with gymnasium (idempotent)."""
    import highway_env  # noqa: F401  (registers highway-fast-v0, merge-v0, ...)

    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)


def default_config(env_id: str) -> dict[str, Any]:
    """The `default_config()` of a registered env id (roadsight's or highway-env's)."""
    register_envs()
    entry_point = gym.spec(env_id).entry_point
    env_class = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    return env_class.default_config()
