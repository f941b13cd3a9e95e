"""The pedestrian walking model inside real highway-env scenes."""

from __future__ import annotations

import numpy as np

from sim.appearance import pedestrian_style
from sim.drivers import FASTER, SLOWER
from sim.objects import CrossingPlan, Pedestrian
from tests.conftest import QUIET_URBAN


def _pedestrian(env, x, y, state, speed=1.4, gap_time=3.0):
    base = env.unwrapped
    plan = CrossingPlan(x, -1, base.road_y, base.config["sidewalk_width"], True)
    ped = Pedestrian(
        base.road,
        np.array([x, y]),
        pedestrian_style(np.random.default_rng(0)),
        plan,
        walk_speed=speed,
        gap_time=gap_time,
        patience=1e9,
    )
    ped.state = state
    base.road.objects.append(ped)
    return ped


def test_hitting_a_pedestrian_ends_the_episode_with_its_flag(make_urban):
    env = make_urban(**QUIET_URBAN)
    env.reset(seed=0)
    ego = env.unwrapped.vehicle
    _pedestrian(env, ego.position[0] + 12, ego.position[1], "wait", gap_time=1e9)
    for _ in range(10):
        _, reward, terminated, _, info = env.step(FASTER)
        if terminated:
            break
    assert terminated and info["crashed"]
    assert info["crashed_into"] == "pedestrian"
    assert info["rewards"]["pedestrian_collision"] == 1.0
    assert info["rewards"]["collision"] == 0.0
    assert reward <= env.unwrapped.config["pedestrian_collision_reward"] + 1.0


def test_idm_car_stops_for_a_pedestrian_on_its_lane(make_urban):
    env = make_urban(**{**QUIET_URBAN, "vehicles_count": 1})
    env.reset(seed=1)
    base = env.unwrapped
    car = next(v for v in base.road.vehicles if v is not base.vehicle)
    car.enable_lane_change = False  # else MOBIL steers around the person, which is not the point
    ped = _pedestrian(env, car.position[0] + 45, car.position[1], "wait", gap_time=1e9)
    speeds = []
    for _ in range(30):
        env.step(SLOWER)  # the ego stays out of the way
        speeds.append(car.speed)
    assert not car.crashed and not ped.crashed
    assert max(speeds) > 5.0 and speeds[-1] < 0.3  # it was driving, then it stopped
    assert ped.position[0] - car.position[0] > car.LENGTH / 2  # short of the pedestrian


def test_pedestrians_wait_cross_and_leave(make_urban):
    env = make_urban(vehicles_count=0, obstacles_count=0, pedestrians_count=6)
    env.reset(seed=4)
    base = env.unwrapped
    seen: dict[int, dict] = {}
    for _ in range(70):
        for p in base.pedestrians():
            rec = seen.setdefault(id(p), {"ped": p, "states": [], "y0": p.position[1]})
            if not rec["states"] or rec["states"][-1] != p.state:
                rec["states"].append(p.state)
        env.step(SLOWER)  # the ego stops, so people get their gap
    finished = [r for r in seen.values() if r["ped"].done]
    assert finished, "no pedestrian crossed and left within 35 s"
    road_y = base.road_y
    for rec in finished:
        ped = rec["ped"]
        assert rec["states"][-3:] == ["wait", "cross", "leave"] or rec["states"][-2:] == [
            "cross",
            "leave",
        ]
        y0, y1 = rec["y0"], ped.position[1]
        assert (y0 < road_y[0] and y1 > road_y[1]) or (y0 > road_y[1] and y1 < road_y[0])
        assert ped not in base.road.objects
        assert 1.0 <= ped.walk_speed <= 1.8


def test_waiting_pedestrians_do_not_stop_traffic(make_urban):
    env = make_urban(**{**QUIET_URBAN, "vehicles_count": 1})
    env.reset(seed=1)
    base = env.unwrapped
    car = next(v for v in base.road.vehicles if v is not base.vehicle)
    kerb = base.road_y[0]
    _pedestrian(env, car.position[0] + 40, kerb - Pedestrian.MIN_WAIT_OFFSET, "wait", gap_time=1e9)
    for _ in range(20):
        env.step(SLOWER)
    assert car.speed > 5.0
