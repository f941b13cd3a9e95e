"""Shared reward and info plumbing: named reward terms and what the ego crashed into."""

from __future__ import annotations


class RoadsightRewardsMixin:
    """Reward = sum over named terms of `config[f"{term}_reward"] * term`.

    Put before highway-env's env class in the bases. `info["rewards"]` holds the raw terms,
    `info["crashed_into"]` the class the ego hit (vehicle | pedestrian | obstacle) or None,
    `info["at_fault"]` whether the ego caused that collision (None without one): it drove into
    something ahead or beside it, or cut in just before being hit from behind (`sim.fault`);
    False when it was hit from behind, or something (a pedestrian) moved into it.
    """

    def crashed_into(self) -> str | None:
        if not self.vehicle.crashed:
            return None
        return getattr(self.road, "crashed_into", {}).get(id(self.vehicle), "vehicle")

    def at_fault(self) -> bool | None:
        if not self.vehicle.crashed:
            return None
        return getattr(self.road, "at_fault", {}).get(id(self.vehicle))

    def _reward(self, action) -> float:
        rewards = self._rewards(action)
        return float(sum(self.config.get(f"{name}_reward", 0.0) * v for name, v in rewards.items()))

    def _info(self, obs, action=None) -> dict:
        info = super()._info(obs, action)
        info["crashed_into"] = self.crashed_into()
        info["at_fault"] = self.at_fault()
        return info
