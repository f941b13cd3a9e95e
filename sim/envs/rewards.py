"""Shared reward and info plumbing: named reward terms and what the ego crashed into."""

from __future__ import annotations


class RoadsightRewardsMixin:
    """Reward = sum over named terms of `config[f"{term}_reward"] * term`.

    Put before highway-env's env class in the bases. `info["rewards"]` holds the raw terms,
    `info["crashed_into"]` the class the ego hit (vehicle | pedestrian | obstacle) or None.
    """

    def crashed_into(self) -> str | None:
        if not self.vehicle.crashed:
            return None
        return getattr(self.road, "crashed_into", {}).get(id(self.vehicle), "vehicle")

    def _reward(self, action) -> float:
        rewards = self._rewards(action)
        return float(sum(self.config.get(f"{name}_reward", 0.0) * v for name, v in rewards.items()))

    def _info(self, obs, action=None) -> dict:
        info = super()._info(obs, action)
        info["crashed_into"] = self.crashed_into()
        return info
