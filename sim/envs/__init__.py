"""roadsight's gymnasium envs, registered under the `roadsight/` namespace."""

from __future__ import annotations

import gymnasium as gym

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
