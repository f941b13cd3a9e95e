"""Who drives the ego while recording: highway-env's IDM model, or random actions."""

from __future__ import annotations

import numpy as np
from highway_env.envs.common.action import DiscreteMetaAction
from highway_env.vehicle.behavior import IDMVehicle

from roadsight.errors import ConfigError
from sim.objects import StaticObstacle

LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = 0, 1, 2, 3, 4


class RandomDriver:
    """Uniformly random actions from the env's (seeded) action space."""

    def reset(self, env, seed: int | None = None) -> None:
        env.action_space.seed(seed)

    def act(self, env) -> int | np.ndarray:
        return env.action_space.sample()


class IDMDriver:
    """Drive the ego with highway-env's IDM car-following model through meta-actions.

    The IDM acceleration toward the lane's speed limit, given the object ahead (vehicles,
    pedestrians and obstacles alike), sets the speed wanted one decision later; FASTER/SLOWER
    move the ego's target speed toward it. Behind a static obstacle it changes lane when the
    neighbouring lane is clear ahead and the car behind there would not have to brake harder
    than MOBIL allows (highway-env's LANE_CHANGE_MAX_BRAKING_IMPOSED).
    """

    def __init__(self, lane_change_distance: float = 25.0, horizon: float = 1.0):
        self.lane_change_distance = lane_change_distance  # [m]
        self.horizon = horizon  # [s] the speed wanted is the IDM speed this far ahead

    def reset(self, env, seed: int | None = None) -> None:
        base = env.unwrapped
        if not isinstance(base.action_type, DiscreteMetaAction):
            raise ConfigError(
                "driver=idm needs env.config.action.type=DiscreteMetaAction, got "
                f"{type(base.action_type).__name__}; use driver=random"
            )
        self._model = IDMVehicle(base.road, base.vehicle.position)

    def act(self, env) -> int:
        base = env.unwrapped
        ego, road = base.vehicle, base.road
        front, _ = road.neighbour_vehicles(ego, ego.lane_index)
        if front is not None and getattr(front, "speed", 1.0) == 0.0 and self._blocked(base, front):
            lane_change = self._free_side_lane(base)
            if lane_change is not None:
                return lane_change
        model = self._model
        v0 = ego.lane.speed_limit or 30.0
        acc = model.COMFORT_ACC_MAX * (1 - (max(ego.speed, 0) / v0) ** model.DELTA)
        if front is not None:
            gap = max(ego.lane_distance_to(front), 0.1)  # centre to centre, as highway-env's IDM
            acc -= model.COMFORT_ACC_MAX * (model.desired_gap(ego, front) / gap) ** 2
        wanted = ego.speed + acc * self.horizon
        speeds = ego.target_speeds
        if acc > 0:  # the first target speed at or above the wanted one: never stall at 0
            index = int(np.searchsorted(speeds, wanted))
        else:
            index = int(np.argmin(np.abs(speeds - wanted)))
        if acc < -2.0:  # brake hard: the target speed must drop now
            index = min(index, ego.speed_index - 1)
        index = int(np.clip(index, 0, len(speeds) - 1))
        if index > ego.speed_index:
            return FASTER
        if index < ego.speed_index:
            return SLOWER
        return IDLE

    def _blocked(self, base, front) -> bool:
        ego = base.vehicle
        return (
            isinstance(front, StaticObstacle)
            and ego.lane_distance_to(front) < self.lane_change_distance
        )

    def _free_side_lane(self, base) -> int | None:
        ego, road = base.vehicle, base.road
        for action, lane_index in ((LANE_LEFT, -1), (LANE_RIGHT, 1)):
            _from, _to, i = ego.lane_index
            target = (_from, _to, i + lane_index)
            if not 0 <= target[2] < len(road.network.graph[_from][_to]):
                continue
            front, rear = road.neighbour_vehicles(ego, target)
            clear_front = front is None or ego.lane_distance_to(front) > 15
            if clear_front and self._safe_for(rear, ego):
                return action
        return None

    def _safe_for(self, rear, ego) -> bool:
        """Would a lane change in front of `rear` leave it room: at least 12 m centre to centre,
        and, for IDM traffic, no harder braking than MOBIL lets a lane change impose on it?"""
        if rear is None:
            return True
        if ego.lane_distance_to(rear) > -12:
            return False
        if not isinstance(rear, IDMVehicle):
            return True
        return rear.acceleration(rear, ego) >= -rear.LANE_CHANGE_MAX_BRAKING_IMPOSED
