"""SimRoad's numpy neighbour search gives highway-env's answer, object for object."""

from __future__ import annotations

import numpy as np
import pytest
from highway_env.road.road import Road

from sim.make import make_env
from sim.road import SimRoad


def _questions(road):
    """Every (vehicle, lane) IDM and MOBIL ask about: each vehicle's own lane and its side lanes."""
    for vehicle in road.vehicles:
        yield vehicle, None
        if vehicle.lane_index:
            for side in road.network.side_lanes(vehicle.lane_index):
                yield vehicle, side


@pytest.mark.parametrize("env_id", ["roadsight/highway-hazards-v0", "roadsight/urban-crossing-v0"])
def test_neighbour_vehicles_equal_highway_envs_loop(env_id):
    env = make_env(env_id)
    env.reset(seed=3)
    road = env.unwrapped.road
    assert isinstance(road, SimRoad)
    asked = found = 0
    for step in range(12):
        for vehicle, lane in _questions(road):
            mine = road.neighbour_vehicles(vehicle, lane)
            theirs = Road.neighbour_vehicles(road, vehicle, lane)
            assert mine[0] is theirs[0] and mine[1] is theirs[1], (step, vehicle, lane)
            asked += 1
            found += (mine[0] is not None) + (mine[1] is not None)
        env.step(1)
    env.close()
    assert asked > 100 and found > asked / 2  # the scenes had neighbours to find


def test_ties_resolve_as_highway_env():
    """Two objects at the same distance: the last ahead and the first behind, as the loop does."""
    env = make_env("roadsight/highway-hazards-v0", {"vehicles_count": 4, "obstacles_count": 0})
    env.reset(seed=0)
    road = env.unwrapped.road
    ego, *cars = road.vehicles
    lane = road.network.get_lane(ego.lane_index)
    x = ego.position[0]
    for car, dx in zip(cars, (20.0, 20.0, -15.0, -15.0), strict=True):
        car.position = np.array(lane.position(x + dx, 0.0))
        car.lane_index = ego.lane_index
    assert road.neighbour_vehicles(ego) == Road.neighbour_vehicles(road, ego)
    assert road.neighbour_vehicles(ego) == (cars[1], cars[2])
    env.close()
