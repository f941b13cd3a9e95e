"""Fair scenes: traffic never reverses, collisions say who was at fault, pedestrians and followers
leave a careful driver room. Hand-built scenes on a quiet urban-crossing-v0 street."""

from __future__ import annotations

import numpy as np
import pytest
from highway_env.vehicle.kinematics import Vehicle

from roadsight.errors import ConfigError
from sim.appearance import obstacle_style, pedestrian_style, vehicle_style
from sim.drivers import FASTER, IDLE, LANE_RIGHT, SLOWER, IDMDriver
from sim.fault import Body, at_fault
from sim.objects import CrossingPlan, Pedestrian, StaticObstacle
from sim.vehicles import ObstacleAwareIDMVehicle
from tests.conftest import QUIET_URBAN

RNG = np.random.default_rng(0)


def _street(make_urban, speed: float = 8.0):
    """A quiet street; the ego in lane 0 at x=30 and `speed` [m/s], its target speed held."""
    env = make_urban(**QUIET_URBAN)
    env.reset(seed=0)
    base = env.unwrapped
    ego = base.vehicle
    lane = base.road.network.get_lane(("a", "b", 0))
    ego.position, ego.heading, ego.speed = lane.position(30.0, 0.0), 0.0, speed
    ego.lane_index = ego.target_lane_index = ("a", "b", 0)
    ego.speed_index = int(np.argmin(np.abs(ego.target_speeds - speed)))
    ego.target_speed = float(ego.target_speeds[ego.speed_index])
    return env, base, ego


def _idm_car(base, x: float, speed: float, lane: int = 0, kind: str = "car"):
    car = ObstacleAwareIDMVehicle(
        base.road, base.road.network.get_lane(("a", "b", lane)).position(x, 0.0), 0.0, speed
    )
    style = vehicle_style(RNG, kind)
    car.LENGTH, car.WIDTH = style.length, style.width
    car.enable_lane_change = False
    base.road.vehicles.append(car)
    return car


def _pedestrian(base, x: float, y: float, from_side: int) -> Pedestrian:
    plan = CrossingPlan(x, from_side, base.road_y, 3.0, on_crosswalk=False)
    ped = Pedestrian(base.road, np.array([x, y]), pedestrian_style(RNG), plan, 1.4, 3.0, 10.0)
    base.road.objects.append(ped)
    return ped


def _crash(env, action: int, steps: int = 20) -> dict:
    for _ in range(steps):
        _, _, terminated, _, info = env.step(action)
        if terminated:
            return info
    pytest.fail("no collision")


# -- traffic never drives backwards ------------------------------------------------------
def test_traffic_braking_hard_stops_instead_of_reversing(make_urban):
    env, base, ego = _street(make_urban, speed=0.0)
    car = _idm_car(base, 80.0, 6.0)
    debris = StaticObstacle(base.road, np.array([88.0, 0.0]), obstacle_style(RNG, "debris"))
    base.road.objects.append(debris)  # 8 m ahead: IDM brakes far past ACC_MAX
    speeds = []
    for _ in range(10):
        env.step(IDLE)
        speeds.append(car.speed)
    assert min(speeds) >= 0.0 and speeds[-1] == pytest.approx(0.0, abs=0.05)
    assert not car.crashed


# -- who was at fault ----------------------------------------------------------------------
def _body(x, y, vx, vy=0.0, length=5.0, width=2.0, heading=0.0) -> Body:
    return Body((x, y), heading, (vx, vy), length, width)


def test_fault_rules_on_bodies():
    ego, ahead = _body(0, 0, 10.0), _body(5.2, 0, 2.0)
    assert at_fault(ego, ahead) and not at_fault(ahead, ego)  # rear-end: the follower
    creeping, follower = _body(0, 0, 1.1), _body(-5.2, 0, 5.8)
    assert not at_fault(creeping, follower) and at_fault(follower, creeping)
    assert not at_fault(_body(0, 0, 1.0), _body(5.2, 0, -3.0))  # the car ahead reversed into it
    walker = _body(0.2, 1.2, 0.0, -1.4, 0.5, 0.5, -np.pi / 2)  # into a stopped car's side
    assert not at_fault(_body(0, 0, 0.0), walker) and at_fault(walker, _body(0, 0, 0.0))
    crossing = _body(2.7, 0.5, 0.0, -1.4, 0.5, 0.5, -np.pi / 2)  # in front of a moving car
    assert at_fault(_body(0, 0, 6.0), crossing)
    cut_in = _body(0, 0, 3.0)  # moved into the lane 1 s before being rear-ended
    assert at_fault(cut_in, follower, me_in_lane=1.0) and not at_fault(cut_in, follower)


def test_ego_rear_ending_a_stopped_car_is_at_fault(make_urban):
    env, base, ego = _street(make_urban)
    car = _idm_car(base, 45.0, 0.0)
    car.target_speed = 0.0
    info = _crash(env, FASTER)
    assert info["crashed_into"] == "vehicle" and info["at_fault"] is True


def test_ego_cutting_in_front_of_a_car_that_hits_it_is_at_fault(make_urban):
    env, base, ego = _street(make_urban, speed=4.0)
    car = _idm_car(base, 16.0, 13.0, lane=1)  # 14 m behind in the next lane, at 13 m/s
    env.step(LANE_RIGHT)
    info = _crash(env, IDLE)
    assert info["crashed_into"] == "vehicle" and info["at_fault"] is True
    assert car.position[0] < ego.position[0]  # hit from behind


@pytest.mark.parametrize("ego_speed", [0.0, 1.0])
def test_ego_hit_from_behind_is_not_at_fault(make_urban, ego_speed):
    env, base, ego = _street(make_urban, speed=ego_speed)
    car = Vehicle(base.road, np.array([18.0, 0.0]), 0.0, 8.0)  # no brakes: a careless driver
    base.road.vehicles.append(car)
    info = _crash(env, IDLE)
    assert info["crashed_into"] == "vehicle" and info["at_fault"] is False


def test_pedestrian_walking_into_a_stopped_ego_is_not_its_fault(make_urban):
    env, base, ego = _street(make_urban, speed=0.0)
    ped = _pedestrian(base, 30.5, -2.0, from_side=-1)
    ped.state, ped.CLEAR_SIDE = "cross", -10.0  # crossing without looking at the car
    info = _crash(env, IDLE)
    assert info["crashed_into"] == "pedestrian" and info["at_fault"] is False


def test_ego_driving_into_a_crossing_pedestrian_is_at_fault(make_urban):
    env, base, ego = _street(make_urban)
    ped = _pedestrian(base, 38.0, -1.0, from_side=-1)  # 5.5 m ahead of the bumper
    ped.state = "cross"
    info = _crash(env, FASTER)
    assert info["crashed_into"] == "pedestrian" and info["at_fault"] is True
    assert env.step(IDLE)[4]["at_fault"] is True  # it stays with the crash


# -- pedestrians do not step into a car in their path -----------------------------------------
def _waiting(base, cross_x: float, impatient: bool = False) -> Pedestrian:
    ped = _pedestrian(base, cross_x, base.road_y[0] - 1.5, from_side=-1)
    ped.state, ped.waited = "wait", 20.0 if impatient else 0.0
    return ped


def test_a_stopped_truck_on_the_crossing_line_blocks_the_crossing(make_urban):
    env, base, ego = _street(make_urban, speed=0.0)
    truck = _idm_car(base, 104.0, 0.0, lane=1, kind="truck")  # centre past the line, rear on it
    assert truck.LENGTH > 8.0
    assert not _waiting(base, 100.0)._gap_accepted()
    truck.position = truck.position + np.array([truck.LENGTH / 2 + 2.0, 0.0])  # it moved on
    assert _waiting(base, 100.0)._gap_accepted()


def test_an_impatient_pedestrian_waits_for_a_car_that_could_not_stop(make_urban):
    env, base, ego = _street(make_urban, speed=14.0)
    line = ego.position[0] + ego.LENGTH / 2 + 20.0  # 20 m at 14 m/s: 1.4 s, too short to stop
    assert not _waiting(base, line, impatient=True)._gap_accepted()
    assert _waiting(base, line + 40.0, impatient=True)._gap_accepted()


def test_a_jaywalker_checks_its_own_line_for_a_stopped_car(make_urban):
    env, base, ego = _street(make_urban, speed=0.0)
    ped = _waiting(base, ego.position[0] + 1.0)  # its line runs through the stopped ego
    assert not ped.plan.on_crosswalk and not ped._gap_accepted()


def test_a_crossing_pedestrian_walks_around_a_stopped_car_not_into_it(make_urban):
    env, base, ego = _street(make_urban, speed=0.0)
    ped = _pedestrian(base, 31.0, -2.2, from_side=-1)  # its path runs into the ego's side
    ped.state = "cross"
    for _ in range(30):
        env.step(IDLE)
    assert not ego.crashed and not ped.crashed
    assert ped.state in ("leave", "done") or ped.done  # it got across


# -- followers leave room ----------------------------------------------------------------------
def test_a_truck_stops_a_jam_gap_behind_a_stopped_truck(make_urban):
    env, base, ego = _street(make_urban, speed=0.0)
    ahead = _idm_car(base, 120.0, 0.0, lane=1, kind="truck")
    ahead.target_speed = 0.0
    follower = _idm_car(base, 60.0, 12.0, lane=1, kind="truck")
    for _ in range(24):
        env.step(IDLE)
    gap = ahead.position[0] - follower.position[0] - (ahead.LENGTH + follower.LENGTH) / 2
    assert follower.speed < 0.1 and gap > 3.0 and not follower.crashed


def test_idm_driver_does_not_cut_in_front_of_a_fast_car(make_urban):
    env, base, ego = _street(make_urban, speed=4.0)
    base.road.objects.append(
        StaticObstacle(base.road, np.array([40.0, 0.0]), obstacle_style(RNG, "debris"))
    )
    car = _idm_car(base, 16.0, 13.0, lane=1)  # 14 m behind in the next lane, at 13 m/s
    driver = IDMDriver()
    driver.reset(env)
    for _ in range(12):
        env.step(driver.act(env))
        if ego.crashed:
            break
    assert not ego.crashed
    assert car.position[0] > ego.position[0]  # it let the car pass first


def test_overtaking_idm_driver_passes_a_slow_car_when_the_next_lane_is_free(make_urban):
    env, base, ego = _street(make_urban, speed=11.0)
    slow = _idm_car(base, 55.0, 3.0)  # 25 m ahead at 3 m/s; lane 1 empty
    baseline, passing = IDMDriver(), IDMDriver(overtake_gain=0.2)
    for driver in (baseline, passing):
        driver.reset(env)
    assert baseline.act(env) == SLOWER  # the stock driver queues behind it
    assert passing.act(env) == LANE_RIGHT
    for _ in range(10):
        env.step(passing.act(env))
    assert ego.lane_index[2] == 1 and ego.position[0] > slow.position[0] and not ego.crashed


@pytest.mark.parametrize("blocker", ["behind", "ahead"])
def test_overtaking_idm_driver_stays_when_the_next_lane_is_no_better_or_unsafe(make_urban, blocker):
    env, base, ego = _street(make_urban, speed=11.0)
    _idm_car(base, 55.0, 3.0)
    if blocker == "behind":  # 8 m behind in lane 1 at 13 m/s: a change would cut it off
        _idm_car(base, 22.0, 13.0, lane=1)
    else:  # as slow a car in lane 1, a metre nearer: nothing to gain
        _idm_car(base, 54.0, 3.0, lane=1)
    driver = IDMDriver(overtake_gain=0.2)
    driver.reset(env)
    assert driver.act(env) == SLOWER


def test_a_negative_overtake_gain_is_refused():
    with pytest.raises(ConfigError, match=r"overtake_gain=-0.5: .* >= 0 \(MOBIL's is 0.2\)"):
        IDMDriver(overtake_gain=-0.5)
