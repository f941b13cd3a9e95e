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

    With `overtake_gain` set it also passes slower traffic, as MOBIL's incentive criterion: it
    changes to a side lane when its IDM acceleration there would beat the one in its own lane
    by at least `overtake_gain` m/s^2, under the same safety check. The default (None) is the
    baseline driver that changes lane only around static obstacles.
    """

    CLEAR_AHEAD = 15.0  # [m] centre to centre to the car ahead in the lane changed to

    def __init__(self, lane_change_distance: float = 25.0, horizon: float = 1.0,
                 overtake_gain: float | None = None):
        self.lane_change_distance = lane_change_distance  # [m]
        self.horizon = horizon  # [s] the speed wanted is the IDM speed this far ahead
        if overtake_gain is not None and not overtake_gain >= 0:
            raise ConfigError(f"overtake_gain={overtake_gain}: the acceleration gain [m/s^2] a "
                              "lane change to pass must bring, >= 0 (MOBIL's is 0.2), or null")
        self.overtake_gain = overtake_gain  # [m/s^2] None: no lane change to pass traffic

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
        acc = self._idm_acceleration(ego, front)
        if self.overtake_gain is not None and ego.target_lane_index == ego.lane_index:
            lane_change = self._passing_lane(base, acc)
            if lane_change is not None:
                return lane_change
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

    def _idm_acceleration(self, ego, front) -> float:
        """IDM's acceleration toward the lane's speed limit behind `front` (None: free road)."""
        model = self._model
        v0 = ego.lane.speed_limit or 30.0
        acc = model.COMFORT_ACC_MAX * (1 - (max(ego.speed, 0) / v0) ** model.DELTA)
        if front is not None:
            gap = max(ego.lane_distance_to(front), 0.1)  # centre to centre, as highway-env's IDM
            acc -= model.COMFORT_ACC_MAX * (model.desired_gap(ego, front) / gap) ** 2
        return acc

    def _passing_lane(self, base, acc: float) -> int | None:
        """The side lane (LANE_LEFT, LANE_RIGHT) with room whose IDM acceleration beats `acc`,
        the own lane's, by the most and by at least overtake_gain."""
        best, best_gain = None, self.overtake_gain
        for action, front in self._lanes_with_room(base):
            gain = self._idm_acceleration(base.vehicle, front) - acc
            if gain >= best_gain:
                best, best_gain = action, gain
        return best

    def _lanes_with_room(self, base):
        """(action, the car ahead there) for each side lane a change to leaves room in: nothing
        within CLEAR_AHEAD ahead, and room for the car behind (_safe_for)."""
        ego, road = base.vehicle, base.road
        for action, target in self._side_lanes(base):
            front, rear = road.neighbour_vehicles(ego, target)
            clear_front = front is None or ego.lane_distance_to(front) > self.CLEAR_AHEAD
            if clear_front and self._safe_for(rear, ego):
                yield action, front

    def _side_lanes(self, base):
        """(action, lane index) of the lanes left and right of the ego's that exist."""
        ego, road = base.vehicle, base.road
        _from, _to, i = ego.lane_index
        for action, side in ((LANE_LEFT, -1), (LANE_RIGHT, 1)):
            if 0 <= i + side < len(road.network.graph[_from][_to]):
                yield action, (_from, _to, i + side)

    def _blocked(self, base, front) -> bool:
        ego = base.vehicle
        return (
            isinstance(front, StaticObstacle)
            and ego.lane_distance_to(front) < self.lane_change_distance
        )

    def _free_side_lane(self, base) -> int | None:
        return next((action for action, _ in self._lanes_with_room(base)), None)

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
