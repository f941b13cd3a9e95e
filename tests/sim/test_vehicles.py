"""Traffic gets past static obstacles instead of jamming the lane forever."""

from __future__ import annotations

import numpy as np

from sim.appearance import obstacle_style
from sim.drivers import SLOWER
from sim.objects import StaticObstacle
from sim.vehicles import ObstacleAwareIDMVehicle
from tests.conftest import QUIET_URBAN


def test_a_car_stopped_behind_debris_changes_lane_and_passes(make_urban):
    env = make_urban(**{**QUIET_URBAN, "vehicles_count": 1})
    env.reset(seed=2)
    base = env.unwrapped
    car = next(v for v in base.road.vehicles if v is not base.vehicle)
    assert isinstance(car, ObstacleAwareIDMVehicle)
    lane = base.road.network.get_lane(car.lane_index)
    x = car.position[0] + 11  # standing right behind it: plain MOBIL would wait forever
    car.speed = 0.0
    style = obstacle_style(np.random.default_rng(0), kind="debris")
    debris = StaticObstacle(base.road, lane.position(x, 0.0), style)
    base.road.objects.append(debris)
    for _ in range(30):
        env.step(SLOWER)
    assert car.position[0] > x + 10 and not car.crashed
    assert car.lane_index != debris.lane_index
