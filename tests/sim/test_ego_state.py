"""The ego's odometry (`EgoState`): lane-relative pose in the ego frame's conventions."""

from __future__ import annotations

import numpy as np
import pytest
from highway_env.road.lane import CircularLane, StraightLane
from highway_env.road.road import Road, RoadNetwork
from highway_env.vehicle.kinematics import Vehicle

from sim.camera.bev import BevCamera
from sim.make import make_env
from sim.truth import ego_rotation, ego_state, odometry
from sim.types import EgoState


def _two_lane_road() -> Road:
    """Two straight lanes along world x, lane 1 at world y = 4 (to the right of lane 0)."""
    net = RoadNetwork()
    for i in range(2):
        net.add_lane("a", "b", StraightLane([0.0, 4.0 * i], [200.0, 4.0 * i], width=4.0))
    return Road(net)


@pytest.mark.parametrize(
    "y,heading,lane,offset,to_lane",
    [
        (5.0, 0.1, 1, -1.0, -0.1),  # right of lane 1's centre, turned right: both negative
        (3.5, -0.2, 1, 0.5, 0.2),  # left of lane 1, turned left
        (-0.3, 2 * np.pi - 0.05, 0, 0.3, 0.05),  # wrapped heading
    ],
)
def test_straight_lane_signs(y, heading, lane, offset, to_lane):
    ego = Vehicle(_two_lane_road(), position=[50.0, y], heading=heading, speed=7.0)
    state = odometry(ego)
    assert state.lane_index == lane
    assert state.lateral_offset == pytest.approx(offset, abs=1e-9)
    assert state.heading_to_lane == pytest.approx(to_lane, abs=1e-9)
    assert -np.pi <= state.heading_to_lane < np.pi
    assert state.speed == 7.0
    assert state.world_xy == (50.0, y) and state.world_heading == heading
    assert (state.lanes_left, state.lanes_right) == ((0, 1) if lane == 0 else (1, 0))
    assert state.target_speed == 7.0  # a plain Vehicle has no setpoint: its speed


def _place_and_check(ego, lane, lat_world: float, dpsi: float) -> None:
    """Put `ego` on `lane` at highway-env lateral `lat_world` (y-right) and heading offset `dpsi`;
    the lane's centre and direction, seen through the ego frame's rotation, must sit where
    lateral_offset and heading_to_lane say."""
    s = 0.5 * lane.length
    ego.position = lane.position(s, lat_world)
    ego.heading = lane.heading_at(s) + dpsi
    ego.on_state_update()
    assert ego.lane is lane
    state = odometry(ego)
    d, th = state.lateral_offset, state.heading_to_lane
    assert d == pytest.approx(-lat_world, abs=1e-6) and th == pytest.approx(-dpsi, abs=1e-6)
    rot = ego_rotation(ego)  # world -> ego frame (x forward, y left)
    s_here, _ = lane.local_coordinates(ego.position)
    centre = rot @ (lane.position(s_here, 0.0) - ego.position)
    # the ego sits d left of the centre line: the centre lies at -d along the lane's left normal,
    # i.e. the lane direction (cos th, -sin th) in the ego frame turned +90 degrees
    np.testing.assert_allclose(centre, -d * np.array([np.sin(th), np.cos(th)]), atol=1e-6)
    heading = lane.heading_at(s_here)
    direction = rot @ np.array([np.cos(heading), np.sin(heading)])
    np.testing.assert_allclose(direction, [np.cos(th), -np.sin(th)], atol=1e-9)


@pytest.mark.parametrize("index", [("se", "ex", 0), ("nx", "ne", 1), ("wx", "we", 0)])
@pytest.mark.parametrize("lat_world,dpsi", [(0.8, 0.25), (-0.6, -0.3)])
def test_roundabout_matches_the_ego_frame(index, lat_world, dpsi):
    env = make_env("roundabout-v0")
    env.reset(seed=0)
    lane = env.unwrapped.road.network.get_lane(index)
    _place_and_check(env.unwrapped.vehicle, lane, lat_world, dpsi)
    assert ego_state(env) == odometry(env.unwrapped.vehicle)
    env.close()


def test_clockwise_circular_lane():
    """highway-env's other turning direction (the roundabout's lanes all turn one way)."""
    net = RoadNetwork()
    lane = CircularLane([0.0, 0.0], 30.0, 0.0, np.pi, clockwise=True, width=4.0)
    net.add_lane("a", "b", lane)
    ego = Vehicle(Road(net), position=lane.position(5.0, 0.0), heading=0.0, speed=5.0)
    _place_and_check(ego, lane, 0.7, 0.2)


def test_camera_observation_puts_ego_in_info():
    env = make_env("roadsight/urban-crossing-v0", {"vehicles_count": 0}, camera=BevCamera())
    _, info = env.reset(seed=0)
    assert isinstance(info["ego"], EgoState)
    _, _, _, _, info = env.step(3)  # FASTER
    ego = env.unwrapped.vehicle
    assert info["ego"].speed == pytest.approx(ego.speed) and ego.speed > 8.0
    assert info["ego"].target_speed == ego.target_speed == ego.target_speeds[ego.speed_index]
    lanes = env.unwrapped.config["lanes_count"]
    assert info["ego"].lanes_left + info["ego"].lanes_right == lanes - 1
    assert info["ego"].world_xy == pytest.approx(tuple(ego.position))
    env.close()
